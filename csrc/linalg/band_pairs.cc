#include "linalg/band_pairs.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "blas/blas.h"
#include "blas/lapack.h"

namespace clipcore::linalg {

namespace {

std::string lapack_error(const char* routine, int info, int64_t n, int64_t kd) {
  std::ostringstream os;
  os << "band pairs: LAPACK " << routine << " failed (info = " << info << ") for n = " << n << ", kd = " << kd;
  return os.str();
}

std::string check_sizes(int64_t n, int64_t kd, const char* op) {
  if (n < 1 || kd < 1 || kd >= n) {
    std::ostringstream os;
    os << op << ": expected 1 <= kd < n, got n = " << n << ", kd = " << kd;
    return os.str();
  }
  if (3 * kd + 1 > blas::max_dim() || n > blas::max_dim()) {
    std::ostringstream os;
    os << op << ": n = " << n << " exceeds the BLAS integer range";
    return os.str();
  }
  return "";
}

// A fixed pseudo-random start in [-1, 1) for vector j (splitmix64).
double start_entry(uint64_t j, uint64_t i) {
  uint64_t x = (j << 32) ^ i ^ 0x9E3779B97F4A7C15ull;
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return static_cast<double>(x >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

}  // namespace

std::string band_reduce(double* a, int64_t n, int64_t kd, double* ab, double* tau, double* w) {
  std::string err = check_sizes(n, kd, "band_reduce");
  if (!err.empty()) return err;
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = j; i < n; ++i)
      if (!std::isfinite(a[i + j * n])) {
        std::ostringstream os;
        os << "band_reduce: the matrix has a non-finite entry at [" << i << ", " << j << "]";
        return os.str();
      }
  int info = lapack::sytrd_sy2sb(n, kd, a, n, ab, kd + 1, tau);
  if (info != 0) return lapack_error("?sytrd_sy2sb", info, n, kd);
  std::vector<double> band(ab, ab + (kd + 1) * n), e(static_cast<size_t>(n));
  info = lapack::sytrd_sb2st_values(n, kd, band.data(), kd + 1, w, e.data());
  if (info != 0) return lapack_error("?sytrd_sb2st", info, n, kd);
  info = lapack::sterf(n, w, e.data());
  return info == 0 ? "" : lapack_error("?sterf", info, n, kd);
}

std::string band_eigenvectors(const double* ab, int64_t n, int64_t kd, const double* lams, int64_t k, double* z,
                              double* residuals, Executor* executor, int participants) {
  std::string err = check_sizes(n, kd, "band_eigenvectors");
  if (!err.empty()) return err;
  // ?gbtrf's storage of B (kl = ku = kd): B(i, j) at g[2 kd + i − j + j·ldg]
  const int64_t ldg = 3 * kd + 1;
  std::vector<double> g(static_cast<size_t>(ldg * n), 0.0);
  double norm = 0.0;  // ‖B‖₁ (B symmetric: the largest column sum)
  std::vector<double> colsum(static_cast<size_t>(n), 0.0);
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t r = 0; r <= kd && j + r < n; ++r) {
      const double v = ab[r + j * (kd + 1)];
      g[(2 * kd + r) + j * ldg] = v;         // B(j + r, j)
      g[(2 * kd - r) + (j + r) * ldg] = v;   // B(j, j + r)
      colsum[j] += std::abs(v);
      if (r) colsum[j + r] += std::abs(v);
    }
  }
  for (double c : colsum) norm = std::max(norm, c);
  const double tiny = std::numeric_limits<double>::epsilon() * std::max(norm, std::numeric_limits<double>::min());
  std::vector<std::string> errors(static_cast<size_t>(k));
  const blas::ThreadsScope one(participants > 1 ? 1 : blas::get_num_threads());
  parallel_chunks(k, participants, executor, [&](int, int64_t j) {
    std::vector<double> m(g);
    std::vector<int> ipiv(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) m[2 * kd + i * ldg] -= lams[j];
    const int info = lapack::gbtrf(n, kd, kd, m.data(), ldg, ipiv.data());
    if (info < 0) {
      errors[j] = lapack_error("?gbtrf", info, n, kd);
      return;
    }
    // U's diagonal (row kl + ku = 2 kd of the factored storage): an exactly zero pivot (λ an eigenvalue to the
    // last bit) becomes eps·‖B‖, as LAPACK's inverse iteration perturbs its pivots
    for (int64_t i = 0; i < n; ++i)
      if (std::abs(m[2 * kd + i * ldg]) < tiny) m[2 * kd + i * ldg] = m[2 * kd + i * ldg] < 0 ? -tiny : tiny;
    double* x = z + j * n;
    for (int64_t i = 0; i < n; ++i) x[i] = start_entry(static_cast<uint64_t>(j), static_cast<uint64_t>(i));
    for (int step = 0; step < 3; ++step) {
      const int s = lapack::gbtrs(n, kd, kd, m.data(), ldg, ipiv.data(), x);
      if (s != 0) {
        errors[j] = lapack_error("?gbtrs", s, n, kd);
        return;
      }
      double scale = 0.0;
      for (int64_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(x[i]));
      if (!(scale > 0.0) || !std::isfinite(scale)) {
        errors[j] = "band_eigenvectors: inverse iteration lost its vector (eigenvalue " + std::to_string(j) + ")";
        return;
      }
      double ss = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        x[i] /= scale;
        ss += x[i] * x[i];
      }
      const double inv = 1.0 / std::sqrt(ss);
      for (int64_t i = 0; i < n; ++i) x[i] *= inv;
    }
    double rr = 0.0;  // ‖B x − λ x‖² from the unfactored band
    for (int64_t i = 0; i < n; ++i) {
      double y = -lams[j] * x[i];
      const int64_t lo = std::max<int64_t>(0, i - kd), hi = std::min<int64_t>(n - 1, i + kd);
      for (int64_t c = lo; c <= hi; ++c) y += g[(2 * kd + i - c) + c * ldg] * x[c];
      rr += y * y;
    }
    residuals[j] = std::sqrt(rr);
  });
  for (const auto& e : errors)
    if (!e.empty()) return e;
  return "";
}

std::string apply_reflectors(const double* a, const double* tau, int64_t n, int64_t kd, double* z, int64_t k) {
  std::string err = check_sizes(n, kd, "apply_reflectors");
  if (!err.empty()) return err;
  if (k == 0) return "";
  // Q1 = H(1)⋯H(n − kd), H(j) acting on rows j + kd …: ?ormqr on A(kd:, 0:n − kd) applied to z's rows kd …
  const int info = lapack::ormqr_left(n - kd, k, n - kd, a + kd, n, tau, z + kd, n);
  return info == 0 ? "" : lapack_error("?ormqr", info, n, kd);
}

}  // namespace clipcore::linalg
