// XLA FFI handler (CPU) of the streamed Hadamard-kernel squared Frobenius norm
// (csrc/frobenius/hadamard_frobenius.h): operand checks -> dtype dispatch ->
// the pure algorithm on XLA's thread pool.
//
// "clipcore_hadamard_sq_frobenius": (x [n, dx], t [n, dt], sigmas [2]) -> []
//   sum_ij k_X(x_i, x_j)^2 k_T(t_i, t_j)^2; x and t share float32|float64,
//   sigmas (sigma_x, sigma_t) is float32|float64 (read for the Gaussian kernel
//   only, so it may be traced). Attributes (int64, optional): kernel (0
//   Gaussian, 1 cosine), tile_rows, num_threads.
#include <algorithm>
#include <cstdint>
#include <string>

#include "ffi/ffi_args.h"
#include "ffi/ffi_common.h"
#include "ffi/targets.h"
#include "ffi/xla_executor.h"
#include "frobenius/hadamard_frobenius.h"
#include "gram/gram_accumulate.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace clipcore {
namespace {

using ffi_util::desc;
using ffi_util::invalid;
using ffi_util::is_float;

// (sigma_x, sigma_t) from the [2] operand.
ffi::Error read_sigmas(const char* op, const ffi::AnyBuffer& s, double* sx, double* st) {
  if (!is_float(s.element_type()) || s.element_count() != 2 || s.dimensions().size() != 1)
    return invalid(op, "sigmas must be [2] float32 or float64 (sigma_x, sigma_t), got " + desc(s));
  if (s.element_type() == ffi::DataType::F32) {
    const float* v = static_cast<const float*>(s.untyped_data());
    *sx = v[0];
    *st = v[1];
  } else {
    const double* v = static_cast<const double*>(s.untyped_data());
    *sx = v[0];
    *st = v[1];
  }
  return ffi::Error::Success();
}

ffi::Error check_operands(const char* op, const ffi::AnyBuffer& x, const ffi::AnyBuffer& t,
                          const ffi::AnyBuffer& out) {
  if (!is_float(x.element_type()) || t.element_type() != x.element_type())
    return invalid(op, "x and t must share float32 or float64, got " + desc(x) + " and " + desc(t));
  if (x.dimensions().size() != 2 || t.dimensions().size() != 2 || x.dimensions()[0] != t.dimensions()[0])
    return invalid(op, "x [n, dx] and t [n, dt] must be paired rank-2 arrays, got " + desc(x) + " and " + desc(t));
  if (!is_float(out.element_type()) || out.element_count() != 1 || out.dimensions().size() != 0)
    return invalid(op, "output must be a float32 or float64 scalar [], got " + desc(out));
  return ffi::Error::Success();
}

template <typename T>
std::string run_typed(const ffi::AnyBuffer& x, const ffi::AnyBuffer& t, const frobenius::HadamardOptions& opt,
                      double* s, Executor* ex) {
  frobenius::PairedRows<T> rows;
  rows.x = static_cast<const T*>(x.untyped_data());
  rows.t = static_cast<const T*>(t.untyped_data());
  rows.n = x.dimensions()[0];
  rows.dx = x.dimensions()[1];
  rows.dt = t.dimensions()[1];
  return frobenius::hadamard_sq_frobenius<T>(rows, nullptr, opt, s, ex);
}

ffi::Error HadamardSqFrobeniusImpl(ffi::ThreadPool pool, ffi::AnyBuffer x, ffi::AnyBuffer t, ffi::AnyBuffer sigmas,
                                   ffi::Result<ffi::AnyBuffer> out, ffi::Dictionary attrs) {
  constexpr const char* op = "hadamard_sq_frobenius";
  frobenius::HadamardOptions opt;
  int64_t kernel = 0;
  if (auto e = ffi_util::int_attrs(op, attrs, {{"kernel", &kernel}, {"tile_rows", &opt.tile_rows},
                                               {"num_threads", &opt.num_threads}});
      e.failure())
    return e;
  if (kernel > 1) return invalid(op, "attribute 'kernel' must be 0 (Gaussian) or 1 (cosine), got " + std::to_string(kernel));
  opt.kernel = static_cast<frobenius::ProductKernel>(kernel);
  if (auto e = check_operands(op, x, t, *out); e.failure()) return e;
  if (auto e = read_sigmas(op, sigmas, &opt.sigma_x, &opt.sigma_t); e.failure()) return e;
  const int threads = opt.num_threads > 0 ? static_cast<int>(std::min<int64_t>(opt.num_threads, 1024))
                                          : gram::default_num_threads();
  ffi_util::XlaPoolExecutor ex(pool, threads - 1);
  double s = 0;
  const std::string err = x.element_type() == ffi::DataType::F32 ? run_typed<float>(x, t, opt, &s, &ex)
                                                                  : run_typed<double>(x, t, opt, &s, &ex);
  if (!err.empty()) return invalid(op, err + " (x " + desc(x) + ", t " + desc(t) + ")");
  if (out->element_type() == ffi::DataType::F32)
    *static_cast<float*>(out->untyped_data()) = static_cast<float>(s);
  else
    *static_cast<double*>(out->untyped_data()) = s;
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreHadamardSqFrobeniusCpu, HadamardSqFrobeniusImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()   // x [n, dx]
                                  .Arg<ffi::AnyBuffer>()   // t [n, dt]
                                  .Arg<ffi::AnyBuffer>()   // sigmas [2]
                                  .Ret<ffi::AnyBuffer>()   // sum_ij k_X^2 k_T^2 []
                                  .Attrs());

}  // namespace clipcore
