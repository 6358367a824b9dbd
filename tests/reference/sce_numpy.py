"""Independent float64 NumPy/SciPy reference for the clipcore scores.

Written from ``SPEC.md`` only (it does not import clipcore or jax), so the
tests can compare clipcore against it.  Everything is computed in float64
whatever the input dtype; readability beats speed here.

Conventions (SPEC.md):

* covariances ``C_AB = Φ_Aᵀ Φ_B / n`` (no centring), "paper" convention;
* ``"clip-dissection"`` cosine convention: columns of X and T are
  L2-normalised and ``C_AB = Âᵀ B̂ / sqrt(d_A d_B)``;
* Schur: ``R = C_TXᵀ (C_TT + εI)⁺ C_TX``, ``S = C_XX − R`` with ``ε = 1e-12``
  and a pseudo-inverse that drops singular values ``≤ rtol · s_max``,
  ``rtol = (matrix dim) · eps(float32)`` by default;
* scores: the code's ``exp(−Σ λ log(λ / Σλ))`` with ``λ ← max(λ, 1e-10)``,
  and Vendi / Rényi of any order with and without that clamp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

EPS32 = float(np.finfo(np.float32).eps)
RIDGE = 1e-12
CLAMP = 1e-10

__all__ = [
    "EPS32", "RIDGE", "CLAMP",
    "as64", "l2_normalize_rows", "cosine_features", "rff_features", "gaussian_kernel",
    "covariances", "clip_dissection_covariances", "default_rtol", "pinv_psd",
    "schur", "eigvals_desc", "SchurSpectrum", "sce_primal", "sce_dual", "sce_exact_gaussian",
    "pad_zeros", "fit_size", "code_score", "log_code_score", "renyi", "log_renyi", "vendi_of_features",
    "vendi_of_kernel", "rke_frobenius", "EditCoefficients", "fit_edit_coefficients",
    "edit", "nullify_t2i", "nullify_i2t", "nullify_t2t",
]


# --------------------------------------------------------------------------
# feature maps and kernels
# --------------------------------------------------------------------------
def as64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def l2_normalize_rows(x) -> np.ndarray:
    x = as64(x)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def cosine_features(x) -> np.ndarray:
    """φ(x) = x / ‖x‖₂ (the paper's cosine kernel)."""
    return l2_normalize_rows(x)


def rff_features(x, omega) -> np.ndarray:
    """Random Fourier features φ(x) = [cos(xω), sin(xω)] / √D, ω of shape [d, D].

    ω is taken as given (already divided by σ, as in the shared omegas files).
    """
    x, omega = as64(x), as64(omega)
    D = omega.shape[1]
    p = x @ omega
    return np.concatenate([np.cos(p), np.sin(p)], axis=1) / np.sqrt(D)


def gaussian_kernel(x, y, sigma: float) -> np.ndarray:
    """k(x, y) = exp(−‖x − y‖² / (2σ²)), computed with scipy's cdist."""
    from scipy.spatial.distance import cdist

    d2 = cdist(as64(x), as64(y), metric="sqeuclidean")
    return np.exp(-d2 / (2.0 * float(sigma) ** 2))


# --------------------------------------------------------------------------
# covariances
# --------------------------------------------------------------------------
def covariances(phi_t, phi_x):
    """Paper convention: C_TT, C_TX, C_XX = Φᵀ Φ / n (no centring)."""
    phi_t, phi_x = as64(phi_t), as64(phi_x)
    n = phi_t.shape[0]
    return phi_t.T @ phi_t / n, phi_t.T @ phi_x / n, phi_x.T @ phi_x / n


def _colnorm(a) -> np.ndarray:
    a = as64(a)
    return a / np.linalg.norm(a, axis=0, keepdims=True)


def clip_dissection_covariances(t, x):
    """The reference code's cosine convention: C_AB = Âᵀ B̂ / sqrt(d_A d_B),
    Â = A with L2-normalised columns (its ``cosine_kernel(A.T, B.T)``)."""
    th, xh = _colnorm(t), _colnorm(x)
    dt, dx = th.shape[1], xh.shape[1]
    return (th.T @ th / dt, th.T @ xh / np.sqrt(dt * dx), xh.T @ xh / dx)


# --------------------------------------------------------------------------
# pseudo-inverse and Schur complement
# --------------------------------------------------------------------------
def default_rtol(dim: int) -> float:
    """torch.linalg.pinv's float32 default: (matrix dim) · eps(float32)."""
    return dim * EPS32


def pinv_psd(a, rtol: float | None = None, *, return_rank: bool = False):
    """Pseudo-inverse of a symmetric matrix via eigh with an explicit cutoff.

    Keeps eigenpairs with |w| > rtol · max|w| (|w| are the singular values of a
    symmetric matrix), rtol defaulting to dim · eps(float32).
    """
    a = as64(a)
    a = 0.5 * (a + a.T)
    if rtol is None:
        rtol = default_rtol(a.shape[0])
    w, v = np.linalg.eigh(a)
    cutoff = rtol * np.max(np.abs(w))
    keep = np.abs(w) > cutoff
    inv = (v[:, keep] / w[keep]) @ v[:, keep].T
    return (inv, int(keep.sum())) if return_rank else inv


def schur(c_tt, c_tx, c_xx, *, ridge: float = RIDGE, rtol: float | None = None):
    """R = C_TXᵀ (C_TT + ridge·I)⁺ C_TX and S = C_XX − R; returns (S, R, rank)."""
    c_tt, c_tx, c_xx = as64(c_tt), as64(c_tx), as64(c_xx)
    inv, rank = pinv_psd(c_tt + ridge * np.eye(c_tt.shape[0]), rtol, return_rank=True)
    r = c_tx.T @ inv @ c_tx
    r = 0.5 * (r + r.T)
    s = c_xx - r
    s = 0.5 * (s + s.T)
    return s, r, rank


def eigvals_desc(a) -> np.ndarray:
    """Eigenvalues of a symmetric matrix, descending."""
    return scipy.linalg.eigvalsh(as64(a))[::-1]


def pad_zeros(eigs, size: int) -> np.ndarray:
    """Append zeros so there are ``size`` eigenvalues (never truncates)."""
    eigs = as64(eigs)
    return np.concatenate([eigs, np.zeros(max(size - eigs.size, 0))])


def fit_size(eigs_desc, size: int) -> np.ndarray:
    """Exactly ``size`` eigenvalues: zero-pad, or drop the smallest (used when
    n > primal dim, where the dual has n − dim extra zero eigenvalues)."""
    return pad_zeros(eigs_desc, size)[:size]


@dataclass
class SchurSpectrum:
    """Eigenvalues (descending, raw: may hold tiny negatives) of S and R, and of C_XX."""

    complement: np.ndarray   # eig(S)
    text: np.ndarray         # eig(R)
    image: np.ndarray        # eig(C_XX)
    rank: int                # eigen-directions of C_TT kept by the cutoff

    @property
    def sce(self) -> float:
        return code_score(self.complement)

    @property
    def text_score(self) -> float:
        return code_score(self.text)

    @property
    def trace_complement(self) -> float:
        return float(self.complement.sum())

    @property
    def trace_text(self) -> float:
        return float(self.text.sum())


def sce_primal(phi_t=None, phi_x=None, *, covs=None, ridge: float = RIDGE,
               rtol: float | None = None) -> SchurSpectrum:
    """Primal SCE from features (paper convention) or from given covariances."""
    if covs is None:
        covs = covariances(phi_t, phi_x)
    c_tt, c_tx, c_xx = covs
    s, r, rank = schur(c_tt, c_tx, c_xx, ridge=ridge, rtol=rtol)
    return SchurSpectrum(eigvals_desc(s), eigvals_desc(r), eigvals_desc(c_xx), rank)


def _psd_sqrt(k) -> np.ndarray:
    w, v = np.linalg.eigh(0.5 * (k + k.T))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _dual_from_grams(k_t, k_x, rtol: float, size: int | None, ridge: float = 0.0) -> SchurSpectrum:
    """SPEC "Primal and dual": P = projector onto eigvecs of K_T with eigenvalue
    > rtol·max; eig(K_X^{1/2} P K_X^{1/2}) and eig(K_X^{1/2}(I − P)K_X^{1/2}).

    With ``ridge`` = ε > 0, P becomes U diag(w / (w + ε)) Uᵀ, the exact dual of
    the primal (C_TT + εI)⁺ (SPEC's dual has no ε: ``ridge=0``, the default).
    """
    k_t, k_x = as64(k_t), as64(k_x)
    n = k_t.shape[0]
    w, v = np.linalg.eigh(0.5 * (k_t + k_t.T))
    keep = w > rtol * w.max()
    u = v[:, keep]
    p = (u * (w[keep] / (w[keep] + ridge))) @ u.T
    h = _psd_sqrt(k_x)
    r = h @ p @ h
    s = h @ (np.eye(n) - p) @ h
    size = n if size is None else size
    return SchurSpectrum(
        fit_size(eigvals_desc(s), size),
        fit_size(eigvals_desc(r), size),
        fit_size(eigvals_desc(k_x), size),
        int(keep.sum()),
    )


def sce_dual(phi_t, phi_x, *, rtol: float | None = None, size: int | None = None,
             ridge: float = 0.0) -> SchurSpectrum:
    """Dual (n×n Gram) form for explicit features Φ [n, dim].

    rtol defaults to dim·eps32 (the primal default, so the kept rank matches
    the primal cutoff).  ``size`` = number of eigenvalues returned: default
    max(n, dim) (zero-padded to the primal size when n < dim, all n kept when
    n > dim — the spec_check.json convention); pass ``size=dim`` for exactly
    the primal length.  ``ridge=RIDGE`` reproduces the primal's ε = 1e-12
    (which moves scores by up to ~2e-8 relative on the fixtures).
    """
    phi_t, phi_x = as64(phi_t), as64(phi_x)
    n, dim = phi_x.shape
    if rtol is None:
        rtol = default_rtol(dim)
    return _dual_from_grams(phi_t @ phi_t.T / n, phi_x @ phi_x.T / n, rtol,
                            max(n, dim) if size is None else size, ridge)


def sce_exact_gaussian(t, x, sigma: float, *, rtol: float | None = None,
                       size: int | None = None, ridge: float = 0.0) -> SchurSpectrum:
    """Exact Gaussian-kernel SCE: the dual form with K_T = k(t_i,t_j)/n,
    K_X = k(x_i,x_j)/n.  n eigenvalues (the primal dim is n) unless ``size``;
    rtol defaults to n·eps32."""
    t, x = as64(t), as64(x)
    n = t.shape[0]
    if rtol is None:
        rtol = default_rtol(n)
    return _dual_from_grams(gaussian_kernel(t, t, sigma) / n, gaussian_kernel(x, x, sigma) / n,
                            rtol, size, ridge)


# --------------------------------------------------------------------------
# scores from a spectrum
# --------------------------------------------------------------------------
def log_code_score(eigs, clamp: float = CLAMP) -> float:
    """The code's ``schur_vendi_from_eigs`` in log form: −Σ λ log(λ / s)."""
    lam = np.maximum(as64(eigs), clamp)
    s = lam.sum()
    return float(-np.sum(lam * np.log(lam / s)))


def code_score(eigs, clamp: float = CLAMP) -> float:
    """exp(−Σ λ log(λ / s)), λ ← max(λ, clamp), s = Σ λ (SCE = code_score(eig S))."""
    return float(np.exp(log_code_score(eigs, clamp)))


def _prepare(eigs, clamp):
    lam = as64(eigs)
    if clamp is None:
        return lam[lam > 0]           # vendi-score convention: drop zeros/negatives
    return np.maximum(lam, clamp)


def log_renyi(eigs, order=1.0, clamp: float | None = CLAMP) -> float:
    """Rényi entropy of order α of the spectrum (not renormalised; C_XX has trace 1).

    α = 1: −Σ λ log λ;  α = ∞ (``np.inf`` or ``"inf"``): −log max λ;
    otherwise log(Σ λ^α) / (1 − α).  ``clamp=None`` drops λ ≤ 0 instead of
    clamping at 1e-10.
    """
    lam = _prepare(eigs, clamp)
    if order == "inf" or order == np.inf:
        return float(-np.log(lam.max()))
    order = float(order)
    if order <= 0:
        raise ValueError("order must be > 0")
    if order == 1.0:
        return float(-np.sum(lam * np.log(lam)))
    return float(np.log(np.sum(lam ** order)) / (1.0 - order))


def renyi(eigs, order=1.0, clamp: float | None = CLAMP) -> float:
    """Vendi score of order α = exp(Rényi entropy)."""
    return float(np.exp(log_renyi(eigs, order, clamp)))


def vendi_of_features(phi, order=1.0, clamp: float | None = CLAMP) -> float:
    """Vendi of C = Φᵀ Φ / n (primal)."""
    phi = as64(phi)
    return renyi(eigvals_desc(phi.T @ phi / phi.shape[0]), order, clamp)


def vendi_of_kernel(k, order=1.0, clamp: float | None = CLAMP) -> float:
    """Vendi of K / n for a kernel matrix with unit diagonal (dual)."""
    k = as64(k)
    return renyi(eigvals_desc(k / k.shape[0]), order, clamp)


def rke_frobenius(k) -> float:
    """RKE = 1 / ‖K / n‖_F² (order-2 Vendi without any eigendecomposition)."""
    k = as64(k)
    return float(1.0 / np.sum((k / k.shape[0]) ** 2))


# --------------------------------------------------------------------------
# embedding editing (SPEC "Embedding editing")
# --------------------------------------------------------------------------
@dataclass
class EditCoefficients:
    t2i: np.ndarray   # A* = (C_TT + εI)⁺ C_TX   [D_T, D_X]
    i2t: np.ndarray   # (C_XX + εI)⁺ C_XT        [D_X, D_T]
    t2t: np.ndarray   # (C_TT + εI)⁺ C_TT        [D_T, D_T]


def fit_edit_coefficients(c_tt, c_tx, c_xx, *, ridge: float = RIDGE,
                          rtol: float | None = None) -> EditCoefficients:
    c_tt, c_tx, c_xx = as64(c_tt), as64(c_tx), as64(c_xx)
    inv_tt = pinv_psd(c_tt + ridge * np.eye(c_tt.shape[0]), rtol)
    inv_xx = pinv_psd(c_xx + ridge * np.eye(c_xx.shape[0]), rtol)
    return EditCoefficients(t2i=inv_tt @ c_tx, i2t=inv_xx @ c_tx.T, t2t=inv_tt @ c_tt)


def edit(phi_query, phi_condition, coefficient, lam: float = 1.0) -> np.ndarray:
    """φ(query) − λ · φ(condition) · A  (λ = 1 nullify, λ > 1 defocus, λ < 0 focus)."""
    return as64(phi_query) - lam * (as64(phi_condition) @ as64(coefficient))


def nullify_t2i(phi_image, phi_text, coeffs: EditCoefficients, lam: float = 1.0):
    return edit(phi_image, phi_text, coeffs.t2i, lam)


def nullify_i2t(phi_text, phi_image, coeffs: EditCoefficients, lam: float = 1.0):
    return edit(phi_text, phi_image, coeffs.i2t, lam)


def nullify_t2t(phi_text, phi_other_text, coeffs: EditCoefficients, lam: float = 1.0):
    return edit(phi_text, phi_other_text, coeffs.t2t, lam)
