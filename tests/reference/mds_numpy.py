"""Independent float64 NumPy/SciPy reference for neural MDS and retrieval.

Written from SPEC_MODELS.md only (it does not import clipcore or jax):

* retrieval: the full n×n similarity matrix, ranks by a stable sort (ties go
  to the lower index, like ``argmax``), recall@k = mean(rank < k);
* MDS losses: raw stress Σ w (δ − d)², Kruskal Stress-1
  sqrt(Σ (δ − d)² / Σ d²), the SOE squared hinge Σ w max(0, d_near + m − d_far)²
  with d = sqrt(‖a − b‖² + ε);
* PCA (classical MDS) through the SVD of the centred data;
* the satisfied-quad fraction on quads drawn by NumPy's own generator: a
  fraction of anchored cross-modal triplets (x; y, y') — x of one modality,
  y and y' of the other, y the partner of x with a given probability — and
  the rest two uniform pairs of the pooled set [images; texts].
"""

from __future__ import annotations

import numpy as np
import scipy.stats

__all__ = ["ranks", "recall", "embedded_distance", "raw_stress", "kruskal_stress1", "quad_loss",
           "pca_coordinates", "spearman", "sample_quads", "quad_fraction"]


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


def sample_quads(rng: np.random.Generator, n: int, size: int, anchored: float, matched: float) -> np.ndarray:
    """``[size, 4]`` indices (a, b, c, e) into [images (0..n−1); texts (n..2n−1)]: compare (a, b) with (c, e)."""
    q = rng.integers(0, 2 * n, size=(size, 4))
    m = rng.random(size) < anchored
    x = rng.integers(0, n, size=size)
    image_anchor = rng.random(size) < 0.5
    y = np.where(rng.random(size) < matched, x, rng.integers(0, n, size=size))
    y2 = rng.integers(0, n, size=size)
    a = np.where(image_anchor, x, n + x)
    b = np.where(image_anchor, n + y, y)
    e = np.where(image_anchor, n + y2, y2)
    q[m] = np.stack([a, b, a, e], axis=1)[m]
    return q


def quad_fraction(z: np.ndarray, y: np.ndarray, quads: np.ndarray) -> float:
    """Fraction of quads whose distance order in z (rows L2-normalised first) is kept strictly in y; ties in z dropped."""
    z = _l2n(np.asarray(z, np.float64))
    y = np.asarray(y, np.float64)
    a, b, c, e = quads.T
    d1, d2 = np.linalg.norm(z[a] - z[b], axis=1), np.linalg.norm(z[c] - z[e], axis=1)
    g1, g2 = np.linalg.norm(y[a] - y[b], axis=1), np.linalg.norm(y[c] - y[e], axis=1)
    keep = d1 != d2
    kept = np.where(d1 < d2, g1 < g2, g2 < g1)
    return float(np.mean(kept[keep]))
