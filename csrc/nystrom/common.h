// Shared pieces of the Nyström / kernel algorithms: the bandwidth, squared
// row norms with their finiteness check, and an exception type that carries
// a user-facing message out of worker threads.
#pragma once

#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace clipcore::nystrom {

// Thrown inside parallel bodies; parallel_chunks rethrows it on the caller,
// which turns it into the returned error string.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Largest squared row norm for which the GEMM form |a|^2 + |b|^2 - 2 a.b
// cannot overflow in T.
template <typename T>
constexpr double max_sq_norm() {
  return std::is_same_v<T, float> ? 1e36 : 1e300;
}

// gamma = 1 / (2 sigma^2) in double; "" or an error for a bad sigma.
// sigma^2 may under/overflow: gamma = inf (only exact zeros give k = 1) or
// gamma = 0 (k = 1 everywhere); both are handled by the tile passes.
inline std::string gamma_from_sigma(double sigma, double* gamma) {
  if (!(std::isfinite(sigma) && sigma > 0.0)) {
    std::ostringstream os;
    os << "sigma must be a positive finite number, got " << sigma;
    return os.str();
  }
  *gamma = 1.0 / (2.0 * sigma * sigma);
  return "";
}

// out[i] = |row i|^2 (double) of rows [0, rows) of the row-major matrix a
// (leading dimension lda, d columns). Throws InputError naming `what` and the
// global row (row0 + i) on a non-finite value or a norm too large for T.
template <typename T>
void row_sq_norms(const T* a, int64_t rows, int64_t d, int64_t lda,
                  double* out, const char* what, int64_t row0) {
  for (int64_t i = 0; i < rows; ++i) {
    const T* row = a + i * lda;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t j = 0;
    for (; j + 4 <= d; j += 4) {
      const double v0 = row[j], v1 = row[j + 1], v2 = row[j + 2], v3 = row[j + 3];
      s0 += v0 * v0;
      s1 += v1 * v1;
      s2 += v2 * v2;
      s3 += v3 * v3;
    }
    for (; j < d; ++j) s0 += static_cast<double>(row[j]) * row[j];
    const double s = (s0 + s1) + (s2 + s3);
    if (!(s <= max_sq_norm<T>())) {
      std::ostringstream os;
      if (!std::isfinite(s)) {
        // Distinguish NaN/Inf entries from finite values whose squares overflow.
        bool finite = true;
        for (int64_t k = 0; k < d; ++k) finite = finite && std::isfinite(row[k]);
        if (!finite) {
          os << what << " has a non-finite value (NaN or Inf) in row " << row0 + i;
          throw InputError(os.str());
        }
      }
      os << what << " row " << row0 + i << " has squared norm " << s
         << ", too large for " << (std::is_same_v<T, float> ? "float32" : "float64")
         << " kernel tiles (limit " << max_sq_norm<T>() << ")";
      throw InputError(os.str());
    }
    out[i] = s;
  }
}

// Checks every value of a row-major [rows, cols] matrix is finite.
template <typename T>
void check_finite(const T* a, int64_t rows, int64_t cols, const char* what) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      if (!std::isfinite(a[i * cols + j])) {
        std::ostringstream os;
        os << what << " has a non-finite value (NaN or Inf) at [" << i << ", " << j << "]";
        throw InputError(os.str());
      }
}

}  // namespace clipcore::nystrom
