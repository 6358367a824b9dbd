"""Kernels and explicit feature maps (SPEC.md, "Kernels and feature maps").

* cosine: φ(x) = x / ‖x‖₂, so k(x, y) = cos(x, y) and tr C = 1.
* gaussian: k(x, y) = exp(−‖x − y‖² / (2σ²)); either exact (Gram matrices)
  or through random Fourier features (Rahimi & Recht 2007)
  φ(x) = [cos(xω), sin(xω)] / √D with ω ∈ R^{d×D}, ω_ij ~ N(0, 1/σ²),
  which gives 2D features of unit norm.

A :class:`FeatureMap` is the static description (hashable, usable as a
``jit`` static argument); the frequencies ω travel as an array argument.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "FeatureMap",
    "features",
    "cosine_features",
    "rff_features",
    "gaussian_kernel",
    "draw_omega",
    "median_sigma",
]


@dataclasses.dataclass(frozen=True)
class FeatureMap:
    """Static description of φ.

    Attributes:
      kind: ``"cosine"`` (row L2 normalisation), ``"rff"`` (Gaussian random
        Fourier features, needs ω), ``"identity"`` (raw rows, used by the
        clip-dissection cosine convention which normalises columns later).
      num_frequencies: D, the number of RFF frequencies (2D features).
      normalize: L2-normalise rows (in the feature dtype) before the RFF map.
    """

    kind: Literal["cosine", "rff", "identity"]
    num_frequencies: int | None = None
    normalize: bool = False

    def dim(self, d: int) -> int:
        """Feature dimension for inputs of dimension ``d``."""
        return 2 * self.num_frequencies if self.kind == "rff" else d


def cosine_features(x: jax.Array) -> jax.Array:
    """Row-normalise: ``x: [n, d] -> [n, d]`` with unit rows."""
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def rff_features(x: jax.Array, omega: jax.Array) -> jax.Array:
    """Random Fourier features of the Gaussian kernel.

    Args:
      x: ``[n, d]`` inputs.
      omega: ``[d, D]`` frequencies, already scaled by 1/σ.

    Returns:
      ``[n, 2D]`` features ``[cos(xω), sin(xω)] / √D`` (unit norm rows).
    """
    proj = x @ omega.astype(x.dtype)
    scale = jnp.asarray(1.0 / np.sqrt(omega.shape[1]), x.dtype)
    return jnp.concatenate([jnp.cos(proj), jnp.sin(proj)], axis=-1) * scale


def features(x: jax.Array, fmap: FeatureMap, omega: jax.Array | None = None) -> jax.Array:
    """Apply the feature map ``fmap`` to ``x: [n, d]``."""
    if fmap.kind == "cosine":
        return cosine_features(x)
    if fmap.kind == "rff":
        return rff_features(cosine_features(x) if fmap.normalize else x, omega)
    return x


def gaussian_kernel(x: jax.Array, y: jax.Array, sigma: float | jax.Array) -> jax.Array:
    """Exact Gaussian kernel matrix ``k(x, y)``: ``[n, d] × [m, d] -> [n, m]``.

    Squared distances are formed as ‖x‖² + ‖y‖² − 2 x·y (one GEMM) and
    clipped at zero against rounding.
    """
    sq = (
        jnp.sum(x * x, axis=1)[:, None]
        + jnp.sum(y * y, axis=1)[None, :]
        - 2.0 * (x @ y.T)
    )
    sq = jnp.maximum(sq, 0.0)
    return jnp.exp(-sq / (2.0 * jnp.asarray(sigma, x.dtype) ** 2))


def draw_omega(key: jax.Array, d: int, num_frequencies: int, sigma: float, dtype=jnp.float32) -> jax.Array:
    """Draw RFF frequencies ``ω: [d, D]`` with entries N(0, 1/σ²)."""
    return jax.random.normal(key, (d, num_frequencies), dtype=dtype) / jnp.asarray(sigma, dtype)


def median_sigma(x: np.ndarray | jax.Array, *, max_samples: int = 2000, seed: int = 0) -> float:
    """Median pairwise Euclidean distance of (a seeded sample of) the rows of ``x``.

    The SPEC.md default bandwidth. At most ``max_samples`` rows (chosen with
    ``numpy.random.default_rng(seed)`` without replacement) enter, so the cost
    is bounded for any n.

    Args:
      x: ``[n, d]`` embeddings (n ≥ 2).
    """
    n = x.shape[0]
    if n < 2:
        raise ValueError("sigma: the median heuristic needs at least two embeddings; pass sigma=")
    if n > max_samples:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))
        x = x[idx]
    x = np.asarray(x, dtype=np.float64)
    sq = np.sum(x * x, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    iu = np.triu_indices(x.shape[0], k=1)
    med = float(np.sqrt(max(np.median(np.maximum(d2[iu], 0.0)), 0.0)))
    if med <= 0.0:
        raise ValueError("sigma: the median pairwise distance is 0 (identical embeddings); pass sigma=")
    return med
