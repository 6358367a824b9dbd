// Streamed squared Frobenius norm of the Gaussian kernel matrix (pure
// algorithm + threading; no XLA):
//
//   |K|_F^2 = sum_{i, j} k(x_i, x_j)^2,   k(x, y) = exp(-|x - y|^2 / (2 sigma^2))
//
// without any n×n matrix: the pairs of row tiles (I <= J) are visited once,
// each tile's dot products come from one GEMM, k^2 = exp(-2 gamma sq) is
// summed in float64 by the elementwise pass, and off-diagonal tiles count
// twice. The diagonal k(x_i, x_i) = 1 is exact. Tiles of one row tile I form
// one work unit (units are taken in order, largest first, by the threads);
// the unit sums are added in order, so the result does not depend on the
// thread count. RKE = n^2 / |K|_F^2.
#pragma once

#include <cstdint>
#include <string>

#include "gram/parallel.h"

namespace clipcore::nystrom {

struct FrobeniusOptions {
  int64_t tile_rows = 0;    // tile edge; 0: auto (512)
  int64_t num_threads = 0;  // 0: CLIPCORE_NUM_THREADS or the CPU count
};

// x: row-major [n, d]. *out = sum_ij k(x_i, x_j)^2. Returns "" or an error.
template <typename T>
std::string gaussian_sq_frobenius(const T* x, int64_t n, int64_t d, double sigma,
                                  const FrobeniusOptions& opt, double* out,
                                  Executor* executor);

// Cross term: x row-major [n, d], y row-major [p, d]. *out = sum_{i, j}
// k(x_i, y_j)^2 over all n * p pairs (no symmetry used; a row met in both
// sets is not special-cased: its k^2 = 1 comes from the recomputed distance
// 0). Work units are single tile pairs (I, J), their sums added in order, so
// the result does not depend on the thread count. With it, ||K||_F^2 of rows
// that do not fit in memory at once is sum_P ||K_PP||^2 + 2 sum_{P<Q}
// ||K_PQ||^2 over row panels (clipcore's streamed exact RKE).
template <typename T>
std::string gaussian_sq_frobenius_cross(const T* x, int64_t n, const T* y, int64_t p, int64_t d,
                                        double sigma, const FrobeniusOptions& opt, double* out,
                                        Executor* executor);

extern template std::string gaussian_sq_frobenius_cross<float>(const float*, int64_t, const float*,
                                                               int64_t, int64_t, double,
                                                               const FrobeniusOptions&, double*,
                                                               Executor*);
extern template std::string gaussian_sq_frobenius_cross<double>(const double*, int64_t, const double*,
                                                                int64_t, int64_t, double,
                                                                const FrobeniusOptions&, double*,
                                                                Executor*);

extern template std::string gaussian_sq_frobenius<float>(const float*, int64_t, int64_t, double,
                                                         const FrobeniusOptions&, double*,
                                                         Executor*);
extern template std::string gaussian_sq_frobenius<double>(const double*, int64_t, int64_t, double,
                                                          const FrobeniusOptions&, double*,
                                                          Executor*);

}  // namespace clipcore::nystrom
