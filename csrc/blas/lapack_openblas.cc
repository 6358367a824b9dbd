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

// The two-stage reduction's routines have no LAPACKE wrapper: their Fortran symbols (32-bit integers, the
// hidden lengths of the character arguments last).
extern "C" {
void scipy_dsytrd_sy2sb_(const char* uplo, const lapack_int* n, const lapack_int* kd, double* a,
                         const lapack_int* lda, double* ab, const lapack_int* ldab, double* tau, double* work,
                         const lapack_int* lwork, lapack_int* info, size_t uplo_len);
void scipy_dsytrd_sb2st_(const char* stage1, const char* vect, const char* uplo, const lapack_int* n,
                         const lapack_int* kd, double* ab, const lapack_int* ldab, double* d, double* e,
                         double* hous, const lapack_int* lhous, double* work, const lapack_int* lwork,
                         lapack_int* info, size_t stage1_len, size_t vect_len, size_t uplo_len);
}

int sytrd_sy2sb(int64_t n, int64_t kd, double* a, int64_t lda, double* ab, int64_t ldab, double* tau) {
  const lapack_int n_ = static_cast<lapack_int>(n), kd_ = static_cast<lapack_int>(kd);
  const lapack_int lda_ = static_cast<lapack_int>(lda), ldab_ = static_cast<lapack_int>(ldab);
  lapack_int info = 0, query = -1;
  double size = 0;
  scipy_dsytrd_sy2sb_("L", &n_, &kd_, a, &lda_, ab, &ldab_, tau, &size, &query, &info, 1);
  if (info != 0) return static_cast<int>(info);
  const lapack_int lwork = static_cast<lapack_int>(size) + 1;
  std::vector<double> work(static_cast<size_t>(lwork));
  scipy_dsytrd_sy2sb_("L", &n_, &kd_, a, &lda_, ab, &ldab_, tau, work.data(), &lwork, &info, 1);
  return static_cast<int>(info);
}

int sytrd_sb2st_values(int64_t n, int64_t kd, double* ab, int64_t ldab, double* d, double* e) {
  const lapack_int n_ = static_cast<lapack_int>(n), kd_ = static_cast<lapack_int>(kd);
  const lapack_int ldab_ = static_cast<lapack_int>(ldab);
  lapack_int info = 0, query = -1;
  double hsize = 0, wsize = 0;
  scipy_dsytrd_sb2st_("Y", "N", "L", &n_, &kd_, ab, &ldab_, d, e, &hsize, &query, &wsize, &query, &info, 1, 1, 1);
  if (info != 0) return static_cast<int>(info);
  const lapack_int lhous = static_cast<lapack_int>(hsize) + 1, lwork = static_cast<lapack_int>(wsize) + 1;
  std::vector<double> hous(static_cast<size_t>(lhous)), work(static_cast<size_t>(lwork));
  scipy_dsytrd_sb2st_("Y", "N", "L", &n_, &kd_, ab, &ldab_, d, e, hous.data(), &lhous, work.data(), &lwork, &info,
                      1, 1, 1);
  return static_cast<int>(info);
}

int sterf(int64_t n, double* d, double* e) {
  return static_cast<int>(scipy_LAPACKE_dsterf(static_cast<lapack_int>(n), d, e));
}

int gbtrf(int64_t n, int64_t kl, int64_t ku, double* ab, int64_t ldab, int* ipiv) {
  return static_cast<int>(scipy_LAPACKE_dgbtrf(LAPACK_COL_MAJOR, static_cast<lapack_int>(n),
                                               static_cast<lapack_int>(n), static_cast<lapack_int>(kl),
                                               static_cast<lapack_int>(ku), ab, static_cast<lapack_int>(ldab),
                                               ipiv));
}

int gbtrs(int64_t n, int64_t kl, int64_t ku, const double* ab, int64_t ldab, const int* ipiv, double* b) {
  return static_cast<int>(scipy_LAPACKE_dgbtrs(LAPACK_COL_MAJOR, 'N', static_cast<lapack_int>(n),
                                               static_cast<lapack_int>(kl), static_cast<lapack_int>(ku), 1, ab,
                                               static_cast<lapack_int>(ldab), ipiv, b,
                                               static_cast<lapack_int>(n)));
}

int ormqr_left(int64_t m, int64_t ncols, int64_t k, const double* a, int64_t lda, const double* tau, double* c,
               int64_t ldc) {
  return static_cast<int>(scipy_LAPACKE_dormqr(LAPACK_COL_MAJOR, 'L', 'N', static_cast<lapack_int>(m),
                                               static_cast<lapack_int>(ncols), static_cast<lapack_int>(k), a,
                                               static_cast<lapack_int>(lda), tau, c,
                                               static_cast<lapack_int>(ldc)));
}

}  // namespace clipcore::lapack
