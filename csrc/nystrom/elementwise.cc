// Run-time choice between the AVX2+FMA and the baseline elementwise passes.
#include "nystrom/elementwise.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "nystrom/gauss_pair.h"

namespace clipcore::nystrom {

#define CLIPCORE_EW_DECLARE(NS)                                                \
  namespace NS {                                                               \
  void gauss_tile_ff(const float*, int64_t, const double*, const double*,      \
                     int64_t, int64_t, double, double, float*, int64_t);               \
  void gauss_tile_fd(const float*, int64_t, const double*, const double*,      \
                     int64_t, int64_t, double, double, double*, int64_t);              \
  void gauss_tile_dd(const double*, int64_t, const double*, const double*,     \
                     int64_t, int64_t, double, double, double*, int64_t);              \
  double gauss_sum_f(const float*, int64_t, const double*, const double*,      \
                     int64_t, int64_t, double, double, int64_t);                       \
  double gauss_sum_d(const double*, int64_t, const double*, const double*,     \
                     int64_t, int64_t, double, double, int64_t);                       \
  }
CLIPCORE_EW_DECLARE(generic)
#if defined(CLIPCORE_HAVE_AVX2_VARIANT)
CLIPCORE_EW_DECLARE(avx2)
#endif
#undef CLIPCORE_EW_DECLARE

namespace {

bool use_avx2() {
#if defined(CLIPCORE_HAVE_AVX2_VARIANT)
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return yes;
#else
  return false;
#endif
}

}  // namespace

#if defined(CLIPCORE_HAVE_AVX2_VARIANT)
#define CLIPCORE_EW_CALL(fn, ...) \
  (use_avx2() ? avx2::fn(__VA_ARGS__) : generic::fn(__VA_ARGS__))
#else
#define CLIPCORE_EW_CALL(fn, ...) generic::fn(__VA_ARGS__)
#endif

namespace {

// Pairs of the tile whose squared distance is under the GEMM form's rounding
// floor, with their exponent recomputed from the rows (see elementwise.h).
// Empty unless the bandwidth makes the floor matter.
struct Fix {
  int64_t i, j;
  double e;    // the exponent from the rows
  double was;  // the value the vectorised pass gives the pair
};

// exp(e) as the vectorised passes give it: flushed to 0 below their range.
inline double exp_as_tile(double e, bool f32) {
  if (f32) return e < -87.0 ? 0.0 : static_cast<double>(std::exp(static_cast<float>(e)));
  return e < -708.0 ? 0.0 : std::exp(e);
}

template <typename TD>
std::vector<Fix> near_pairs(const TD* dot, int64_t ldd, const double* an, const double* bn,
                            int64_t rows, int64_t cols, double gamma, double floor, double lo,
                            const TileRows<TD>* rf) {
  std::vector<Fix> fix;
  if (rf == nullptr || rows <= 0 || cols <= 0 || !(gamma > 0)) return fix;
  double amax = 0, bmax = 0;
  for (int64_t i = 0; i < rows; ++i) amax = std::max(amax, an[i]);
  for (int64_t j = 0; j < cols; ++j) bmax = std::max(bmax, bn[j]);
  if (!rounding_matters(amax + bmax, floor, gamma)) return fix;  // the GEMM form is accurate enough here
  const bool f32 = std::is_same_v<TD, float>;
  for (int64_t i = 0; i < rows; ++i) {
    const TD* drow = dot + i * ldd;
    for (int64_t j = 0; j < cols; ++j) {
      const double ab = an[i] + bn[j];
      const double sq_gemm = ab - 2.0 * static_cast<double>(drow[j]);
      if (!may_exceed(sq_gemm, ab, floor, gamma, lo)) continue;  // flushed to 0 whatever the rounding
      const double sq = exact_sq_dist(rf->a + i * rf->lda, rf->b + j * rf->ldb, rf->d);
      const double e = std::max(pair_exponent(sq, gamma), lo);
      const double was = below_rounding_floor(sq_gemm, ab, floor) ? 1.0 : exp_as_tile(-gamma * sq_gemm, f32);
      if (exp_as_tile(e, f32) != was) fix.push_back({i, j, e, was});
    }
  }
  return fix;
}

template <typename TO>
void apply(const std::vector<Fix>& fix, TO* out, int64_t ldo, bool f32) {
  for (const Fix& f : fix) out[f.i * ldo + f.j] = static_cast<TO>(exp_as_tile(f.e, f32));
}

}  // namespace

void gauss_tile(const float* dot, int64_t ldd, const double* an,
                const double* bn, int64_t rows, int64_t cols, double gamma, double floor,
                float* out, int64_t ldo, const TileRows<float>* refine) {
  const auto fix = near_pairs(dot, ldd, an, bn, rows, cols, gamma, floor, -100.0, refine);
  CLIPCORE_EW_CALL(gauss_tile_ff, dot, ldd, an, bn, rows, cols, gamma, floor, out, ldo);
  apply(fix, out, ldo, true);
}
void gauss_tile(const float* dot, int64_t ldd, const double* an,
                const double* bn, int64_t rows, int64_t cols, double gamma, double floor,
                double* out, int64_t ldo, const TileRows<float>* refine) {
  const auto fix = near_pairs(dot, ldd, an, bn, rows, cols, gamma, floor, -100.0, refine);
  CLIPCORE_EW_CALL(gauss_tile_fd, dot, ldd, an, bn, rows, cols, gamma, floor, out, ldo);
  apply(fix, out, ldo, true);
}
void gauss_tile(const double* dot, int64_t ldd, const double* an,
                const double* bn, int64_t rows, int64_t cols, double gamma, double floor,
                double* out, int64_t ldo, const TileRows<double>* refine) {
  const auto fix = near_pairs(dot, ldd, an, bn, rows, cols, gamma, floor, -750.0, refine);
  CLIPCORE_EW_CALL(gauss_tile_dd, dot, ldd, an, bn, rows, cols, gamma, floor, out, ldo);
  apply(fix, out, ldo, false);
}
double gauss_tile_sum(const float* dot, int64_t ldd, const double* an,
                      const double* bn, int64_t rows, int64_t cols,
                      double gamma, double floor, int64_t diag, const TileRows<float>* refine) {
  double total = CLIPCORE_EW_CALL(gauss_sum_f, dot, ldd, an, bn, rows, cols, gamma, floor, diag);
  // each refined pair was counted as f.was (the diagonal stays exactly 1)
  for (const Fix& f : near_pairs(dot, ldd, an, bn, rows, cols, gamma, floor, -100.0, refine))
    if (!(diag >= 0 && f.j == f.i + diag)) total += exp_as_tile(f.e, true) - f.was;
  return total;
}
double gauss_tile_sum(const double* dot, int64_t ldd, const double* an,
                      const double* bn, int64_t rows, int64_t cols,
                      double gamma, double floor, int64_t diag, const TileRows<double>* refine) {
  double total = CLIPCORE_EW_CALL(gauss_sum_d, dot, ldd, an, bn, rows, cols, gamma, floor, diag);
  for (const Fix& f : near_pairs(dot, ldd, an, bn, rows, cols, gamma, floor, -750.0, refine))
    if (!(diag >= 0 && f.j == f.i + diag)) total += exp_as_tile(f.e, false) - f.was;
  return total;
}

double rounding_floor(double eps, int64_t d) {
  return eps * (4.0 + 2.0 * std::sqrt(static_cast<double>(d < 0 ? 0 : d)));
}

const char* elementwise_isa() { return use_avx2() ? "avx2+fma" : "baseline"; }

}  // namespace clipcore::nystrom
