// Shared helpers of the CUDA FFI handlers: error plumbing, a cuBLAS handle
// per (thread, stream), stream-ordered scratch memory, GEMM/GEMV overloads.
//
// Status: compiled with nvcc (CUDA 13, zero warnings) but never run on a GPU
// (no device in the sessions that wrote it); the CPU suite never reaches it.
// tests/_ffi/test_cuda.py (marked `gpu`) exercises it where a device exists.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "xla/ffi/api/ffi.h"

namespace clipcore::cuda {

namespace ffi = xla::ffi;

inline ffi::Error cuda_error(const char* op, cudaError_t e) {
  return ffi::Error(ffi::ErrorCode::kInternal,
                    std::string(op) + ": CUDA error " + cudaGetErrorName(e) +
                        ": " + cudaGetErrorString(e));
}

inline ffi::Error cublas_error(const char* op, cublasStatus_t s) {
  return ffi::Error(ffi::ErrorCode::kInternal,
                    std::string(op) + ": cuBLAS status " +
                        std::to_string(static_cast<int>(s)));
}

// One handle per (host thread, current device), bound to the stream of the
// current call. A cuBLAS handle belongs to the device that was current when
// it was created: one handle per thread would run a second GPU's calls (an
// XLA thread serving several devices) with the first device's handle.
inline cublasStatus_t handle_for(cudaStream_t stream, cublasHandle_t* out) {
  constexpr int kMaxDevices = 64;
  thread_local cublasHandle_t handles[kMaxDevices] = {};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  cublasHandle_t& handle = handles[device];
  if (handle == nullptr) {
    cublasStatus_t s = cublasCreate(&handle);
    if (s != CUBLAS_STATUS_SUCCESS) {
      handle = nullptr;
      return s;
    }
  }
  *out = handle;
  return cublasSetStream(handle, stream);
}

// Stream-ordered device scratch, freed when it goes out of scope.
class Scratch {
 public:
  Scratch(size_t bytes, cudaStream_t stream) : stream_(stream) {
    status_ = bytes ? cudaMallocAsync(&ptr_, bytes, stream) : cudaSuccess;
  }
  ~Scratch() {
    if (ptr_) cudaFreeAsync(ptr_, stream_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  cudaError_t status() const { return status_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
  cudaError_t status_;
};

// cudaGetLastError after kernel launches, as an ffi::Error.
inline ffi::Error launch_status(const char* op) {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? ffi::Error::Success() : cuda_error(op, e);
}

// Grid of `block`-sized blocks covering x by y threads.
inline dim3 grid2(int64_t x, int64_t y, dim3 block) {
  return dim3(static_cast<unsigned>((x + block.x - 1) / block.x),
              static_cast<unsigned>((y + block.y - 1) / block.y));
}

// The same with y capped at CUDA's 65535 blocks, for kernels that stride
// over y (gaussian_from_dots, convert_block).
inline dim3 grid2_rows(int64_t x, int64_t y, dim3 block) {
  dim3 g = grid2(x, y, block);
  if (g.y > 65535u) g.y = 65535u;
  if (g.y == 0u) g.y = 1u;
  return g;
}

// One-dimensional grid of `threads`-wide blocks covering `count` items,
// at most `max_blocks` blocks (kernels loop over the rest).
inline unsigned blocks_for(int64_t count, int threads, int64_t max_blocks = 1 << 20) {
  const int64_t b = (count + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > max_blocks ? max_blocks : b));
}

// C = op(A) op(B) (alpha 1, beta 0), column-major, host pointer mode.
inline cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                           int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                           const float* b, int64_t ldb, float* c, int64_t ldc) {
  const float one = 1.0f, zero = 0.0f;
  return cublasSgemm(h, ta, tb, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
                     &one, a, static_cast<int>(lda), b, static_cast<int>(ldb), &zero, c,
                     static_cast<int>(ldc));
}
inline cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                           int64_t m, int64_t n, int64_t k, const double* a, int64_t lda,
                           const double* b, int64_t ldb, double* c, int64_t ldc) {
  const double one = 1.0, zero = 0.0;
  return cublasDgemm(h, ta, tb, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
                     &one, a, static_cast<int>(lda), b, static_cast<int>(ldb), &zero, c,
                     static_cast<int>(ldc));
}

// y = alpha op(A) x + beta y (float64, column-major A [m, n], host pointer mode).
inline cublasStatus_t gemv(cublasHandle_t h, cublasOperation_t t, int64_t m, int64_t n,
                           double alpha, const double* a, int64_t lda, const double* x,
                           double beta, double* y) {
  return cublasDgemv(h, t, static_cast<int>(m), static_cast<int>(n), &alpha, a,
                     static_cast<int>(lda), x, 1, &beta, y, 1);
}

}  // namespace clipcore::cuda
