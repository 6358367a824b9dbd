// CUDA FFI handler clipcore_gaussian_sq_frobenius (platform "CUDA"): the
// streamed |K|_F^2 = sum_ij k(x_i, x_j)^2 of the Gaussian kernel, same
// operands, attributes, result and validation messages as the CPU handler
// (csrc/ffi/nystrom_handler.cc, csrc/nystrom/kernel_frobenius.h).
//
// Tile pairs I <= J of `tile_rows` rows (default 4096; the CPU's 512 would mean
// ~2e6 tile pairs, each a GEMM and a launch, at n = 1e6): one
// cuBLAS GEMM gives the tile's dots, one fused kernel forms
// k^2 = exp(-2 gamma sq) per entry (exponent in double, near pairs
// recomputed from the rows, exactly 1 on the diagonal of a diagonal tile)
// and sums it in double; off-diagonal tiles count twice. Each kernel writes
// per-block partial sums and its last block adds them, in a fixed order, to
// one float64 accumulator on the device, so the result is deterministic
// (no floating-point atomics) and needs no host synchronisation after the
// argument checks (sigma and the row norms are read back once each).
//
// Status: compiled with nvcc (CUDA 13, zero warnings) but never run on a GPU
// (no device in the sessions that wrote it); tests/_ffi/test_cuda.py runs it
// where one exists.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <limits>
#include <string>

#include "cuda/cuda_common.h"
#include "cuda/handler_args.cuh"
#include "cuda/kernels.cuh"
#include "nystrom/elementwise.h"
#include "xla/ffi/api/ffi.h"

namespace clipcore::cuda {
namespace {

constexpr int64_t kDefaultTileRows = 4096;  // a 4096^2 GEMM per launch pair (CPU: 512)
constexpr int64_t kMaxTileBlocks = 1024;   // partial sums per tile pair

// One tile pair: dots is column-major [tj, ti] (entry (b, a) = x_{j0+b} .
// x_{i0+a}), ni/nj the rows' double norms, xi/xj their rows. Adds
// weight * sum k^2 over the tile to *acc (diagonal tile: (a, a) counts 1).
template <typename T>
__global__ void sq_frobenius_tile(int64_t ti, int64_t tj, const T* __restrict__ dots,
                                  const double* __restrict__ ni, const double* __restrict__ nj,
                                  const T* __restrict__ xi, const T* __restrict__ xj, int64_t d,
                                  double gamma2, double floor, bool diagonal, double weight,
                                  double* partials, unsigned int* ticket, double* acc) {
  double s = 0.0;
  const int64_t total = ti * tj;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = e % tj, a = e / tj;
    s += diagonal && a == b
             ? 1.0
             : gauss_pair_value<T>(static_cast<double>(dots[e]), ni[a], nj[b], xi + a * d,
                                   xj + b * d, d, gamma2, floor);
  }
  s = block_sum(s);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
  if (!last_block(ticket)) return;
  // The last block: the partials in a fixed order, then one add to *acc.
  const volatile double* p = partials;
  double t = 0.0;
  for (unsigned int k = threadIdx.x; k < gridDim.x; k += blockDim.x) t += p[k];
  t = block_sum(t);
  if (threadIdx.x == 0) *acc += weight * t;
}

template <typename TO>
__global__ void store_sum(const double* acc, TO* out) {
  *out = static_cast<TO>(*acc);
}

template <typename T>
ffi::Error sq_frobenius(cudaStream_t stream, const char* op, const T* x, int64_t n, int64_t d,
                        double sigma, int64_t tile_rows, ffi::AnyBuffer out,
                        const std::string& context) {
  const double gamma2 = 2.0 * (1.0 / (2.0 * sigma * sigma));  // k^2 = exp(-2 gamma sq)
  Scratch norms(sizeof(double) * std::max<int64_t>(n, 1), stream);
  Scratch acc(sizeof(double), stream);
  const int64_t t = std::max<int64_t>(1, std::min<int64_t>(tile_rows > 0 ? tile_rows : kDefaultTileRows, n));
  Scratch dots(sizeof(T) * t * t, stream);
  Scratch partials(sizeof(double) * kMaxTileBlocks, stream);
  Scratch ticket(sizeof(unsigned int), stream);
  for (const Scratch* s : {&norms, &acc, &dots, &partials, &ticket})
    if (s->status() != cudaSuccess) return cuda_error(op, s->status());
  cudaError_t me = cudaMemsetAsync(acc.as<double>(), 0, sizeof(double), stream);
  if (me == cudaSuccess) me = cudaMemsetAsync(ticket.as<unsigned int>(), 0, sizeof(unsigned int), stream);
  if (me != cudaSuccess) return cuda_error(op, me);
  if (auto e = checked_row_norms<T>(stream, op, x, n, d, norms.as<double>(), "x", context);
      e.failure())
    return e;
  cublasHandle_t h;
  if (auto s = handle_for(stream, &h); s != CUBLAS_STATUS_SUCCESS) return cublas_error(op, s);
  const double floor = nystrom::rounding_floor(std::numeric_limits<T>::epsilon(), d);
  const int64_t nb = (n + t - 1) / t;
  for (int64_t I = 0; I < nb; ++I) {
    const int64_t i0 = I * t, ti = std::min(n, i0 + t) - i0;
    for (int64_t J = I; J < nb; ++J) {
      const int64_t j0 = J * t, tj = std::min(n, j0 + t) - j0;
      if (d == 0) {  // every dot is 0 (cuBLAS rejects a leading dimension of 0)
        if (cudaError_t e = cudaMemsetAsync(dots.as<T>(), 0, sizeof(T) * ti * tj, stream);
            e != cudaSuccess)
          return cuda_error(op, e);
      } else if (auto s = gemm(h, CUBLAS_OP_T, CUBLAS_OP_N, tj, ti, d, x + j0 * d, d, x + i0 * d, d,
                               dots.as<T>(), tj);
                 s != CUBLAS_STATUS_SUCCESS) {
        return cublas_error(op, s);
      }
      sq_frobenius_tile<T><<<blocks_for(ti * tj, kReduceThreads * 4, kMaxTileBlocks), kReduceThreads,
                             0, stream>>>(ti, tj, dots.as<T>(), norms.as<double>() + i0,
                                          norms.as<double>() + j0, x + i0 * d, x + j0 * d, d,
                                          gamma2, floor, I == J, I == J ? 1.0 : 2.0,
                                          partials.as<double>(), ticket.as<unsigned int>(),
                                          acc.as<double>());
      if (auto e = launch_status(op); e.failure()) return e;
    }
  }
  if (out.element_type() == ffi::DataType::F32)
    store_sum<float><<<1, 1, 0, stream>>>(acc.as<double>(), static_cast<float*>(out.untyped_data()));
  else
    store_sum<double><<<1, 1, 0, stream>>>(acc.as<double>(), static_cast<double*>(out.untyped_data()));
  return launch_status(op);
}

ffi::Error SqFrobeniusCuda(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer sigma_buf,
                           ffi::Result<ffi::AnyBuffer> out, ffi::Dictionary attrs) {
  constexpr const char* op = "gaussian_sq_frobenius";
  int64_t tile_rows = 0, num_threads = 0;  // num_threads: accepted, unused on a GPU
  if (auto e = int_attrs(op, attrs, {{"tile_rows", &tile_rows}, {"num_threads", &num_threads}}); e.failure())
    return e;
  const auto t = x.element_type();
  if (!is_float(t))
    return invalid(op, std::string("x dtype must be float32 or float64, got ") + ffi_util::dtype_name(t));
  const auto xd = x.dimensions();
  if (xd.size() != 2) return invalid(op, "x must be rank 2 [n, d], got " + desc(x));
  if (!is_float(out->element_type()) || out->element_count() != 1 || out->dimensions().size() != 0)
    return invalid(op, "output must be a float32 or float64 scalar [], got " + desc(*out));
  double sigma = 0;
  if (auto e = read_sigma(stream, op, sigma_buf, &sigma); e.failure()) return e;
  const int64_t n = xd[0], d = xd[1];
  const std::string context = " (x " + desc(x) + ")";
  if (n > INT_MAX || d > INT_MAX) return invalid(op, "dimension exceeds the BLAS integer range" + context);
  if (n == 0) {
    const size_t bytes = out->element_type() == ffi::DataType::F32 ? sizeof(float) : sizeof(double);
    const cudaError_t e = cudaMemsetAsync(out->untyped_data(), 0, bytes, stream);
    return e == cudaSuccess ? ffi::Error::Success() : cuda_error(op, e);
  }
  return t == ffi::DataType::F32
             ? sq_frobenius<float>(stream, op, static_cast<const float*>(x.untyped_data()), n, d,
                                   sigma, tile_rows, *out, context)
             : sq_frobenius<double>(stream, op, static_cast<const double*>(x.untyped_data()), n, d,
                                    sigma, tile_rows, *out, context);
}

}  // namespace
}  // namespace clipcore::cuda

namespace ffi = xla::ffi;

// C linkage, as csrc/python/module.cc declares it.
extern "C" XLA_FFI_Error* ClipcoreGaussianSqFrobeniusCuda(XLA_FFI_CallFrame*);

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreGaussianSqFrobeniusCuda, clipcore::cuda::SqFrobeniusCuda,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::PlatformStream<cudaStream_t>>()
                                  .Arg<ffi::AnyBuffer>()  // x [n, d]
                                  .Arg<ffi::AnyBuffer>()  // sigma []
                                  .Ret<ffi::AnyBuffer>()  // sum_ij k(x_i, x_j)^2 []
                                  .Attrs());
