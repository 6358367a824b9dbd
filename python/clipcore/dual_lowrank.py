"""The Schur spectra through the kept subspace of K_T (dual) or C_TT (primal): host float64 linear algebra.

SPEC.md's dual form: with K_T = U diag(w) Uᵀ and the pseudo-inverse filter f = w·g(w) (1 on the kept
directions to within ε/w, 0 on the dropped ones), R and S have the non-zero spectra of
K_X^{1/2} U diag(f) Uᵀ K_X^{1/2} and K_X^{1/2} U diag(1 − f) Uᵀ K_X^{1/2}. In the pseudo-inverse mode only
the k directions the cutoff keeps carry f > 0, and k is small for a Gaussian kernel (its spectrum decays
fast: k = 10 to 65 of 6000 on CLIP-like sets), so instead of a full eigendecomposition of K_T with vectors
and products with n×n bases:

* k and U_k, the kept directions and their eigenvectors, exactly as the dense form finds them
  (|w + ε| > rtol · max |w + ε|), by :func:`kept_eigenpairs`: block subspace iteration with Rayleigh–Ritz
  until every kept Ritz pair's residual is below ``1e-13 · λ_max`` (n²·b flops per step), the count
  certified by one Cholesky factorisation of cut · I − (K_T − U_k Θ U_kᵀ) (n³/3 flops, no spectrum of K_T);
  for larger k LAPACK's subset solver (?syevr); the forms decline (None) before any eigenvector when k is
  large;
* R: the k×k matrix diag(√f) U_kᵀ K_X U_k diag(√f);
* S: Q K_X Q with Q = I − U_k A U_kᵀ, A = diag(1 − √(1 − f_k)) (the square root of I − U_k F U_kᵀ), formed
  with three rank-k products; its spectrum equals the dense form's;
* the image spectrum eig(K_X).

Two ``eigvalsh`` (the compiled core's two-stage LAPACK), a Cholesky factorisation and O(n²k) work where k
is small (a third ``eigvalsh`` to count k and the subset solver where it is not), against one
eigendecomposition with vectors, two n³ products and three ``eigvalsh`` for the dense form. Results agree
with :func:`clipcore.schur.schur_dual` to float64 rounding (tests/test_dual_lowrank.py).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import scipy.linalg

from . import _ffi
from ._options import x64
from .schur import EPSILON, spectral_filter

__all__ = ["LowRankSpectra", "kept_rank", "kept_eigenpairs", "certify", "schur_dual_lowrank", "schur_primal_lowrank", "RESIDUAL_TOL",
           "MAX_KEPT_FRACTION", "SUBSPACE_KEPT_FRACTION"]

#: Ritz pairs are accepted when ‖K u − θ u‖ ≤ RESIDUAL_TOL · λ_max.
RESIDUAL_TOL = 1e-13
#: Above this fraction of n kept directions the kept-subspace form gains nothing over the dense one:
#: :func:`schur_dual_lowrank` / :func:`schur_primal_lowrank` return None and the caller takes the dense form.
MAX_KEPT_FRACTION = 1 / 3
#: Up to this fraction of n kept directions the vectors come by subspace iteration (n = 6000, k = 60–65:
#: 1.5–2.7 s against 12 s for LAPACK's subset solver); above it by the subset solver (?syevr), whose cost
#: does not depend on how slowly the spectrum decays past k.
SUBSPACE_KEPT_FRACTION = 1 / 50


class LowRankSpectra(NamedTuple):
    """Descending spectra (length n, clipped at 0) of R, S, C_XX and the kept rank k."""

    text: np.ndarray
    complement: np.ndarray
    image: np.ndarray
    rank: int


def _eigvalsh(a: np.ndarray) -> np.ndarray:
    """Ascending eigenvalues of a symmetric host float64 matrix (the compiled two-stage LAPACK)."""
    with x64():
        return np.asarray(_ffi.eigvalsh(jnp.asarray(a)), np.float64)


def kept_rank(k_mat: np.ndarray, rtol: float, eps: float = EPSILON) -> int:
    """How many eigenvalues w of a symmetric PSD matrix pass the pseudo-inverse cutoff
    |w + ε| > rtol · max |w + ε| (:func:`clipcore.schur.spectral_filter`): counted on its spectrum from the
    compiled two-stage ``eigvalsh``. (Counting by the inertia of K − τI from one LDLᵀ, ?sytrf, needs n³/3
    flops instead of a tridiagonalisation's 4n³/3, but SciPy's ?sytrf ran 2.7× slower than the two-stage
    ``eigvalsh`` at n = 5000 on this machine: 13.6 s against 5.1 s.)
    """
    if k_mat.shape[0] == 0:
        return 0
    _, keep = spectral_filter(_eigvalsh(k_mat), rtol, eps, 0.0, mode="pinv", xp=np)
    return int(keep.sum())


def _cut(top: float, rtol: float, eps: float) -> float:
    """The value a PSD matrix's eigenvalue w must exceed to pass |w + ε| > rtol · max |w + ε| (λ_max = top)."""
    return rtol * (max(top, 0.0) + eps) - eps


def certify(k_mat: np.ndarray, w: np.ndarray, u: np.ndarray, cut: float) -> bool:
    """Whether every eigenvalue of K − U diag(w) Uᵀ is below ``cut`` (cut · I − K + U diag(w) Uᵀ has a
    Cholesky factor, LAPACK ?potrf: n³/3 flops). With (w, U) Ritz pairs of K above the cut, K then has exactly
    len(w) eigenvalues above it: at least that many by interlacing, at most by the inertia of a rank-len(w)
    update of a negative definite matrix."""
    m = (u * w[None, :]) @ u.T
    m -= k_mat
    m[np.diag_indices_from(m)] += cut
    # m is symmetric: its transpose is the same matrix in Fortran order, factorised in place (no copy)
    _, info = scipy.linalg.lapack.dpotrf(m.T, lower=1, overwrite_a=1, clean=0)
    return info == 0


def kept_eigenpairs(k_mat: np.ndarray, rtol: float, eps: float = EPSILON, *, seed: int = 0,
                    max_iter: int = 100) -> tuple[np.ndarray, np.ndarray] | None:
    """The eigenpairs ``([k], [n, k])`` of a symmetric PSD matrix that pass the pseudo-inverse cutoff
    |w + ε| > rtol · max |w + ε| (:func:`clipcore.schur.spectral_filter`), descending; None when more than
    :data:`MAX_KEPT_FRACTION` of n pass (the dense form is cheaper then).

    Block subspace iteration with Rayleigh–Ritz, the block grown while fewer than a few Ritz values lie
    below the cut (Ritz values are lower bounds of the eigenvalues), until the pairs above the cut have
    ‖K u − θ u‖ ≤ :data:`RESIDUAL_TOL` · θ_max; their count is then certified exact by one Cholesky
    factorisation (:func:`certify`) — no spectrum of K. Beyond :data:`SUBSPACE_KEPT_FRACTION` of n kept, or
    when the certificate fails, LAPACK's subset solver takes every eigenpair above the cut (?syevr by
    value), when the trace left outside the block bounds their count below the limit; else the count
    comes from the spectrum (:func:`kept_rank`).
    """
    n = k_mat.shape[0]
    if n == 0:
        return np.zeros(0), np.zeros((0, 0))
    if np.trace(k_mat) <= 0:  # K = 0: every direction passes the cut (|0 + ε| > rtol · ε), more than the limit
        return None
    rng = np.random.default_rng(seed)
    limit = max(int(SUBSPACE_KEPT_FRACTION * n), 1)
    b = min(n, 32)
    q = np.linalg.qr(k_mat @ rng.standard_normal((n, b)))[0]
    top, bound = None, None
    for _ in range(max_iter):
        z = k_mat @ q
        theta, y = scipy.linalg.eigh(q.T @ z, check_finite=False)
        theta, y = theta[::-1], y[:, ::-1]
        cut = _cut(theta[0], rtol, eps)
        j = int(np.sum(theta > cut))
        if b - j < max(8, j // 4):  # too few Ritz values below the cut for the kept ones to converge
            if b >= limit or 2 * b >= n:
                top = theta[0]
                bound = b + (np.trace(k_mat) - theta.sum()) / max(cut, np.finfo(float).tiny)
                break
            grow = max(j + max(16, j // 2), b + 16) - b
            q = np.linalg.qr(np.concatenate([z, rng.standard_normal((n, grow))], 1))[0]
            b += grow
            continue
        u = q @ y[:, :j]
        res = np.linalg.norm(z @ y[:, :j] - u * theta[:j], axis=0) if j else np.zeros(0)
        if not j or res.max() <= RESIDUAL_TOL * max(theta[0], 0.0):
            top = theta[0]
            if certify(k_mat, theta[:j], u, cut):
                return theta[:j], u
            break
        q = np.linalg.qr(z)[0]
    if top is not None and bound is not None and bound <= MAX_KEPT_FRACTION * n:
        w, v = scipy.linalg.eigh(k_mat, subset_by_value=(_cut(top, rtol, eps), np.inf), driver="evr",
                                 check_finite=False)
        w, v = w[::-1], v[:, ::-1]
        k = int(np.sum(w > _cut(w[0] if w.size else top, rtol, eps)))
        return (w[:k], v[:, :k]) if k <= MAX_KEPT_FRACTION * n else None
    k = kept_rank(k_mat, rtol, eps)
    if k > MAX_KEPT_FRACTION * n:
        return None
    return _subset(k_mat, k) if k else (np.zeros(0), np.zeros((n, 0)))


def _subset(k_mat: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = k_mat.shape[0]
    w, v = scipy.linalg.eigh(k_mat, subset_by_index=(n - k, n - 1), driver="evr", check_finite=False)
    return w[::-1], v[:, ::-1]


def _kept_gain(w: np.ndarray, rtol: float, eps: float) -> np.ndarray:
    """g(w) of the k kept eigenvalues (descending, λ_max first, so max |w + ε| is the full spectrum's)."""
    if w.size == 0:
        return w
    g, _ = spectral_filter(w, rtol, eps, 0.0, mode="pinv", xp=np)
    return g


def _kept_filter(w: np.ndarray, rtol: float, eps: float) -> np.ndarray:
    """f = w·g(w) ∈ [0, 1] of the kept eigenvalues."""
    return np.clip(w * _kept_gain(w, rtol, eps), 0.0, 1.0)


def schur_dual_lowrank(k_t: np.ndarray, k_x: np.ndarray, rtol: float,
                       eps: float = EPSILON) -> LowRankSpectra | None:
    """The dual Schur spectra (pseudo-inverse mode) through the kept subspace of K_T; None when K_T keeps
    more than :data:`MAX_KEPT_FRACTION` of its directions (the dense form is cheaper then).

    Args:
      k_t, k_x: ``[n, n]`` host float64 Gram matrices (K/n), symmetric.
      rtol: the cutoff relative to max |w + ε|.
      eps: the ε of the pseudo-inverse.
    """
    n = k_t.shape[0]
    pairs = kept_eigenpairs(k_t, rtol, eps)  # the kept directions are the top k (|w + ε| largest, w ≥ 0)
    if pairs is None:
        return None
    w, u = pairs  # descending
    k = w.size
    f = _kept_filter(w, rtol, eps)
    ku = k_x @ u
    m = u.T @ ku
    m = 0.5 * (m + m.T)
    sf = np.sqrt(f)
    text = np.zeros(n)
    if k:
        text[:k] = np.maximum(scipy.linalg.eigvalsh(sf[:, None] * m * sf[None, :], check_finite=False)[::-1], 0.0)
    ua = u * (1.0 - np.sqrt(1.0 - f))[None, :]  # U A
    s = k_x.copy()
    s -= ua @ ku.T
    s -= ku @ ua.T
    s += ua @ (m @ ua.T)
    comp = np.maximum(_eigvalsh(0.5 * (s + s.T))[::-1], 0.0)
    del s
    image = np.maximum(_eigvalsh(k_x)[::-1], 0.0)
    return LowRankSpectra(text, comp, image, k)


def schur_primal_lowrank(c_tt: np.ndarray, c_tx: np.ndarray, c_xx: np.ndarray, rtol: float,
                         eps: float = EPSILON) -> LowRankSpectra | None:
    """The primal Schur spectra (pseudo-inverse mode) through the kept subspace of C_TT; None when C_TT
    keeps more than :data:`MAX_KEPT_FRACTION` of its directions (the dense form is cheaper then).

    R = Bᵀ diag(g_k) B with B = U_kᵀ C_TX over the k kept eigen-directions of C_TT (the dropped ones have
    g = 0), so its spectrum is that of the k×k matrix diag(√g) B Bᵀ diag(√g); S = C_XX − R and C_XX need
    one ``eigvalsh`` each, and C_TT one for its spectrum (to find k as the dense form does) — no
    eigendecomposition with vectors of a D×D matrix.

    Args:
      c_tt: ``[D_T, D_T]``; c_tx: ``[D_T, D_X]``; c_xx: ``[D_X, D_X]`` host float64 (Φᵀ Φ / n).
    """
    d_x = c_xx.shape[0]
    c_tt = 0.5 * (c_tt + c_tt.T)
    pairs = kept_eigenpairs(c_tt, rtol, eps)
    if pairs is None:
        return None
    w, u = pairs
    k = w.size
    gk = _kept_gain(w, rtol, eps)
    b = u.T @ c_tx  # [k, D_X]
    sg = np.sqrt(gk)
    text = np.zeros(d_x)
    if k:
        small = (sg[:, None] * b) @ (b.T * sg[None, :])
        text[:min(k, d_x)] = np.maximum(scipy.linalg.eigvalsh(0.5 * (small + small.T), check_finite=False)[::-1],
                                        0.0)[:d_x]
    s = 0.5 * (c_xx + c_xx.T)
    image = np.maximum(_eigvalsh(s)[::-1], 0.0)
    s -= b.T @ (gk[:, None] * b)
    comp = np.maximum(_eigvalsh(0.5 * (s + s.T))[::-1], 0.0)
    return LowRankSpectra(text, comp, image, k)
