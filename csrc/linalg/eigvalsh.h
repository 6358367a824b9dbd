// Eigenvalues of a symmetric matrix through LAPACK (no eigenvectors).
//
// XLA's CPU eigh always forms eigenvectors (jnp.linalg.eigvalsh discards
// them); the scores only need the spectrum, which ?syevr (small n) or the
// two-stage ?syevd_2stage (large n) computes for a fraction of the cost. Pure algorithm: no XLA, no Python.
#pragma once

#include <cstdint>
#include <string>

namespace clipcore::linalg {

// From this many rows on, LAPACK's two-stage reduction (?syevd_2stage) is used; ?syevr below.
constexpr int64_t kTwoStageRows = 256;

// w[0..n) = eigenvalues (ascending) of the symmetric n×n row-major matrix a.
// The upper triangle of `a` (row-major) is used; `a` is not modified.
// Returns "" on success, else a message (non-finite input, no convergence).
template <typename T>
std::string eigvalsh(const T* a, int64_t n, T* w);

}  // namespace clipcore::linalg
