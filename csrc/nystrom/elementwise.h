// Elementwise passes of the Gaussian kernel tiles: from the GEMM output
// dot[i, j] = a_i · b_j and the squared row norms, compute
//
//   k(a_i, b_j) = exp(-gamma * max(|a_i|^2 + |b_j|^2 - 2 a_i · b_j, 0))
//
// with a vectorisable exp (Cephes-style range reduction + polynomial; float
// within ~1 ulp of expf, double within ~2 ulp of exp), compiled twice (AVX2+FMA
// and baseline x86-64) and picked at run time. The argument is formed in
// double, so gamma may be huge (tiny sigma: only exact zeros give 1) or zero
// (huge sigma: everything 1) without inf * 0 = NaN. Results below
// exp(-87) (float) / exp(-708) (double) are flushed to 0.
//
// Pure algorithm: no threads, no XLA, no Python.
#pragma once

#include <cstdint>

namespace clipcore::nystrom {

// The rows behind a tile, for the exact refinement of near-coincident pairs:
// a_i = a + i * lda, b_j = b + j * ldb, each of length d (the dot's type).
template <typename T>
struct TileRows {
  const T* a = nullptr;
  int64_t lda = 0;
  const T* b = nullptr;
  int64_t ldb = 0;
  int64_t d = 0;
};

// `floor`: squared distances sq <= floor * (|a_i|^2 + |b_j|^2) are below the
// rounding error of the GEMM form (see rounding_floor): the pair coincides to
// working precision and gets exp(0) = 1. With `rows`, when the bandwidth is so
// small that this could matter (gamma * floor * (|a|^2 + |b|^2) > 1e-3 somewhere
// in the tile), those pairs are recomputed from the rows themselves,
// sq = sum_k (a_ik - b_jk)^2 in double: exact duplicates still give exactly 1,
// distinct near-duplicates their true value at any sigma.
//
// out[i * ldo + j] = k(a_i, b_j) for i < rows, j < cols. `out` may alias
// `dot` when both have the same type and leading dimension.
void gauss_tile(const float* dot, int64_t ldd, const double* an,
                const double* bn, int64_t rows, int64_t cols, double gamma, double floor,
                float* out, int64_t ldo, const TileRows<float>* refine = nullptr);
void gauss_tile(const float* dot, int64_t ldd, const double* an,
                const double* bn, int64_t rows, int64_t cols, double gamma, double floor,
                double* out, int64_t ldo, const TileRows<float>* refine = nullptr);
void gauss_tile(const double* dot, int64_t ldd, const double* an,
                const double* bn, int64_t rows, int64_t cols, double gamma, double floor,
                double* out, int64_t ldo, const TileRows<double>* refine = nullptr);

// sum_{i, j} k(a_i, b_j) over the tile, in double. When diag >= 0 the
// entries (i, i + diag) are taken as exactly 1 (a point with itself).
// `refine` as for gauss_tile.
double gauss_tile_sum(const float* dot, int64_t ldd, const double* an,
                      const double* bn, int64_t rows, int64_t cols,
                      double gamma, double floor, int64_t diag,
                      const TileRows<float>* refine = nullptr);
double gauss_tile_sum(const double* dot, int64_t ldd, const double* an,
                      const double* bn, int64_t rows, int64_t cols,
                      double gamma, double floor, int64_t diag,
                      const TileRows<double>* refine = nullptr);

// The relative rounding floor for dot products of length d computed in a
// type with unit roundoff eps: eps * (4 + 2 sqrt(d)).
double rounding_floor(double eps, int64_t d);

// Which compiled variant runs ("avx2+fma" or "baseline").
const char* elementwise_isa();

}  // namespace clipcore::nystrom
