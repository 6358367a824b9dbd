// Pure algorithm: blocked Gram accumulation over a raw row range.
//
// No threading, no XLA, no Python: a row range [r0, r1) of a row-major
// [b, D] matrix Phi is folded into a float64 upper-triangular accumulator
// (row-major [D, D], only i <= j touched) through BLAS syrk.
//
//   float32 Phi: each sub-block of at most `block_rows` rows goes through
//     ssyrk into a float32 scratch [D, D] (so float32 rounding only ever sees
//     `block_rows` terms), then is added into the float64 accumulator.
//   float64 Phi: dsyrk with beta = 1 straight into the accumulator.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "blas/blas.h"

namespace clipcore::gram {

// acc[i, j] += s[i, j] for i <= j; both row-major with leading dimension d.
template <typename S>
inline void add_upper(int64_t d, const S* __restrict s,
                      double* __restrict acc) {
  for (int64_t i = 0; i < d; ++i) {
    const S* srow = s + i * d;
    double* arow = acc + i * d;
    for (int64_t j = i; j < d; ++j) arow[j] += static_cast<double>(srow[j]);
  }
}

// acc[i, j] = s[i, j] for i <= j (first block of an accumulator: no zeroing).
template <typename S>
inline void assign_upper(int64_t d, const S* __restrict s,
                         double* __restrict acc) {
  for (int64_t i = 0; i < d; ++i) {
    const S* srow = s + i * d;
    double* arow = acc + i * d;
    for (int64_t j = i; j < d; ++j) arow[j] = static_cast<double>(srow[j]);
  }
}

// Scratch elements accumulate_rows<T> needs for dimension d (0 for double).
template <typename T>
constexpr int64_t scratch_elems(int64_t d) {
  return std::is_same_v<T, float> ? d * d : 0;
}

// acc(upper) += Phi[r0:r1]^T Phi[r0:r1]  (acc(upper) = ... when *fresh, which
// is then cleared: a fresh accumulator's contents are never read).
//   phi: row-major [*, d] with leading dimension d (the whole matrix).
//   acc: row-major [d, d] float64, upper triangle.
//   scratch: scratch_elems<T>(d) elements (unused for double).
// Requires 1 <= d <= blas::max_dim() and 1 <= block_rows <= blas::max_dim().
template <typename T>
void accumulate_rows(const T* phi, int64_t r0, int64_t r1, int64_t d,
                     int64_t block_rows, double* acc, T* scratch,
                     bool* fresh) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "accumulate_rows: T must be float or double");
  for (int64_t r = r0; r < r1; r += block_rows) {
    const int64_t k = std::min(block_rows, r1 - r);
    const T* a = phi + r * d;
    if constexpr (std::is_same_v<T, double>) {
      blas::syrk_upper_ata(d, k, 1.0, a, d, *fresh ? 0.0 : 1.0, acc, d);
    } else {
      blas::syrk_upper_ata(d, k, 1.0f, a, d, 0.0f, scratch, d);
      if (*fresh) {
        assign_upper(d, scratch, acc);
      } else {
        add_upper(d, scratch, acc);
      }
    }
    *fresh = false;
  }
}

// Tile edge of finalize_symmetric; its unit of work is one tile row.
constexpr int64_t kFinalizeTile = 64;
inline int64_t finalize_tile_rows(int64_t d) {
  return (d + kFinalizeTile - 1) / kFinalizeTile;
}

// Calls fn(i, j) for every i <= j of the tile rows [t0, t1) of a [d, d]
// matrix, tile by tile (kFinalizeTile), so that the mirrored (column-strided)
// element (j, i) of each visit stays in cache.
template <typename Fn>
inline void for_upper_tiles(int64_t d, int64_t t0, int64_t t1, Fn&& fn) {
  constexpr int64_t kTile = kFinalizeTile;
  for (int64_t ib = t0 * kTile; ib < std::min(d, t1 * kTile); ib += kTile) {
    const int64_t ie = std::min(ib + kTile, d);
    for (int64_t jb = ib; jb < d; jb += kTile) {
      const int64_t je = std::min(jb + kTile, d);
      for (int64_t i = ib; i < ie; ++i)
        for (int64_t j = std::max(i, jb); j < je; ++j) fn(i, j);
    }
  }
}

// out = g_in + sym(sum_p accs[p]) where accs hold upper triangles: for i <= j,
//   out[i, j] = g_in[i, j] + s_ij and out[j, i] = g_in[j, i] + s_ij,
// summed in float64 and rounded once to TG. `out` may alias `g_in`.
// Covers tile rows [t0, t1) (of finalize_tile_rows(d)); distinct tile rows
// touch distinct elements, so they may run on different threads.
template <typename TG>
void finalize_symmetric(int64_t d, const TG* g_in, TG* out,
                        const double* const* accs, int n_acc, int64_t t0,
                        int64_t t1) {
  for_upper_tiles(d, t0, t1, [&](int64_t i, int64_t j) {
    const int64_t u = i * d + j;
    double s = 0.0;
    for (int p = 0; p < n_acc; ++p) s += accs[p][u];
    out[u] = static_cast<TG>(static_cast<double>(g_in[u]) + s);
    if (j != i) {
      const int64_t l = j * d + i;
      out[l] = static_cast<TG>(static_cast<double>(g_in[l]) + s);
    }
  });
}

// In place, for a symmetric g whose upper triangle already holds one
// accumulator's sum (g_in + acc_0, see nystrom_accumulate's direct mode):
//   g[i, j] += s_ij for i <= j, then g[j, i] = g[i, j],
// with s the sum of the other accumulators (n_acc may be 0). Covers tile rows
// [t0, t1) like finalize_symmetric.
inline void finalize_symmetric_direct(int64_t d, double* g, const double* const* accs, int n_acc,
                                      int64_t t0, int64_t t1) {
  for_upper_tiles(d, t0, t1, [&](int64_t i, int64_t j) {
    const int64_t u = i * d + j;
    double s = 0.0;
    for (int p = 0; p < n_acc; ++p) s += accs[p][u];
    g[u] += s;
    if (j != i) g[j * d + i] = g[u];
  });
}

// True when the row-major [d, d] matrix g equals its transpose exactly
// (tiled, so the column-strided reads stay in cache).
inline bool is_symmetric(int64_t d, const double* g) {
  bool sym = true;
  for_upper_tiles(d, 0, finalize_tile_rows(d), [&](int64_t i, int64_t j) {
    sym = sym && g[i * d + j] == g[j * d + i];
  });
  return sym;
}

}  // namespace clipcore::gram
