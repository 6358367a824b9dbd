#include "gram/gram_accumulate.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "blas/blas.h"
#include "gram/buffer_pool.h"
#include "gram/chunk_loop.h"
#include "gram/gram_block.h"

namespace clipcore::gram {

namespace {

// Below this many multiply-adds (b * d * d) one thread does it all: thread
// start-up and the extra float64 accumulators would cost more than they save.
constexpr int64_t kMinParallelWork = int64_t{1} << 22;
// Smallest chunk worth handing to another thread.
constexpr int64_t kMinChunkRows = 256;

}  // namespace

int64_t default_block_rows(int64_t d, bool phi_is_float) {
  if (!phi_is_float) return 4096;  // float64: only sets the chunk size
  // float32: each sub-block's Gram is summed in float32 inside BLAS, then
  // added (d*d/2 conversions and adds) to the float64 accumulator. Bigger
  // blocks amortise that add; 4096 rows keeps the float32 part short.
  (void)d;
  return 4096;
}

int default_num_threads() {
  if (const char* env = std::getenv("CLIPCORE_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && v > 0) return static_cast<int>(std::min(v, 1024L));
  }
  return available_cpus();
}

Plan make_plan(int64_t b, int64_t d, bool phi_is_float, const Options& opt) {
  Plan p;
  int64_t block = opt.block_rows > 0 ? opt.block_rows
                                     : default_block_rows(d, phi_is_float);
  block = std::min<int64_t>(block, blas::max_dim());
  int threads = opt.num_threads > 0
                    ? static_cast<int>(std::min<int64_t>(opt.num_threads, 1024))
                    : default_num_threads();
  if (opt.strategy == Strategy::kBlasThreads) threads = 1;
  // Too little work to share: one participant.
  const double work = static_cast<double>(b) * static_cast<double>(d) *
                      static_cast<double>(d);
  if (work < static_cast<double>(kMinParallelWork) && opt.num_threads <= 0)
    threads = 1;
  // Balance: give every participant something when b is small relative to
  // threads * block (never below kMinChunkRows, never above block).
  int64_t chunk = block;
  if (threads > 1) {
    const int64_t per_thread = (b + threads - 1) / threads;
    chunk = std::min(block, std::max(kMinChunkRows, per_thread));
  }
  chunk = std::max<int64_t>(1, chunk);
  p.chunk_rows = chunk;
  p.n_chunks = b == 0 ? 0 : (b + chunk - 1) / chunk;
  p.participants = static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(threads, p.n_chunks)));
  return p;
}

template <typename TIn, typename TG>
std::string gram_accumulate(const TIn* phi, int64_t b, int64_t d,
                            const TG* g_in, TG* g_out, const Options& opt,
                            Executor* executor) {
  constexpr bool kFloat = std::is_same_v<TIn, float>;
  if (b < 0 || d < 0) return "negative dimension";
  if (d > blas::max_dim())
    return "D = " + std::to_string(d) + " exceeds the BLAS integer range";
  if (d == 0) return "";
  const int64_t dd = d * d;
  if (b == 0) {
    if (g_out != g_in) std::memcpy(g_out, g_in, sizeof(TG) * dd);
    return "";
  }

  const Plan plan = make_plan(b, d, kFloat, opt);
  const blas::ThreadsScope blas_threads(opt.strategy == Strategy::kBlasThreads
                                             ? (opt.num_threads > 0
                                                    ? static_cast<int>(opt.num_threads)
                                                    : default_num_threads())
                                             : 1);

  return run_chunk_loop<TIn, TG>(
      b, d, plan, 0, g_in, g_out, executor,
      [phi, d](int64_t r0, int64_t, TIn*) { return phi + r0 * d; });
}

template std::string gram_accumulate<float, float>(const float*, int64_t,
                                                   int64_t, const float*,
                                                   float*, const Options&,
                                                   Executor*);
template std::string gram_accumulate<float, double>(const float*, int64_t,
                                                    int64_t, const double*,
                                                    double*, const Options&,
                                                    Executor*);
template std::string gram_accumulate<double, float>(const double*, int64_t,
                                                    int64_t, const float*,
                                                    float*, const Options&,
                                                    Executor*);
template std::string gram_accumulate<double, double>(const double*, int64_t,
                                                     int64_t, const double*,
                                                     double*, const Options&,
                                                     Executor*);

}  // namespace clipcore::gram
