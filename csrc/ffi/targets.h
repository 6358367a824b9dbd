// The XLA FFI handler symbols this extension defines, and their target names.
#pragma once

#include "xla/ffi/api/c_api.h"

namespace clipcore {

// "clipcore_gram_accumulate" on platform "cpu":
//   operands (G_in [D, D], phi [b, D]), result G_out [D, D] (alias G_in);
//   optional int64 attributes block_rows, num_threads, strategy (0 = rows
//   over threads, 1 = OpenBLAS threads).
inline constexpr const char kGramAccumulateTarget[] = "clipcore_gram_accumulate";
extern "C" XLA_FFI_Error* ClipcoreGramAccumulateCpu(XLA_FFI_CallFrame* frame);

}  // namespace clipcore
