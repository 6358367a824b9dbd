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

// "clipcore_eigvalsh" on platform "cpu": operand A [n, n] or a batch
//   [b, n, n] (float32|float64, symmetric; upper triangles read), result w
//   [n] or [b, n] ascending (LAPACK ?syevr, no eigenvectors; the matrices of
//   a batch are solved concurrently on XLA's CPU thread pool).
inline constexpr const char kEigvalshTarget[] = "clipcore_eigvalsh";
extern "C" XLA_FFI_Error* ClipcoreEigvalshCpu(XLA_FFI_CallFrame* frame);

}  // namespace clipcore
