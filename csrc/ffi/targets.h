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
// "clipcore_joint_gram_accumulate" on platform "cpu": operands (G_in [D, D],
//   A [b, dA], B [b, dB]) with D = dA + dB, result G_out = G_in + Z^T Z
//   (alias G_in), Z = [f(A) | f(B)] packed per chunk in a thread scratch
//   (f: row L2-normalisation when normalize = 1, else the identity);
//   int64 attributes normalize, block_rows, num_threads (0 = auto).
inline constexpr const char kJointGramAccumulateTarget[] = "clipcore_joint_gram_accumulate";
extern "C" XLA_FFI_Error* ClipcoreJointGramAccumulateCpu(XLA_FFI_CallFrame* frame);

inline constexpr const char kEigvalshTarget[] = "clipcore_eigvalsh";
extern "C" XLA_FFI_Error* ClipcoreEigvalshCpu(XLA_FFI_CallFrame* frame);

// ---- Nyström / Gaussian-kernel core (csrc/nystrom, csrc/ffi/nystrom_handler.cc),
// all on platform "cpu". sigma is a float32|float64 scalar operand (so it may
// be traced); B, B2, L, W share one dtype (float32|float64); G is
// float32|float64 and is accumulated in float64. Optional int64 attributes
// block_rows (rows per syrk chunk), tile_rows (rows per kernel tile),
// num_threads.

// "clipcore_nystrom_accumulate": (G [r, r], B [b, d], L [m, d], W [m, r],
//   sigma) -> G + Phi^T Phi, Phi = k(B, L) W (whitened before the syrk).
inline constexpr const char kNystromAccumulateTarget[] = "clipcore_nystrom_accumulate";
extern "C" XLA_FFI_Error* ClipcoreNystromAccumulateCpu(XLA_FFI_CallFrame* frame);

// "clipcore_nystrom_accumulate_paired": (G [2r, 2r], B, B2 [b, d], L, W,
//   sigma) -> G + Z^T Z, Z = [Phi(B) | Phi(B2)] (texts, images: all three
//   blocks of the joint covariance in one syrk).
inline constexpr const char kNystromAccumulatePairedTarget[] = "clipcore_nystrom_accumulate_paired";
extern "C" XLA_FFI_Error* ClipcoreNystromAccumulatePairedCpu(XLA_FFI_CallFrame* frame);

// "clipcore_kernel_accumulate": (G [m, m], B [b, d], L [m, d], sigma) ->
//   G + k(B, L)^T k(B, L), products in float64 (whiten the sum afterwards).
inline constexpr const char kKernelAccumulateTarget[] = "clipcore_kernel_accumulate";
extern "C" XLA_FFI_Error* ClipcoreKernelAccumulateCpu(XLA_FFI_CallFrame* frame);

// "clipcore_kernel_accumulate_paired": (G [2m, 2m], B, B2, L, sigma) ->
//   G + Z^T Z, Z = [k(B, L) | k(B2, L)].
inline constexpr const char kKernelAccumulatePairedTarget[] = "clipcore_kernel_accumulate_paired";
extern "C" XLA_FFI_Error* ClipcoreKernelAccumulatePairedCpu(XLA_FFI_CallFrame* frame);

// "clipcore_gaussian_sq_frobenius": (x [n, d], sigma) -> [] float32|float64
//   sum_ij k(x_i, x_j)^2 over symmetric tiles (no n×n matrix). Attributes
//   tile_rows, num_threads.
inline constexpr const char kGaussianSqFrobeniusTarget[] = "clipcore_gaussian_sq_frobenius";
extern "C" XLA_FFI_Error* ClipcoreGaussianSqFrobeniusCpu(XLA_FFI_CallFrame* frame);

// "clipcore_pivoted_cholesky": (x [n, d], sigma) -> (pivots [m] int32|64,
//   count [] int32|64, residual_trace [m], pivot_factor [m, m], factor [n, m]
//   or [0, m]; floats float32|float64). Greedy pivoted Cholesky of k(x, x),
//   see csrc/nystrom/pivoted_cholesky.h. Attributes: trace_tol, min_pivot
//   (float64), panel, candidates, block_rows, num_threads (int64).
inline constexpr const char kPivotedCholeskyTarget[] = "clipcore_pivoted_cholesky";
extern "C" XLA_FFI_Error* ClipcorePivotedCholeskyCpu(XLA_FFI_CallFrame* frame);

// "clipcore_hadamard_sq_frobenius": (x [n, dx], t [n, dt], sigmas [2]) -> []
//   sum_ij k_X(x_i, x_j)^2 k_T(t_i, t_j)^2 (csrc/frobenius/hadamard_frobenius.h,
//   csrc/ffi/hadamard_handler.cc). Attributes kernel (0 Gaussian, 1 cosine), tile_rows, num_threads.
inline constexpr const char kHadamardSqFrobeniusTarget[] = "clipcore_hadamard_sq_frobenius";
extern "C" XLA_FFI_Error* ClipcoreHadamardSqFrobeniusCpu(XLA_FFI_CallFrame* frame);

}  // namespace clipcore
