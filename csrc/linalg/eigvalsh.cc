#include "linalg/eigvalsh.h"

#include <cmath>
#include <sstream>
#include <vector>

#include "blas/blas.h"
#include "blas/lapack.h"

namespace clipcore::linalg {

namespace {

// Copies the upper triangle of row-major `a` (== the lower triangle of the
// same buffer read column-major) into `out`, checking finiteness.
template <typename T>
std::string copy_upper(const T* a, int64_t n, T* out, const char* op) {
  if (n < 0) return std::string(op) + ": negative size";
  if (n > blas::max_dim()) {
    std::ostringstream os;
    os << op << ": n = " << n << " exceeds the BLAS integer range";
    return os.str();
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i; j < n; ++j) {
      const T v = a[i * n + j];
      if (!std::isfinite(v)) {
        std::ostringstream os;
        os << op << ": the matrix has a non-finite entry at [" << i << ", " << j << "]";
        return os.str();
      }
      out[i * n + j] = v;
    }
  }
  return "";
}

std::string lapack_error(const char* op, const char* routine, int info, int64_t n) {
  std::ostringstream os;
  os << op << ": LAPACK " << routine << " failed (info = " << info << ") for n = " << n;
  return os.str();
}

}  // namespace

template <typename T>
std::string eigvalsh(const T* a, int64_t n, T* w) {
  std::vector<T> work(static_cast<size_t>(n > 0 ? n : 0) * static_cast<size_t>(n > 0 ? n : 0));
  std::string err = copy_upper(a, n, work.data(), "eigvalsh");
  if (!err.empty()) return err;
  // the two-stage reduction wins from a few hundred rows on (bench/bench_paper.py); ?syevr below
  const bool two_stage = n >= kTwoStageRows;
  const int info = two_stage ? lapack::syevd_2stage_values(n, work.data(), n, w)
                             : lapack::syevr_values(n, work.data(), n, w);
  return info == 0 ? "" : lapack_error("eigvalsh", two_stage ? "?syevd_2stage" : "?syevr", info, n);
}

template std::string eigvalsh<float>(const float*, int64_t, float*);
template std::string eigvalsh<double>(const double*, int64_t, double*);


}  // namespace clipcore::linalg
