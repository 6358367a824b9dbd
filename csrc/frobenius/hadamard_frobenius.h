// Streamed squared Frobenius norm of a Hadamard (product) kernel matrix
// (pure algorithm + threading; no XLA, no Python):
//
//   |K_X o K_T|_F^2 = sum_{i, j} k_X(x_i, x_j)^2 k_T(t_i, t_j)^2
//
// over paired rows (x_i, t_i), without any n×n matrix. This is the order-2
// joint entropy of Conditional / Information Vendi (Jalali, Ospanov, Gohari &
// Farnia, "Conditional Vendi Score", arXiv 2411.02817): with
// rho_XT = (K_X o K_T) / n, H_2(X, T) = -log(|K_X o K_T|_F^2 / n^2).
//
// Kernels (one for both modalities):
// * Gaussian, k(a, b) = exp(-|a - b|^2 / (2 sigma^2)) with sigma_x for x and
//   sigma_t for t: k_X^2 k_T^2 = exp(-(|x - x'|^2 / sigma_x^2 + |t - t'|^2 /
//   sigma_t^2)), the Gaussian kernel of the concatenation [x / sigma_x,
//   t / sigma_t]. Each tile's scaled dot products come from two GEMMs into one
//   buffer (alpha = 1 / sigma^2, the second with beta = 1), then one
//   vectorised exp pass (nystrom/elementwise.h, gamma = 1). Pairs closer than
//   the GEMM form's rounding floor are recomputed from the rows when the
//   bandwidth makes it matter (nystrom/gauss_pair.h), as the single-kernel
//   tiles do; a point with itself is exactly 1.
// * cosine, k(a, b) = a.b / (|a| |b|): two GEMMs (x and t), then
//   (cos_x cos_t)^2 summed in double; a point with itself is exactly 1.
//
// Symmetric form: tile pairs I <= J, off-diagonal tiles doubled, one work unit
// per row tile. Cross form (a second paired set (y, u)): every tile pair, one
// unit each; with it, the norm of rows that do not fit in memory is
// sum_P |H_PP|^2 + 2 sum_{P<Q} |H_PQ|^2 over row panels. Unit sums are added
// in order, so the result does not depend on the thread count.
#pragma once

#include <cstdint>
#include <string>

#include "gram/parallel.h"

namespace clipcore::frobenius {

enum class ProductKernel : int { kGaussian = 0, kCosine = 1 };

struct HadamardOptions {
  ProductKernel kernel = ProductKernel::kGaussian;
  double sigma_x = 1.0;     // Gaussian bandwidth of x (images)
  double sigma_t = 1.0;     // Gaussian bandwidth of t (texts)
  int64_t tile_rows = 0;    // tile edge; 0: auto (512)
  int64_t num_threads = 0;  // 0: CLIPCORE_NUM_THREADS or the CPU count
};

// Paired row-major rows: x [n, dx] and t [n, dt] (row i of each belong together).
template <typename T>
struct PairedRows {
  const T* x = nullptr;
  const T* t = nullptr;
  int64_t n = 0;
  int64_t dx = 0;
  int64_t dt = 0;
};

// *out = sum_ij k_X(x_i, x_j)^2 k_T(t_i, t_j)^2 over the rows of `a`, or, with
// `b` non-null, sum_{i, j} k_X(a.x_i, b.x_j)^2 k_T(a.t_i, b.t_j)^2 over all
// a.n * b.n pairs (b's dimensions must equal a's). Returns "" or an error
// (shapes, bandwidths, a non-finite value or, for the cosine kernel, a zero row,
// named by operand and row: x, t for a; y, u for b).
template <typename T>
std::string hadamard_sq_frobenius(const PairedRows<T>& a, const PairedRows<T>* b, const HadamardOptions& opt,
                                  double* out, Executor* executor);

extern template std::string hadamard_sq_frobenius<float>(const PairedRows<float>&, const PairedRows<float>*,
                                                         const HadamardOptions&, double*, Executor*);
extern template std::string hadamard_sq_frobenius<double>(const PairedRows<double>&, const PairedRows<double>*,
                                                          const HadamardOptions&, double*, Executor*);

}  // namespace clipcore::frobenius
