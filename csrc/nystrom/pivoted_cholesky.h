// Greedy pivoted Cholesky of the Gaussian kernel matrix K = k(X, X), never
// formed (pure algorithm + threading; no XLA). Selects landmarks for Nyström.
//
// Sequential definition (what the tests compare against): residual diagonal
// r = diag(K) = 1, trace t = n; for step k = 0, 1, ...:
//   stop if k = min(m, n), or t <= trace_tol, or max r <= min_pivot;
//   p_k = argmax r (lowest index among ties);
//   L[:, k] = (K[:, p_k] - L[:, :k] L[p_k, :k]^T) / sqrt(r[p_k]);
//   r -= L[:, k]^2;  r[p_k] = 0;  t = sum r.
// Then K ~= L L^T, and L[P, :] (P the pivots) is the lower-triangular
// Cholesky factor of K[P, P].
//
// Blocked evaluation with the same pivots (BLAS-3, no n×n matrix; O(n m d +
// n m^2) flops, O(n m) memory for L): each panel first picks up to `panel`
// pivots on a candidate set C, the `candidates` rows of largest residual,
// updating only C's residuals. A pivot found in C is the global greedy
// choice as long as its residual exceeds tau, the largest residual outside C
// at the panel start (residuals only decrease; equal values are ordered by
// index): the panel stops at the first step where that cannot be proven.
// Then all n rows get the panel's columns at once: one GEMM for the kernel
// tile (X X_P^T, exp), one GEMM for the update (- L[:, :k] L[P, :k]^T) and a
// triangular solve, threaded over row chunks. In the worst case (many equal
// residuals, e.g. sigma far below the data spacing) panels have one pivot
// and the cost is that of the sequential algorithm.
//
// Arithmetic is float64 throughout (float32 X is widened row by row).
#pragma once

#include <cstdint>
#include <string>

#include "gram/parallel.h"

namespace clipcore::nystrom {

struct PivotedCholeskyOptions {
  int64_t panel = 0;        // most pivots per panel; 0: auto (128)
  int64_t candidates = 0;   // candidate rows per panel; 0: auto (max(4 panel, 512))
  int64_t block_rows = 0;   // rows per chunk of the panel update; 0: auto (1024)
  int64_t num_threads = 0;  // 0: CLIPCORE_NUM_THREADS or the CPU count
  double trace_tol = 0.0;   // stop once the residual trace <= trace_tol
  double min_pivot = 1e-10; // stop once the largest residual <= min_pivot
};

// "" or the refusal of a factor too large to allocate (n x min(n, m)
// float64 values over 64 GB), checked by the entry points before they start.
inline std::string factor_size_error(int64_t n, int64_t m) {
  if (double(n) * double(n < m ? n : m) * 8.0 <= 64e9) return "";
  return "the factor n x m = " + std::to_string(n) + " x " + std::to_string(m) +
         " float64 values is too large; select from a pool of fewer rows";
}

// x: row-major [n, d]; m: most pivots. Outputs (all written in full):
//   pivots [m]: pivot rows in order, -1 after *count;
//   residual_trace [m]: residual trace after each step, NaN after *count;
//   pivot_factor [m, m] row-major or nullptr: L[pivots, :] (lower
//     triangular), zero outside the first *count rows and columns;
//   factor [n, m] row-major or nullptr: L, zero after column *count (when
//     null, L is held internally: n * min(m, n) doubles).
// Returns "" or an error message.
template <typename T>
std::string pivoted_cholesky(const T* x, int64_t n, int64_t d, double sigma, int64_t m,
                             const PivotedCholeskyOptions& opt, int64_t* pivots,
                             double* residual_trace, double* pivot_factor, double* factor,
                             int64_t* count, Executor* executor);

extern template std::string pivoted_cholesky<float>(const float*, int64_t, int64_t, double,
                                                    int64_t, const PivotedCholeskyOptions&,
                                                    int64_t*, double*, double*, double*, int64_t*,
                                                    Executor*);
extern template std::string pivoted_cholesky<double>(const double*, int64_t, int64_t, double,
                                                     int64_t, const PivotedCholeskyOptions&,
                                                     int64_t*, double*, double*, double*,
                                                     int64_t*, Executor*);

}  // namespace clipcore::nystrom
