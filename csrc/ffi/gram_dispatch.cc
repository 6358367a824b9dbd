#include "ffi/gram_dispatch.h"

#include <sstream>
#include <string>

#include "ffi/ffi_common.h"

namespace clipcore::ffi_util {

namespace ffi = xla::ffi;

namespace {

constexpr const char* kOp = "gram_accumulate: ";

ffi::Error invalid(const std::string& msg) {
  return ffi::Error::InvalidArgument(kOp + msg);
}

bool is_real_float(ffi::DataType t) {
  return t == ffi::DataType::F32 || t == ffi::DataType::F64;
}

template <typename TIn, typename TG>
ffi::Error run_typed(ffi::AnyBuffer g_in, ffi::AnyBuffer phi,
                     ffi::AnyBuffer g_out, int64_t b, int64_t d,
                     const gram::Options& options, Executor* executor) {
  std::string err = gram::gram_accumulate<TIn, TG>(
      static_cast<const TIn*>(phi.untyped_data()), b, d,
      static_cast<const TG*>(g_in.untyped_data()),
      static_cast<TG*>(g_out.untyped_data()), options, executor);
  if (!err.empty()) {
    std::ostringstream os;
    os << err << " (phi " << dtype_name(phi.element_type()) << " "
       << shape_str(phi.dimensions()) << ", G "
       << dtype_name(g_in.element_type()) << " "
       << shape_str(g_in.dimensions()) << ")";
    return ffi::Error(ffi::ErrorCode::kInternal, kOp + os.str());
  }
  return ffi::Error::Success();
}

}  // namespace

ffi::Error gram_accumulate_dispatch(ffi::AnyBuffer g_in, ffi::AnyBuffer phi,
                                    ffi::Result<ffi::AnyBuffer> g_out,
                                    const gram::Options& options,
                                    Executor* executor) {
  const auto pd = phi.dimensions();
  const auto gd = g_in.dimensions();
  const auto od = g_out->dimensions();

  if (!is_real_float(phi.element_type()))
    return invalid(std::string("phi dtype must be float32 or float64, got ") +
                   dtype_name(phi.element_type()));
  if (!is_real_float(g_in.element_type()))
    return invalid(std::string("G dtype must be float32 or float64, got ") +
                   dtype_name(g_in.element_type()));
  if (pd.size() != 2)
    return invalid("phi must be rank 2 [b, D], got shape " + shape_str(pd) +
                   " (rank " + std::to_string(pd.size()) + ")");
  const int64_t b = pd[0];
  const int64_t d = pd[1];
  if (gd.size() != 2 || gd[0] != d || gd[1] != d)
    return invalid("G must be [D, D] with D = phi.shape[1] = " +
                   std::to_string(d) + ", got " + shape_str(gd));
  if (g_out->element_type() != g_in.element_type() || od.size() != 2 ||
      od[0] != d || od[1] != d)
    return invalid(std::string("output must have G's dtype and shape (") +
                   dtype_name(g_in.element_type()) + " " + shape_str(gd) +
                   "), got " + dtype_name(g_out->element_type()) + " " +
                   shape_str(od));

  const bool phi32 = phi.element_type() == ffi::DataType::F32;
  const bool g32 = g_in.element_type() == ffi::DataType::F32;
  if (phi32 && g32)
    return run_typed<float, float>(g_in, phi, *g_out, b, d, options, executor);
  if (phi32 && !g32)
    return run_typed<float, double>(g_in, phi, *g_out, b, d, options,
                                    executor);
  if (!phi32 && g32)
    return run_typed<double, float>(g_in, phi, *g_out, b, d, options,
                                    executor);
  return run_typed<double, double>(g_in, phi, *g_out, b, d, options, executor);
}

}  // namespace clipcore::ffi_util
