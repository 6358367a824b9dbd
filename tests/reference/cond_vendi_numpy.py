"""Independent float64 NumPy reference for Conditional / Information Vendi.

Jalali, Ospanov, Gohari & Farnia, "Conditional Vendi Score" (arXiv 2411.02817), written from the
definitions in ``../shared/reference/cond_vendi/README.md`` only (no clipcore, no jax):

* marginals ρ_X = K_X / n, ρ_T = K_T / n; joint ρ_XT = (K_X ∘ K_T) / tr(K_X ∘ K_T);
* Rényi entropy of order α of the eigenvalues p (natural log): α = 1: −Σ p log p over p > 0;
  α = ∞: −log max p; otherwise log(Σ_{p>0} p^α) / (1 − α); α = 2 also as −log ‖ρ‖_F²;
* top-k truncation: the k largest eigenvalues, each raised by (1 − their sum) / k;
* H(X|T) = H(X,T) − H(T), I(X;T) = H(X) + H(T) − H(X,T).

Everything dense, n×n, float64: readability over speed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gaussian_gram", "cosine_gram", "density_matrices", "renyi", "truncate", "entropies",
           "conditional_vendi", "hadamard_sq_frobenius"]


def gaussian_gram(a: np.ndarray, sigma: float) -> np.ndarray:
    """k(a_i, a_j) = exp(−‖a_i − a_j‖² / (2σ²)) from explicit differences."""
    a = np.asarray(a, np.float64)
    diff = a[:, None, :] - a[None, :, :]
    return np.exp(-np.sum(diff * diff, axis=-1) / (2.0 * sigma * sigma))


def cosine_gram(a: np.ndarray) -> np.ndarray:
    """cos(a_i, a_j)."""
    a = np.asarray(a, np.float64)
    u = a / np.linalg.norm(a, axis=1, keepdims=True)
    return u @ u.T


def density_matrices(x, t, kernel: str, sigma_x: float | None = None, sigma_t: float | None = None):
    """(ρ_X, ρ_T, ρ_XT) of paired rows."""
    if kernel == "gaussian":
        kx, kt = gaussian_gram(x, sigma_x), gaussian_gram(t, sigma_t)
    else:
        kx, kt = cosine_gram(x), cosine_gram(t)
    n = kx.shape[0]
    h = kx * kt
    return kx / n, kt / n, h / np.trace(h)


def truncate(p: np.ndarray, k: int | None, rank_cutoff: bool = False) -> np.ndarray:
    """The top-k eigenvalues, the missing mass spread evenly over them (``rank_cutoff``: a missing mass within
    the rounding level len(p)·eps·max p counts as 0, as the rounding-level eigenvalues do)."""
    if k is None:
        return p
    top = np.sort(p)[::-1][:k]
    missing = 1.0 - top.sum()
    if rank_cutoff and abs(missing) <= len(p) * np.finfo(np.float64).eps * top.max():
        missing = 0.0
    return top + missing / len(top)


def renyi(p: np.ndarray, order, cutoff: float = 0.0) -> float:
    """Rényi entropy of order α (natural log) of eigenvalues p, over p > cutoff (the authors: 0)."""
    pos = p[p > cutoff]
    if order == 1:
        return float(-np.sum(pos * np.log(pos)))
    if order == "inf" or order == np.inf:
        return float(-np.log(np.max(p)))
    return float(np.log(np.sum(pos ** order)) / (1.0 - order))


def _entropy(rho: np.ndarray, order, top_k, rank_cutoff: bool) -> float:
    if order == 2 and top_k is None:
        return float(-np.log(np.sum(rho * rho)))  # −log ‖ρ‖_F², no eigendecomposition
    p = np.linalg.eigvalsh(rho)
    if rank_cutoff:  # eigenvalues at rounding level are 0 (numerical rank)
        p = np.where(p > len(p) * np.finfo(np.float64).eps * p.max(), p, 0.0)
    return renyi(truncate(p, top_k, rank_cutoff), order)


def entropies(x, t, *, kernel="gaussian", sigma_x=None, sigma_t=None, order=1, top_k=None,
              rank_cutoff=False) -> dict:
    """H(X), H(T), H(X,T), H(X|T), I(X;T) and the two scores, the reference's keys. ``rank_cutoff``:
    eigenvalues ≤ n·eps·max count as 0 (they matter only at α < 1, where rounding noise adds λ^α)."""
    rx, rt, rxt = density_matrices(x, t, kernel, sigma_x, sigma_t)
    hx, ht, hxt = (_entropy(r, order, top_k, rank_cutoff) for r in (rx, rt, rxt))
    return {"H_X": hx, "H_T": ht, "H_XT": hxt, "H_X_given_T": hxt - ht, "I_X_T": hx + ht - hxt,
            "cond_vendi": float(np.exp(hxt - ht)), "info_vendi": float(np.exp(hx + ht - hxt))}


conditional_vendi = entropies


def hadamard_sq_frobenius(x, t, *, kernel="gaussian", sigma_x=None, sigma_t=None, y=None, u=None) -> float:
    """Σ_ij k_X(x_i, y_j)² k_T(t_i, u_j)² (y, u default x, t) from explicit n×p matrices."""
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    y = x if y is None else np.asarray(y, np.float64)
    u = t if u is None else np.asarray(u, np.float64)
    if kernel == "gaussian":
        dx = np.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)
        dt = np.sum((t[:, None, :] - u[None, :, :]) ** 2, axis=-1)
        k = np.exp(-dx / (2 * sigma_x ** 2)) * np.exp(-dt / (2 * sigma_t ** 2))
    else:
        def unit(a):
            return a / np.linalg.norm(a, axis=1, keepdims=True)

        k = (unit(x) @ unit(y).T) * (unit(t) @ unit(u).T)
    return float(np.sum(k * k))
