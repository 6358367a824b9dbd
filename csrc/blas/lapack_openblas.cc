// scipy-openblas32 backend of lapack.h.
#include "blas/lapack.h"

#include <lapacke.h>


#include <vector>

namespace clipcore::lapack {

namespace {

template <typename T, typename Fn>
int syevr_impl(Fn fn, int64_t n, T* a, int64_t lda, T* w) {
  if (n == 0) return 0;
  lapack_int m = 0;
  std::vector<lapack_int> isuppz(2 * static_cast<size_t>(n));
  T dummy_z = 0;
  // jobz='N', range='A': all eigenvalues, no vectors (z not referenced).
  return static_cast<int>(fn(LAPACK_COL_MAJOR, 'N', 'A', 'L', static_cast<lapack_int>(n), a,
                             static_cast<lapack_int>(lda), T(0), T(0), 0, 0, T(0), &m, w,
                             &dummy_z, 1, isuppz.data()));
}

}  // namespace

int syevr_values(int64_t n, double* a, int64_t lda, double* w) {
  return syevr_impl<double>(scipy_LAPACKE_dsyevr, n, a, lda, w);
}

int syevr_values(int64_t n, float* a, int64_t lda, float* w) {
  return syevr_impl<float>(scipy_LAPACKE_ssyevr, n, a, lda, w);
}

int syevd_2stage_values(int64_t n, double* a, int64_t lda, double* w) {
  if (n == 0) return 0;
  return static_cast<int>(scipy_LAPACKE_dsyevd_2stage(LAPACK_COL_MAJOR, 'N', 'L', static_cast<lapack_int>(n), a,
                                                      static_cast<lapack_int>(lda), w));
}

int syevd_2stage_values(int64_t n, float* a, int64_t lda, float* w) {
  if (n == 0) return 0;
  return static_cast<int>(scipy_LAPACKE_ssyevd_2stage(LAPACK_COL_MAJOR, 'N', 'L', static_cast<lapack_int>(n), a,
                                                      static_cast<lapack_int>(lda), w));
}

}  // namespace clipcore::lapack
