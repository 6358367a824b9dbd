"""Seeded data shared by the model tests and the CLI tests of the models' commands."""

from __future__ import annotations

import numpy as np

import clipcore


def lifted_pairs(n, d_intrinsic=32, d=96, seed=0, gap=0.8):
    """Seeded CLIP-like pairs (modality gap) of intrinsic dimension d_intrinsic, in d dimensions.

    Matched image–caption cosines ≈ 0.6, unmatched ≈ 0.2 (at d_intrinsic=32).
    """
    p = clipcore.synthetic_pairs(n=n, d=d_intrinsic, gap=gap, seed=seed, text_noise=0.5, noise=0.25,
                                 mode_strength=0.25)
    q, _ = np.linalg.qr(np.random.default_rng(seed + 100).standard_normal((d, d_intrinsic)))
    return p.images.astype(np.float64) @ q.T, p.texts.astype(np.float64) @ q.T


def blobs(n=240, d=16, k=4, seed=0):
    """``k`` well-separated Gaussian blobs (centres ~ N(0, 16 I)), float32 points and their labels."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * 4.0
    y = rng.permutation(np.arange(n) % k)
    return (centers[y] + rng.standard_normal((n, d))).astype(np.float32), y


#: One small IIN architecture for every fast test, so jitted programs are shared.
IIN_SMALL = dict(num_blocks=3, hidden=32, hidden_layers=2)
