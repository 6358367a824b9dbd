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

}  // namespace clipcore::lapack
