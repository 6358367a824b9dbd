// Fused Nyström feature accumulation (pure algorithm + threading; no XLA):
//
//   G_out = G_in + Z^T Z,   Z = [Phi(B_1) | ... | Phi(B_k)]   (k = 1 or 2)
//
// where, for a row block B [b, d], the landmarks L [m, d] and the whitening
// W [m, r] (W = K_mm^{-1/2} restricted to the kept eigen-directions),
//
//   whitened:  Phi(B) = k(B, L) W      [b, r]
//   kernel:    Phi(B) = k(B, L)        [b, m]   (W absent: the caller
//                                               whitens the m×m sum once)
//
// with k the Gaussian kernel exp(-|x - y|^2 / (2 sigma^2)). Per chunk of
// rows (one scheduling unit, one syrk): tiles of `tile_rows` rows get their
// kernel values from one GEMM (|b|^2 + |l|^2 - 2 b.l^T) and one elementwise
// exp pass, then (whitened) the whitening GEMM; the chunk's Z goes through
// one syrk into the thread's float64 accumulator.
//
// Precision. float32 blocks: kernel tile and whitening in float32, the
// whitened chunk's Z^T Z in float32 over at most `block_rows` rows (one
// ssyrk), summed in float64 across chunks. In the kernel form the tile is
// widened to float64 before the syrk (dsyrk): the m×m sum k(B,L)^T k(B,L)
// must be accurate to far below float32 rounding because the later
// whitening amplifies its errors by 1/lambda_min (accumulating it in float32
// gives a trace of 1.08 where the truth is 0.99999, see tests). float64
// blocks: everything in float64.
#pragma once

#include <cstdint>
#include <string>

#include "gram/parallel.h"

namespace clipcore::nystrom {

struct AccumulateOptions {
  int64_t block_rows = 0;   // rows per chunk (= per syrk); 0: auto
  int64_t tile_rows = 0;    // rows per kernel tile inside a chunk; 0: auto
  int64_t num_threads = 0;  // 0: CLIPCORE_NUM_THREADS or the CPU count
};

// blocks: n_blocks (1 or 2) pointers to row-major [b, d] arrays of T.
// landmarks: row-major [m, d]; whitening: row-major [m, r] or nullptr
// (kernel form). g_in, g_out: row-major [R, R], R = n_blocks * (whitening ?
// r : m); g_out may alias g_in. Returns "" or an error message.
template <typename T, typename TG>
std::string nystrom_accumulate(const T* const* blocks, int n_blocks, int64_t b,
                               int64_t d, const T* landmarks, int64_t m,
                               const T* whitening, int64_t r, double sigma,
                               const TG* g_in, TG* g_out,
                               const AccumulateOptions& opt,
                               Executor* executor);

#define CLIPCORE_NYSTROM_ACC_EXTERN(T, TG)                                   \
  extern template std::string nystrom_accumulate<T, TG>(                     \
      const T* const*, int, int64_t, int64_t, const T*, int64_t, const T*,   \
      int64_t, double, const TG*, TG*, const AccumulateOptions&, Executor*);
CLIPCORE_NYSTROM_ACC_EXTERN(float, float)
CLIPCORE_NYSTROM_ACC_EXTERN(float, double)
CLIPCORE_NYSTROM_ACC_EXTERN(double, float)
CLIPCORE_NYSTROM_ACC_EXTERN(double, double)
#undef CLIPCORE_NYSTROM_ACC_EXTERN

}  // namespace clipcore::nystrom
