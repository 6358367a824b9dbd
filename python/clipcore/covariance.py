"""Streaming (row-blocked) covariances Φᵀ Φ / n and Gram matrices Φ Φᵀ / n.

SPEC.md, "Notation" and "Large n": C_TT = Φ_Tᵀ Φ_T / n, C_TX = Φ_Tᵀ Φ_X / n,
C_XX = Φ_Xᵀ Φ_X / n (no centring).  The n rows are visited in blocks of
``block_size``; a block's features are formed, multiplied, and added to the
accumulators, so no ``[n, D]`` feature matrix ever exists.

Precision: each block product is computed in the feature dtype (float32 for
CLIP embeddings) and added to an accumulator of ``acc_dtype``.  With a float64
accumulator the error is that of one float32 block product; with a float32
accumulator the running sums are Kahan-compensated, so the error does not
grow with the number of blocks.

Two backends compute the block products: ``"jax"`` (three XLA dots:
C_TT, C_TX, C_XX) and ``"ffi"`` (the compiled core: one blocked, threaded
``syrk`` of Z = [Φ_T | Φ_X] accumulated in float64, see :mod:`clipcore._ffi`).
Streaming over host blocks, progress and devices live above this module
(:mod:`clipcore._pipeline.passes`, :mod:`clipcore.sharding`).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _ffi
from ._blocks import add, default_block_size, fold_blocks, kahan_add, zeros_pair
from .kernels import FeatureMap, features, gaussian_kernel

__all__ = [
    "Covariances",
    "joint_covariances",
    "feature_covariance",
    "default_block_size",
    "column_cosine",
    "dual_gram",
    "dual_gram_jit",
    "joint_sums",
    "single_sums",
    "block_features",
]

_HI = lax.Precision.HIGHEST


class Covariances(NamedTuple):
    """Second moments of paired features (divided by n).

    Attributes:
      tt: ``[D_T, D_T]`` C_TT.
      tx: ``[D_T, D_X]`` C_TX.
      xx: ``[D_X, D_X]`` C_XX.
    """

    tt: jax.Array
    tx: jax.Array
    xx: jax.Array


def block_features(a, fmap: FeatureMap, omega, feature_dtype, acc_dtype):
    """φ of a row block in ``feature_dtype`` for the block products. Random Fourier features are formed in
    the accumulator's dtype and rounded once: the phase x·ω is large when σ is small against the row norms
    (raw CLIP features: |x·ω| ~ 60 at σ = 0.5), and a float32 projection loses ~1e-5 of SCE there, while
    rounding the finished features loses ~1e-7 (tests/test_covariance.py)."""
    if fmap.kind == "rff":
        wide = jnp.promote_types(feature_dtype, acc_dtype)
        return features(a.astype(wide), fmap, omega).astype(feature_dtype)
    return features(a.astype(feature_dtype), fmap, omega)


def _finish(acc, compensated: bool):
    return acc[0] - acc[1] if compensated else acc[0]


def _packed_step(fmap, feature_dtype, compensated):
    """Block step of the compiled packed core: normalise + concatenate inside its chunk scratch."""
    norm = fmap.kind == "cosine"

    def step(carry, tb, xb):
        tb, xb = tb.astype(feature_dtype), xb.astype(feature_dtype)
        if compensated:
            return kahan_add(carry, _ffi.joint_gram_accumulate(jnp.zeros_like(carry[0]), tb, xb, normalize=norm))
        return _ffi.joint_gram_accumulate(carry[0], tb, xb, normalize=norm), carry[1]

    return step


def _gram_step(feats, compensated):
    """Block step of the compiled syrk on Z = [φ(t) | φ(x)] (or φ(x) alone)."""

    def step(carry, *blocks):
        z = jnp.concatenate([feats(b) for b in blocks], axis=1) if len(blocks) > 1 else feats(blocks[0])
        if compensated:
            return kahan_add(carry, _ffi.gram_accumulate(jnp.zeros_like(carry[0]), z))
        return _ffi.gram_accumulate(carry[0], z), carry[1]

    return step


@functools.partial(jax.jit, static_argnames=("fmap", "block", "feature_dtype", "acc_dtype", "backend"))
def joint_sums(t, x, omega, *, fmap, block, feature_dtype, acc_dtype, backend):
    """Unnormalised (Σ φ(t)ᵀφ(t), Σ φ(t)ᵀφ(x), Σ φ(x)ᵀφ(x)) over the rows of ``t: [n, d_t]``,
    ``x: [n, d_x]``, folded over blocks of ``block`` rows.

    ``backend="ffi"``: the compiled core (one syrk of Z = [φ(t) | φ(x)] per block, float64
    accumulation; the packed core normalises and concatenates itself for the cosine / identity maps);
    ``"jax"``: three XLA dots. float32 accumulators are Kahan-compensated.
    """
    dt, dx = fmap.dim(t.shape[1]), fmap.dim(x.shape[1])
    compensated = jnp.dtype(acc_dtype) == jnp.float32

    def feats(a):
        return block_features(a, fmap, omega, feature_dtype, acc_dtype)

    if backend == "ffi":
        step = (_packed_step(fmap, feature_dtype, compensated) if fmap.kind in ("cosine", "identity")
                else _gram_step(feats, compensated))
        g = _finish(fold_blocks((t, x), block, step, zeros_pair((dt + dx, dt + dx), acc_dtype)), compensated)
        return g[:dt, :dt], g[:dt, dt:], g[dt:, dt:]

    def step(carry, tb, xb):
        pt, px = feats(tb), feats(xb)
        return (add(carry[0], jnp.dot(pt.T, pt, precision=_HI), compensated),
                add(carry[1], jnp.dot(pt.T, px, precision=_HI), compensated),
                add(carry[2], jnp.dot(px.T, px, precision=_HI), compensated))

    init = (zeros_pair((dt, dt), acc_dtype), zeros_pair((dt, dx), acc_dtype), zeros_pair((dx, dx), acc_dtype))
    tt, tx, xx = fold_blocks((t, x), block, step, init)
    return _finish(tt, compensated), _finish(tx, compensated), _finish(xx, compensated)


@functools.partial(jax.jit, static_argnames=("fmap", "block", "feature_dtype", "acc_dtype", "backend"))
def single_sums(x, omega, *, fmap, block, feature_dtype, acc_dtype, backend):
    """Unnormalised Σ φ(x)ᵀφ(x) (``[D, D]``) over the rows of ``x: [n, d]`` (as :func:`joint_sums`)."""
    dx = fmap.dim(x.shape[1])
    compensated = jnp.dtype(acc_dtype) == jnp.float32

    def feats(a):
        return block_features(a, fmap, omega, feature_dtype, acc_dtype)

    if backend == "ffi":
        step = _gram_step(feats, compensated)
    else:
        def step(carry, xb):
            px = feats(xb)
            return add(carry, jnp.dot(px.T, px, precision=_HI), compensated)

    return _finish(fold_blocks((x,), block, step, zeros_pair((dx, dx), acc_dtype)), compensated)


def column_cosine(g_tt, g_tx, g_xx):
    """The clip-dissection cosine covariances from raw sums (SPEC.md).

    C_AB = Âᵀ B̂ / sqrt(d_A d_B) with Â the column-L2-normalised A; given
    the raw sums G_AB = Aᵀ B this is G_AB / (‖a_·‖ ‖b_·‖ᵀ) / sqrt(d_A d_B).
    """
    nt = jnp.sqrt(jnp.diagonal(g_tt))
    nx = jnp.sqrt(jnp.diagonal(g_xx))
    dt, dx = g_tt.shape[0], g_xx.shape[0]
    c_tt = g_tt / jnp.outer(nt, nt) / dt
    c_tx = g_tx / jnp.outer(nt, nx) / np.sqrt(dt * dx)
    c_xx = g_xx / jnp.outer(nx, nx) / dx
    return c_tt, c_tx, c_xx


def joint_covariances(
    texts: jax.Array,
    images: jax.Array,
    fmap: FeatureMap,
    omega: jax.Array | None = None,
    *,
    block_size: int | None = None,
    feature_dtype=jnp.float32,
    acc_dtype=jnp.float64,
    backend: str = "jax",
) -> Covariances:
    """C_TT, C_TX, C_XX of paired embeddings, accumulated over row blocks.

    Args:
      texts: ``[n, d_t]``; images: ``[n, d_x]`` (row i of each belong together).
      fmap: the feature map (``FeatureMap("cosine")``, ``FeatureMap("rff", D)``).
      omega: ``[d, D]`` RFF frequencies (rff only).
      block_size: rows per block (default: ≈16M feature numbers per block;
        all rows in one call for the cosine/identity map on ``"ffi"``, whose
        core normalises, packs, chunks and threads internally).
      feature_dtype: dtype of features and block products.
      acc_dtype: dtype of the accumulators (float64, or float32 compensated).
      backend: ``"jax"`` or ``"ffi"``.

    Returns:
      :class:`Covariances` (divided by n).
    """
    n = texts.shape[0]
    width = fmap.dim(texts.shape[1]) + fmap.dim(images.shape[1])
    if block_size is None and backend == "ffi" and fmap.kind in ("cosine", "identity") \
            and jnp.dtype(acc_dtype) == jnp.float64:
        # the packed core chunks and threads internally: one call, no XLA slices
        block = max(n, 1)
    else:
        block = int(block_size or default_block_size(n, width))
    tt, tx, xx = joint_sums(
        texts, images, omega, fmap=fmap, block=block,
        feature_dtype=jnp.dtype(feature_dtype), acc_dtype=jnp.dtype(acc_dtype), backend=backend,
    )
    return Covariances(tt / n, tx / n, xx / n)


def feature_covariance(
    x: jax.Array,
    fmap: FeatureMap,
    omega: jax.Array | None = None,
    *,
    block_size: int | None = None,
    feature_dtype=jnp.float32,
    acc_dtype=jnp.float64,
    backend: str = "jax",
) -> jax.Array:
    """C = Φᵀ Φ / n of one set ``x: [n, d]``, accumulated over row blocks."""
    n = x.shape[0]
    block = int(block_size or default_block_size(n, fmap.dim(x.shape[1])))
    g = single_sums(
        x, omega, fmap=fmap, block=block,
        feature_dtype=jnp.dtype(feature_dtype), acc_dtype=jnp.dtype(acc_dtype), backend=backend,
    )
    return g / n


@functools.partial(jax.jit, static_argnames=("kind", "fmap", "normalize", "feature_dtype", "acc_dtype", "backend"))
def dual_gram_jit(x, omega, sigma, *, kind, fmap, normalize, feature_dtype, acc_dtype, backend):
    """:func:`dual_gram` with its options as static keywords (``kind``: ``"exact"``, ``"colcos"`` or
    ``"features"``), for callers composing it under their own ``jit``."""
    n, d = x.shape
    if kind == "exact":
        xa = x.astype(acc_dtype)
        if normalize:
            xa = xa / jnp.linalg.norm(xa, axis=1, keepdims=True)
        return gaussian_kernel(xa, xa, sigma) / n
    if kind == "colcos":
        xa = x.astype(acc_dtype)
        phi_t = (xa / jnp.linalg.norm(xa, axis=0, keepdims=True) * np.sqrt(n / d)).T
    elif fmap.kind == "rff":
        # Φᵀ formed directly ([2D, n], rows contiguous): no transpose copy.
        wide = jnp.promote_types(feature_dtype, acc_dtype)  # the phase in the wide dtype (block_features)
        xf = x.astype(wide)
        if fmap.normalize:
            xf = xf / jnp.linalg.norm(xf, axis=1, keepdims=True)
        proj_t = jnp.dot(omega.astype(wide).T, xf.T, precision=_HI)
        scale = jnp.asarray(1.0 / np.sqrt(omega.shape[1]), wide)
        phi_t = (jnp.concatenate([jnp.cos(proj_t), jnp.sin(proj_t)], axis=0) * scale).astype(feature_dtype)
    else:
        phi_t = features(x.astype(feature_dtype), fmap, omega).T
    if backend == "ffi":
        # Φ Φᵀ = (Φᵀ)ᵀ (Φᵀ): the compiled syrk on the transposed features
        # (float32 features: float32 sub-blocks summed in float64).
        return _ffi.gram_accumulate(jnp.zeros((n, n), acc_dtype), phi_t) / n
    return jnp.dot(phi_t.T, phi_t, precision=_HI).astype(acc_dtype) / n


def dual_gram(
    x: jax.Array,
    fmap: FeatureMap | None,
    omega: jax.Array | None = None,
    *,
    sigma: float | None = None,
    column_cosine: bool = False,
    normalize: bool = False,
    feature_dtype=jnp.float64,
    acc_dtype=jnp.float64,
    backend: str = "jax",
) -> jax.Array:
    """The dual Gram matrix K = Φ Φᵀ / n of one set ``x: [n, d]`` → ``[n, n]``.

    Args:
      fmap: the feature map, or ``None`` for the exact Gaussian kernel
        k(x_i, x_j) / n with bandwidth ``sigma``.
      column_cosine: the clip-dissection cosine convention (Φ = the
        column-normalised x scaled so that Φᵀ Φ / n = x̂ᵀ x̂ / d).
      normalize: L2-normalise rows first.
    """
    kind = "exact" if fmap is None else ("colcos" if column_cosine else "features")
    return dual_gram_jit(
        x, omega, None if sigma is None else jnp.asarray(sigma, acc_dtype), kind=kind, fmap=fmap,
        normalize=bool(normalize), feature_dtype=jnp.dtype(feature_dtype), acc_dtype=jnp.dtype(acc_dtype),
        backend=backend,
    )
