// XLA FFI handlers (typed API, CPU) for the Nyström / kernel core:
// validation with shapes in every message, dtype dispatch, then the pure
// algorithms of csrc/nystrom/ on XLA's CPU thread pool.
#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "ffi/ffi_args.h"
#include "ffi/ffi_common.h"
#include "ffi/targets.h"
#include "ffi/xla_executor.h"
#include "gram/gram_accumulate.h"
#include "nystrom/kernel_frobenius.h"
#include "nystrom/nystrom_accumulate.h"
#include "nystrom/pivoted_cholesky.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace clipcore {
namespace {

using ffi_util::desc;
using ffi_util::dtype_name;
using ffi_util::int_attrs;
using ffi_util::invalid;
using ffi_util::is_float;
using ffi_util::shape_str;

// sigma: one float32/float64 value (shape [] or [1]), positive and finite.
ffi::Error read_sigma(const char* op, const ffi::AnyBuffer& sigma, double* value) {
  if (auto e = ffi_util::check_sigma_operand(op, sigma); e.failure()) return e;
  *value = sigma.element_type() == ffi::DataType::F32
               ? static_cast<double>(*static_cast<const float*>(sigma.untyped_data()))
               : *static_cast<const double*>(sigma.untyped_data());
  return ffi_util::check_sigma_value(op, *value);
}

int threads_for(int64_t num_threads) {
  return num_threads > 0 ? static_cast<int>(std::min<int64_t>(num_threads, 1024))
                         : gram::default_num_threads();
}

// ------------------------------------------------------------ accumulation

template <typename T, typename TG>
std::string acc_typed(const std::vector<ffi::AnyBuffer>& blocks, int64_t b, int64_t d,
                      const ffi::AnyBuffer& L, int64_t m, const ffi::AnyBuffer* W, int64_t r,
                      double sigma, const ffi::AnyBuffer& g_in, ffi::AnyBuffer g_out,
                      const nystrom::AccumulateOptions& opt, Executor* ex) {
  const T* ptrs[2] = {nullptr, nullptr};
  for (size_t i = 0; i < blocks.size(); ++i) ptrs[i] = static_cast<const T*>(blocks[i].untyped_data());
  return nystrom::nystrom_accumulate<T, TG>(
      ptrs, static_cast<int>(blocks.size()), b, d, static_cast<const T*>(L.untyped_data()), m,
      W ? static_cast<const T*>(W->untyped_data()) : nullptr, r, sigma,
      static_cast<const TG*>(g_in.untyped_data()), static_cast<TG*>(g_out.untyped_data()), opt, ex);
}

ffi::Error accumulate(const char* op, ffi::ThreadPool& pool, ffi::AnyBuffer g_in,
                      std::vector<ffi::AnyBuffer> blocks, ffi::AnyBuffer L,
                      const ffi::AnyBuffer* W, ffi::AnyBuffer sigma_buf,
                      ffi::Result<ffi::AnyBuffer> g_out, const ffi::Dictionary& attrs) {
  nystrom::AccumulateOptions opt;
  if (auto e = int_attrs(op, attrs, {{"block_rows", &opt.block_rows}, {"tile_rows", &opt.tile_rows},
                                     {"num_threads", &opt.num_threads}});
      e.failure())
    return e;

  const bool paired = blocks.size() == 2;
  const char* bname = paired ? "B and B2" : "B";
  const auto t = blocks[0].element_type();
  if (!is_float(t))
    return invalid(op, std::string("B dtype must be float32 or float64, got ") + dtype_name(t));
  const auto bd = blocks[0].dimensions();
  if (bd.size() != 2) return invalid(op, "B must be rank 2 [b, d], got " + desc(blocks[0]));
  const int64_t b = bd[0], d = bd[1];
  if (paired) {
    const auto b2 = blocks[1].dimensions();
    if (blocks[1].element_type() != t || b2.size() != 2 || b2[0] != b || b2[1] != d)
      return invalid(op, "B2 must have B's dtype and shape (" + desc(blocks[0]) + "), got " +
                             desc(blocks[1]));
  }
  const auto ldims = L.dimensions();
  if (L.element_type() != t || ldims.size() != 2 || ldims[1] != d)
    return invalid(op, std::string("landmarks must be ") + dtype_name(t) + " [m, d] with d = " +
                           "B.shape[1] = " + std::to_string(d) + ", got " + desc(L));
  const int64_t m = ldims[0];
  int64_t r = 0;
  if (W) {
    const auto wd = W->dimensions();
    if (W->element_type() != t || wd.size() != 2 || wd[0] != m)
      return invalid(op, std::string("whitening must be ") + dtype_name(t) + " [m, r] with m = " +
                             "landmarks.shape[0] = " + std::to_string(m) + ", got " + desc(*W));
    r = wd[1];
  }
  const int64_t R = static_cast<int64_t>(blocks.size()) * (W ? r : m);
  const auto gd = g_in.dimensions();
  if (!is_float(g_in.element_type()))
    return invalid(op, std::string("G dtype must be float32 or float64, got ") +
                           dtype_name(g_in.element_type()));
  if (gd.size() != 2 || gd[0] != R || gd[1] != R) {
    std::ostringstream os;
    os << "G must be [R, R] with R = " << (paired ? "2 * " : "") << (W ? "r" : "m") << " = " << R
       << " (" << bname << " " << desc(blocks[0]) << ", landmarks " << desc(L);
    if (W) os << ", whitening " << desc(*W);
    os << "), got " << shape_str(gd);
    return invalid(op, os.str());
  }
  const auto od = g_out->dimensions();
  if (g_out->element_type() != g_in.element_type() || od.size() != 2 || od[0] != R || od[1] != R)
    return invalid(op, "output must have G's dtype and shape (" + desc(g_in) + "), got " +
                           desc(*g_out));
  double sigma = 0;
  if (auto e = read_sigma(op, sigma_buf, &sigma); e.failure()) return e;

  ffi_util::XlaPoolExecutor ex(pool, threads_for(opt.num_threads) - 1);
  const bool f32 = t == ffi::DataType::F32;
  const bool g32 = g_in.element_type() == ffi::DataType::F32;
  std::string err;
  if (f32 && g32)
    err = acc_typed<float, float>(blocks, b, d, L, m, W, r, sigma, g_in, *g_out, opt, &ex);
  else if (f32)
    err = acc_typed<float, double>(blocks, b, d, L, m, W, r, sigma, g_in, *g_out, opt, &ex);
  else if (g32)
    err = acc_typed<double, float>(blocks, b, d, L, m, W, r, sigma, g_in, *g_out, opt, &ex);
  else
    err = acc_typed<double, double>(blocks, b, d, L, m, W, r, sigma, g_in, *g_out, opt, &ex);
  if (!err.empty()) {
    std::ostringstream os;
    os << err << " (" << bname << " " << desc(blocks[0]) << ", landmarks " << desc(L);
    if (W) os << ", whitening " << desc(*W);
    os << ", G " << desc(g_in) << ")";
    return invalid(op, os.str());
  }
  return ffi::Error::Success();
}

ffi::Error NystromAccumulateImpl(ffi::ThreadPool pool, ffi::AnyBuffer g, ffi::AnyBuffer b,
                                 ffi::AnyBuffer l, ffi::AnyBuffer w, ffi::AnyBuffer sigma,
                                 ffi::Result<ffi::AnyBuffer> out, ffi::Dictionary attrs) {
  return accumulate("nystrom_accumulate", pool, g, {b}, l, &w, sigma, out, attrs);
}
ffi::Error NystromAccumulatePairedImpl(ffi::ThreadPool pool, ffi::AnyBuffer g, ffi::AnyBuffer b,
                                       ffi::AnyBuffer b2, ffi::AnyBuffer l, ffi::AnyBuffer w,
                                       ffi::AnyBuffer sigma, ffi::Result<ffi::AnyBuffer> out,
                                       ffi::Dictionary attrs) {
  return accumulate("nystrom_accumulate_paired", pool, g, {b, b2}, l, &w, sigma, out, attrs);
}
ffi::Error KernelAccumulateImpl(ffi::ThreadPool pool, ffi::AnyBuffer g, ffi::AnyBuffer b,
                                ffi::AnyBuffer l, ffi::AnyBuffer sigma,
                                ffi::Result<ffi::AnyBuffer> out, ffi::Dictionary attrs) {
  return accumulate("kernel_accumulate", pool, g, {b}, l, nullptr, sigma, out, attrs);
}
ffi::Error KernelAccumulatePairedImpl(ffi::ThreadPool pool, ffi::AnyBuffer g, ffi::AnyBuffer b,
                                      ffi::AnyBuffer b2, ffi::AnyBuffer l, ffi::AnyBuffer sigma,
                                      ffi::Result<ffi::AnyBuffer> out, ffi::Dictionary attrs) {
  return accumulate("kernel_accumulate_paired", pool, g, {b, b2}, l, nullptr, sigma, out, attrs);
}

// ------------------------------------------------------------ |K|_F^2

ffi::Error SqFrobeniusImpl(ffi::ThreadPool pool, ffi::AnyBuffer x, ffi::AnyBuffer sigma_buf,
                           ffi::Result<ffi::AnyBuffer> out, ffi::Dictionary attrs) {
  constexpr const char* op = "gaussian_sq_frobenius";
  nystrom::FrobeniusOptions opt;
  if (auto e = int_attrs(op, attrs, {{"tile_rows", &opt.tile_rows}, {"num_threads", &opt.num_threads}});
      e.failure())
    return e;
  const auto t = x.element_type();
  if (!is_float(t)) return invalid(op, std::string("x dtype must be float32 or float64, got ") + dtype_name(t));
  const auto xd = x.dimensions();
  if (xd.size() != 2) return invalid(op, "x must be rank 2 [n, d], got " + desc(x));
  if (!is_float(out->element_type()) || out->element_count() != 1 || out->dimensions().size() != 0)
    return invalid(op, "output must be a float32 or float64 scalar [], got " + desc(*out));
  double sigma = 0;
  if (auto e = read_sigma(op, sigma_buf, &sigma); e.failure()) return e;
  ffi_util::XlaPoolExecutor ex(pool, threads_for(opt.num_threads) - 1);
  double s = 0;
  const std::string err =
      t == ffi::DataType::F32
          ? nystrom::gaussian_sq_frobenius<float>(static_cast<const float*>(x.untyped_data()), xd[0], xd[1], sigma, opt, &s, &ex)
          : nystrom::gaussian_sq_frobenius<double>(static_cast<const double*>(x.untyped_data()), xd[0], xd[1], sigma, opt, &s, &ex);
  if (!err.empty()) return invalid(op, err + " (x " + desc(x) + ")");
  if (out->element_type() == ffi::DataType::F32)
    *static_cast<float*>(out->untyped_data()) = static_cast<float>(s);
  else
    *static_cast<double*>(out->untyped_data()) = s;
  return ffi::Error::Success();
}

// ------------------------------------------------------------ pivoted Cholesky

template <typename Out, typename In>
void convert(const In* in, int64_t count, void* out) {
  Out* o = static_cast<Out*>(out);
  for (int64_t i = 0; i < count; ++i) o[i] = static_cast<Out>(in[i]);
}

ffi::Error PivotedCholeskyImpl(ffi::ThreadPool pool, ffi::AnyBuffer x, ffi::AnyBuffer sigma_buf,
                               ffi::Result<ffi::AnyBuffer> pivots_out,
                               ffi::Result<ffi::AnyBuffer> count_out,
                               ffi::Result<ffi::AnyBuffer> trace_out,
                               ffi::Result<ffi::AnyBuffer> pfactor_out,
                               ffi::Result<ffi::AnyBuffer> factor_out, ffi::Dictionary attrs) {
  constexpr const char* op = "pivoted_cholesky";
  ffi_util::PivotedCholeskyArgs args;
  if (auto e = ffi_util::pivoted_cholesky_args(op, attrs, x, *pivots_out, *count_out, *trace_out, *pfactor_out,
                                               *factor_out, &args);
      e.failure())
    return e;
  const nystrom::PivotedCholeskyOptions& opt = args.opt;
  const auto t = x.element_type();
  const int64_t n = args.n, d = args.d, m = args.m;
  const auto pt = pivots_out->element_type();
  const auto ct = count_out->element_type();
  double sigma = 0;
  if (auto e = read_sigma(op, sigma_buf, &sigma); e.failure()) return e;

  const bool want_factor = args.want_factor;
  const bool factor64 = factor_out->element_type() == ffi::DataType::F64;
  std::vector<int64_t> piv(static_cast<size_t>(m));
  std::vector<double> trace(static_cast<size_t>(m)), pfac(static_cast<size_t>(m) * m);
  std::vector<double> fac_tmp;
  double* fac = nullptr;
  if (want_factor) {
    if (factor64) {
      fac = static_cast<double*>(factor_out->untyped_data());
    } else {
      fac_tmp.resize(static_cast<size_t>(n) * m);
      fac = fac_tmp.data();
    }
  }
  int64_t count = 0;
  ffi_util::XlaPoolExecutor ex(pool, threads_for(opt.num_threads) - 1);
  const std::string err =
      t == ffi::DataType::F32
          ? nystrom::pivoted_cholesky<float>(static_cast<const float*>(x.untyped_data()), n, d, sigma, m, opt,
                                             piv.data(), trace.data(), pfac.data(), fac, &count, &ex)
          : nystrom::pivoted_cholesky<double>(static_cast<const double*>(x.untyped_data()), n, d, sigma, m, opt,
                                              piv.data(), trace.data(), pfac.data(), fac, &count, &ex);
  if (!err.empty()) return invalid(op, err + " (x " + desc(x) + ", m = " + std::to_string(m) + ")");
  if (pt == ffi::DataType::S64) convert<int64_t>(piv.data(), m, pivots_out->untyped_data());
  else convert<int32_t>(piv.data(), m, pivots_out->untyped_data());
  if (ct == ffi::DataType::S64) *static_cast<int64_t*>(count_out->untyped_data()) = count;
  else *static_cast<int32_t*>(count_out->untyped_data()) = static_cast<int32_t>(count);
  if (trace_out->element_type() == ffi::DataType::F64) convert<double>(trace.data(), m, trace_out->untyped_data());
  else convert<float>(trace.data(), m, trace_out->untyped_data());
  if (pfactor_out->element_type() == ffi::DataType::F64) convert<double>(pfac.data(), m * m, pfactor_out->untyped_data());
  else convert<float>(pfac.data(), m * m, pfactor_out->untyped_data());
  if (want_factor && !factor64) convert<float>(fac, n * m, factor_out->untyped_data());
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreNystromAccumulateCpu, NystromAccumulateImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()   // G_in [r, r]
                                  .Arg<ffi::AnyBuffer>()   // B [b, d]
                                  .Arg<ffi::AnyBuffer>()   // L [m, d]
                                  .Arg<ffi::AnyBuffer>()   // W [m, r]
                                  .Arg<ffi::AnyBuffer>()   // sigma []
                                  .Ret<ffi::AnyBuffer>()   // G_out [r, r]
                                  .Attrs());

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreNystromAccumulatePairedCpu, NystromAccumulatePairedImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()   // G_in [2r, 2r]
                                  .Arg<ffi::AnyBuffer>()   // B [b, d]
                                  .Arg<ffi::AnyBuffer>()   // B2 [b, d]
                                  .Arg<ffi::AnyBuffer>()   // L [m, d]
                                  .Arg<ffi::AnyBuffer>()   // W [m, r]
                                  .Arg<ffi::AnyBuffer>()   // sigma []
                                  .Ret<ffi::AnyBuffer>()   // G_out [2r, 2r]
                                  .Attrs());

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreKernelAccumulateCpu, KernelAccumulateImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()   // G_in [m, m]
                                  .Arg<ffi::AnyBuffer>()   // B [b, d]
                                  .Arg<ffi::AnyBuffer>()   // L [m, d]
                                  .Arg<ffi::AnyBuffer>()   // sigma []
                                  .Ret<ffi::AnyBuffer>()   // G_out [m, m]
                                  .Attrs());

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreKernelAccumulatePairedCpu, KernelAccumulatePairedImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()   // G_in [2m, 2m]
                                  .Arg<ffi::AnyBuffer>()   // B [b, d]
                                  .Arg<ffi::AnyBuffer>()   // B2 [b, d]
                                  .Arg<ffi::AnyBuffer>()   // L [m, d]
                                  .Arg<ffi::AnyBuffer>()   // sigma []
                                  .Ret<ffi::AnyBuffer>()   // G_out [2m, 2m]
                                  .Attrs());

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreGaussianSqFrobeniusCpu, SqFrobeniusImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()   // x [n, d]
                                  .Arg<ffi::AnyBuffer>()   // sigma []
                                  .Ret<ffi::AnyBuffer>()   // sum_ij k(x_i, x_j)^2 []
                                  .Attrs());

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcorePivotedCholeskyCpu, PivotedCholeskyImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()   // x [n, d]
                                  .Arg<ffi::AnyBuffer>()   // sigma []
                                  .Ret<ffi::AnyBuffer>()   // pivots [m]
                                  .Ret<ffi::AnyBuffer>()   // count []
                                  .Ret<ffi::AnyBuffer>()   // residual_trace [m]
                                  .Ret<ffi::AnyBuffer>()   // pivot_factor [m, m]
                                  .Ret<ffi::AnyBuffer>()   // factor [n, m] or [0, m]
                                  .Attrs());

}  // namespace clipcore
