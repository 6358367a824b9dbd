// Per-pair pieces of the Gaussian kernel tiles, shared by the CPU passes
// (csrc/nystrom/elementwise.cc) and the CUDA kernels (csrc/cuda/kernels.cuh),
// so both decide and recompute near-coincident pairs by the same formula.
//
// A tile gets its squared distances in the GEMM form
// sq = |a|^2 + |b|^2 - 2 a.b, whose rounding error is about
// floor * (|a|^2 + |b|^2) (floor = rounding_floor(eps, d), elementwise.h).
// A pair at or below that floor is "near": its distance is recomputed from
// the rows, sum_k (a_k - b_k)^2 in double, so exact duplicates give exactly
// k = 1 and distinct near-duplicates their true value at any bandwidth.
//
// Header-only; the functions are __host__ __device__ under nvcc.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define CLIPCORE_HD __host__ __device__
#else
#define CLIPCORE_HD
#endif

namespace clipcore::nystrom {

// True when the GEMM-form squared distance `sq` of a pair with
// ab = |a|^2 + |b|^2 is below the form's rounding floor (NaN counts as near).
CLIPCORE_HD inline bool below_rounding_floor(double sq, double ab, double floor) {
  return !(sq > floor * ab);
}

// The exponent's error from the GEMM form, gamma * floor * ab, above which
// pairs are recomputed from the rows (the "bandwidth makes rounding matter"
// gate of the tiles).
constexpr double kRefineGate = 1e-3;

CLIPCORE_HD inline bool rounding_matters(double ab, double floor, double gamma) {
  return gamma * floor * ab > kRefineGate;
}

// Whether the kernel value of a pair can still be above exp(lo) (lo < 0, the
// flush threshold of the tile's exp) given the GEMM form's rounding: the true
// squared distance may be as small as sq - floor * ab. Pairs at or below the
// floor always may. With rounding_matters, every such pair is recomputed: its
// GEMM-form exponent can be off by more than kRefineGate (at sigma = 1e-3 in
// float32 a pair 2.6e-3 apart had k^2 = exp(-7) from the rows, and the GEMM
// form moved its exponent by ~1.5: found by the hypothesis fuzz test).
CLIPCORE_HD inline bool may_exceed(double sq, double ab, double floor, double gamma, double lo) {
  return !(gamma * (sq - floor * ab) > -lo);
}

// sum_k (a_k - b_k)^2 in double: the exact squared distance of two rows.
template <typename T>
CLIPCORE_HD inline double exact_sq_dist(const T* a, const T* b, int64_t d) {
  double sq = 0.0;
  for (int64_t k = 0; k < d; ++k) {
    const double t = static_cast<double>(a[k]) - static_cast<double>(b[k]);
    sq += t * t;
  }
  return sq;
}

// The exponent -gamma * sq of a recomputed pair: exactly 0 for sq = 0 (exact
// duplicates give k = 1 also when gamma = 1 / (2 sigma^2) overflowed to inf,
// where -gamma * 0 would be NaN).
CLIPCORE_HD inline double pair_exponent(double sq, double gamma) {
  return sq > 0.0 ? -gamma * sq : 0.0;
}

}  // namespace clipcore::nystrom
