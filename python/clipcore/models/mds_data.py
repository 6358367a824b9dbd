"""Seeded CLIP-like paired embeddings for neural MDS: topics in a low-dimensional semantic subspace, a
modality gap and strong isotropic noise (the kind of set ``bench/bench_mds.py`` and the tests judge
retrieval on).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["TopicPairs", "topic_pairs"]


class TopicPairs(NamedTuple):
    """Paired embeddings from :func:`topic_pairs`.

    Attributes:
      images, texts: ``[n, d]`` float32 unit rows; row i of each is a pair.
      topics: ``[n]`` int topic of each pair.
    """

    images: np.ndarray
    texts: np.ndarray
    topics: np.ndarray


def topic_pairs(n: int = 2000, d: int = 512, *, semantic_dim: int = 48, topics: int = 40, spread: float = 0.6,
                gap: float = 1.0, noise: float = 1.0, seed: int = 0) -> TopicPairs:
    """CLIP-like pairs whose semantics live in a ``semantic_dim``-dimensional subspace.

    Each pair has a topic t (uniform over ``topics``) and a meaning
    s = c_t + spread · N(0, I) in R^semantic_dim (topic centres c ~ N(0, I)),
    placed in R^d by a random orthonormal Q (``[d, semantic_dim]``); each
    modality adds its own constant unit direction (the modality gap) and its
    own isotropic noise:

        image = L2(Q s / √semantic_dim + gap · g_image + noise · N(0, I_d)/√d)
        text  = L2(Q s / √semantic_dim + gap · g_text  + noise · N(0, I_d)/√d)

    With the defaults the noise has about the norm of the meaning, so a
    matched pair's distance is mostly noise and gap; PCA to more than
    ``semantic_dim`` dimensions removes most of the noise and retrieves
    better than the full space.

    Args:
      n: pairs; d: dimension.
      semantic_dim: dimension of the semantic subspace; topics: number of topics.
      spread: within-topic spread of the meaning (what tells pairs of a topic apart).
      gap: size of each modality's offset; noise: size of the isotropic noise.
      seed: ``numpy.random.default_rng`` seed.

    Returns:
      :class:`TopicPairs`.
    """
    for name, v in (("n", n), ("d", d), ("semantic_dim", semantic_dim), ("topics", topics)):
        if isinstance(v, bool) or int(v) != v or v <= 0:
            raise ValueError(f"topic_pairs: {name} must be a positive integer, got {v!r}")
    if semantic_dim > d:
        raise ValueError(f"topic_pairs: semantic_dim={semantic_dim} exceeds d={d}")
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((topics, semantic_dim))
    t = rng.integers(0, topics, n)
    meaning = centres[t] + spread * rng.standard_normal((n, semantic_dim))
    q, _ = np.linalg.qr(rng.standard_normal((d, semantic_dim)))
    sem = meaning @ q.T / np.sqrt(semantic_dim)
    g = rng.standard_normal((2, d))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    img = sem + gap * g[0] + noise * rng.standard_normal((n, d)) / np.sqrt(d)
    txt = sem + gap * g[1] + noise * rng.standard_normal((n, d)) / np.sqrt(d)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    return TopicPairs(img.astype(np.float32), txt.astype(np.float32), t.astype(np.int64))
