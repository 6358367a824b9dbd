// CUDA FFI handlers: G_out = G_in + Phi^T Phi (clipcore_gram_accumulate) and
// the Nyström accumulations (clipcore_nystrom_accumulate[_paired],
// clipcore_kernel_accumulate[_paired]) on platform "CUDA", with the same
// operands, attributes and precision contract as the CPU handlers
// (csrc/ffi/*.cc): float32 inputs go through float32 cuBLAS GEMM/SYRK over
// chunks of at most `block_rows` rows, summed into a float64 accumulator;
// the kernel form widens the tile to float64 before the SYRK.
//
// The kernel tiles follow the CPU's (kernels.cuh): exponent in double,
// rounding floor rounding_floor(eps(T), d), near-coincident pairs
// recomputed from the rows (csrc/nystrom/gauss_pair.h), exp flushed to 0 as
// on the CPU. Arguments and rows are checked as on the CPU, with its
// messages: non-finite landmarks / whitening / rows and norms too large for T
// are refused (the rows of B are checked as they are used; the error is
// returned before G_out is written).
//
// cuBLAS is column-major: a row-major [rows, D] array is the column-major
// D x rows matrix A, so Phi^T Phi = A A^T is SYRK(N) with n = D, k = rows.
//
// Status: compiled with nvcc (CUDA 13, zero warnings) but never run on a GPU
// (no device in the sessions that wrote it); tests/_ffi/test_cuda.py runs it
// where one exists.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>

#include "cuda/cuda_common.h"
#include "cuda/handler_args.cuh"
#include "cuda/kernels.cuh"
#include "nystrom/common.h"
#include "nystrom/elementwise.h"
#include "xla/ffi/api/ffi.h"

namespace clipcore::cuda {
namespace {

using ffi_util::dtype_name;
using ffi_util::shape_str;

constexpr int64_t kDefaultBlockRows = 4096;
constexpr int64_t kMaxBlasDim = INT_MAX;  // cuBLAS takes int dimensions

// out = in for a [d, d] G that the call leaves unchanged (XLA aliases them
// for the Python wrappers; a direct ffi_call need not).
ffi::Error copy_unchanged(cudaStream_t stream, const ffi::AnyBuffer& g_in, ffi::AnyBuffer g_out,
                          const char* op) {
  if (g_out.untyped_data() == g_in.untyped_data() || g_in.size_bytes() == 0)
    return ffi::Error::Success();
  const cudaError_t e = cudaMemcpyAsync(g_out.untyped_data(), g_in.untyped_data(), g_in.size_bytes(),
                                        cudaMemcpyDeviceToDevice, stream);
  return e == cudaSuccess ? ffi::Error::Success() : cuda_error(op, e);
}

// out[k] = g_in[k] + acc[min(r, c) + max(r, c) * d] (acc: upper, column-major).
template <typename TG>
__global__ void finalize(int64_t d, const TG* __restrict__ g_in, const double* __restrict__ acc,
                         TG* __restrict__ out) {
  const int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (k >= d * d) return;
  const int64_t r = k / d, c = k % d;
  const int64_t lo = r < c ? r : c, hi = r < c ? c : r;
  out[k] = static_cast<TG>(static_cast<double>(g_in[k]) + acc[lo + hi * d]);
}

cublasStatus_t syrk(cublasHandle_t h, int64_t n, int64_t k, const float* a, int64_t lda,
                    float beta, float* c) {
  const float one = 1.0f;
  return cublasSsyrk(h, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, static_cast<int>(n),
                     static_cast<int>(k), &one, a, static_cast<int>(lda), &beta, c,
                     static_cast<int>(n));
}
cublasStatus_t syrk(cublasHandle_t h, int64_t n, int64_t k, const double* a, int64_t lda,
                    double beta, double* c) {
  const double one = 1.0;
  return cublasDsyrk(h, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, static_cast<int>(n),
                     static_cast<int>(k), &one, a, static_cast<int>(lda), &beta, c,
                     static_cast<int>(n));
}

// acc (float64 upper, d x d) += Z Z^T for a column-major Z [d, k] of T.
template <typename T>
ffi::Error accumulate(cublasHandle_t h, cudaStream_t stream, const T* z, int64_t d, int64_t k,
                      int64_t ldz, double* acc, T* scratch, const char* op) {
  cublasStatus_t s;
  if constexpr (std::is_same_v<T, double>) {
    s = syrk(h, d, k, z, ldz, 1.0, acc);
    if (s != CUBLAS_STATUS_SUCCESS) return cublas_error(op, s);
  } else {
    s = syrk(h, d, k, z, ldz, 0.0f, scratch);
    if (s != CUBLAS_STATUS_SUCCESS) return cublas_error(op, s);
    const dim3 blk(16, 16);
    add_upper<float, double><<<grid2(d, d, blk), blk, 0, stream>>>(d, scratch, acc);
    return launch_status(op);
  }
  return ffi::Error::Success();
}

template <typename TG>
ffi::Error finish(cudaStream_t stream, int64_t d, const ffi::AnyBuffer& g_in, ffi::AnyBuffer g_out,
                  const double* acc, const char* op) {
  const int64_t total = d * d;
  const int threads = 256;
  finalize<TG><<<static_cast<unsigned>((total + threads - 1) / threads), threads, 0, stream>>>(
      d, static_cast<const TG*>(g_in.untyped_data()), acc, static_cast<TG*>(g_out.untyped_data()));
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? ffi::Error::Success() : cuda_error(op, e);
}

// ---------------------------------------------------------------- gram
template <typename T>
ffi::Error gram_typed(cudaStream_t stream, const ffi::AnyBuffer& g_in, const ffi::AnyBuffer& phi,
                      ffi::AnyBuffer g_out, int64_t b, int64_t d, int64_t block_rows) {
  const char* op = "gram_accumulate";
  cublasHandle_t h;
  if (auto s = handle_for(stream, &h); s != CUBLAS_STATUS_SUCCESS) return cublas_error(op, s);
  Scratch acc(sizeof(double) * d * d, stream);
  Scratch scratch(std::is_same_v<T, float> ? sizeof(float) * d * d : 0, stream);
  if (acc.status() != cudaSuccess) return cuda_error(op, acc.status());
  if (scratch.status() != cudaSuccess) return cuda_error(op, scratch.status());
  if (cudaError_t e = cudaMemsetAsync(acc.as<double>(), 0, sizeof(double) * d * d, stream);
      e != cudaSuccess)
    return cuda_error(op, e);
  const T* p = static_cast<const T*>(phi.untyped_data());
  for (int64_t r = 0; r < b; r += block_rows) {
    const int64_t k = std::min(block_rows, b - r);
    if (auto e = accumulate<T>(h, stream, p + r * d, d, k, d, acc.as<double>(), scratch.as<T>(), op);
        e.failure())
      return e;
  }
  return g_in.element_type() == ffi::DataType::F32
             ? finish<float>(stream, d, g_in, g_out, acc.as<double>(), op)
             : finish<double>(stream, d, g_in, g_out, acc.as<double>(), op);
}

// The CPU handler's checks and messages (csrc/ffi/gram_handler.cc,
// gram_dispatch.cc, gram/gram_accumulate.cc).
ffi::Error GramCuda(cudaStream_t stream, ffi::AnyBuffer g_in, ffi::AnyBuffer phi,
                    ffi::Result<ffi::AnyBuffer> g_out, ffi::Dictionary attrs) {
  constexpr const char* op = "gram_accumulate";
  int64_t block_rows = 0, num_threads = 0, strategy = 0;  // num_threads, strategy: unused here
  if (auto e = int_attrs(op, attrs, {{"block_rows", &block_rows}, {"num_threads", &num_threads},
                                     {"strategy", &strategy}});
      e.failure())
    return e;
  if (strategy > 1)
    return invalid(op, "attribute 'strategy' must be 0 (rows over threads) or 1 (OpenBLAS threads), got " +
                           std::to_string(strategy));
  const auto pd = phi.dimensions();
  const auto gd = g_in.dimensions();
  const auto od = g_out->dimensions();
  if (!is_float(phi.element_type()))
    return invalid(op, std::string("phi dtype must be float32 or float64, got ") + dtype_name(phi.element_type()));
  if (!is_float(g_in.element_type()))
    return invalid(op, std::string("G dtype must be float32 or float64, got ") + dtype_name(g_in.element_type()));
  if (pd.size() != 2)
    return invalid(op, "phi must be rank 2 [b, D], got shape " + shape_str(pd) + " (rank " +
                           std::to_string(pd.size()) + ")");
  const int64_t b = pd[0], d = pd[1];
  if (gd.size() != 2 || gd[0] != d || gd[1] != d)
    return invalid(op, "G must be [D, D] with D = phi.shape[1] = " + std::to_string(d) + ", got " + shape_str(gd));
  if (g_out->element_type() != g_in.element_type() || od.size() != 2 || od[0] != d || od[1] != d)
    return invalid(op, "output must have G's dtype and shape (" + desc(g_in) + "), got " + desc(*g_out));
  if (d > kMaxBlasDim)
    return invalid(op, "D = " + std::to_string(d) + " exceeds the BLAS integer range (phi " + desc(phi) +
                           ", G " + desc(g_in) + ")");
  if (d == 0) return ffi::Error::Success();
  if (b == 0) return copy_unchanged(stream, g_in, *g_out, op);
  // rows per SYRK: an int for cuBLAS
  block_rows = std::min<int64_t>(block_rows > 0 ? block_rows : kDefaultBlockRows, kMaxBlasDim);
  return phi.element_type() == ffi::DataType::F32
             ? gram_typed<float>(stream, g_in, phi, *g_out, b, d, block_rows)
             : gram_typed<double>(stream, g_in, phi, *g_out, b, d, block_rows);
}

// ---------------------------------------------------------------- Nyström
// One chunk of rows B [k, d] (row-major, global rows row0..) -> column-major
// tile [m, k] of kernel values in `tile`, using precomputed |l_j|^2 (`ln`,
// double) and scratch for |b_i|^2 (`bn`, double). As on the CPU: exponent in
// double, the rounding floor rounding_floor(eps(T), d), near pairs
// recomputed from the rows. The lowest global row whose norm is non-finite
// or too large for T is min-ed into *first_bad (checked after the last chunk).
template <typename T>
ffi::Error kernel_tile(cublasHandle_t h, cudaStream_t stream, const T* B, int64_t k, int64_t row0,
                       int64_t d, const T* L, int64_t m, const double* ln, double* bn, double gamma,
                       T* tile, unsigned long long* first_bad, const char* op) {
  row_sq_norms<T><<<blocks_for(k * 32, 256), 256, 0, stream>>>(k, d, B, nystrom::max_sq_norm<T>(), bn,
                                                               first_bad, row0);
  if (auto e = launch_status(op); e.failure()) return e;
  if (d == 0) {  // every dot is 0 (cuBLAS rejects a leading dimension of 0)
    if (cudaError_t e = cudaMemsetAsync(tile, 0, sizeof(T) * m * k, stream); e != cudaSuccess)
      return cuda_error(op, e);
  } else if (auto s = gemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m, k, d, L, d, B, d, tile, m);
             s != CUBLAS_STATUS_SUCCESS) {  // tile = L B^T, column-major [m, k]
    return cublas_error(op, s);
  }
  const dim3 blk(32, 8);
  const double floor = nystrom::rounding_floor(std::numeric_limits<T>::epsilon(), d);
  gaussian_from_dots<T><<<grid2_rows(m, k, blk), blk, 0, stream>>>(m, k, bn, ln, B, L, d, gamma, floor,
                                                              tile);
  return launch_status(op);
}

const char* block_name(int nb, int q) {
  if (nb == 1) return "B";
  return q == 0 ? "B (first block)" : "B2 (second block)";
}

// Rows are checked as on the CPU (nystrom_accumulate.cc), with its messages:
// the landmarks and the whitening first (one stream synchronisation), the
// rows of B (and B2) while they are used, reported before G_out is written.
template <typename T>
ffi::Error nystrom_typed(cudaStream_t stream, const ffi::AnyBuffer& g_in, const T* const* blocks,
                         int nb, int64_t b, int64_t d, const T* L, int64_t m, const T* W,
                         int64_t r, double sigma, ffi::AnyBuffer g_out, int64_t block_rows,
                         const char* op, const std::string& context) {
  cublasHandle_t h;
  if (auto s = handle_for(stream, &h); s != CUBLAS_STATUS_SUCCESS) return cublas_error(op, s);
  const int64_t per = W ? r : m;
  const int64_t R = nb * per;
  const int64_t chunk = std::max<int64_t>(1, std::min(block_rows, b));
  const bool widen = !W && std::is_same_v<T, float>;  // kernel form: float64 SYRK
  Scratch acc(sizeof(double) * R * R, stream);
  Scratch ln(sizeof(double) * m, stream), bn(sizeof(double) * chunk, stream);
  Scratch tile(sizeof(T) * m * chunk, stream);
  Scratch z((W ? sizeof(T) : sizeof(double)) * R * chunk, stream);
  Scratch sq(std::is_same_v<T, float> && W ? sizeof(float) * R * R : 0, stream);
  Scratch flags(sizeof(unsigned long long) * 3, stream);  // whitening, B, B2
  for (const Scratch* s : {&acc, &ln, &bn, &tile, &z, &sq, &flags})
    if (s->status() != cudaSuccess) return cuda_error(op, s->status());
  unsigned long long* const flag = flags.as<unsigned long long>();
  if (cudaError_t e = cudaMemsetAsync(flag, 0xff, sizeof(unsigned long long) * 3, stream); e != cudaSuccess)
    return cuda_error(op, e);
  if (auto e = checked_row_norms<T>(stream, op, L, m, d, ln.as<double>(), "landmarks", context); e.failure())
    return e;
  if (W && m * r > 0) {
    first_nonfinite<T><<<blocks_for(m * r, 256), 256, 0, stream>>>(m * r, W, flag);
    if (auto e = launch_status(op); e.failure()) return e;
    unsigned long long bad = ~0ull;
    cudaError_t e = cudaMemcpyAsync(&bad, flag, sizeof bad, cudaMemcpyDeviceToHost, stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
    if (e != cudaSuccess) return cuda_error(op, e);
    if (bad != ~0ull)
      return invalid(op, "whitening has a non-finite value (NaN or Inf) at [" + std::to_string(bad / r) + ", " +
                             std::to_string(bad % r) + "]" + context);
  }
  if (cudaError_t e = cudaMemsetAsync(acc.as<double>(), 0, sizeof(double) * R * R, stream);
      e != cudaSuccess)
    return cuda_error(op, e);
  const double gamma = 1.0 / (2.0 * sigma * sigma);  // may be inf (tiny sigma): see gauss_pair.h
  for (int64_t r0 = 0; r0 < b; r0 += chunk) {
    const int64_t k = std::min(chunk, b - r0);
    for (int q = 0; q < nb; ++q) {
      if (auto e = kernel_tile<T>(h, stream, blocks[q] + r0 * d, k, r0, d, L, m, ln.as<double>(),
                                  bn.as<double>(), gamma, tile.as<T>(), flag + 1 + q, op);
          e.failure())
        return e;
      if (W) {  // Phi_q (col-major [r, k], rows q*r.. of Z with ld R) = W^T tile
        if (auto s = gemm(h, CUBLAS_OP_N, CUBLAS_OP_N, r, k, m, W, r, tile.as<T>(), m,
                          z.as<T>() + q * r, R);
            s != CUBLAS_STATUS_SUCCESS)
          return cublas_error(op, s);
      } else if (widen) {  // float32 tile [m, k] -> float64 rows q*m.. of Z (ld R)
        const dim3 blk(32, 8);
        convert_block<T, double><<<grid2_rows(m, k, blk), blk, 0, stream>>>(
            m, k, tile.as<T>(), m, z.as<double>() + q * m, R);
        if (auto e = launch_status(op); e.failure()) return e;
      } else if (cudaError_t e = cudaMemcpy2DAsync(z.as<T>() + q * m, sizeof(T) * R, tile.as<T>(),
                                                   sizeof(T) * m, sizeof(T) * m, k,
                                                   cudaMemcpyDeviceToDevice, stream);
                 e != cudaSuccess) {
        return cuda_error(op, e);
      }
    }
    ffi::Error e = ffi::Error::Success();
    if (W || !std::is_same_v<T, float>)
      e = accumulate<T>(h, stream, z.as<T>(), R, k, R, acc.as<double>(), sq.as<T>(), op);
    else
      e = accumulate<double>(h, stream, z.as<double>(), R, k, R, acc.as<double>(), nullptr, op);
    if (e.failure()) return e;
  }
  // A bad row of B / B2 (the lowest; B first on a tie): an error, G_out untouched.
  unsigned long long bad[2] = {~0ull, ~0ull};
  cudaError_t ce = cudaMemcpyAsync(bad, flag + 1, sizeof(unsigned long long) * nb, cudaMemcpyDeviceToHost, stream);
  if (ce == cudaSuccess) ce = cudaStreamSynchronize(stream);
  if (ce != cudaSuccess) return cuda_error(op, ce);
  if (bad[0] != ~0ull || bad[1] != ~0ull) {
    const int q = bad[1] < bad[0] ? 1 : 0;
    return bad_row_error<T>(stream, op, blocks[q], static_cast<int64_t>(bad[q]), d, block_name(nb, q), context);
  }
  return g_in.element_type() == ffi::DataType::F32
             ? finish<float>(stream, R, g_in, g_out, acc.as<double>(), op)
             : finish<double>(stream, R, g_in, g_out, acc.as<double>(), op);
}

// The CPU handler's checks and messages (csrc/ffi/nystrom_handler.cc,
// csrc/nystrom/nystrom_accumulate.cc).
ffi::Error nystrom_entry(cudaStream_t stream, ffi::AnyBuffer g_in, const ffi::AnyBuffer* B,
                         int nb, ffi::AnyBuffer L, const ffi::AnyBuffer* W, ffi::AnyBuffer sigma_buf,
                         ffi::AnyBuffer g_out, const ffi::Dictionary& attrs, const char* op) {
  int64_t block_rows = 0, tile_rows = 0, num_threads = 0;  // tile_rows, num_threads: unused here
  if (auto e = int_attrs(op, attrs, {{"block_rows", &block_rows}, {"tile_rows", &tile_rows},
                                     {"num_threads", &num_threads}});
      e.failure())
    return e;

  const bool paired = nb == 2;
  const char* bname = paired ? "B and B2" : "B";
  const auto t = B[0].element_type();
  if (!is_float(t)) return invalid(op, std::string("B dtype must be float32 or float64, got ") + dtype_name(t));
  const auto bd = B[0].dimensions();
  if (bd.size() != 2) return invalid(op, "B must be rank 2 [b, d], got " + desc(B[0]));
  const int64_t b = bd[0], d = bd[1];
  if (paired) {
    const auto b2 = B[1].dimensions();
    if (B[1].element_type() != t || b2.size() != 2 || b2[0] != b || b2[1] != d)
      return invalid(op, "B2 must have B's dtype and shape (" + desc(B[0]) + "), got " + desc(B[1]));
  }
  const auto ldims = L.dimensions();
  if (L.element_type() != t || ldims.size() != 2 || ldims[1] != d)
    return invalid(op, std::string("landmarks must be ") + dtype_name(t) + " [m, d] with d = " +
                           "B.shape[1] = " + std::to_string(d) + ", got " + desc(L));
  const int64_t m = ldims[0];
  int64_t r = 0;
  if (W) {
    const auto wd = W->dimensions();
    if (W->element_type() != t || wd.size() != 2 || wd[0] != m)
      return invalid(op, std::string("whitening must be ") + dtype_name(t) + " [m, r] with m = " +
                             "landmarks.shape[0] = " + std::to_string(m) + ", got " + desc(*W));
    r = wd[1];
  }
  const int64_t R = nb * (W ? r : m);
  const auto gd = g_in.dimensions();
  if (!is_float(g_in.element_type()))
    return invalid(op, std::string("G dtype must be float32 or float64, got ") + dtype_name(g_in.element_type()));
  if (gd.size() != 2 || gd[0] != R || gd[1] != R) {
    std::ostringstream os;
    os << "G must be [R, R] with R = " << (paired ? "2 * " : "") << (W ? "r" : "m") << " = " << R << " ("
       << bname << " " << desc(B[0]) << ", landmarks " << desc(L);
    if (W) os << ", whitening " << desc(*W);
    os << "), got " << shape_str(gd);
    return invalid(op, os.str());
  }
  const auto od = g_out.dimensions();
  if (g_out.element_type() != g_in.element_type() || od.size() != 2 || od[0] != R || od[1] != R)
    return invalid(op, "output must have G's dtype and shape (" + desc(g_in) + "), got " + desc(g_out));
  double sigma = 0;
  if (auto e = read_sigma(stream, op, sigma_buf, &sigma); e.failure()) return e;

  std::string context = std::string(" (") + bname + " " + desc(B[0]) + ", landmarks " + desc(L);
  if (W) context += ", whitening " + desc(*W);
  context += ", G " + desc(g_in) + ")";
  for (int64_t v : {b, d, m, r, R})
    if (v > kMaxBlasDim)
      return invalid(op, "dimension " + std::to_string(v) + " exceeds the BLAS integer range" + context);
  if (R == 0) return ffi::Error::Success();
  if (b == 0 || m == 0) return copy_unchanged(stream, g_in, g_out, op);  // Z = 0
  // rows per SYRK: an int for cuBLAS
  block_rows = std::min<int64_t>(block_rows > 0 ? block_rows : 2048, kMaxBlasDim);
  if (t == ffi::DataType::F32) {
    const float* bl[2] = {static_cast<const float*>(B[0].untyped_data()),
                          paired ? static_cast<const float*>(B[1].untyped_data()) : nullptr};
    return nystrom_typed<float>(stream, g_in, bl, nb, b, d, static_cast<const float*>(L.untyped_data()), m,
                                W ? static_cast<const float*>(W->untyped_data()) : nullptr, r, sigma, g_out,
                                block_rows, op, context);
  }
  const double* bl[2] = {static_cast<const double*>(B[0].untyped_data()),
                         paired ? static_cast<const double*>(B[1].untyped_data()) : nullptr};
  return nystrom_typed<double>(stream, g_in, bl, nb, b, d, static_cast<const double*>(L.untyped_data()), m,
                               W ? static_cast<const double*>(W->untyped_data()) : nullptr, r, sigma, g_out,
                               block_rows, op, context);
}

ffi::Error NystromCuda(cudaStream_t s, ffi::AnyBuffer g, ffi::AnyBuffer b, ffi::AnyBuffer l,
                       ffi::AnyBuffer w, ffi::AnyBuffer sigma, ffi::Result<ffi::AnyBuffer> out,
                       ffi::Dictionary attrs) {
  return nystrom_entry(s, g, &b, 1, l, &w, sigma, *out, attrs, "nystrom_accumulate");
}
ffi::Error NystromPairedCuda(cudaStream_t s, ffi::AnyBuffer g, ffi::AnyBuffer b, ffi::AnyBuffer b2,
                             ffi::AnyBuffer l, ffi::AnyBuffer w, ffi::AnyBuffer sigma,
                             ffi::Result<ffi::AnyBuffer> out, ffi::Dictionary attrs) {
  const ffi::AnyBuffer bs[2] = {b, b2};
  return nystrom_entry(s, g, bs, 2, l, &w, sigma, *out, attrs, "nystrom_accumulate_paired");
}
ffi::Error KernelCuda(cudaStream_t s, ffi::AnyBuffer g, ffi::AnyBuffer b, ffi::AnyBuffer l,
                      ffi::AnyBuffer sigma, ffi::Result<ffi::AnyBuffer> out, ffi::Dictionary attrs) {
  return nystrom_entry(s, g, &b, 1, l, nullptr, sigma, *out, attrs, "kernel_accumulate");
}
ffi::Error KernelPairedCuda(cudaStream_t s, ffi::AnyBuffer g, ffi::AnyBuffer b, ffi::AnyBuffer b2,
                            ffi::AnyBuffer l, ffi::AnyBuffer sigma, ffi::Result<ffi::AnyBuffer> out,
                            ffi::Dictionary attrs) {
  const ffi::AnyBuffer bs[2] = {b, b2};
  return nystrom_entry(s, g, bs, 2, l, nullptr, sigma, *out, attrs, "kernel_accumulate_paired");
}

}  // namespace
}  // namespace clipcore::cuda

namespace ffi = xla::ffi;
using Stream = ffi::PlatformStream<cudaStream_t>;

// C linkage, as csrc/python/module.cc declares them.
extern "C" XLA_FFI_Error* ClipcoreGramAccumulateCuda(XLA_FFI_CallFrame*);
extern "C" XLA_FFI_Error* ClipcoreNystromAccumulateCuda(XLA_FFI_CallFrame*);
extern "C" XLA_FFI_Error* ClipcoreNystromAccumulatePairedCuda(XLA_FFI_CallFrame*);
extern "C" XLA_FFI_Error* ClipcoreKernelAccumulateCuda(XLA_FFI_CallFrame*);
extern "C" XLA_FFI_Error* ClipcoreKernelAccumulatePairedCuda(XLA_FFI_CallFrame*);

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreGramAccumulateCuda, clipcore::cuda::GramCuda,
                              ffi::Ffi::Bind().Ctx<Stream>().Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>().Attrs());
XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreNystromAccumulateCuda, clipcore::cuda::NystromCuda,
                              ffi::Ffi::Bind().Ctx<Stream>().Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>().Attrs());
XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreNystromAccumulatePairedCuda, clipcore::cuda::NystromPairedCuda,
                              ffi::Ffi::Bind().Ctx<Stream>().Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>().Ret<ffi::AnyBuffer>().Attrs());
XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreKernelAccumulateCuda, clipcore::cuda::KernelCuda,
                              ffi::Ffi::Bind().Ctx<Stream>().Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>().Ret<ffi::AnyBuffer>()
                                  .Attrs());
XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreKernelAccumulatePairedCuda, clipcore::cuda::KernelPairedCuda,
                              ffi::Ffi::Bind().Ctx<Stream>().Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>().Attrs());
