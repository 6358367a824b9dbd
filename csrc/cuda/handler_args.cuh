// Argument checks of the CUDA |K|_F^2 and pivoted-Cholesky handlers, with
// the CPU handlers' messages (csrc/ffi/nystrom_handler.cc; that file keeps
// its own copies in an anonymous namespace): attribute names and values,
// the sigma operand (read back from the device), and the rows' squared
// norms (computed on the device, first bad row reported with its index).
//
// Status: compiled with nvcc (CUDA 13, zero warnings) but never run on a GPU
// (no device in the sessions that wrote it); tests/test_cuda.py runs it
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
#include "ffi/ffi_common.h"
#include "nystrom/common.h"
#include "xla/ffi/api/ffi.h"

namespace clipcore::cuda {

inline bool is_float(ffi::DataType t) { return t == ffi::DataType::F32 || t == ffi::DataType::F64; }

// "float32 [5, 4]"
inline std::string desc(const ffi::AnyBuffer& b) {
  return std::string(ffi_util::dtype_name(b.element_type())) + " " +
         ffi_util::shape_str(b.dimensions());
}

inline ffi::Error invalid(const char* op, const std::string& msg) {
  return ffi::Error::InvalidArgument(std::string(op) + ": " + msg);
}

// Only the listed attribute names.
inline ffi::Error check_attr_names(const char* op, const ffi::Dictionary& attrs,
                                   std::initializer_list<std::string_view> known) {
  for (std::string_view name : attrs) {
    bool ok = false;
    for (auto k : known) ok = ok || k == name;
    if (!ok) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return invalid(op, "unknown attribute '" + std::string(name) + "' (known: " + list + ")");
    }
  }
  return ffi::Error::Success();
}

// An optional integer attribute >= 0 (int64 or int32); unchanged when absent.
inline ffi::Error int_attr(const char* op, const ffi::Dictionary& attrs, std::string_view name,
                           int64_t* value) {
  if (!attrs.contains(name)) return ffi::Error::Success();
  if (attrs.contains<int64_t>(name)) {
    *value = *attrs.get<int64_t>(name);
  } else if (attrs.contains<int32_t>(name)) {
    *value = *attrs.get<int32_t>(name);
  } else {
    return invalid(op, "attribute '" + std::string(name) + "' must be an integer");
  }
  if (*value < 0)
    return invalid(op, "attribute '" + std::string(name) + "' must be >= 0, got " +
                           std::to_string(*value));
  return ffi::Error::Success();
}

// An optional float attribute (float64 or float32), not NaN.
inline ffi::Error float_attr(const char* op, const ffi::Dictionary& attrs, std::string_view name,
                             double* value) {
  if (!attrs.contains(name)) return ffi::Error::Success();
  if (attrs.contains<double>(name)) {
    *value = *attrs.get<double>(name);
  } else if (attrs.contains<float>(name)) {
    *value = *attrs.get<float>(name);
  } else {
    return invalid(op, "attribute '" + std::string(name) + "' must be a float");
  }
  if (std::isnan(*value)) return invalid(op, "attribute '" + std::string(name) + "' is NaN");
  return ffi::Error::Success();
}

// sigma: one float32|float64 value in device memory, copied to the host
// (one stream synchronisation), positive and finite.
inline ffi::Error read_sigma(cudaStream_t stream, const char* op, const ffi::AnyBuffer& sigma,
                             double* value) {
  const auto t = sigma.element_type();
  if (!is_float(t) || sigma.element_count() != 1)
    return invalid(op, "sigma must be one float32 or float64 value (shape []), got " + desc(sigma));
  float f = 0.0f;
  cudaError_t e =
      t == ffi::DataType::F32
          ? cudaMemcpyAsync(&f, sigma.untyped_data(), sizeof(float), cudaMemcpyDeviceToHost, stream)
          : cudaMemcpyAsync(value, sigma.untyped_data(), sizeof(double), cudaMemcpyDeviceToHost,
                            stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess) return cuda_error(op, e);
  if (t == ffi::DataType::F32) *value = static_cast<double>(f);
  if (!(std::isfinite(*value) && *value > 0.0)) {
    std::ostringstream os;
    os << "sigma must be a positive finite number, got " << *value;
    return invalid(op, os.str());
  }
  return ffi::Error::Success();
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
      rows, d, x, nystrom::max_sq_norm<T>(), norms, flag.as<unsigned long long>());
  if (auto err = launch_status(op); err.failure()) return err;
  unsigned long long bad = 0;
  e = cudaMemcpyAsync(&bad, flag.as<unsigned long long>(), sizeof bad, cudaMemcpyDeviceToHost, stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess) return cuda_error(op, e);
  if (bad == ~0ull) return ffi::Error::Success();
  double s = 0.0;
  e = cudaMemcpyAsync(&s, norms + bad, sizeof s, cudaMemcpyDeviceToHost, stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess) return cuda_error(op, e);
  std::ostringstream os;
  if (std::isnan(s))
    os << what << " has a non-finite value (NaN or Inf) in row " << bad;
  else
    os << what << " row " << bad << " has squared norm " << s << ", too large for "
       << (std::is_same_v<T, float> ? "float32" : "float64") << " kernel tiles (limit "
       << nystrom::max_sq_norm<T>() << ")";
  return invalid(op, os.str() + context);
}

}  // namespace clipcore::cuda
