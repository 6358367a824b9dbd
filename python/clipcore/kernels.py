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
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "FeatureMap",
    "features",
    "cosine_features",
    "rff_features",
    "gaussian_kernel",
    "gaussian_tile",
    "gaussian_tile_host",
    "gamma_of",
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


def _floor(dtype, d: int) -> float:
    """Relative rounding floor of the GEMM form ‖a‖² + ‖b‖² − 2 a·b in ``dtype`` for ``d`` dimensions."""
    return float(np.finfo(dtype).eps) * (4.0 + 2.0 * np.sqrt(d))


def _tile(x, y, gamma):
    hi = jax.lax.Precision.HIGHEST
    nsum = jnp.sum(x * x, axis=1)[:, None] + jnp.sum(y * y, axis=1)[None, :]
    sq = nsum - 2.0 * jnp.dot(x, y.T, precision=hi)
    return jnp.exp(jnp.where(sq > _floor(x.dtype, x.shape[1]) * nsum, -gamma * sq, jnp.zeros((), x.dtype)))


def gaussian_tile(a: jax.Array, b: jax.Array, gamma) -> jax.Array:
    """The one Gaussian kernel tile of clipcore: k(a_i, b_j) = exp(−γ sq_ij), ``[n, d] × [m, d] → [n, m]``
    in a's dtype, with sq_ij = ‖a_i‖² + ‖b_j‖² − 2 a_i·b_j from one GEMM.

    Every path forms Gaussian kernels with it (the exact dual Gram, the
    Nyström features, k-means++ and pivoted-Cholesky landmarks, the JAX twins
    of the compiled core; :func:`gaussian_tile_host` is its NumPy twin), and
    the compiled core applies the same rule:

    * sq at or below the rounding floor of that form,
      eps(dtype)·(4 + 2√d)·(‖a_i‖² + ‖b_j‖²), counts as exactly 0 (the points
      coincide to working precision), so duplicates give exactly 1 at any σ,
      and γ = ∞ (σ → 0) or γ = 0 (σ → ∞) give 0/1 kernels instead of NaN;
    * float32 rows with x64 enabled whose bandwidth makes that rounding
      matter (γ·floor·(max‖a‖² + max‖b‖²) > 1e-3, the compiled core's gate)
      are formed in float64 instead (``lax.cond``: ordinary bandwidths pay
      nothing), so near-coincident pairs keep their true value.

    Args:
      a: ``[n, d]``; b: ``[m, d]`` (same dtype).
      gamma: 1 / (2σ²), a Python float or a (traced) 0-d array.
    """
    if a.dtype == jnp.float32 and jax.config.read("jax_enable_x64") and a.shape[0] and b.shape[0]:
        g64 = jnp.asarray(gamma, jnp.float64)
        top = (jnp.max(jnp.sum(a * a, axis=1)).astype(jnp.float64)
               + jnp.max(jnp.sum(b * b, axis=1)).astype(jnp.float64))
        gate = g64 * _floor(np.float32, a.shape[1]) * top > 1e-3
        return jax.lax.cond(gate,
                            lambda: _tile(a.astype(jnp.float64), b.astype(jnp.float64), g64).astype(a.dtype),
                            lambda: _tile(a, b, jnp.asarray(gamma, a.dtype)))
    return _tile(a, b, jnp.asarray(gamma, a.dtype))


def gaussian_tile_host(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """NumPy twin of :func:`gaussian_tile` for host linear algebra (float64 rows; same floor rule),
    built in place: one ``[n, m]`` array besides the row norms and their sums."""
    a = np.asarray(a)
    b = np.asarray(b)
    na, nb = (a * a).sum(1), (b * b).sum(1)
    k = a @ b.T
    k *= -2.0
    k += na[:, None]
    k += nb[None, :]
    nsum = na[:, None] + nb[None, :]
    nsum *= _floor(k.dtype, a.shape[1])
    near = k <= nsum  # coincident to working precision (and rounding below zero)
    del nsum
    with np.errstate(invalid="ignore", over="ignore"):  # γ = ∞: 0·∞ and exp(+∞) only where `near` resets
        k *= -float(gamma)
        np.exp(k, out=k)
    k[near] = 1.0
    return k


def gamma_of(sigma) -> Any:
    """γ = 1 / (2σ²) (σ a float or a traced 0-d array)."""
    return 1.0 / (2.0 * sigma * sigma)


def gaussian_kernel(x: jax.Array, y: jax.Array, sigma: float | jax.Array) -> jax.Array:
    """Exact Gaussian kernel matrix ``k(x, y)``: ``[n, d] × [m, d] -> [n, m]`` (:func:`gaussian_tile`
    with γ = 1/(2σ²); σ may be traced)."""
    return gaussian_tile(x, y, gamma_of(jnp.asarray(sigma, x.dtype)))


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
