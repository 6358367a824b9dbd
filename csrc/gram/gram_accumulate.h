// Typed implementation: G_out = G_in + Phi^T Phi, threaded and blocked.
#pragma once

#include <cstdint>
#include <string>

#include "gram/parallel.h"

namespace clipcore::gram {

enum class Strategy : int64_t {
  // Rows split over threads (caller + executor helpers), each with its own
  // float64 accumulator and single-threaded BLAS. Default: fastest measured
  // for tall-skinny Phi (see bench/bench_gram.py).
  kRowSplit = 0,
  // One thread walks the row blocks; OpenBLAS threads each syrk call.
  kBlasThreads = 1,
};

struct Options {
  int64_t block_rows = 0;   // rows per float32 syrk sub-block; 0 = auto
  int64_t num_threads = 0;  // 0 = auto (CLIPCORE_NUM_THREADS or CPU count)
  Strategy strategy = Strategy::kRowSplit;
};

// Defaults used when Options fields are 0.
int64_t default_block_rows(int64_t d, bool phi_is_float);
int default_num_threads();

// Rows of one scheduling chunk and number of participants for a problem.
struct Plan {
  int64_t chunk_rows = 0;  // rows per chunk (= per BLAS call)
  int64_t n_chunks = 0;
  int participants = 1;
};
Plan make_plan(int64_t b, int64_t d, bool phi_is_float, const Options& opt);

// G_out = G_in + Phi^T Phi (full symmetric Phi^T Phi; G_in used as given).
//   phi: row-major [b, d]; g_in, g_out: row-major [d, d]; g_out may alias
//   g_in. Accumulation is float64 (float32 Phi: float32 only inside one
//   sub-block of at most block_rows rows). Returns "" on success, otherwise
//   an error message (nothing else is reported through exceptions).
template <typename TIn, typename TG>
std::string gram_accumulate(const TIn* phi, int64_t b, int64_t d,
                            const TG* g_in, TG* g_out, const Options& opt,
                            Executor* executor);

extern template std::string gram_accumulate<float, float>(
    const float*, int64_t, int64_t, const float*, float*, const Options&,
    Executor*);
extern template std::string gram_accumulate<float, double>(
    const float*, int64_t, int64_t, const double*, double*, const Options&,
    Executor*);
extern template std::string gram_accumulate<double, float>(
    const double*, int64_t, int64_t, const float*, float*, const Options&,
    Executor*);
extern template std::string gram_accumulate<double, double>(
    const double*, int64_t, int64_t, const double*, double*, const Options&,
    Executor*);

}  // namespace clipcore::gram
