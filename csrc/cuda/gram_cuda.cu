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
// on the CPU. (The CPU also rejects non-finite rows and norms too large for
// T with an error; these handlers do not check the rows.)
//
// cuBLAS is column-major: a row-major [rows, D] array is the column-major
// D x rows matrix A, so Phi^T Phi = A A^T is SYRK(N) with n = D, k = rows.
//
// Status: compiled with nvcc (CUDA 13, zero warnings) but never run on a GPU
// (no device in the sessions that wrote it); tests/test_cuda.py runs it
// where one exists.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "cuda/cuda_common.h"
#include "cuda/kernels.cuh"
#include "nystrom/elementwise.h"
#include "xla/ffi/api/ffi.h"

namespace clipcore::cuda {
namespace {

constexpr int64_t kDefaultBlockRows = 4096;

bool is_float(ffi::DataType t) { return t == ffi::DataType::F32 || t == ffi::DataType::F64; }

int64_t int_attr(const ffi::Dictionary& attrs, const char* name) {
  if (!attrs.contains(name)) return 0;
  if (attrs.contains<int64_t>(name)) return *attrs.get<int64_t>(name);
  if (attrs.contains<int32_t>(name)) return *attrs.get<int32_t>(name);
  return 0;
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
  const char* op = "gram_accumulate (cuda)";
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

ffi::Error GramCuda(cudaStream_t stream, ffi::AnyBuffer g_in, ffi::AnyBuffer phi,
                    ffi::Result<ffi::AnyBuffer> g_out, ffi::Dictionary attrs) {
  const auto pd = phi.dimensions();
  const auto gd = g_in.dimensions();
  if (!is_float(phi.element_type()) || !is_float(g_in.element_type()) || pd.size() != 2 ||
      gd.size() != 2 || gd[0] != pd[1] || gd[1] != pd[1])
    return ffi::Error::InvalidArgument(
        "gram_accumulate (cuda): phi [b, D] and G [D, D] float32|float64, got phi rank " +
        std::to_string(pd.size()) + ", G rank " + std::to_string(gd.size()));
  const int64_t block_rows = int_attr(attrs, "block_rows") > 0 ? int_attr(attrs, "block_rows")
                                                               : kDefaultBlockRows;
  if (pd[1] == 0) return ffi::Error::Success();
  return phi.element_type() == ffi::DataType::F32
             ? gram_typed<float>(stream, g_in, phi, *g_out, pd[0], pd[1], block_rows)
             : gram_typed<double>(stream, g_in, phi, *g_out, pd[0], pd[1], block_rows);
}

// ---------------------------------------------------------------- Nyström
// One chunk of rows B [k, d] (row-major) -> column-major tile [m, k] of kernel
// values in `tile`, using precomputed |l_j|^2 (`ln`, double) and scratch for
// |b_i|^2 (`bn`, double). As on the CPU: exponent in double, the rounding
// floor rounding_floor(eps(T), d), near pairs recomputed from the rows.
template <typename T>
ffi::Error kernel_tile(cublasHandle_t h, cudaStream_t stream, const T* B, int64_t k, int64_t d,
                       const T* L, int64_t m, const double* ln, double* bn, double gamma,
                       T* tile, const char* op) {
  row_sq_norms<T><<<blocks_for(k * 32, 256), 256, 0, stream>>>(k, d, B, 0.0, bn, nullptr);
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

template <typename T>
ffi::Error nystrom_typed(cudaStream_t stream, const ffi::AnyBuffer& g_in, const T* const* blocks,
                         int nb, int64_t b, int64_t d, const T* L, int64_t m, const T* W,
                         int64_t r, double sigma, ffi::AnyBuffer g_out, int64_t block_rows,
                         const char* op) {
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
  for (const Scratch* s : {&acc, &ln, &bn, &tile, &z, &sq})
    if (s->status() != cudaSuccess) return cuda_error(op, s->status());
  if (cudaError_t e = cudaMemsetAsync(acc.as<double>(), 0, sizeof(double) * R * R, stream);
      e != cudaSuccess)
    return cuda_error(op, e);
  row_sq_norms<T><<<blocks_for(m * 32, 256), 256, 0, stream>>>(m, d, L, 0.0, ln.as<double>(), nullptr);
  if (auto e = launch_status(op); e.failure()) return e;
  const double gamma = 1.0 / (2.0 * sigma * sigma);  // may be inf (tiny sigma): see gauss_pair.h
  for (int64_t r0 = 0; r0 < b; r0 += chunk) {
    const int64_t k = std::min(chunk, b - r0);
    for (int q = 0; q < nb; ++q) {
      if (auto e = kernel_tile<T>(h, stream, blocks[q] + r0 * d, k, d, L, m, ln.as<double>(),
                                  bn.as<double>(), gamma, tile.as<T>(), op);
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
  return g_in.element_type() == ffi::DataType::F32
             ? finish<float>(stream, R, g_in, g_out, acc.as<double>(), op)
             : finish<double>(stream, R, g_in, g_out, acc.as<double>(), op);
}

ffi::Error read_sigma(cudaStream_t stream, const ffi::AnyBuffer& s, double* out, const char* op) {
  if (!is_float(s.element_type()) || s.element_count() != 1)
    return ffi::Error::InvalidArgument(std::string(op) + ": sigma must be one float32|float64 value");
  cudaError_t e;
  if (s.element_type() == ffi::DataType::F32) {
    float v;
    e = cudaMemcpyAsync(&v, s.untyped_data(), sizeof(float), cudaMemcpyDeviceToHost, stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
    *out = v;
  } else {
    e = cudaMemcpyAsync(out, s.untyped_data(), sizeof(double), cudaMemcpyDeviceToHost, stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
  }
  if (e != cudaSuccess) return cuda_error(op, e);
  if (!(*out > 0) || !std::isfinite(*out))
    return ffi::Error::InvalidArgument(std::string(op) + ": sigma must be a positive finite number, got " +
                                       std::to_string(*out));
  return ffi::Error::Success();
}

ffi::Error nystrom_entry(cudaStream_t stream, ffi::AnyBuffer g_in, const ffi::AnyBuffer* B,
                         int nb, ffi::AnyBuffer L, const ffi::AnyBuffer* W, ffi::AnyBuffer sigma,
                         ffi::AnyBuffer g_out, const ffi::Dictionary& attrs, const char* op) {
  const auto bd = B[0].dimensions();
  const auto ld = L.dimensions();
  const auto t = B[0].element_type();
  if (!is_float(t) || L.element_type() != t || (W && W->element_type() != t) || bd.size() != 2 ||
      ld.size() != 2 || ld[1] != bd[1])
    return ffi::Error::InvalidArgument(std::string(op) +
                                       ": B [b, d], L [m, d] (and W [m, r]) of one float dtype");
  for (int q = 1; q < nb; ++q)
    if (B[q].element_type() != t || B[q].dimensions().size() != 2 || B[q].dimensions()[0] != bd[0] ||
        B[q].dimensions()[1] != bd[1])
      return ffi::Error::InvalidArgument(std::string(op) + ": B2 must match B's shape and dtype");
  const int64_t m = ld[0];
  int64_t r = 0;
  if (W) {
    const auto wd = W->dimensions();
    if (wd.size() != 2 || wd[0] != m)
      return ffi::Error::InvalidArgument(std::string(op) + ": W must be [m, r]");
    r = wd[1];
  }
  const int64_t R = nb * (W ? r : m);
  const auto gd = g_in.dimensions();
  if (!is_float(g_in.element_type()) || gd.size() != 2 || gd[0] != R || gd[1] != R)
    return ffi::Error::InvalidArgument(std::string(op) + ": G must be [" + std::to_string(R) + ", " +
                                       std::to_string(R) + "]");
  double sig;
  if (auto e = read_sigma(stream, sigma, &sig, op); e.failure()) return e;
  if (R == 0 || m == 0) return ffi::Error::Success();
  const int64_t block_rows = int_attr(attrs, "block_rows") > 0 ? int_attr(attrs, "block_rows") : 2048;
  if (t == ffi::DataType::F32) {
    const float* bl[2] = {static_cast<const float*>(B[0].untyped_data()),
                          nb > 1 ? static_cast<const float*>(B[1].untyped_data()) : nullptr};
    return nystrom_typed<float>(stream, g_in, bl, nb, bd[0], bd[1],
                                static_cast<const float*>(L.untyped_data()), m,
                                W ? static_cast<const float*>(W->untyped_data()) : nullptr, r, sig,
                                g_out, block_rows, op);
  }
  const double* bl[2] = {static_cast<const double*>(B[0].untyped_data()),
                         nb > 1 ? static_cast<const double*>(B[1].untyped_data()) : nullptr};
  return nystrom_typed<double>(stream, g_in, bl, nb, bd[0], bd[1],
                               static_cast<const double*>(L.untyped_data()), m,
                               W ? static_cast<const double*>(W->untyped_data()) : nullptr, r, sig,
                               g_out, block_rows, op);
}

ffi::Error NystromCuda(cudaStream_t s, ffi::AnyBuffer g, ffi::AnyBuffer b, ffi::AnyBuffer l,
                       ffi::AnyBuffer w, ffi::AnyBuffer sigma, ffi::Result<ffi::AnyBuffer> out,
                       ffi::Dictionary attrs) {
  return nystrom_entry(s, g, &b, 1, l, &w, sigma, *out, attrs, "nystrom_accumulate (cuda)");
}
ffi::Error NystromPairedCuda(cudaStream_t s, ffi::AnyBuffer g, ffi::AnyBuffer b, ffi::AnyBuffer b2,
                             ffi::AnyBuffer l, ffi::AnyBuffer w, ffi::AnyBuffer sigma,
                             ffi::Result<ffi::AnyBuffer> out, ffi::Dictionary attrs) {
  const ffi::AnyBuffer bs[2] = {b, b2};
  return nystrom_entry(s, g, bs, 2, l, &w, sigma, *out, attrs, "nystrom_accumulate_paired (cuda)");
}
ffi::Error KernelCuda(cudaStream_t s, ffi::AnyBuffer g, ffi::AnyBuffer b, ffi::AnyBuffer l,
                      ffi::AnyBuffer sigma, ffi::Result<ffi::AnyBuffer> out, ffi::Dictionary attrs) {
  return nystrom_entry(s, g, &b, 1, l, nullptr, sigma, *out, attrs, "kernel_accumulate (cuda)");
}
ffi::Error KernelPairedCuda(cudaStream_t s, ffi::AnyBuffer g, ffi::AnyBuffer b, ffi::AnyBuffer b2,
                            ffi::AnyBuffer l, ffi::AnyBuffer sigma, ffi::Result<ffi::AnyBuffer> out,
                            ffi::Dictionary attrs) {
  const ffi::AnyBuffer bs[2] = {b, b2};
  return nystrom_entry(s, g, bs, 2, l, nullptr, sigma, *out, attrs, "kernel_accumulate_paired (cuda)");
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
