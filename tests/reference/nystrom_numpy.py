"""Independent float64 NumPy references for the Nyström / Gaussian-kernel core.

Written from the definitions (SPEC.md, "Large n"), not from clipcore's code:
squared distances by explicit differences (not the GEMM expansion), dense
kernel matrices, a textbook pivoted Cholesky on the dense matrix.
"""

from __future__ import annotations

import numpy as np


def sq_dists(a, b, chunk: int = 256) -> np.ndarray:
    """‖a_i − b_j‖² by explicit differences, float64: ``[n, d] × [m, d] → [n, m]``."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    out = np.empty((a.shape[0], b.shape[0]))
    for i in range(0, a.shape[0], chunk):
        diff = a[i : i + chunk, None, :] - b[None, :, :]
        out[i : i + chunk] = np.einsum("ijk,ijk->ij", diff, diff)
    return out


def gaussian(a, b, sigma: float) -> np.ndarray:
    """k(a_i, b_j) = exp(−‖a_i − b_j‖² / (2σ²)), float64."""
    return np.exp(-sq_dists(a, b) / (2.0 * float(sigma) ** 2))


def whitening(landmarks, sigma: float, rtol: float):
    """(W [m, r], kept eigenvalues descending) with W = U_r Λ_r^{-1/2}, λ > rtol·λ_max."""
    K = gaussian(landmarks, landmarks, sigma)
    lam, U = np.linalg.eigh(K)
    lam, U = lam[::-1], U[:, ::-1]
    keep = lam > rtol * lam[0]
    return U[:, keep] / np.sqrt(lam[keep]), lam[keep]


def nystrom_kernel_inverse(landmarks, sigma: float, rtol: float) -> np.ndarray:
    """W Wᵀ = the cut pseudo-inverse of K_mm (independent of eigenvector signs)."""
    W, _ = whitening(landmarks, sigma, rtol)
    return W @ W.T


def features(x, landmarks, sigma: float, rtol: float) -> np.ndarray:
    W, _ = whitening(landmarks, sigma, rtol)
    return gaussian(x, landmarks, sigma) @ W


def gram(x, landmarks, sigma: float, rtol: float) -> np.ndarray:
    P = features(x, landmarks, sigma, rtol)
    return P.T @ P


def joint_gram(t, x, landmarks, sigma: float, rtol: float) -> np.ndarray:
    Z = np.concatenate([features(t, landmarks, sigma, rtol), features(x, landmarks, sigma, rtol)], axis=1)
    return Z.T @ Z


def sq_frobenius(x, sigma: float, y=None) -> np.ndarray:
    """Σ_ij k(x_i, x_j)², or with y the cross term Σ_ij k(x_i, y_j)², from the dense float64 kernel."""
    K = gaussian(x, x if y is None else y, sigma)
    return float(np.sum(K * K))


def rke_dense(x, sigma: float) -> float:
    """exp(H₂) of K/n from its eigenvalues: 1 / Σ λ²."""
    n = len(x)
    lam = np.linalg.eigvalsh(gaussian(x, x, sigma) / n)
    return float(1.0 / np.sum(lam**2))


def pivoted_cholesky(K: np.ndarray, m: int, trace_tol: float = 0.0, min_pivot: float = 1e-10):
    """Textbook greedy pivoted Cholesky of a dense PSD matrix with unit diagonal.

    Returns (pivots, L [n, count], residual traces after each step).
    """
    K = np.asarray(K, np.float64)
    n = K.shape[0]
    L = np.zeros((n, 0))
    r = np.diag(K).copy()
    pivots, traces = [], []
    t = float(np.sum(r))
    while len(pivots) < min(m, n):
        if t <= trace_tol:
            break
        p = int(np.argmax(r))  # first index among ties
        if not r[p] > min_pivot:
            break
        col = (K[:, p] - L @ L[p]) / np.sqrt(r[p])
        col[pivots] = 0.0
        col[p] = np.sqrt(r[p])
        L = np.concatenate([L, col[:, None]], axis=1)
        r = np.maximum(r - col**2, 0.0)
        r[p] = 0.0
        pivots.append(p)
        t = float(np.sum(r))
        traces.append(t)
    return np.array(pivots, dtype=np.int64), L, np.array(traces)


def clustered(n: int, d: int, *, clusters: int = 10, noise: float = 0.3, norm: float | None = None,
              seed: int = 0, dtype=np.float32) -> np.ndarray:
    """Gaussian clusters (optionally scaled to row norm ``norm``, CLIP-like)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((clusters, d))
    x = c[rng.integers(0, clusters, n)] + noise * rng.standard_normal((n, d))
    if norm is not None:
        x *= norm / np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(dtype)
