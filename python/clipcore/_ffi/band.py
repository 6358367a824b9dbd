"""The compiled two-stage kept pairs (``csrc/linalg/band_pairs.h``): a symmetric matrix's eigenpairs for a few of
its eigenvalues through LAPACK's two-stage reduction, host float64 NumPy arrays, the GIL released.

Stage one (dense to band, BLAS-3) keeps its reflectors Q1 (``Q1ᵀ A Q1 = B``, B with ``kd`` subdiagonals); stage
two and ``?sterf`` give the whole spectrum (:func:`band_reduce`); each wanted eigenvector of B comes from inverse
iteration on the band at its eigenvalue (:func:`band_eigenvectors`), and Q1 maps it to A's
(:func:`apply_reflectors`). Used by :func:`clipcore.dual_lowrank.tridiagonal_kept_pairs`; every function raises a
``RuntimeError`` when the extension is not loaded (:func:`band_available`).
"""

from __future__ import annotations

import numpy as np

from . import registration as reg

__all__ = ["band_available", "band_reduce", "band_eigenvectors", "apply_reflectors"]


def band_available() -> bool:
    """True when the loaded extension has the two-stage kept-pair entries."""
    return reg.available() and hasattr(reg.loaded_extension(), "band_reduce")


def band_reduce(a: np.ndarray, kd: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage one of the two-stage reduction and the spectrum, in place.

    Args:
      a: ``[n, n]`` float64 symmetric, C- or Fortran-contiguous, writeable: overwritten by Q1's reflectors.
      kd: the band's subdiagonals (1 ≤ kd < n).

    Returns:
      ``(w, ab, tau)``: the eigenvalues ``[n]`` ascending, the band ``[kd + 1, n]`` (LAPACK's lower band
      storage) and the reflectors' factors ``[n − kd]``.
    """
    return reg.extension("band_reduce").band_reduce(a, int(kd))


def band_eigenvectors(ab: np.ndarray, lams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(z, residuals)``: ``[n, k]`` (Fortran order) unit eigenvectors of the band ``ab`` at the eigenvalues
    ``lams`` ``[k]`` (three steps of inverse iteration each, the k band factorisations spread over the core's
    threads) and their residuals ‖B z_j − λ_j z_j‖ ``[k]``."""
    return reg.extension("band_eigenvectors").band_eigenvectors(ab, np.ascontiguousarray(lams, np.float64))


def apply_reflectors(a: np.ndarray, tau: np.ndarray, kd: int, z: np.ndarray) -> np.ndarray:
    """``z ← Q1 z`` in place (``z``: ``[n, k]`` Fortran-ordered float64; ``a``, ``tau``: :func:`band_reduce`'s)."""
    reg.extension("apply_reflectors").apply_reflectors(a, tau, int(kd), z)
    return z
