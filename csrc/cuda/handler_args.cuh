// Argument checks of the CUDA |K|_F^2 and pivoted-Cholesky handlers, with
// the CPU handlers' messages: the attribute and sigma checks are the CPU's own
// (csrc/ffi/ffi_args.h); here the sigma operand is read back from the device
// and the rows' squared norms are computed on the device (first bad row
// reported with its index).
//
// Status: compiled with nvcc (CUDA 13, zero warnings) but never run on a GPU
// (no device in the sessions that wrote it); tests/_ffi/test_cuda.py runs it
// where one exists.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>

#include "cuda/cuda_common.h"
#include "cuda/kernels.cuh"
#include "ffi/ffi_args.h"
#include "ffi/ffi_common.h"
#include "nystrom/common.h"
#include "xla/ffi/api/ffi.h"

namespace clipcore::cuda {

using ffi_util::desc;
using ffi_util::int_attrs;
using ffi_util::invalid;
using ffi_util::is_float;

// sigma: one float32|float64 value in device memory, copied to the host
// (one stream synchronisation), positive and finite.
inline ffi::Error read_sigma(cudaStream_t stream, const char* op, const ffi::AnyBuffer& sigma,
                             double* value) {
  if (auto e = ffi_util::check_sigma_operand(op, sigma); e.failure()) return e;
  float f = 0.0f;
  cudaError_t e =
      sigma.element_type() == ffi::DataType::F32
          ? cudaMemcpyAsync(&f, sigma.untyped_data(), sizeof(float), cudaMemcpyDeviceToHost, stream)
          : cudaMemcpyAsync(value, sigma.untyped_data(), sizeof(double), cudaMemcpyDeviceToHost,
                            stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess) return cuda_error(op, e);
  if (sigma.element_type() == ffi::DataType::F32) *value = static_cast<double>(f);
  return ffi_util::check_sigma_value(op, *value);
}

// The CPU's message (nystrom::row_sq_norms) for row `row` of the row-major
// x [*, d] on the device, whose squared norm is not <= max_sq_norm<T>: the
// row's norm is recomputed on the device (one stream synchronisation).
template <typename T>
ffi::Error bad_row_error(cudaStream_t stream, const char* op, const T* x, int64_t row, int64_t d,
                         const char* what, const std::string& context) {
  Scratch norm(sizeof(double), stream);
  if (norm.status() != cudaSuccess) return cuda_error(op, norm.status());
  row_sq_norms<T><<<1, 32, 0, stream>>>(1, d, x + row * d, 0.0, norm.as<double>(), nullptr, 0);
  if (auto err = launch_status(op); err.failure()) return err;
  double s = 0.0;
  cudaError_t e = cudaMemcpyAsync(&s, norm.as<double>(), sizeof s, cudaMemcpyDeviceToHost, stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess) return cuda_error(op, e);
  std::ostringstream os;
  if (std::isnan(s))
    os << what << " has a non-finite value (NaN or Inf) in row " << row;
  else
    os << what << " row " << row << " has squared norm " << s << ", too large for "
       << (std::is_same_v<T, float> ? "float32" : "float64") << " kernel tiles (limit "
       << nystrom::max_sq_norm<T>() << ")";
  return invalid(op, os.str() + context);
}

// norms[i] = |x_i|^2 in double for the row-major x [rows, d] on the device;
// an error naming `what` and the first row with a non-finite value or a
// norm too large for T (the CPU's nystrom::row_sq_norms messages), suffixed
// with `context`. One stream synchronisation.
template <typename T>
ffi::Error checked_row_norms(cudaStream_t stream, const char* op, const T* x, int64_t rows,
                             int64_t d, double* norms, const char* what,
                             const std::string& context) {
  if (rows == 0) return ffi::Error::Success();
  Scratch flag(sizeof(unsigned long long), stream);
  if (flag.status() != cudaSuccess) return cuda_error(op, flag.status());
  cudaError_t e = cudaMemsetAsync(flag.as<unsigned long long>(), 0xff, sizeof(unsigned long long), stream);
  if (e != cudaSuccess) return cuda_error(op, e);
  constexpr int threads = 256;  // 8 rows (warps) per block
  row_sq_norms<T><<<blocks_for(rows * 32, threads), threads, 0, stream>>>(
      rows, d, x, nystrom::max_sq_norm<T>(), norms, flag.as<unsigned long long>(), 0);
  if (auto err = launch_status(op); err.failure()) return err;
  unsigned long long bad = 0;
  e = cudaMemcpyAsync(&bad, flag.as<unsigned long long>(), sizeof bad, cudaMemcpyDeviceToHost, stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess) return cuda_error(op, e);
  if (bad == ~0ull) return ffi::Error::Success();
  return bad_row_error<T>(stream, op, x, static_cast<int64_t>(bad), d, what, context);
}

}  // namespace clipcore::cuda
