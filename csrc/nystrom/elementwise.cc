// Run-time choice between the AVX2+FMA and the baseline elementwise passes.
#include "nystrom/elementwise.h"

#include <cmath>

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

void gauss_tile(const float* dot, int64_t ldd, const double* an,
                const double* bn, int64_t rows, int64_t cols, double gamma, double floor,
                float* out, int64_t ldo) {
  CLIPCORE_EW_CALL(gauss_tile_ff, dot, ldd, an, bn, rows, cols, gamma, floor, out, ldo);
}
void gauss_tile(const float* dot, int64_t ldd, const double* an,
                const double* bn, int64_t rows, int64_t cols, double gamma, double floor,
                double* out, int64_t ldo) {
  CLIPCORE_EW_CALL(gauss_tile_fd, dot, ldd, an, bn, rows, cols, gamma, floor, out, ldo);
}
void gauss_tile(const double* dot, int64_t ldd, const double* an,
                const double* bn, int64_t rows, int64_t cols, double gamma, double floor,
                double* out, int64_t ldo) {
  CLIPCORE_EW_CALL(gauss_tile_dd, dot, ldd, an, bn, rows, cols, gamma, floor, out, ldo);
}
double gauss_tile_sum(const float* dot, int64_t ldd, const double* an,
                      const double* bn, int64_t rows, int64_t cols,
                      double gamma, double floor, int64_t diag) {
  return CLIPCORE_EW_CALL(gauss_sum_f, dot, ldd, an, bn, rows, cols, gamma, floor, diag);
}
double gauss_tile_sum(const double* dot, int64_t ldd, const double* an,
                      const double* bn, int64_t rows, int64_t cols,
                      double gamma, double floor, int64_t diag) {
  return CLIPCORE_EW_CALL(gauss_sum_d, dot, ldd, an, bn, rows, cols, gamma, floor, diag);
}

double rounding_floor(double eps, int64_t d) {
  return eps * (4.0 + 2.0 * std::sqrt(static_cast<double>(d < 0 ? 0 : d)));
}

const char* elementwise_isa() { return use_avx2() ? "avx2+fma" : "baseline"; }

}  // namespace clipcore::nystrom
