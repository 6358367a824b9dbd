#include "nystrom/nystrom_accumulate.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>
#include <sstream>
#include <type_traits>
#include <vector>

#include "blas/blas.h"
#include "gram/buffer_pool.h"
#include "gram/gram_accumulate.h"
#include "gram/gram_block.h"
#include "nystrom/common.h"
#include "nystrom/elementwise.h"

namespace clipcore::nystrom {

namespace {

// Below this many multiply-adds one thread does it all.
constexpr double kMinParallelWork = double(1 << 22);
constexpr int64_t kMinChunkRows = 64;

struct Plan {
  int64_t chunk = 1;
  int64_t tile = 1;
  int64_t n_chunks = 0;
  int participants = 1;
};

Plan make_plan(int64_t b, int64_t d, int64_t m, int64_t width, bool f32_features,
               const AccumulateOptions& opt) {
  Plan p;
  // float32 features: large chunks amortise the float32 -> float64 add of
  // the [R, R] syrk result; float64 features: dsyrk with beta = 1 straight
  // into the accumulator, chunks only bound the feature buffer.
  int64_t chunk = opt.block_rows > 0 ? opt.block_rows : (f32_features ? 2048 : 512);
  chunk = std::min<int64_t>(chunk, blas::max_dim());
  int threads = opt.num_threads > 0 ? static_cast<int>(std::min<int64_t>(opt.num_threads, 1024))
                                    : gram::default_num_threads();
  const double work = double(b) * double(m) * double(d + width);
  if (work < kMinParallelWork && opt.num_threads <= 0) threads = 1;
  if (threads > 1 && opt.block_rows <= 0) {
    const int64_t per_thread = (b + threads - 1) / threads;
    chunk = std::min(chunk, std::max(kMinChunkRows, per_thread));
  }
  p.chunk = std::max<int64_t>(1, std::min<int64_t>(chunk, std::max<int64_t>(b, 1)));
  p.tile = std::min(p.chunk, opt.tile_rows > 0 ? opt.tile_rows : int64_t{256});
  p.n_chunks = b == 0 ? 0 : (b + p.chunk - 1) / p.chunk;
  p.participants = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, p.n_chunks)));
  return p;
}

const char* block_name(int n_blocks, int s) {
  if (n_blocks == 1) return "B";
  return s == 0 ? "B (first block)" : "B2 (second block)";
}

// FT: feature dtype (T when whitening, double otherwise).
template <typename T, typename FT, typename TG>
std::string run(const T* const* blocks, int n_blocks, int64_t b, int64_t d,
                const T* L, int64_t m, const T* W, int64_t r, double gamma,
                const TG* g_in, TG* g_out, const AccumulateOptions& opt,
                Executor* executor) {
  const bool whiten = W != nullptr;
  const int64_t per = whiten ? r : m;
  const int64_t R = n_blocks * per;
  const int64_t RR = R * R;
  constexpr bool kF32Features = std::is_same_v<FT, float>;
  const Plan plan = make_plan(b, d, m, R, kF32Features, opt);
  const blas::ThreadsScope blas_threads(1);

  const double floor = rounding_floor(std::numeric_limits<T>::epsilon(), d);
  std::vector<double> lnorm(static_cast<size_t>(m));
  row_sq_norms(L, m, d, d, lnorm.data(), "landmarks", 0);
  if (whiten) check_finite(W, m, r, "whitening");

  struct Slot {
    BufferPool::Buffer acc, scratch, feat, dots, norms;
    bool fresh = true;
  };
  std::vector<Slot> slots(plan.participants);
  // Direct mode (the host entry: G updated in place, float64, symmetric on
  // entry): the caller's slot adds its syrk results straight into G's upper
  // triangle, so one [R, R] float64 buffer fewer is held (128 MB for a paired
  // pass at m = 2000). The finalisation then mirrors the upper triangle.
  bool direct = false;
  if constexpr (std::is_same_v<TG, double>) direct = g_in == g_out && gram::is_symmetric(R, g_out);
  double* const direct_acc = direct ? reinterpret_cast<double*>(g_out) : nullptr;
  if (direct) {
    slots[0].fresh = false;
    // G is written while rows are still being read: check every row first, so
    // that a bad row (NaN, Inf, overflowing norm) leaves G as it was.
    std::vector<double> scratch_norms(static_cast<size_t>(std::min<int64_t>(std::max<int64_t>(b, 1), 4096)));
    const int64_t step = static_cast<int64_t>(scratch_norms.size());
    for (int blk = 0; blk < n_blocks; ++blk)
      for (int64_t i0 = 0; i0 < b; i0 += step)
        row_sq_norms(blocks[blk] + i0 * d, std::min(step, b - i0), d, d, scratch_norms.data(),
                     block_name(n_blocks, blk), i0);
  }

  parallel_chunks(plan.n_chunks, plan.participants, executor, [&](int s, int64_t c) {
    Slot& slot = slots[s];
    if (!slot.feat) {
      if (!(direct && s == 0)) slot.acc = BufferPool::acquire(sizeof(double) * RR);
      if constexpr (kF32Features) slot.scratch = BufferPool::acquire(sizeof(float) * RR);
      slot.feat = BufferPool::acquire(sizeof(FT) * plan.chunk * R);
      slot.dots = BufferPool::acquire(sizeof(T) * plan.tile * m);
      slot.norms = BufferPool::acquire(sizeof(double) * plan.tile);
    }
    FT* feat = as<FT>(slot.feat);
    T* dots = as<T>(slot.dots);
    double* norms = as<double>(slot.norms);
    const int64_t r0 = c * plan.chunk;
    const int64_t r1 = std::min(b, r0 + plan.chunk);
    for (int blk = 0; blk < n_blocks; ++blk) {
      const T* B = blocks[blk];
      for (int64_t t0 = r0; t0 < r1; t0 += plan.tile) {
        const int64_t tr = std::min(plan.tile, r1 - t0);
        row_sq_norms(B + t0 * d, tr, d, d, norms, block_name(n_blocks, blk), t0);
        blas::gemm(false, true, tr, m, d, T(1), B + t0 * d, d, L, d, T(0), dots, m);
        FT* out = feat + (t0 - r0) * R + blk * per;
        const TileRows<T> rows{B + t0 * d, d, L, d, d};
        if constexpr (std::is_same_v<FT, T>) {
          if (whiten) {
            gauss_tile(dots, m, norms, lnorm.data(), tr, m, gamma, floor, dots, m, &rows);
            blas::gemm(false, false, tr, r, m, T(1), dots, m, W, r, T(0), out, R);
            continue;
          }
        }
        if constexpr (std::is_same_v<FT, double>)
          gauss_tile(dots, m, norms, lnorm.data(), tr, m, gamma, floor, out, R, &rows);
      }
    }
    double* acc = direct && s == 0 ? direct_acc : as<double>(slot.acc);
    gram::accumulate_rows<FT>(feat, 0, r1 - r0, R, r1 - r0, acc, as<FT>(slot.scratch), &slot.fresh);
  });

  std::vector<const double*> accs;
  for (auto& s : slots) {
    s.scratch.reset();
    s.feat.reset();
    s.dots.reset();
    if (s.acc) accs.push_back(as<double>(s.acc));
  }
  const int64_t tiles = gram::finalize_tile_rows(R);
  const int n_acc = static_cast<int>(accs.size());
  parallel_chunks(tiles, R >= 512 ? plan.participants : 1, executor, [&](int, int64_t t) {
    if (direct)
      gram::finalize_symmetric_direct(R, direct_acc, accs.data(), n_acc, t, t + 1);
    else
      gram::finalize_symmetric<TG>(R, g_in, g_out, accs.data(), n_acc, t, t + 1);
  });
  return "";
}

}  // namespace

template <typename T, typename TG>
std::string nystrom_accumulate(const T* const* blocks, int n_blocks, int64_t b,
                               int64_t d, const T* landmarks, int64_t m,
                               const T* whitening, int64_t r, double sigma,
                               const TG* g_in, TG* g_out,
                               const AccumulateOptions& opt,
                               Executor* executor) {
  if (n_blocks < 1 || n_blocks > 2) return "expected 1 or 2 row blocks";
  if (b < 0 || d < 0 || m < 0 || r < 0) return "negative dimension";
  double gamma = 0;
  if (auto e = gamma_from_sigma(sigma, &gamma); !e.empty()) return e;
  const int64_t per = whitening ? r : m;
  const int64_t R = n_blocks * per;
  for (int64_t v : {b, d, m, r, R}) {
    if (v > blas::max_dim())
      return "dimension " + std::to_string(v) + " exceeds the BLAS integer range";
  }
  if (R == 0) return "";
  if (b == 0 || m == 0) {  // Z = 0 (no rows, or no landmarks: k(B, L) is [b, 0])
    if (g_out != g_in) std::memcpy(g_out, g_in, sizeof(TG) * R * R);
    return "";
  }
  try {
    if (whitening != nullptr)
      return run<T, T, TG>(blocks, n_blocks, b, d, landmarks, m, whitening, r, gamma, g_in, g_out,
                           opt, executor);
    return run<T, double, TG>(blocks, n_blocks, b, d, landmarks, m, nullptr, r, gamma, g_in, g_out,
                              opt, executor);
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::bad_alloc&) {
    std::ostringstream os;
    os << "out of memory allocating the per-thread [" << R << ", " << R
       << "] float64 accumulators and feature buffers";
    return os.str();
  } catch (const std::exception& e) {
    return std::string("internal error: ") + e.what();
  }
}

#define CLIPCORE_NYSTROM_ACC_INST(T, TG)                                     \
  template std::string nystrom_accumulate<T, TG>(                            \
      const T* const*, int, int64_t, int64_t, const T*, int64_t, const T*,   \
      int64_t, double, const TG*, TG*, const AccumulateOptions&, Executor*);
CLIPCORE_NYSTROM_ACC_INST(float, float)
CLIPCORE_NYSTROM_ACC_INST(float, double)
CLIPCORE_NYSTROM_ACC_INST(double, float)
CLIPCORE_NYSTROM_ACC_INST(double, double)
#undef CLIPCORE_NYSTROM_ACC_INST

}  // namespace clipcore::nystrom
