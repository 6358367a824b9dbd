// XLA FFI handler (typed API) for gram_accumulate on CPU.
#include <cstdint>
#include <string>
#include <string_view>

#include "ffi/ffi_common.h"
#include "ffi/gram_dispatch.h"
#include "ffi/targets.h"
#include "ffi/xla_executor.h"
#include "gram/gram_accumulate.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace clipcore {
namespace {

// Reads an optional integer attribute (jax passes Python ints as int64; other
// integer widths are accepted too).
ffi::Error get_int_attr(const ffi::Dictionary& attrs, std::string_view name,
                        int64_t* value) {
  if (!attrs.contains(name)) return ffi::Error::Success();
  if (attrs.contains<int64_t>(name)) {
    *value = *attrs.get<int64_t>(name);
  } else if (attrs.contains<int32_t>(name)) {
    *value = *attrs.get<int32_t>(name);
  } else {
    return ffi::Error::InvalidArgument(
        "gram_accumulate: attribute '" + std::string(name) +
        "' must be an integer");
  }
  if (*value < 0)
    return ffi::Error::InvalidArgument(
        "gram_accumulate: attribute '" + std::string(name) +
        "' must be >= 0, got " + std::to_string(*value));
  return ffi::Error::Success();
}

ffi::Error GramAccumulateImpl(ffi::ThreadPool pool, ffi::AnyBuffer g_in,
                              ffi::AnyBuffer phi,
                              ffi::Result<ffi::AnyBuffer> g_out,
                              ffi::Dictionary attrs) {
  for (std::string_view name : attrs) {
    if (name != "block_rows" && name != "num_threads" && name != "strategy")
      return ffi::Error::InvalidArgument(
          "gram_accumulate: unknown attribute '" + std::string(name) +
          "' (known: block_rows, num_threads, strategy)");
  }
  int64_t block_rows = 0, num_threads = 0, strategy = 0;
  if (auto e = get_int_attr(attrs, "block_rows", &block_rows); e.failure())
    return e;
  if (auto e = get_int_attr(attrs, "num_threads", &num_threads); e.failure())
    return e;
  if (auto e = get_int_attr(attrs, "strategy", &strategy); e.failure())
    return e;
  if (strategy > 1)
    return ffi::Error::InvalidArgument(
        "gram_accumulate: attribute 'strategy' must be 0 (rows over threads) "
        "or 1 (OpenBLAS threads), got " + std::to_string(strategy));

  gram::Options opt;
  opt.block_rows = block_rows;
  opt.num_threads = num_threads;
  opt.strategy = static_cast<gram::Strategy>(strategy);

  const int threads = num_threads > 0 ? static_cast<int>(num_threads)
                                      : gram::default_num_threads();
  ffi_util::XlaPoolExecutor executor(pool, threads - 1);
  return ffi_util::gram_accumulate_dispatch(g_in, phi, g_out, opt, &executor);
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreGramAccumulateCpu, GramAccumulateImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()  // G_in [D, D]
                                  .Arg<ffi::AnyBuffer>()  // phi [b, D]
                                  .Ret<ffi::AnyBuffer>()  // G_out [D, D]
                                  .Attrs());

}  // namespace clipcore
