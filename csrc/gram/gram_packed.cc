#include "gram/gram_packed.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "blas/blas.h"
#include "gram/chunk_loop.h"

namespace clipcore::gram {

namespace {

// dst[0:d] = src[0:d] * (1 / ||src||) (or a copy when !normalize).
template <typename T>
inline void pack_row(const T* __restrict src, int64_t d, bool normalize,
                     T* __restrict dst) {
  if (!normalize) {
    std::memcpy(dst, src, sizeof(T) * d);
    return;
  }
  double sq = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    const double v = static_cast<double>(src[j]);
    sq += v * v;
  }
  const double inv = sq > 0.0 ? 1.0 / std::sqrt(sq) : 0.0;
  const T s = static_cast<T>(inv);
  if constexpr (std::is_same_v<T, double>) {
    for (int64_t j = 0; j < d; ++j) dst[j] = src[j] * s;
  } else {
    for (int64_t j = 0; j < d; ++j)
      dst[j] = static_cast<float>(static_cast<double>(src[j]) * inv);
  }
}

}  // namespace

template <typename TIn, typename TG>
std::string gram_accumulate_packed(const TIn* a, int64_t da, const TIn* b,
                                   int64_t db, int64_t rows, bool normalize,
                                   const TG* g_in, TG* g_out,
                                   const Options& opt, Executor* executor) {
  constexpr bool kFloat = std::is_same_v<TIn, float>;
  if (rows < 0 || da < 0 || db < 0) return "negative dimension";
  if (b == nullptr) db = 0;
  const int64_t d = da + db;
  if (d > blas::max_dim())
    return "D = " + std::to_string(d) + " exceeds the BLAS integer range";
  if (d == 0) return "";
  const int64_t dd = d * d;
  if (rows == 0) {
    if (g_out != g_in) std::memcpy(g_out, g_in, sizeof(TG) * dd);
    return "";
  }
  const Plan plan = make_plan(rows, d, kFloat, opt);
  if (opt.strategy != Strategy::kRowSplit)
    return "the packed Gram supports the row-split strategy only";
  const blas::ThreadsScope blas_threads(1);

  return run_chunk_loop<TIn, TG>(
      rows, d, plan, plan.chunk_rows * d, g_in, g_out, executor,
      [=](int64_t r0, int64_t r1, TIn* z) {
        for (int64_t r = r0; r < r1; ++r) {
          TIn* zr = z + (r - r0) * d;
          pack_row(a + r * da, da, normalize, zr);
          if (db > 0) pack_row(b + r * db, db, normalize, zr + da);
        }
        return static_cast<const TIn*>(z);
      });
}

#define CLIPCORE_INSTANTIATE(TIn, TG)                                      \
  template std::string gram_accumulate_packed<TIn, TG>(                    \
      const TIn*, int64_t, const TIn*, int64_t, int64_t, bool, const TG*, \
      TG*, const Options&, Executor*);
CLIPCORE_INSTANTIATE(float, float)
CLIPCORE_INSTANTIATE(float, double)
CLIPCORE_INSTANTIATE(double, float)
CLIPCORE_INSTANTIATE(double, double)
#undef CLIPCORE_INSTANTIATE

}  // namespace clipcore::gram
