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
#include "gram/buffer_pool.h"
#include "gram/gram_block.h"

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
  if (blas::get_num_threads() != 1) blas::set_num_threads(1);

  struct Slot {
    BufferPool::Buffer acc;
    BufferPool::Buffer scratch;
    BufferPool::Buffer packed;
    bool fresh = true;
  };
  std::vector<Slot> slots(plan.participants);
  std::vector<const double*> accs;
  try {
    parallel_chunks(
        plan.n_chunks, plan.participants, executor,
        [&](int s, int64_t c) {
          Slot& slot = slots[s];
          if (!slot.acc) {
            slot.acc = BufferPool::acquire(sizeof(double) * dd);
            slot.packed =
                BufferPool::acquire(sizeof(TIn) * plan.chunk_rows * d);
            if constexpr (kFloat)
              slot.scratch = BufferPool::acquire(sizeof(TIn) * dd);
          }
          const int64_t r0 = c * plan.chunk_rows;
          const int64_t r1 = std::min(rows, r0 + plan.chunk_rows);
          TIn* z = as<TIn>(slot.packed);
          for (int64_t r = r0; r < r1; ++r) {
            TIn* zr = z + (r - r0) * d;
            pack_row(a + r * da, da, normalize, zr);
            if (db > 0) pack_row(b + r * db, db, normalize, zr + da);
          }
          accumulate_rows<TIn>(z, 0, r1 - r0, d, plan.chunk_rows,
                               as<double>(slot.acc), as<TIn>(slot.scratch),
                               &slot.fresh);
        });
    for (auto& s : slots) {
      s.scratch.reset();
      s.packed.reset();
      if (s.acc) accs.push_back(as<double>(s.acc));
    }
    const int64_t tiles = finalize_tile_rows(d);
    const int finalize_threads = d >= 512 ? plan.participants : 1;
    parallel_chunks(tiles, finalize_threads, executor, [&](int, int64_t t) {
      finalize_symmetric<TG>(d, g_in, g_out, accs.data(),
                             static_cast<int>(accs.size()), t, t + 1);
    });
  } catch (const std::bad_alloc&) {
    std::ostringstream os;
    os << "out of memory allocating " << plan.participants << " x [" << d
       << ", " << d << "] float64 accumulators and [" << plan.chunk_rows
       << ", " << d << "] packed rows";
    return os.str();
  } catch (const std::exception& e) {
    return std::string("internal error: ") + e.what();
  }
  return "";
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
