// The threaded chunk loop shared by every Gram accumulation of csrc/gram:
// rows split into chunks over the participants of a Plan, each participant
// folding its chunks into its own float64 upper-triangular accumulator, then
// G_out = G_in + sym(sum of the accumulators) split over the same threads.
//
// What differs between callers is where a chunk's rows come from: straight
// from the input (gram_accumulate) or packed into a per-thread scratch first
// (gram_accumulate_packed). `rows(r0, r1, packed)` returns a pointer to the
// chunk's [r1 - r0, d] rows (leading dimension d); `packed` is a per-thread
// buffer of `packed_elems` elements of TIn (nullptr when 0).
#pragma once

#include <algorithm>
#include <cstdint>
#include <new>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "gram/buffer_pool.h"
#include "gram/gram_accumulate.h"
#include "gram/gram_block.h"
#include "gram/parallel.h"

namespace clipcore::gram {

template <typename TIn, typename TG, typename RowsFn>
std::string run_chunk_loop(int64_t b, int64_t d, const Plan& plan,
                           int64_t packed_elems, const TG* g_in, TG* g_out,
                           Executor* executor, RowsFn&& rows) {
  constexpr bool kFloat = std::is_same_v<TIn, float>;
  const int64_t dd = d * d;
  struct Slot {
    BufferPool::Buffer acc;
    BufferPool::Buffer scratch;
    BufferPool::Buffer packed;
    bool fresh = true;
  };
  std::vector<Slot> slots(plan.participants);
  std::vector<const double*> accs;
  try {
    parallel_chunks(plan.n_chunks, plan.participants, executor,
                    [&](int s, int64_t c) {
                      Slot& slot = slots[s];
                      if (!slot.acc) {
                        slot.acc = BufferPool::acquire(sizeof(double) * dd);
                        if constexpr (kFloat)
                          slot.scratch = BufferPool::acquire(sizeof(TIn) * dd);
                        if (packed_elems > 0)
                          slot.packed =
                              BufferPool::acquire(sizeof(TIn) * packed_elems);
                      }
                      const int64_t r0 = c * plan.chunk_rows;
                      const int64_t r1 = std::min(b, r0 + plan.chunk_rows);
                      const TIn* z = rows(r0, r1, as<TIn>(slot.packed));
                      accumulate_rows<TIn>(z, 0, r1 - r0, d, plan.chunk_rows,
                                           as<double>(slot.acc),
                                           as<TIn>(slot.scratch), &slot.fresh);
                    });
    for (auto& s : slots) {
      s.scratch.reset();  // back to the pool before the next call needs it
      s.packed.reset();
      if (s.acc) accs.push_back(as<double>(s.acc));
    }
    // Sum the accumulators, add G_in, mirror: memory-bound, so split it over
    // the same threads when D is large enough to matter.
    const int64_t tiles = finalize_tile_rows(d);
    const int finalize_threads = d >= 512 ? plan.participants : 1;
    parallel_chunks(tiles, finalize_threads, executor, [&](int, int64_t t) {
      finalize_symmetric<TG>(d, g_in, g_out, accs.data(),
                             static_cast<int>(accs.size()), t, t + 1);
    });
  } catch (const std::bad_alloc&) {
    std::ostringstream os;
    os << "out of memory allocating " << plan.participants << " x [" << d
       << ", " << d << "] float64 accumulators";
    if (packed_elems > 0) os << " and [" << plan.chunk_rows << ", " << d << "] packed rows";
    return os.str();
  } catch (const std::exception& e) {
    return std::string("internal error: ") + e.what();
  }
  return "";
}

}  // namespace clipcore::gram
