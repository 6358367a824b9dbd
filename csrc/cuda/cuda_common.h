// Shared helpers of the CUDA FFI handlers: error plumbing, a cuBLAS handle
// per (thread, stream), stream-ordered scratch memory.
//
// Status: compiled (nvcc, CUDA 13) but not yet run on a GPU; the CPU suite
// never reaches it. Tests marked `gpu` exercise it where a device exists.
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

// One handle per host thread, bound to the stream of the current call.
inline cublasStatus_t handle_for(cudaStream_t stream, cublasHandle_t* out) {
  thread_local cublasHandle_t handle = nullptr;
  if (handle == nullptr) {
    cublasStatus_t s = cublasCreate(&handle);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
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

}  // namespace clipcore::cuda
