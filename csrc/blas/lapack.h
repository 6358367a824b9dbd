// Thin wrappers over the LAPACK routines the compiled core uses
// (scipy-openblas32's LAPACKE, symbols prefixed scipy_, 32-bit integers).
#pragma once

#include <cstdint>

namespace clipcore::lapack {

// Eigenvalues (ascending) of the symmetric n×n matrix `a` (column-major,
// leading dimension lda; only its lower triangle is read, and it is
// overwritten). `w` receives n values. Relatively robust representations
// (?syevr, the driver scipy.linalg.eigvalsh uses), eigenvalues only.
// Returns LAPACK's info (0 on success, > 0: no convergence).
int syevr_values(int64_t n, double* a, int64_t lda, double* w);
int syevr_values(int64_t n, float* a, int64_t lda, float* w);

// The same through LAPACK's two-stage tridiagonal reduction (?syevd_2stage, eigenvalues only): dense to
// band with BLAS-3, then band to tridiagonal by bulge chasing. About 1.7x faster than ?syevr on one thread
// at n = 4000, and it scales with threads where ?sytrd's BLAS-2 half does not.
int syevd_2stage_values(int64_t n, double* a, int64_t lda, double* w);
int syevd_2stage_values(int64_t n, float* a, int64_t lda, float* w);

// Stage one of the two-stage tridiagonal reduction (?sytrd_sy2sb, lower): the symmetric n×n `a`
// (column-major, lower triangle read) to a band of kd subdiagonals, Q1ᵀ A Q1 = B. `ab` ([kd+1, n],
// leading dimension ldab) receives B's lower band (ab[r + j·ldab] = B(j + r, j)); `a` below its kd-th
// subdiagonal and `tau` (n − kd) receive Q1's reflectors (H(j) has its unit entry at row j + kd).
// Workspace queried and allocated inside. Returns LAPACK's info.
int sytrd_sy2sb(int64_t n, int64_t kd, double* a, int64_t lda, double* ab, int64_t ldab, double* tau);

// Stage two (?sytrd_sb2st, no vectors): the band `ab` (lower, as sytrd_sy2sb leaves it; overwritten) to
// the tridiagonal (d: n, e: n − 1).
int sytrd_sb2st_values(int64_t n, int64_t kd, double* ab, int64_t ldab, double* d, double* e);

// Eigenvalues (ascending, into d) of the tridiagonal (d, e) by ?sterf; e is destroyed.
int sterf(int64_t n, double* d, double* e);

// LU with partial pivoting of the n×n general band matrix (kl sub-, ku superdiagonals) in ?gbtrf's
// storage (column-major, ldab >= 2 kl + ku + 1; A(i, j) at ab[kl + ku + i − j + j·ldab]); ipiv: n.
int gbtrf(int64_t n, int64_t kl, int64_t ku, double* ab, int64_t ldab, int* ipiv);

// Solves A x = b with gbtrf's factors, one right-hand side, in place.
int gbtrs(int64_t n, int64_t kl, int64_t ku, const double* ab, int64_t ldab, const int* ipiv, double* b);

// C ← Q C (?ormqr, left, no transpose) for m×ncols C (column-major, ldc) and Q = H(1)⋯H(k) from the
// reflectors in the columns of the m×k `a` (lda) and tau.
int ormqr_left(int64_t m, int64_t ncols, int64_t k, const double* a, int64_t lda, const double* tau, double* c,
               int64_t ldc);

}  // namespace clipcore::lapack
