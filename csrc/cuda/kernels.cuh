// Elementwise CUDA kernels of the Gram and Nyström handlers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace clipcore::cuda {

// acc[i, j] += s[i, j] for the upper triangle (column-major D×D, i <= j in
// column-major terms: row index i, column j), with s in S and acc in double.
template <typename S, typename A>
__global__ void add_upper(int64_t d, const S* __restrict__ s, A* __restrict__ acc) {
  const int64_t j = blockIdx.y * blockDim.y + threadIdx.y;
  const int64_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < d && j < d && i <= j) acc[i + j * d] += static_cast<A>(s[i + j * d]);
}

// Mirror the upper triangle into the lower one (column-major D×D).
template <typename T>
__global__ void mirror_upper(int64_t d, T* __restrict__ g) {
  const int64_t j = blockIdx.y * blockDim.y + threadIdx.y;
  const int64_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < d && j < d && i > j) g[i + j * d] = g[j + i * d];
}

// Squared row norms of a row-major [rows, d] matrix.
template <typename T>
__global__ void row_sq_norms(int64_t rows, int64_t d, const T* __restrict__ x,
                             T* __restrict__ out) {
  const int64_t r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  double s = 0.0;
  for (int64_t k = 0; k < d; ++k) {
    const double v = static_cast<double>(x[r * d + k]);
    s += v * v;
  }
  out[r] = static_cast<T>(s);
}

// In place on a column-major [m, b] tile t = L B^T (entry (j, i) = l_j . b_i):
// t = exp(-gamma * max(|b_i|^2 + |l_j|^2 - 2 t, 0)); distances below the
// GEMM rounding floor count as 0 (as the CPU core does).
template <typename T>
__global__ void gaussian_from_dots(int64_t m, int64_t b, const T* __restrict__ bn,
                                   const T* __restrict__ ln, T gamma, T floor_rel,
                                   T* __restrict__ t) {
  const int64_t j = blockIdx.x * blockDim.x + threadIdx.x;  // landmark
  const int64_t i = blockIdx.y * blockDim.y + threadIdx.y;  // row
  if (j >= m || i >= b) return;
  const T sum = bn[i] + ln[j];
  T sq = sum - T(2) * t[j + i * m];
  if (sq < floor_rel * sum) sq = T(0);
  t[j + i * m] = exp(-gamma * sq);
}

template <typename S, typename D>
__global__ void convert(int64_t n, const S* __restrict__ s, D* __restrict__ d) {
  const int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (k < n) d[k] = static_cast<D>(s[k]);
}

}  // namespace clipcore::cuda
