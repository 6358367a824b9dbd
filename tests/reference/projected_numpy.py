"""Dense float64 NumPy reference of the "projected" Nyström estimate (clipcore.nystrom_projected) when every
row is sampled: everything formed as n×n matrices and n-vectors, straight from the module's description.

Φ = k(·, L) K_LL^{-1/2} (any whitening gives the same K̃ = Φ Φᵀ and ranges), E = K − Φ Φᵀ.
1. U_T: orthonormal basis of range(Φ_T); the kept eigenvectors of U_Tᵀ K_T U_T / n span W_k (filter of the
   pseudo-inverse: |w + ε| > rtol · max |w + ε|, f = w / (w + ε)).
2. Q: orthonormal basis of range([Φ_X, W_k]); M = Q Qᵀ K_X Q Qᵀ / n.
3. R = √F W_kᵀ K_X W_k √F / n; S = G M G, G = I − W_k diag(1 − √(1 − f)) W_kᵀ; image: M.
4. The tail: O = (I − Q Qᵀ) E_X (I − Q Qᵀ); c̄ its mean diagonal; c̄/n + the eigenvalues of O without its
   diagonal / n, on the n − q directions outside Q, scaled to the mass tr(O) / n.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

EPS = 1e-12


def _k(a, b, sigma):
    return np.exp(-cdist(a, b, "sqeuclidean") / (2 * sigma ** 2))


def _orth(a, tol=1e-10):
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    return u[:, s > tol * s.max()]


def _features(a, landmarks, sigma):
    w, v = np.linalg.eigh(_k(landmarks, landmarks, sigma))
    return _k(a, landmarks, sigma) @ (v / np.sqrt(w)) @ v.T


def _tail(ex, q, n):
    p = np.eye(n) - q @ q.T
    o = p @ ex @ p
    mass = np.trace(o) / n
    cbar = np.mean(np.diag(o))
    off = o - np.diag(np.diag(o))
    unseen = n - q.shape[1]
    explicit = np.maximum(cbar / n + np.sort(np.linalg.eigvalsh(off))[::-1][:unseen] / n, 0)
    return explicit * mass / explicit.sum()


def _entropy(lam):
    lam = np.maximum(lam, 1e-10)
    return float(-np.sum(lam * np.log(lam / lam.sum())))


def _renyi1(lam):
    lam = np.maximum(lam, 1e-10)
    return float(-np.sum(lam * np.log(lam)))


def projected_scores(x, t, landmarks, sigma, rtol):
    """(log SCE, log text score, log image score, kept rank) of the "projected" estimate with every row
    sampled."""
    n = x.shape[0]
    fx, ft = _features(x, landmarks, sigma), _features(t, landmarks, sigma)
    kx, kt = _k(x, x, sigma), _k(t, t, sigma)
    ut = _orth(ft)
    w, z = np.linalg.eigh(ut.T @ kt @ ut / n)
    w, z = w[::-1], z[:, ::-1]
    keep = np.abs(w + EPS) > rtol * np.abs(w + EPS).max()
    f = np.clip(w[keep] / (w[keep] + EPS), 0, 1)
    wk = ut @ z[:, keep]
    q = _orth(np.concatenate([fx, wk], 1))
    m = q @ (q.T @ kx @ q) @ q.T / n
    r = np.sqrt(f)[:, None] * (wk.T @ kx @ wk / n) * np.sqrt(f)[None, :]
    g = np.eye(n) - wk @ np.diag(1 - np.sqrt(1 - f)) @ wk.T
    tail = _tail(kx - fx @ fx.T, q, n)
    qn = q.shape[1]
    s = np.sort(np.linalg.eigvalsh(g @ m @ g.T))[::-1][:qn]
    image = np.sort(np.linalg.eigvalsh(m))[::-1][:qn]
    return (_entropy(np.concatenate([s, tail])), _entropy(np.linalg.eigvalsh(r)),
            _renyi1(np.concatenate([image, tail])), int(keep.sum()))


def projected_vendi(x, landmarks, sigma):
    """log Vendi (order 1) of the "projected" estimate for one set, every row sampled."""
    n = x.shape[0]
    fx = _features(x, landmarks, sigma)
    kx = _k(x, x, sigma)
    q = _orth(fx)
    image = np.sort(np.linalg.eigvalsh(q.T @ kx @ q / n))[::-1]
    return _renyi1(np.concatenate([image, _tail(kx - fx @ fx.T, q, n)]))
