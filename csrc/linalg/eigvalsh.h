// Eigenvalues of a symmetric matrix through LAPACK (no eigenvectors).
//
// XLA's CPU eigh always forms eigenvectors (jnp.linalg.eigvalsh discards
// them); the scores only need the spectrum, which ?syevr computes for about
// half the cost. Pure algorithm: no XLA, no Python.
#pragma once

#include <cstdint>
#include <string>

namespace clipcore::linalg {

// w[0..n) = eigenvalues (ascending) of the symmetric n×n row-major matrix a.
// The upper triangle of `a` (row-major) is used; `a` is not modified.
// Returns "" on success, else a message (non-finite input, no convergence).
template <typename T>
std::string eigvalsh(const T* a, int64_t n, T* w);

// w[0..n) = eigenvalues (ascending) and vt[k*n .. k*n+n) = the unit
// eigenvector of w[k] (row k of vt), of the symmetric row-major n×n matrix a
// (upper triangle used; a not modified).
template <typename T>
std::string eigh(const T* a, int64_t n, T* w, T* vt);

}  // namespace clipcore::linalg
