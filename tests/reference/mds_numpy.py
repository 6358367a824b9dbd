"""Independent float64 NumPy/SciPy reference for neural MDS and retrieval.

Written from SPEC_MODELS.md only (it does not import clipcore or jax):

* retrieval: the full n×n similarity matrix, ranks by a stable sort (ties go
  to the lower index, like ``argmax``), recall@k = mean(rank < k);
* MDS losses: raw stress Σ w (δ − d)², Kruskal Stress-1
  sqrt(Σ (δ − d)² / Σ d²), the SOE squared hinge Σ w max(0, d_near + m − d_far)²
  with d = sqrt(‖a − b‖² + ε);
* PCA (classical MDS) through the SVD of the centred data.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

__all__ = ["ranks", "recall", "embedded_distance", "raw_stress", "kruskal_stress1", "quad_loss",
           "pca_coordinates", "spearman"]


def _l2n(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def ranks(queries: np.ndarray, keys: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """0-based rank of key i for query i, ties broken towards the lower index."""
    q = np.asarray(queries, dtype=np.float64)
    k = np.asarray(keys, dtype=np.float64)
    if metric == "cosine":
        s = _l2n(q) @ _l2n(k).T
    else:
        s = -np.sqrt(((q[:, None, :] - k[None, :, :]) ** 2).sum(-1))
    order = np.argsort(-s, axis=1, kind="stable")
    return np.argmax(order == np.arange(len(q))[:, None], axis=1)


def recall(rank: np.ndarray, ks) -> np.ndarray:
    return np.array([np.mean(rank < k) for k in ks])


def embedded_distance(a: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return np.sqrt(np.sum((a - b) ** 2, axis=-1) + eps)


def raw_stress(delta, dist, weights=None) -> float:
    w = np.ones_like(delta) if weights is None else weights
    return float(np.sum(w * (np.asarray(delta) - np.asarray(dist)) ** 2))


def kruskal_stress1(delta, dist) -> float:
    delta, dist = np.asarray(delta, np.float64), np.asarray(dist, np.float64)
    return float(np.sqrt(np.sum((delta - dist) ** 2) / np.sum(dist ** 2)))


def quad_loss(d_near, d_far, margin, weights=None) -> float:
    d_near, d_far = np.asarray(d_near, np.float64), np.asarray(d_far, np.float64)
    w = np.ones_like(d_near) if weights is None else weights
    h = np.maximum(0.0, d_near + margin - d_far)
    return float(np.sum(w * h * h))


def pca_coordinates(z: np.ndarray, dim: int) -> np.ndarray:
    """Centred principal coordinates of the rows of z (float64, via SVD)."""
    z = np.asarray(z, np.float64)
    zc = z - z.mean(axis=0)
    _, _, vt = np.linalg.svd(zc, full_matrices=False)
    return zc @ vt[:dim].T


def spearman(a, b) -> float:
    return float(scipy.stats.spearmanr(a, b).statistic)
