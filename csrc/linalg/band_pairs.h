// Eigenpairs of a symmetric matrix through LAPACK's two-stage reduction, for a few of its eigenvalues.
//
// LAPACK's two-stage drivers give eigenvalues only (the vectors of the band-to-tridiagonal stage have no
// LAPACK routine). The kept directions of a kernel matrix are a few of its largest eigenpairs, so: stage one
// (dense to band, BLAS-3: Q1ᵀ A Q1 = B) keeps its reflectors; stage two and ?sterf give the spectrum; each
// wanted eigenvector of B comes from inverse iteration on the band (B − λI, band LU) at its eigenvalue; Q1
// maps them back. Against one-stage ?sytrd (half BLAS-2) this trades the reduction's memory-bound half for
// k band factorisations (n kd² flops each). Pure algorithm: no XLA, no Python.
#pragma once

#include <cstdint>
#include <string>

#include "gram/parallel.h"

namespace clipcore::linalg {

// Stage one and the spectrum. a: n×n column-major, its lower triangle read, overwritten by Q1's reflectors
// (below the kd-th subdiagonal); ab: [kd + 1, n] column-major, B's lower band; tau: n − kd reflector factors;
// w: the n eigenvalues, ascending. Returns "" or a message.
std::string band_reduce(double* a, int64_t n, int64_t kd, double* ab, double* tau, double* w);

// Unit eigenvectors of the band B (ab as band_reduce leaves it) at the eigenvalues lams[0..k): z is n×k
// column-major (column j for lams[j]), by three steps of inverse iteration each from a fixed pseudo-random
// start, the k factorisations spread over `participants` threads of `executor` (one-thread BLAS each);
// residuals[j] = ‖B z_j − lams[j] z_j‖₂.
std::string band_eigenvectors(const double* ab, int64_t n, int64_t kd, const double* lams, int64_t k, double* z,
                              double* residuals, Executor* executor, int participants);

// z ← Q1 z for z n×k column-major (a, tau as band_reduce leaves them).
std::string apply_reflectors(const double* a, const double* tau, int64_t n, int64_t kd, double* z, int64_t k);

}  // namespace clipcore::linalg
