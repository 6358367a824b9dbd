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
``syrk`` of Z = [Φ_T | Φ_X] accumulated in float64, see ``_ffi.py``).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .kernels import FeatureMap, features, gaussian_kernel

__all__ = [
    "Covariances",
    "joint_covariances",
    "feature_covariance",
    "default_block_size",
    "column_cosine",
    "dual_gram",
    "stream_sums",
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


def default_block_size(n: int, width: int, *, budget: int = 1 << 24) -> int:
    """Rows per block so one block of features holds ≈ ``budget`` numbers."""
    b = max(256, min(65536, budget // max(width, 1)))
    return int(max(1, min(b, n)))


# ---------------------------------------------------------------- accumulation
def _kahan_add(acc: tuple[jax.Array, jax.Array], term: jax.Array):
    """Compensated ``acc + term`` (Kahan); ``acc = (sum, compensation)``."""
    s, c = acc
    y = term.astype(s.dtype) - c
    t = s + y
    c = (t - s) - y
    return t, c


def _add(acc, term, compensated: bool):
    if compensated:
        return _kahan_add(acc, term)
    return acc[0] + term.astype(acc[0].dtype), acc[1]


def _fold_blocks(arrays: tuple[jax.Array, ...], block: int, fn: Callable, init):
    """``fn(carry, *row_blocks)`` over consecutive row blocks of ``arrays``.

    Full blocks run in a ``fori_loop`` on dynamic slices (one trace, no
    padded copy of the input); the remainder block is handled once, statically.
    """
    n = arrays[0].shape[0]
    nb, rem = divmod(n, block)

    def body(i, carry):
        blocks = [lax.dynamic_slice_in_dim(a, i * block, block, axis=0) for a in arrays]
        return fn(carry, *blocks)

    carry = lax.fori_loop(0, nb, body, init) if nb > 0 else init
    if rem:
        carry = fn(carry, *[a[nb * block :] for a in arrays])
    return carry


def _gram_ffi(g, z):
    from . import _ffi

    return _ffi.gram_accumulate(g, z)


@functools.partial(
    jax.jit, static_argnames=("fmap", "block", "feature_dtype", "acc_dtype", "backend")
)
def _joint_sums(t, x, omega, *, fmap, block, feature_dtype, acc_dtype, backend):
    """Unnormalised Σ φ(t)ᵀφ(t), Σ φ(t)ᵀφ(x), Σ φ(x)ᵀφ(x) over all rows."""
    dt, dx = fmap.dim(t.shape[1]), fmap.dim(x.shape[1])
    compensated = jnp.dtype(acc_dtype) == jnp.float32

    def feats(a):
        return features(a.astype(feature_dtype), fmap, omega)

    if backend == "ffi":
        width = dt + dx
        init = (jnp.zeros((width, width), acc_dtype), jnp.zeros((width, width), acc_dtype))
        packed = fmap.kind in ("cosine", "identity")

        def step(carry, tb, xb):
            if packed:  # normalise + concatenate inside the compiled core's chunk scratch
                from . import _ffi

                tb, xb = tb.astype(feature_dtype), xb.astype(feature_dtype)
                norm = fmap.kind == "cosine"
                if compensated:
                    return _kahan_add(carry, _ffi.joint_gram_accumulate(jnp.zeros_like(carry[0]), tb, xb,
                                                                        normalize=norm))
                return _ffi.joint_gram_accumulate(carry[0], tb, xb, normalize=norm), carry[1]
            z = jnp.concatenate([feats(tb), feats(xb)], axis=1)
            if compensated:
                return _kahan_add(carry, _gram_ffi(jnp.zeros_like(carry[0]), z))
            return _gram_ffi(carry[0], z), carry[1]

        g, c = _fold_blocks((t, x), block, step, init)
        g = g - c if compensated else g
        return g[:dt, :dt], g[:dt, dt:], g[dt:, dt:]

    zeros = lambda a, b: (jnp.zeros((a, b), acc_dtype), jnp.zeros((a, b), acc_dtype))
    init = (zeros(dt, dt), zeros(dt, dx), zeros(dx, dx))

    def step(carry, tb, xb):
        pt, px = feats(tb), feats(xb)
        return (
            _add(carry[0], jnp.dot(pt.T, pt, precision=_HI), compensated),
            _add(carry[1], jnp.dot(pt.T, px, precision=_HI), compensated),
            _add(carry[2], jnp.dot(px.T, px, precision=_HI), compensated),
        )

    tt, tx, xx = _fold_blocks((t, x), block, step, init)
    fix = (lambda a: a[0] - a[1]) if compensated else (lambda a: a[0])
    return fix(tt), fix(tx), fix(xx)


@functools.partial(
    jax.jit, static_argnames=("fmap", "block", "feature_dtype", "acc_dtype", "backend")
)
def _single_sums(x, omega, *, fmap, block, feature_dtype, acc_dtype, backend):
    dx = fmap.dim(x.shape[1])
    compensated = jnp.dtype(acc_dtype) == jnp.float32
    init = (jnp.zeros((dx, dx), acc_dtype), jnp.zeros((dx, dx), acc_dtype))

    def step(carry, xb):
        px = features(xb.astype(feature_dtype), fmap, omega)
        if backend == "ffi":
            if compensated:
                return _kahan_add(carry, _gram_ffi(jnp.zeros_like(carry[0]), px))
            return _gram_ffi(carry[0], px), carry[1]
        return _add(carry, jnp.dot(px.T, px, precision=_HI), compensated)

    g, c = _fold_blocks((x,), block, step, init)
    return g - c if compensated else g


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
    tt, tx, xx = _joint_sums(
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
    g = _single_sums(
        x, omega, fmap=fmap, block=block,
        feature_dtype=jnp.dtype(feature_dtype), acc_dtype=jnp.dtype(acc_dtype), backend=backend,
    )
    return g / n


@functools.partial(jax.jit, static_argnames=("kind", "fmap", "normalize", "feature_dtype", "acc_dtype", "backend"))
def _dual_gram(x, omega, sigma, *, kind, fmap, normalize, feature_dtype, acc_dtype, backend):
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
        xf = x.astype(feature_dtype)
        if fmap.normalize:
            xf = xf / jnp.linalg.norm(xf, axis=1, keepdims=True)
        proj_t = jnp.dot(omega.astype(feature_dtype).T, xf.T, precision=_HI)
        scale = jnp.asarray(1.0 / np.sqrt(omega.shape[1]), feature_dtype)
        phi_t = jnp.concatenate([jnp.cos(proj_t), jnp.sin(proj_t)], axis=0) * scale
    else:
        phi_t = features(x.astype(feature_dtype), fmap, omega).T
    if backend == "ffi":
        # Φ Φᵀ = (Φᵀ)ᵀ (Φᵀ): the compiled syrk on the transposed features
        # (float32 features: float32 sub-blocks summed in float64).
        return _gram_ffi(jnp.zeros((n, n), acc_dtype), phi_t) / n
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
    return _dual_gram(
        x, omega, None if sigma is None else jnp.asarray(sigma, acc_dtype), kind=kind, fmap=fmap,
        normalize=bool(normalize), feature_dtype=jnp.dtype(feature_dtype), acc_dtype=jnp.dtype(acc_dtype),
        backend=backend,
    )


def stream_sums(
    blocks,
    fmap: FeatureMap,
    omega: jax.Array | None = None,
    *,
    paired: bool = True,
    feature_dtype=jnp.float64,
    acc_dtype=jnp.float64,
    backend: str = "jax",
    progress=None,
    mesh=None,
):
    """Unnormalised second moments over an iterator of host blocks.

    Each block (``clipcore.sources.Block``: images ``[b, d_x]``, texts
    ``[b, d_t]``) goes through the same compiled kernel as the in-memory
    path; all blocks but the last share one shape, so it compiles once (twice
    with a ragged tail).  At most two blocks are in flight: the host never
    runs ahead of the device by more than one block, which bounds memory.

    Args:
      blocks: iterable of blocks; ``paired=False`` uses only ``images``.
      progress: an object with ``update(rows)`` (e.g. a tqdm bar) or None.
      mesh: a :class:`jax.sharding.Mesh`: each block's rows are sharded over
        its devices (:mod:`clipcore.sharding`; one psum per block).

    Returns:
      ``(sums, n)``: ``(Σφ(t)ᵀφ(t), Σφ(t)ᵀφ(x), Σφ(x)ᵀφ(x))`` (paired) or
      ``Σφ(x)ᵀφ(x)``, and the number of rows seen.
    """
    opts = dict(fmap=fmap, feature_dtype=jnp.dtype(feature_dtype), acc_dtype=jnp.dtype(acc_dtype), backend=backend)
    if (paired and mesh is None and backend == "ffi" and fmap.kind in ("cosine", "identity")
            and jnp.dtype(acc_dtype) == jnp.float64 and _host_core() is not None):
        return _stream_sums_host(blocks, fmap, jnp.dtype(feature_dtype), progress)
    acc, n, previous = None, 0, None
    for blk in blocks:
        b = blk.images.shape[0]
        if mesh is not None:
            from . import sharding

            args = (blk.texts, blk.images) if paired else (blk.images,)
            sums, _ = (sharding.joint_sums if paired else sharding.single_sums)(*args, fmap, omega, mesh=mesh, **{
                k: v for k, v in opts.items() if k != "fmap"})
        elif paired:
            sums = _joint_sums(blk.texts, blk.images, omega, block=b, **opts)
        else:
            sums = _single_sums(blk.images, omega, block=b, **opts)
        acc = sums if acc is None else _tree_add(acc, sums)
        if previous is not None:
            jax.block_until_ready(previous)  # keep at most two blocks in flight
        previous = acc
        n += b
        if progress is not None:
            progress.update(b)
    if acc is None:
        raise ValueError("images: no rows to accumulate")
    return acc, n


def _host_core():
    """The compiled core's host entry (``joint_gram_host``), or None."""
    from . import _ffi

    return getattr(_ffi._ext, "joint_gram_host", None) if _ffi.available() else None


def _stream_sums_host(blocks, fmap, feature_dtype, progress):
    """Cosine / identity sums of host blocks straight through the compiled core.

    Host blocks (files, large NumPy arrays) need no device: the packed Gram
    core (the same C++ as ``clipcore_joint_gram_accumulate``, with its own
    threads) reads them where they are, so no device copy, no per-block
    dispatch and no per-block (D×D) additions. The prefetch thread of the
    source keeps reading the next block meanwhile (the GIL is released).
    """
    core = _host_core()
    dt = np.dtype(feature_dtype)
    G, n = None, 0
    for blk in blocks:
        t = np.ascontiguousarray(blk.texts, dtype=dt)
        x = np.ascontiguousarray(blk.images, dtype=dt)
        if G is None:
            G = np.zeros((t.shape[1] + x.shape[1],) * 2)
        core(G, t, x, fmap.kind == "cosine")
        n += x.shape[0]
        if progress is not None:
            progress.update(x.shape[0])
    if G is None:
        raise ValueError("images: no rows to accumulate")
    dt_ = t.shape[1]
    with jax.enable_x64(True):
        Gj = jnp.asarray(G)
        return (Gj[:dt_, :dt_], Gj[:dt_, dt_:], Gj[dt_:, dt_:]), n


@jax.jit
def _tree_add(a, b):
    return jax.tree.map(jnp.add, a, b)
