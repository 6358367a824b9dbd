// Elementwise CUDA kernels and device helpers of the Gram, Nyström, |K|_F^2
// and pivoted-Cholesky handlers.
//
// The Gaussian entries follow the CPU tiles (csrc/nystrom/elementwise.*):
// the exponent is formed in double from double row norms, pairs under the
// GEMM form's rounding floor rounding_floor(eps(T), d) are recomputed from
// the rows by the shared csrc/nystrom/gauss_pair.h (exact duplicates give
// exactly 1, near-duplicates their true value at any sigma), and exp is
// flushed to 0 below -87 (float32 tiles) / -708 (float64) as on the CPU.
// One difference: the CPU refines near pairs only when the bandwidth makes
// the floor matter (elementwise.h); here every near pair is refined.
//
// Status: compiled with nvcc (CUDA 13, zero warnings) but never run on a GPU
// (no device in the sessions that wrote it); tests/_ffi/test_cuda.py runs it
// where one exists.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "nystrom/gauss_pair.h"

namespace clipcore::cuda {

// Threads per block of the reducing kernels (a power of two: tree sums).
constexpr int kReduceThreads = 256;

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

// Squared row norms in double of a row-major [rows, d] matrix, one warp per
// row (launch with a multiple of 32 threads per block; any grid size). A row
// holding a non-finite value gets NaN. When first_bad is given, the lowest
// row whose norm is not <= limit (non-finite, or too large for the GEMM form
// in T) is atomically min-ed into it as row0 + row (initialise it to ~0ull).
template <typename T>
__global__ void row_sq_norms(int64_t rows, int64_t d, const T* __restrict__ x, double limit,
                             double* __restrict__ out, unsigned long long* first_bad,
                             int64_t row0) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t r = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5; r < rows;
       r += warps) {  // r is uniform over the warp
    double s = 0.0;
    bool finite = true;
    for (int64_t k = lane; k < d; k += 32) {
      const double v = static_cast<double>(x[r * d + k]);
      finite = finite && isfinite(v);
      s += v * v;
    }
    for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
    finite = __all_sync(0xffffffffu, finite);
    if (lane == 0) {
      const double v = finite ? s : __longlong_as_double(0x7ff8000000000000ll);  // NaN
      out[r] = v;
      if (first_bad != nullptr && !(v <= limit))
        atomicMin(first_bad, static_cast<unsigned long long>(row0 + r));
    }
  }
}

// The lowest index e < count with a non-finite x[e], atomically min-ed into
// *first (initialise it to ~0ull). Any grid size.
template <typename T>
__global__ void first_nonfinite(int64_t count, const T* __restrict__ x, unsigned long long* first) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < count;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    if (!isfinite(static_cast<double>(x[e]))) atomicMin(first, static_cast<unsigned long long>(e));
}

// exp(e) for e <= 0 as the CPU passes give it (exp_as_tile in
// csrc/nystrom/elementwise.cc): a float32 exp for float32 tiles, 0 below
// -87 (float32) / -708 (float64).
template <typename T>
__device__ inline double flushed_exp(double e) {
  if constexpr (std::is_same_v<T, float>)
    return e < -87.0 ? 0.0 : static_cast<double>(expf(static_cast<float>(e)));
  else
    return e < -708.0 ? 0.0 : exp(e);
}

// k(a, b) = exp(-gamma |a - b|^2) from the GEMM dot a.b and the norms
// na = |a|^2, nb = |b|^2 (double); a pair under the rounding floor, or (where
// the bandwidth makes the GEMM form's rounding matter) any pair whose value
// may not be flushed, is recomputed from the rows a, b (length d) by the
// shared formula (nystrom/gauss_pair.h; the CPU gates per tile, this per pair).
template <typename T>
__device__ inline double gauss_pair_value(double dot, double na, double nb, const T* a,
                                          const T* b, int64_t d, double gamma, double floor) {
  constexpr double lo = std::is_same_v<T, float> ? -100.0 : -750.0;
  const double ab = na + nb;
  const double sq = ab - 2.0 * dot;
  const bool exact = nystrom::below_rounding_floor(sq, ab, floor) ||
                     (nystrom::rounding_matters(ab, floor, gamma) && nystrom::may_exceed(sq, ab, floor, gamma, lo));
  const double e = exact ? nystrom::pair_exponent(nystrom::exact_sq_dist(a, b, d), gamma) : -gamma * sq;
  return flushed_exp<T>(e);
}

// In place on a column-major [m, b] tile t = L B^T (entry (j, i) = l_j . b_i):
// t = k(b_i, l_j), with the double norms bn = |b_i|^2, ln = |l_j|^2 and the
// rows B [b, d], L [m, d] (row-major) for the near pairs. Grid: x covers m,
// y strides over b (see grid2_rows).
template <typename T>
__global__ void gaussian_from_dots(int64_t m, int64_t b, const double* __restrict__ bn,
                                   const double* __restrict__ ln, const T* __restrict__ B,
                                   const T* __restrict__ L, int64_t d, double gamma,
                                   double floor, T* __restrict__ t) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;  // landmark
  if (j >= m) return;
  for (int64_t i = blockIdx.y * static_cast<int64_t>(blockDim.y) + threadIdx.y; i < b;
       i += static_cast<int64_t>(gridDim.y) * blockDim.y) {  // row
    const int64_t at = j + i * m;
    t[at] = static_cast<T>(gauss_pair_value<T>(static_cast<double>(t[at]), bn[i], ln[j],
                                               B + i * d, L + j * d, d, gamma, floor));
  }
}

// d[i + j * ldd] = s[i + j * lds] for a column-major [rows, cols] block.
// Grid: x covers rows, y strides over cols (see grid2_rows).
template <typename S, typename D>
__global__ void convert_block(int64_t rows, int64_t cols, const S* __restrict__ s, int64_t lds,
                              D* __restrict__ d, int64_t ldd) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows) return;
  for (int64_t j = blockIdx.y * static_cast<int64_t>(blockDim.y) + threadIdx.y; j < cols;
       j += static_cast<int64_t>(gridDim.y) * blockDim.y)
    d[i + j * ldd] = static_cast<D>(s[i + j * lds]);
}

// Sum of v over a block of kReduceThreads threads, in a fixed tree order
// (deterministic); the result is returned to every thread. Contains
// __syncthreads: call from all threads of the block.
__device__ inline double block_sum(double v) {
  __shared__ double sh[kReduceThreads];
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = kReduceThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  const double total = sh[0];
  __syncthreads();  // sh may be reused by the caller's next block_sum
  return total;
}

// After thread 0 of each block wrote its partial results to global memory:
// true (in every thread) in the one block that finishes last, which may then
// read all blocks' partials. Resets *ticket to 0 for the next launch.
__device__ inline bool last_block(unsigned int* ticket) {
  __shared__ bool last;
  if (threadIdx.x == 0) {
    __threadfence();  // this block's partials are visible before its ticket
    const unsigned int t = atomicAdd(ticket, 1u);
    last = t == gridDim.x - 1;
    if (last) *ticket = 0u;
  }
  __syncthreads();
  if (last) __threadfence();
  return last;
}

}  // namespace clipcore::cuda
