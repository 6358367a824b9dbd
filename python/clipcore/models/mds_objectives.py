"""Neural MDS objectives: the distances, losses, pair / quad samplers and evaluation metrics.

Pure ``jax.numpy`` functions (jit-able) and the host-side metrics of one seeded
evaluation sample; :mod:`clipcore.models.mds` builds the model on them (see its
docstring for the references: Kruskal 1964 for the stress, Terada & von Luxburg
2014 for the SOE quad loss).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import as_embeddings, check_positive_int

__all__ = [
    "embedded_distance",
    "raw_stress",
    "kruskal_stress1",
    "quad_loss",
    "sample_pairs",
    "sample_quads",
    "true_distance",
    "MDSMetrics",
    "EvalSample",
    "eval_sample",
    "metrics_on",
    "paired_hits",
    "paired_top1",
    "pooled",
    "mds_metrics",
    "pca_map",
    "check_paired",
]


# ------------------------------------------------------------------ losses
def embedded_distance(a: jax.Array, b: jax.Array, eps: float = 1e-12) -> jax.Array:
    """sqrt(‖a − b‖² + ε) row by row: finite gradient when a = b.

    Args:
      a, b: ``[..., k]``.
      eps: the ε under the square root.

    Returns:
      ``[...]``.
    """
    diff = a - b
    return jnp.sqrt(jnp.sum(diff * diff, axis=-1) + eps)


def raw_stress(delta: jax.Array, dist: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Raw stress Σ w (δ − d)² (metric MDS; Kruskal 1964).

    Args:
      delta: ``[m]`` target (original-space) distances.
      dist: ``[m]`` embedded distances.
      weights: ``[m]`` non-negative weights (default 1).
    """
    r = delta - dist
    w = 1.0 if weights is None else weights
    return jnp.sum(w * r * r)


def kruskal_stress1(delta: jax.Array, dist: jax.Array) -> jax.Array:
    """Kruskal's Stress-1, sqrt(Σ (δ − d)² / Σ d²), with d the embedded distances."""
    r = delta - dist
    return jnp.sqrt(jnp.sum(r * r) / jnp.sum(dist * dist))


def quad_loss(d_near: jax.Array, d_far: jax.Array, margin: float, weights: jax.Array | None = None) -> jax.Array:
    """SOE squared hinge Σ w · max(0, d_near + margin − d_far)² (Terada & von Luxburg 2014).

    Args:
      d_near: ``[m]`` embedded distance of the pair with the smaller δ.
      d_far: ``[m]`` embedded distance of the pair with the larger δ.
      margin: the hinge margin (sets the scale of the embedding).
      weights: ``[m]`` non-negative weights (default 1; 0 drops tied quads).
    """
    h = jnp.maximum(0.0, d_near + margin - d_far)
    w = 1.0 if weights is None else weights
    return jnp.sum(w * h * h)


# ---------------------------------------------------------------- sampling
def sample_pairs(key: jax.Array, n: int, size: int, cross_modal_fraction: float,
                 matched_fraction: float) -> tuple[jax.Array, jax.Array]:
    """Pairs of indices into the pooled set Z = [images (0..n−1); texts (n..2n−1)].

    A fraction ``cross_modal_fraction`` of the pairs is (image, caption) in a
    random order, a fraction ``matched_fraction`` of those an image with its
    own caption; the rest are uniform over Z × Z.

    Args:
      key: a JAX PRNG key.
      n: number of pairs in the set; size: number of pairs to draw.

    Returns:
      ``(a, b)``, each ``[size]`` int; pair m is (Z[a_m], Z[b_m]).
    """
    k_int, k_u = jax.random.split(key)
    ua, ub, i, j = jax.random.randint(k_int, (4, size), 0, jnp.array([2 * n, 2 * n, n, n])[:, None])
    matched, image_first, cross = jax.random.uniform(k_u, (3, size)) < jnp.array(
        [matched_fraction, 0.5, cross_modal_fraction])[:, None]
    j = jnp.where(matched, i, j)
    ca = jnp.where(image_first, i, n + i)
    cb = jnp.where(image_first, n + j, j)
    return jnp.where(cross, ca, ua), jnp.where(cross, cb, ub)


def sample_quads(key: jax.Array, n: int, size: int, cross_modal_fraction: float,
                 matched_fraction: float) -> tuple[jax.Array, ...]:
    """Quads (a, b, c, e) of indices into Z = [images; texts] (not yet ordered by δ).

    A fraction ``cross_modal_fraction`` are anchored triplets: (x, y) and
    (x, y') with x of one modality and y, y' of the other, y the partner of x
    with probability ``matched_fraction``; the rest are two uniform pairs.

    Returns:
      ``(a, b, c, e)``, each ``[size]``; the quad compares (a, b) with (c, e).
    """
    k_pair, k_int, k_u = jax.random.split(key, 3)
    a, b = sample_pairs(k_pair, n, size, 1.0, matched_fraction)
    other, ua, ub, uc, ue = jax.random.randint(k_int, (5, size), 0,
                                               jnp.array([n, 2 * n, 2 * n, 2 * n, 2 * n])[:, None])
    e_cross = jnp.where(a < n, n + other, other)  # the anchor's other modality
    cross = jax.random.uniform(k_u, (size,)) < cross_modal_fraction
    return (jnp.where(cross, a, ua), jnp.where(cross, b, ub),
            jnp.where(cross, a, uc), jnp.where(cross, e_cross, ue))


def true_distance(z: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """‖z_a − z_b‖ row by row (original-space distances): ``z [m, D]``, ``a, b [k]`` → ``[k]``."""
    d = z[a] - z[b]
    return jnp.sqrt(jnp.sum(d * d, axis=-1))


class MDSMetrics(NamedTuple):
    """How well an embedding keeps the original distances (see :func:`mds_metrics`)."""

    stress1: float
    quad_fraction: float
    spearman: float


# ---------------------------------------------------------------- evaluation
class EvalSample(NamedTuple):
    """A seeded evaluation sample of pairs ``(pa, pb)`` with original distances ``delta``, and quads
    ``(qa, qb, qc, qe)`` ordered so that (qa, qb) is the nearer pair; ``keep`` marks untied quads.
    All ``[size]`` host arrays of indices into the pooled set (and ``delta`` float)."""

    pa: np.ndarray
    pb: np.ndarray
    delta: np.ndarray
    qa: np.ndarray
    qb: np.ndarray
    qc: np.ndarray
    qe: np.ndarray
    keep: np.ndarray  # quads with δ_ab ≠ δ_ce, ordered so (a, b) is the nearer pair


def eval_sample(z: jax.Array, n: int, size: int, seed: int, cross: float, matched: float) -> EvalSample:
    """The evaluation sample of the pooled set ``z: [2n, D]`` (:class:`EvalSample`), drawn as in training."""
    out = _eval_indices(z, jax.random.key(seed), n, size, cross, matched)
    return EvalSample(*(np.asarray(x) for x in out))


@functools.partial(jax.jit, static_argnums=(2, 3))
def _eval_indices(z: jax.Array, key: jax.Array, n: int, size: int, cross: float, matched: float):
    k1, k2 = jax.random.split(key)
    pa, pb = sample_pairs(k1, n, size, cross, matched)
    delta = true_distance(z, pa, pb)
    qa, qb, qc, qe = sample_quads(k2, n, size, cross, matched)
    d1, d2 = true_distance(z, qa, qb), true_distance(z, qc, qe)
    swap = d2 < d1
    qa, qb, qc, qe = (jnp.where(swap, qc, qa), jnp.where(swap, qe, qb), jnp.where(swap, qa, qc),
                      jnp.where(swap, qb, qe))
    return pa, pb, delta, qa, qb, qc, qe, d1 != d2


def metrics_on(y: np.ndarray, s: EvalSample) -> MDSMetrics:
    """Stress-1, satisfied-quad fraction and Spearman ρ of the embedding ``y: [2n, D']`` on sample ``s``."""
    from scipy.stats import spearmanr

    y = np.asarray(y, dtype=np.float64)
    dist = np.linalg.norm(y[s.pa] - y[s.pb], axis=1)
    r = s.delta - dist
    stress1 = float(np.sqrt(np.sum(r * r) / np.sum(dist * dist)))
    near = np.linalg.norm(y[s.qa] - y[s.qb], axis=1)
    far = np.linalg.norm(y[s.qc] - y[s.qe], axis=1)
    frac = float(np.mean((near < far)[s.keep]))
    rho = float(spearmanr(s.delta, dist).statistic)
    return MDSMetrics(stress1, frac, rho)


def paired_hits(low_images: np.ndarray, low_texts: np.ndarray, *, extra_images: np.ndarray | None = None,
                extra_texts: np.ndarray | None = None, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per-query top-1 hits of paired rows by Euclidean nearest neighbour (host, in blocks).

    Row i of ``low_images`` and ``low_texts`` is a pair; a query hits when
    its own partner is strictly nearer than every other candidate (ties count
    as misses): the deck's measure of a D' map (SPEC_MODELS.md, "Retrieval
    accuracy"), query by query, so that two maps can be compared on the same
    queries (model selection's paired test); the full evaluation is
    :func:`clipcore.retrieval`.

    Args:
      low_images, low_texts: ``[m, D']`` mapped pairs (the queries, and their partners).
      extra_images, extra_texts: ``[r, D']`` further candidates of each modality (e.g. the fitted
        pairs when the queries are validation pairs), or None.
      block: query rows per distance block (``[block, m + r]`` held at once).

    Returns:
      ``(image_to_text, text_to_image)``: ``[m]`` bool arrays.
    """
    a = np.asarray(low_images, np.float64)
    b = np.asarray(low_texts, np.float64)

    def hits(q: np.ndarray, k: np.ndarray) -> np.ndarray:
        kk = np.einsum("ij,ij->i", k, k)
        out = np.zeros(q.shape[0], bool)
        for start in range(0, q.shape[0], block):
            part = q[start:start + block]
            d = kk[None, :] - 2.0 * part @ k.T  # ‖q‖² is constant along a row
            rows = np.arange(part.shape[0])
            own = d[rows, start + rows].copy()
            d[rows, start + rows] = np.inf
            out[start:start + part.shape[0]] = own < d.min(axis=1)
        return out

    def gallery(partners: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
        return partners if extra is None else np.concatenate([partners, np.asarray(extra, np.float64)])

    return hits(a, gallery(b, extra_texts)), hits(b, gallery(a, extra_images))


def paired_top1(low_images: np.ndarray, low_texts: np.ndarray, *, extra_images: np.ndarray | None = None,
                extra_texts: np.ndarray | None = None, block: int = 1024) -> tuple[float, float]:
    """Image→text and text→image top-1 of paired rows: the means of :func:`paired_hits` (same arguments).

    Returns:
      ``(image_to_text, text_to_image)`` fractions in [0, 1].
    """
    i2t, t2i = paired_hits(low_images, low_texts, extra_images=extra_images, extra_texts=extra_texts, block=block)
    return float(i2t.mean()), float(t2i.mean())


# ---------------------------------------------------------- pairs and maps
def pooled(images: jax.Array, texts: jax.Array, normalize: bool) -> jax.Array:
    """The pooled set Z = [images; texts] (``[2n, D]``), rows L2-normalised when ``normalize``."""
    z = jnp.concatenate([images, texts], axis=0)
    if normalize:
        z = z / jnp.linalg.norm(z, axis=1, keepdims=True)
    return z


def mds_metrics(
    images: Any,
    texts: Any,
    low_images: Any,
    low_texts: Any,
    *,
    size: int = 4096,
    seed: int = 0,
    cross_modal_fraction: float = 0.5,
    matched_fraction: float = 0.25,
    normalize: bool = True,
) -> MDSMetrics:
    """Stress-1, satisfied-quad fraction and Spearman ρ of any embedding of a paired set.

    Pairs and quads are drawn as in training (:func:`sample_pairs`,
    :func:`sample_quads`) with a fixed seed, so every method (neural MDS,
    PCA, random projection, scikit-learn MDS) is scored on the same sample.

    Args:
      images, texts: ``[n, D]`` the original paired embeddings.
      low_images, low_texts: ``[n, D']`` their embedding.
      size: number of evaluation pairs and of evaluation quads.
      seed: seed of the evaluation sample.
      cross_modal_fraction, matched_fraction: as in :class:`NeuralMDS`.
      normalize: L2-normalise the original rows first (as ``NeuralMDS`` does).

    Returns:
      MDSMetrics(stress1, quad_fraction, spearman); tied quads (δ equal) are
      left out of the fraction.
    """
    u = as_embeddings(images, "images", nonzero_rows=normalize)
    v = as_embeddings(texts, "texts", nonzero_rows=normalize)
    check_paired(u, v)
    lu = as_embeddings(low_images, "low_images")
    lv = as_embeddings(low_texts, "low_texts")
    if lu.shape[0] != u.shape[0] or lv.shape != lu.shape:
        raise ValueError(
            f"low_images / low_texts: shapes {tuple(lu.shape)} and {tuple(lv.shape)} must both be "
            f"[{u.shape[0]}, D'] like the {u.shape[0]} pairs"
        )
    n = int(u.shape[0])
    z = pooled(u.astype(jnp.float64) if jax.config.jax_enable_x64 else u, v, normalize)
    s = eval_sample(z, n, check_positive_int(size, "size"), seed, cross_modal_fraction, matched_fraction)
    return metrics_on(np.concatenate([np.asarray(lu), np.asarray(lv)]), s)


def pca_map(z: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA (classical MDS on Euclidean distances) as an affine map.

    Args:
      z: ``[m, D]`` points.
      dim: D'.

    Returns:
      ``(W, b)``: ``[D, D']`` top principal directions (float64) and ``[D']``
      offset, so that ``z @ W + b`` are the centred principal coordinates.
    """
    z = np.asarray(z, dtype=np.float64)
    mu = z.mean(axis=0)
    c = (z - mu).T @ (z - mu) / z.shape[0]
    evals, evecs = np.linalg.eigh(c)
    w = evecs[:, ::-1][:, :dim]
    # a fixed sign per direction (largest |entry| positive) so the map is reproducible
    signs = np.sign(w[np.argmax(np.abs(w), axis=0), np.arange(dim)])
    w = w * np.where(signs == 0, 1.0, signs)
    return w, -mu @ w


def check_paired(u: jax.Array, v: jax.Array) -> None:
    """Images ``u`` and captions ``v`` pair by row and share one dimension (one map for both)."""
    if u.shape[0] != v.shape[0]:
        raise ValueError(
            f"texts: {v.shape[0]} rows but images has {u.shape[0]} (shapes {tuple(v.shape)} and "
            f"{tuple(u.shape)}); row i of texts must be the caption of row i of images"
        )
    if u.shape[1] != v.shape[1]:
        raise ValueError(
            f"texts: dimension {v.shape[1]} differs from images' {u.shape[1]} (shapes {tuple(v.shape)} "
            f"and {tuple(u.shape)}); one map g is shared by both modalities"
        )
