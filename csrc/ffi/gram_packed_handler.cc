// XLA FFI handler (typed API) for the packed joint Gram on CPU:
// G_out = G_in + Z^T Z, Z = [f(A) | f(B)], f = row normalisation or identity.
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "ffi/ffi_common.h"
#include "ffi/targets.h"
#include "ffi/xla_executor.h"
#include "gram/gram_packed.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace clipcore {
namespace {

constexpr const char* kOp = "joint_gram_accumulate: ";

ffi::Error invalid(const std::string& msg) {
  return ffi::Error::InvalidArgument(kOp + msg);
}

bool is_real_float(ffi::DataType t) {
  return t == ffi::DataType::F32 || t == ffi::DataType::F64;
}

template <typename TIn, typename TG>
ffi::Error run(ffi::AnyBuffer g_in, ffi::AnyBuffer a, ffi::AnyBuffer b,
               ffi::AnyBuffer g_out, int64_t rows, int64_t da, int64_t db,
               bool normalize, const gram::Options& opt, Executor* ex) {
  std::string err = gram::gram_accumulate_packed<TIn, TG>(
      static_cast<const TIn*>(a.untyped_data()), da,
      static_cast<const TIn*>(b.untyped_data()), db, rows, normalize,
      static_cast<const TG*>(g_in.untyped_data()),
      static_cast<TG*>(g_out.untyped_data()), opt, ex);
  if (!err.empty()) {
    std::ostringstream os;
    os << err << " (A " << ffi_util::dtype_name(a.element_type()) << " "
       << ffi_util::shape_str(a.dimensions()) << ", B "
       << ffi_util::shape_str(b.dimensions()) << ", G "
       << ffi_util::dtype_name(g_in.element_type()) << " "
       << ffi_util::shape_str(g_in.dimensions()) << ")";
    return ffi::Error(ffi::ErrorCode::kInternal, kOp + os.str());
  }
  return ffi::Error::Success();
}

ffi::Error JointGramImpl(ffi::ThreadPool pool, ffi::AnyBuffer g_in,
                         ffi::AnyBuffer a, ffi::AnyBuffer b,
                         ffi::Result<ffi::AnyBuffer> g_out, int64_t normalize,
                         int64_t block_rows, int64_t num_threads) {
  const auto ad = a.dimensions();
  const auto bd = b.dimensions();
  const auto gd = g_in.dimensions();
  const auto od = g_out->dimensions();
  if (!is_real_float(a.element_type()) || b.element_type() != a.element_type())
    return invalid(std::string("A and B must share one dtype, float32 or "
                               "float64; got ") +
                   ffi_util::dtype_name(a.element_type()) + " and " +
                   ffi_util::dtype_name(b.element_type()));
  if (!is_real_float(g_in.element_type()))
    return invalid(std::string("G dtype must be float32 or float64, got ") +
                   ffi_util::dtype_name(g_in.element_type()));
  if (ad.size() != 2 || bd.size() != 2)
    return invalid("A and B must be rank 2 [b, d], got " +
                   ffi_util::shape_str(ad) + " and " + ffi_util::shape_str(bd));
  if (ad[0] != bd[0])
    return invalid("A and B must have the same rows (paired), got " +
                   ffi_util::shape_str(ad) + " and " + ffi_util::shape_str(bd));
  const int64_t d = ad[1] + bd[1];
  if (gd.size() != 2 || gd[0] != d || gd[1] != d)
    return invalid("G must be [dA + dB, dA + dB] = [" + std::to_string(d) +
                   ", " + std::to_string(d) + "], got " +
                   ffi_util::shape_str(gd));
  if (g_out->element_type() != g_in.element_type() || od.size() != 2 ||
      od[0] != d || od[1] != d)
    return invalid("output must have G's dtype and shape, got " +
                   ffi_util::shape_str(od));
  if (block_rows < 0 || num_threads < 0 || normalize < 0 || normalize > 1)
    return invalid("attributes: block_rows, num_threads >= 0 and normalize "
                   "in {0, 1} (got " + std::to_string(block_rows) + ", " +
                   std::to_string(num_threads) + ", " +
                   std::to_string(normalize) + ")");
  gram::Options opt;
  opt.block_rows = block_rows;
  opt.num_threads = num_threads;
  const int threads = num_threads > 0 ? static_cast<int>(num_threads)
                                      : gram::default_num_threads();
  ffi_util::XlaPoolExecutor executor(pool, threads - 1);
  const bool a32 = a.element_type() == ffi::DataType::F32;
  const bool g32 = g_in.element_type() == ffi::DataType::F32;
  const int64_t rows = ad[0];
  const bool norm = normalize != 0;
  if (a32 && g32)
    return run<float, float>(g_in, a, b, *g_out, rows, ad[1], bd[1], norm, opt, &executor);
  if (a32)
    return run<float, double>(g_in, a, b, *g_out, rows, ad[1], bd[1], norm, opt, &executor);
  if (g32)
    return run<double, float>(g_in, a, b, *g_out, rows, ad[1], bd[1], norm, opt, &executor);
  return run<double, double>(g_in, a, b, *g_out, rows, ad[1], bd[1], norm, opt, &executor);
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreJointGramAccumulateCpu, JointGramImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()  // G_in [D, D]
                                  .Arg<ffi::AnyBuffer>()  // A [b, dA]
                                  .Arg<ffi::AnyBuffer>()  // B [b, dB]
                                  .Ret<ffi::AnyBuffer>()  // G_out [D, D]
                                  .Attr<int64_t>("normalize")
                                  .Attr<int64_t>("block_rows")
                                  .Attr<int64_t>("num_threads"));

}  // namespace clipcore
