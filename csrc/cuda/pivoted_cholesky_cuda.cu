// CUDA FFI handler clipcore_pivoted_cholesky (platform "CUDA"): greedy
// pivoted Cholesky of the Gaussian kernel matrix k(x, x), never formed; same
// operands, attributes, results and validation messages as the CPU handler
// (csrc/ffi/nystrom_handler.cc), same definition as the CPU core
// (csrc/nystrom/pivoted_cholesky.h): residual r = 1, trace t = n; per step
// stop at min(m, n) pivots, t <= trace_tol or max r <= min_pivot; else
// p = argmax r (lowest index among ties), L[:, k] = (K[:, p] - L[:, :k]
// L[p, :k]^T) / sqrt(r_p) (0 on earlier pivots), r -= L[:, k]^2 (clamped at
// 0), r_p = 0, t = sum r. float64 throughout (float32 x widened once).
//
// The sequential definition, one step after another on the device: the
// panel/candidate scheme of the CPU core is not used (the tuning attributes
// panel, candidates, block_rows, num_threads are accepted and ignored; the
// result does not depend on them on the CPU either). Per step: a one-block
// kernel applies the stop rules and gathers x_p and L[p, :k]; a GEMV gives
// x . x_p, a kernel turns it into k(x, x_p) (exponent in double, near pairs
// recomputed from the rows by csrc/nystrom/gauss_pair.h); a GEMV subtracts
// L[:, :k] L[p, :k]^T; a last kernel writes L[:, k] and r, and its last
// block sums r (the trace, in a fixed order) and picks the next pivot. The
// pivot, the stop flag and the count stay in device memory: no host
// synchronisation per step; the host only polls the stop flag every
// kPollSteps steps to stop launching work after an early stop.
// Memory: the [n, min(m, n)] float64 factor (the float64 factor output
// itself when it is requested), float64 x when x is float32, O(n) vectors.
//
// Status: compiled with nvcc (CUDA 13, zero warnings) but never run on a GPU
// (no device in the sessions that wrote it); tests/_ffi/test_cuda.py runs it
// where one exists.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/handler_args.cuh"
#include "cuda/kernels.cuh"
#include "nystrom/elementwise.h"
#include "nystrom/pivoted_cholesky.h"
#include "xla/ffi/api/ffi.h"

namespace clipcore::cuda {
namespace {

constexpr int64_t kMaxUpdateBlocks = 1024;  // partial results per step
constexpr int64_t kPollSteps = 32;          // host reads the stop flag this often

// The step state, in device memory.
struct PcState {
  int64_t p;            // the next pivot: argmax r, lowest index among ties
  int64_t count;        // pivots taken
  double dp;            // r[p]
  double pv;            // sqrt(r[p]) of the step in progress
  double trace;         // sum r
  int done;             // a stop rule fired: every later kernel is a no-op
  unsigned int ticket;  // last_block counter of pc_update
};

__global__ void pc_init(PcState* st, int64_t n) {
  st->p = 0;  // r = 1 everywhere: the lowest index
  st->count = 0;
  st->dp = 1.0;
  st->pv = 1.0;
  st->trace = static_cast<double>(n);
  st->done = n == 0;
  st->ticket = 0u;
}

template <typename T>
__global__ void fill(int64_t count, T value, T* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = value;
}

// Step k, part 1 (one block): the stop rules; else record the pivot p and
// sqrt(r_p), and gather x_p -> xp [d], L[p, :k] -> lp [k].
__global__ void pc_begin(int64_t k, int64_t d, const double* __restrict__ X,
                         const double* __restrict__ L, int64_t ldl, double trace_tol,
                         double min_pivot, PcState* st, int64_t* __restrict__ pivots,
                         double* __restrict__ xp, double* __restrict__ lp) {
  __shared__ bool go;
  if (threadIdx.x == 0) {
    go = !st->done && !(st->trace <= trace_tol) && st->dp > min_pivot;
    if (go) {
      st->pv = sqrt(st->dp);
      st->count = k + 1;
      pivots[k] = st->p;
    } else {
      st->done = 1;
    }
  }
  __syncthreads();
  if (!go) return;
  const int64_t p = st->p;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) xp[j] = X[p * d + j];
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) lp[j] = L[p * ldl + j];
}

// Step k, part 2: col[i] = x_i . x_p (from the GEMV) -> k(x_i, x_p).
__global__ void pc_kernel_column(int64_t n, int64_t d, const double* __restrict__ X,
                                 const double* __restrict__ norms, const double* __restrict__ xp,
                                 const PcState* st, double gamma, double floor,
                                 double* __restrict__ col) {
  if (st->done) return;
  const double np = norms[st->p];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    col[i] = gauss_pair_value<double>(col[i], norms[i], np, X + i * d, xp, d, gamma, floor);
}

// (v, i) of the larger residual, the lower index among ties.
__device__ inline bool better(double v, int64_t i, double w, int64_t j) {
  return v > w || (v == w && i < j);
}

// Argmax (lowest index among ties) over a block of kReduceThreads threads,
// in a fixed tree order; the result is returned to every thread.
__device__ inline void block_argmax(double* v, int64_t* i) {
  __shared__ double sv[kReduceThreads];
  __shared__ int64_t si[kReduceThreads];
  sv[threadIdx.x] = *v;
  si[threadIdx.x] = *i;
  __syncthreads();
  for (int s = kReduceThreads / 2; s > 0; s >>= 1) {
    const int t = static_cast<int>(threadIdx.x);
    if (t < s && better(sv[t + s], si[t + s], sv[t], si[t])) {
      sv[t] = sv[t + s];
      si[t] = si[t + s];
    }
    __syncthreads();
  }
  *v = sv[0];
  *i = si[0];
  __syncthreads();
}

// Step k, part 3: L[:, k] = col / sqrt(r_p) (0 on earlier pivots, sqrt(r_p)
// on p), r = max(r - L[:, k]^2, 0), r_p = 0. The last block sums r into the
// trace (recorded as traces[k]) and picks the next pivot, both from the
// blocks' partials in a fixed order.
__global__ void pc_update(int64_t n, int64_t k, const double* __restrict__ col, double* L,
                          int64_t ldl, double* r, unsigned char* is_piv, PcState* st,
                          double* part_sum, double* part_max, int64_t* part_idx,
                          double* traces) {
  if (st->done) return;  // the same in every block
  const int64_t p = st->p;
  const double pv = st->pv;
  double s = 0.0, best = -1.0;
  int64_t bi = n;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double v, ri;
    if (i == p) {
      v = pv;
      ri = 0.0;
      is_piv[i] = 1;
    } else if (is_piv[i]) {  // an earlier pivot: residual exactly 0
      v = 0.0;
      ri = 0.0;
    } else {
      v = col[i] / pv;
      ri = fmax(r[i] - v * v, 0.0);
    }
    L[i * ldl + k] = v;
    r[i] = ri;
    s += ri;
    if (ri > best) {  // i increases: the first of equal residuals stays
      best = ri;
      bi = i;
    }
  }
  s = block_sum(s);
  block_argmax(&best, &bi);
  if (threadIdx.x == 0) {
    part_sum[blockIdx.x] = s;
    part_max[blockIdx.x] = best;
    part_idx[blockIdx.x] = bi;
  }
  if (!last_block(&st->ticket)) return;
  const volatile double* ps = part_sum;
  const volatile double* pm = part_max;
  const volatile int64_t* pi = part_idx;
  double t = 0.0, bv = -1.0;
  int64_t bj = n;
  for (unsigned int b = threadIdx.x; b < gridDim.x; b += blockDim.x) {
    t += ps[b];
    if (better(pm[b], pi[b], bv, bj)) {
      bv = pm[b];
      bj = pi[b];
    }
  }
  t = block_sum(t);
  block_argmax(&bv, &bj);
  if (threadIdx.x == 0) {
    st->trace = t;
    st->p = bj;
    st->dp = bv;
    traces[k] = t;
  }
}

// pivots, count and residual_trace outputs in their dtypes.
template <typename I, typename F>
__global__ void pc_store(int64_t m, const int64_t* __restrict__ piv, const double* __restrict__ tr,
                         const PcState* st, I* __restrict__ piv_out, F* __restrict__ tr_out,
                         void* count_out, bool count64) {
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < m;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    piv_out[j] = static_cast<I>(piv[j]);
    tr_out[j] = static_cast<F>(tr[j]);
  }
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    if (count64)
      *static_cast<int64_t*>(count_out) = st->count;
    else
      *static_cast<int32_t*>(count_out) = static_cast<int32_t>(st->count);
  }
}

// out [m, m] row-major = L[pivots, :] in the leading count x count block, 0 elsewhere.
template <typename F>
__global__ void pc_pivot_factor(int64_t m, const double* __restrict__ L, int64_t ldl,
                                const int64_t* __restrict__ piv, const PcState* st,
                                F* __restrict__ out) {
  const int64_t c = st->count;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < m * m;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = e / m, l = e % m;
    out[e] = static_cast<F>(j < c && l < c ? L[piv[j] * ldl + l] : 0.0);
  }
}

// out [n, m] row-major = L [n, ldl] widened/narrowed, 0 in columns >= ldl.
template <typename F>
__global__ void pc_factor(int64_t n, int64_t m, const double* __restrict__ L, int64_t ldl,
                          F* __restrict__ out) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n * m;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e / m, l = e % m;
    out[e] = static_cast<F>(l < ldl ? L[i * ldl + l] : 0.0);
  }
}

struct Outputs {
  ffi::AnyBuffer pivots, count, trace, pfactor, factor;
  bool want_factor;
};

inline cudaError_t zero(void* p, size_t bytes, cudaStream_t stream) {
  return bytes ? cudaMemsetAsync(p, 0, bytes, stream) : cudaSuccess;
}

template <typename T>
ffi::Error run(cudaStream_t stream, const char* op, const T* x, int64_t n, int64_t d, double sigma,
               int64_t m, double trace_tol, double min_pivot, Outputs& out,
               const std::string& context) {
  const int64_t me = std::min(m, n);
  const bool factor64 = out.factor.element_type() == ffi::DataType::F64;
  // L is the factor output itself (not for m = 0: the [n, 0] output has no
  // room for the one-column L that ldl >= 1 gives)
  const bool in_place = out.want_factor && factor64 && m > 0;
  const int64_t ldl = std::max<int64_t>(in_place ? m : me, 1);
  constexpr bool wide = std::is_same_v<T, double>;

  Scratch own_l(in_place ? 0 : sizeof(double) * n * ldl, stream);
  Scratch x64(wide ? 0 : sizeof(double) * n * d, stream);
  if (own_l.status() != cudaSuccess || x64.status() != cudaSuccess) {
    if (own_l.status() == cudaErrorMemoryAllocation || x64.status() == cudaErrorMemoryAllocation) {
      // name what did not fit: the float64 factor, or the float64 copy of float32 rows
      const std::string what =
          own_l.status() == cudaErrorMemoryAllocation
              ? "the factor needs n x min(m, n) = " + std::to_string(n) + " x " + std::to_string(me) +
                    " float64 values"
              : "the float64 copy of the float32 rows needs n x d = " + std::to_string(n) + " x " +
                    std::to_string(d) + " values";
      return ffi::Error(ffi::ErrorCode::kResourceExhausted,
                        std::string(op) + ": out of GPU memory: " + what + " (select from a pool of fewer rows)" +
                            context);
    }
    return cuda_error(op, own_l.status() != cudaSuccess ? own_l.status() : x64.status());
  }
  const size_t nn = static_cast<size_t>(std::max<int64_t>(n, 1));
  Scratch norms(sizeof(double) * nn, stream), r(sizeof(double) * nn, stream),
      col(sizeof(double) * nn, stream), is_piv(nn, stream);
  Scratch xp(sizeof(double) * std::max<int64_t>(d, 1), stream),
      lp(sizeof(double) * std::max<int64_t>(me, 1), stream);
  Scratch piv(sizeof(int64_t) * std::max<int64_t>(m, 1), stream),
      tr(sizeof(double) * std::max<int64_t>(m, 1), stream);
  Scratch part(sizeof(double) * 3 * kMaxUpdateBlocks, stream), state(sizeof(PcState), stream);
  for (const Scratch* s : {&norms, &r, &col, &is_piv, &xp, &lp, &piv, &tr, &part, &state})
    if (s->status() != cudaSuccess) return cuda_error(op, s->status());
  double* L = in_place ? static_cast<double*>(out.factor.untyped_data()) : own_l.as<double>();
  PcState* st = state.as<PcState>();
  double* part_sum = part.as<double>();
  double* part_max = part_sum + kMaxUpdateBlocks;
  int64_t* part_idx = reinterpret_cast<int64_t*>(part_sum + 2 * kMaxUpdateBlocks);

  if (auto e = checked_row_norms<T>(stream, op, x, n, d, norms.as<double>(), "x", context); e.failure())
    return e;
  const double* X;
  if constexpr (wide) {
    X = x;
  } else {  // float32 rows widened once (exact)
    X = x64.as<double>();
    const dim3 blk(256, 1);
    if (n * d > 0)  // as one column of n * d values
      convert_block<float, double><<<grid2_rows(n * d, 1, blk), blk, 0, stream>>>(
          n * d, 1, x, n * d, x64.as<double>(), n * d);
  }
  cudaError_t ce = zero(L, sizeof(double) * n * ldl, stream);
  if (ce == cudaSuccess) ce = zero(is_piv.as<void>(), n, stream);
  if (ce != cudaSuccess) return cuda_error(op, ce);
  fill<double><<<blocks_for(n, 256, 4096), 256, 0, stream>>>(n, 1.0, r.as<double>());
  fill<int64_t><<<blocks_for(m, 256, 4096), 256, 0, stream>>>(m, -1, piv.as<int64_t>());
  fill<double><<<blocks_for(m, 256, 4096), 256, 0, stream>>>(
      m, std::numeric_limits<double>::quiet_NaN(), tr.as<double>());
  pc_init<<<1, 1, 0, stream>>>(st, n);
  if (auto e = launch_status(op); e.failure()) return e;

  cublasHandle_t h;
  if (auto s = handle_for(stream, &h); s != CUBLAS_STATUS_SUCCESS) return cublas_error(op, s);
  const double gamma = 1.0 / (2.0 * sigma * sigma);  // may be inf: see gauss_pair.h
  const double floor = nystrom::rounding_floor(std::numeric_limits<double>::epsilon(), d);
  const unsigned row_blocks = blocks_for(n, kReduceThreads, kMaxUpdateBlocks);
  for (int64_t k = 0; k < me; ++k) {
    pc_begin<<<1, kReduceThreads, 0, stream>>>(k, d, X, L, ldl, trace_tol, min_pivot, st,
                                               piv.as<int64_t>(), xp.as<double>(), lp.as<double>());
    if (auto e = launch_status(op); e.failure()) return e;
    // col = X x_p (after a stop: harmless work on scratch, the kernels skip)
    if (d == 0) {
      if (ce = zero(col.as<void>(), sizeof(double) * n, stream); ce != cudaSuccess)
        return cuda_error(op, ce);
    } else if (auto s = gemv(h, CUBLAS_OP_T, d, n, 1.0, X, d, xp.as<double>(), 0.0, col.as<double>());
               s != CUBLAS_STATUS_SUCCESS) {
      return cublas_error(op, s);
    }
    pc_kernel_column<<<row_blocks, kReduceThreads, 0, stream>>>(
        n, d, X, norms.as<double>(), xp.as<double>(), st, gamma, floor, col.as<double>());
    if (auto e = launch_status(op); e.failure()) return e;
    if (k > 0) {  // col -= L[:, :k] L[p, :k]^T (L row-major: column-major [ldl, n])
      if (auto s = gemv(h, CUBLAS_OP_T, k, n, -1.0, L, ldl, lp.as<double>(), 1.0, col.as<double>());
          s != CUBLAS_STATUS_SUCCESS)
        return cublas_error(op, s);
    }
    pc_update<<<row_blocks, kReduceThreads, 0, stream>>>(
        n, k, col.as<double>(), L, ldl, r.as<double>(), is_piv.as<unsigned char>(), st, part_sum,
        part_max, part_idx, tr.as<double>());
    if (auto e = launch_status(op); e.failure()) return e;
    if ((k + 1) % kPollSteps == 0 && k + 1 < me) {  // stopped early? (one sync per kPollSteps)
      int done = 0;
      ce = cudaMemcpyAsync(&done, &st->done, sizeof done, cudaMemcpyDeviceToHost, stream);
      if (ce == cudaSuccess) ce = cudaStreamSynchronize(stream);
      if (ce != cudaSuccess) return cuda_error(op, ce);
      if (done) break;
    }
  }

  // The outputs, in their dtypes.
  const bool p64 = out.pivots.element_type() == ffi::DataType::S64;
  const bool t64 = out.trace.element_type() == ffi::DataType::F64;
  const bool c64 = out.count.element_type() == ffi::DataType::S64;
  const unsigned mb = blocks_for(m, 256, 4096);
  void* cnt = out.count.untyped_data();
#define CLIPCORE_PC_STORE(I, F)                                                                  \
  pc_store<I, F><<<mb, 256, 0, stream>>>(m, piv.as<int64_t>(), tr.as<double>(), st,              \
                                         static_cast<I*>(out.pivots.untyped_data()),             \
                                         static_cast<F*>(out.trace.untyped_data()), cnt, c64)
  if (p64 && t64) CLIPCORE_PC_STORE(int64_t, double);
  else if (p64) CLIPCORE_PC_STORE(int64_t, float);
  else if (t64) CLIPCORE_PC_STORE(int32_t, double);
  else CLIPCORE_PC_STORE(int32_t, float);
#undef CLIPCORE_PC_STORE
  const unsigned pb = blocks_for(m * m, 256, 4096);
  if (out.pfactor.element_type() == ffi::DataType::F64)
    pc_pivot_factor<double><<<pb, 256, 0, stream>>>(m, L, ldl, piv.as<int64_t>(), st,
                                                    static_cast<double*>(out.pfactor.untyped_data()));
  else
    pc_pivot_factor<float><<<pb, 256, 0, stream>>>(m, L, ldl, piv.as<int64_t>(), st,
                                                   static_cast<float*>(out.pfactor.untyped_data()));
  if (out.want_factor && !in_place)  // float32 factor: narrowed from the float64 L
    pc_factor<float><<<blocks_for(n * m, 256, 1 << 16), 256, 0, stream>>>(
        n, m, L, ldl, static_cast<float*>(out.factor.untyped_data()));
  return launch_status(op);
}

ffi::Error PivotedCholeskyCuda(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer sigma_buf,
                               ffi::Result<ffi::AnyBuffer> pivots_out,
                               ffi::Result<ffi::AnyBuffer> count_out,
                               ffi::Result<ffi::AnyBuffer> trace_out,
                               ffi::Result<ffi::AnyBuffer> pfactor_out,
                               ffi::Result<ffi::AnyBuffer> factor_out, ffi::Dictionary attrs) {
  constexpr const char* op = "pivoted_cholesky";
  ffi_util::PivotedCholeskyArgs args;  // the CPU's checks; the int tuning attributes are unused here
  if (auto e = ffi_util::pivoted_cholesky_args(op, attrs, x, *pivots_out, *count_out, *trace_out, *pfactor_out,
                                               *factor_out, &args);
      e.failure())
    return e;
  const nystrom::PivotedCholeskyOptions& opt = args.opt;
  const auto t = x.element_type();
  const int64_t n = args.n, d = args.d, m = args.m;
  double sigma = 0;
  if (auto e = read_sigma(stream, op, sigma_buf, &sigma); e.failure()) return e;
  const std::string context = " (x " + desc(x) + ", m = " + std::to_string(m) + ")";
  for (int64_t v : {n, d, m})
    if (v > INT_MAX)
      return invalid(op, "dimension " + std::to_string(v) + " exceeds the BLAS integer range" + context);

  Outputs out{*pivots_out, *count_out, *trace_out, *pfactor_out, *factor_out, args.want_factor};
  return t == ffi::DataType::F32
             ? run<float>(stream, op, static_cast<const float*>(x.untyped_data()), n, d, sigma, m,
                          opt.trace_tol, opt.min_pivot, out, context)
             : run<double>(stream, op, static_cast<const double*>(x.untyped_data()), n, d, sigma, m,
                           opt.trace_tol, opt.min_pivot, out, context);
}

}  // namespace
}  // namespace clipcore::cuda

namespace ffi = xla::ffi;

// C linkage, as csrc/python/module.cc declares it.
extern "C" XLA_FFI_Error* ClipcorePivotedCholeskyCuda(XLA_FFI_CallFrame*);

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcorePivotedCholeskyCuda, clipcore::cuda::PivotedCholeskyCuda,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::PlatformStream<cudaStream_t>>()
                                  .Arg<ffi::AnyBuffer>()  // x [n, d]
                                  .Arg<ffi::AnyBuffer>()  // sigma []
                                  .Ret<ffi::AnyBuffer>()  // pivots [m]
                                  .Ret<ffi::AnyBuffer>()  // count []
                                  .Ret<ffi::AnyBuffer>()  // residual_trace [m]
                                  .Ret<ffi::AnyBuffer>()  // pivot_factor [m, m]
                                  .Ret<ffi::AnyBuffer>()  // factor [n, m] or [0, m]
                                  .Attrs());
