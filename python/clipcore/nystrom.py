"""Gaussian-kernel scores at large n: Nyström features and the exact RKE, streamed.

SPEC.md, "Large n". With the Gaussian kernel k(x, y) = exp(−‖x − y‖² / (2σ²))
and m landmarks L (rows of the data, chosen by :func:`select_landmarks`),
the Nyström feature map is

    Φ(x) = k(x, L) W,    W = U_r Λ_r^{-1/2}        ([m, r], float64)

where K_mm = k(L, L) = U Λ Uᵀ and r ≤ m keeps the eigenvalues above
``rtol · λ_max`` (default rtol = eps(float32) ≈ 1.19e-7, whatever the compute
dtype). Then Φ(x)·Φ(y) = k(x, L) K_mm⁺ k(L, y) is the Nyström kernel, and
the covariance C = Σ Φ(x_i)ᵀ Φ(x_i) / n ([r, r]) has the non-zero spectrum
of the Nyström approximation of K / n. Its trace tr C ≤ 1 is the captured
part of tr(K)/n = 1; 1 − tr C is the missing mass (reported by
:func:`captured_trace`; turning it into entropy estimates is the caller's
choice, SPEC.md).

Accumulating C streams the rows in blocks and never holds more than an
[m, m] matrix. Two strategies give the same matrix:

* ``"kernel"``: M = Σ k(B, L)ᵀ k(B, L) with float64 products, then
  C = Wᵀ M W / n once. n·m² flops in float64 after the kernel tiles. The
  default on CPU with the compiled core (fastest measured, and the most
  accurate: M is exact to float64 rounding, see tests/test_nystrom.py).
* ``"whiten"``: Φ_B = k(B, L) W per block (float32 for float32 inputs),
  then Φ_Bᵀ Φ_B summed in float64. 2·n·m·r + n·r² flops; float32-safe
  because the whitening happens before the accumulation. The default of
  the pure-JAX backend (no float64 GEMM needed).

Accumulating k(B, L)ᵀ k(B, L) in *float32* and whitening afterwards is
wrong (the whitening amplifies float32 rounding by 1/λ_min: trace 1.08 where
the truth is 0.99999 on tests' clustered data); neither strategy does that.

The exact RKE (Rényi-2) needs no landmarks: exp(H₂) = n² / ‖K‖_F², with
‖K‖_F² = Σ_ij k(x_i, x_j)² streamed over symmetric tiles
(:func:`rke_streamed`). For the cosine kernel k = cos, ‖K‖_F² = ‖X̂ᵀ X̂‖_F²
(the squared entries are cos²): the d×d covariance, no tiles at all.

Backends: ``"ffi"`` (the compiled core, CPU; see :mod:`clipcore._ffi`), ``"jax"``
(the pure-JAX twins), ``"auto"`` (ffi when available).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _ffi
from ._blocks import fold_blocks
from ._hostmem import one_blas_thread
from ._options import resolve_backend, x64
from ._validate import check_choice, check_rows, check_sigma
from .covariance import Covariances
from .kernels import gaussian_tile, gaussian_tile_host
from .landmarks import LANDMARK_METHODS, Landmarks, check_float_rows, default_pool, select_landmarks

__all__ = [
    "Landmarks",
    "LANDMARK_METHODS",
    "select_landmarks",
    "default_pool",
    "NystromMap",
    "nystrom_map",
    "nystrom_features",
    "nystrom_init",
    "nystrom_update",
    "nystrom_finalize",
    "host_update_available",
    "nystrom_update_host",
    "finalize_host",
    "symmetrise",
    "nystrom_gram",
    "nystrom_covariance",
    "nystrom_joint_gram",
    "nystrom_joint_covariances",
    "nystrom_accumulator",
    "finalize_gram",
    "resolve_strategy",
    "default_block",
    "cast_map",
    "captured_trace",
    "kernel_sq_frobenius",
    "sq_frobenius_panels",
    "StreamedRKE",
    "rke_streamed",
    "DEFAULT_RTOL",
    "STRATEGIES",
]

#: Default relative eigenvalue cutoff of the whitening: eps(float32).
DEFAULT_RTOL = float(np.finfo(np.float32).eps)

STRATEGIES = ("auto", "kernel", "whiten")
_HI = lax.Precision.HIGHEST


def resolve_strategy(strategy: str, backend: str) -> str:
    """``"auto"``: ``"kernel"`` on the compiled core (float64 products), ``"whiten"`` on pure JAX."""
    check_choice(strategy, "strategy", STRATEGIES)
    if strategy == "auto":
        return "kernel" if backend == "ffi" else "whiten"
    return strategy


# ============================================================== the feature map


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class NystromMap:
    """The Nyström feature map Φ(x) = k(x, L) W of the Gaussian kernel (a pytree).

    Attributes:
      landmarks: ``[m, d]`` L.
      sigma: 0-d bandwidth σ (float64).
      whitening: ``[m, r]`` float64 W = U_r Λ_r^{-1/2} (K_mm = U Λ Uᵀ), columns
        by decreasing eigenvalue.
      eigenvalues: ``[r]`` float64 kept eigenvalues Λ_r of K_mm, descending.
      rtol: the relative cutoff used (static).
      num_dropped: eigen-directions of K_mm below the cutoff, m − r (static).
    """

    landmarks: Any
    sigma: Any
    whitening: Any
    eigenvalues: Any
    rtol: float = DEFAULT_RTOL
    num_dropped: int = 0

    @property
    def num_landmarks(self) -> int:
        return int(self.landmarks.shape[0])

    @property
    def rank(self) -> int:
        """r, the feature dimension."""
        return int(self.whitening.shape[1])

    def tree_flatten(self):
        return (self.landmarks, self.sigma, self.whitening, self.eigenvalues), (self.rtol, self.num_dropped)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, *aux)


def nystrom_map(landmarks: Any, sigma: float, *, rtol: float | None = None) -> NystromMap:
    """Build the Nyström map of the Gaussian kernel from landmarks.

    K_mm = k(L, L) is formed and eigendecomposed in float64 NumPy (its
    diagonal set to exactly 1); eigen-directions with λ ≤ rtol · λ_max are
    dropped (their contribution to the captured trace is ≈ λ/m each, so the
    loss is bounded by rtol · λ_max · (m − r) / m, while keeping them would
    amplify float32 rounding of k(x, L) by 1/√λ).

    Args:
      landmarks: ``[m, d]`` array or :class:`Landmarks` (m ≥ 0).
      sigma: bandwidth σ > 0.
      rtol: relative cutoff (default :data:`DEFAULT_RTOL` = eps(float32),
        whatever the compute dtype, so float32 and float64 runs keep the same
        directions).

    Returns:
      :class:`NystromMap` (whitening and eigenvalues float64 NumPy arrays,
      landmarks in their own dtype).
    """
    pts = landmarks.points if isinstance(landmarks, Landmarks) else landmarks
    pts = pts if isinstance(pts, jax.Array) else np.asarray(pts)
    check_float_rows(pts, "landmarks")
    sig = check_sigma(sigma, required=True)
    rtol = DEFAULT_RTOL if rtol is None else float(rtol)
    if not (np.isfinite(rtol) and 0 <= rtol < 1):
        raise ValueError(f"rtol: expected a number in [0, 1), got {rtol}")
    L64 = np.asarray(pts, dtype=np.float64)
    check_rows(L64, "landmarks")
    m = L64.shape[0]
    if m == 0:
        w, W = np.zeros((0,)), np.zeros((0, 0))
        dropped = 0
    else:
        K = gaussian_tile_host(L64, L64, 1.0 / (2.0 * sig * sig))
        np.fill_diagonal(K, 1.0)
        # NumPy's LAPACK syevd (its eigenvector signs are the map's convention) on one BLAS thread: threaded,
        # its threads spin on every small BLAS-2 call and, on a shared 2-core machine, m = 2000 took 17-22 s
        # instead of about 1 s (2026-11-23)
        with one_blas_thread():
            lam, U = np.linalg.eigh(K)
        del K
        lam, U = lam[::-1], U[:, ::-1]
        keep = lam > rtol * lam[0]
        w = lam[keep]
        W = np.ascontiguousarray(U[:, keep] / np.sqrt(w)[None, :])
        dropped = int(m - keep.sum())
    return NystromMap(pts, np.float64(sig), W, np.ascontiguousarray(w), rtol, dropped)


def cast_map(nmap: NystromMap, dtype):
    """(L, W, σ) for computing in ``dtype`` (σ stays float64)."""
    return (
        jnp.asarray(nmap.landmarks).astype(dtype),
        jnp.asarray(nmap.whitening).astype(dtype),
        jnp.asarray(nmap.sigma, jnp.float64),
    )


def nystrom_features(x: jax.Array, nmap: NystromMap, *, dtype=None) -> jax.Array:
    """Φ(x) = k(x, L) W: ``[n, d] → [n, r]`` in ``dtype`` (default x's dtype).

    Pure JAX (jit-able); for large n use the accumulating functions instead
    of materialising ``[n, r]``.
    """
    with x64():
        x = jnp.asarray(x)
        check_float_rows(x)
        dt = jnp.dtype(dtype) if dtype is not None else x.dtype
        L, W, sig = cast_map(nmap, dt)
        return _features(x.astype(dt), L, W, sig)


@jax.jit
def _features(x, L, W, sig):
    gamma = 1.0 / (2.0 * sig.astype(x.dtype) ** 2)
    return jnp.dot(gaussian_tile(x, L, gamma), W, precision=_HI)


# ============================================================== accumulation


def nystrom_init(nmap: NystromMap, *, paired: bool = False, strategy: str = "auto", backend: str = "auto") -> jax.Array:
    """The zero float64 accumulator for :func:`nystrom_update`.

    ``[R, R]`` with R = (2 if paired else 1) · (m for ``"kernel"``, r for
    ``"whiten"``).
    """
    strat = resolve_strategy(strategy, resolve_backend(backend))
    per = nmap.num_landmarks if strat == "kernel" else nmap.rank
    R = (2 if paired else 1) * per
    with x64():
        return jnp.zeros((R, R), jnp.float64)


@functools.partial(jax.jit, static_argnames=("strategy", "backend"), donate_argnums=0)
def _update(G, B, B2, L, W, sig, *, strategy, backend):
    if backend == "ffi":
        return _ffi.nystrom_accumulate(G, B, L, W if strategy == "whiten" else None, sig, B2=B2)
    return _ffi.nystrom_accumulate_jax(G, B, L, W if strategy == "whiten" else None, sig, B2=B2)


def nystrom_update(
    G: jax.Array,
    block: jax.Array,
    nmap: NystromMap,
    *,
    images: jax.Array | None = None,
    strategy: str = "auto",
    backend: str = "auto",
    dtype=None,
) -> jax.Array:
    """Fold one row block into the accumulator (the streaming step).

    ``G + Zᵀ Z`` with Z = Φ(block) (or k(block, L) for ``"kernel"``), or
    Z = [Φ(block) | Φ(images)] when ``images`` (paired with ``block`` = the
    texts) is given. G is donated (updated in place).

    Args:
      G: accumulator from :func:`nystrom_init` (same strategy/paired).
      block: ``[b, d]`` rows (the texts when paired).
      images: ``[b, d]`` image rows paired with ``block``.
      dtype: compute dtype of the kernel tiles (default block's dtype).
    """
    be = resolve_backend(backend)
    strat = resolve_strategy(strategy, be)
    with x64():
        B = jnp.asarray(block)
        check_float_rows(B, "block")
        dt = jnp.dtype(dtype) if dtype is not None else B.dtype
        B2 = None
        if images is not None:
            B2 = jnp.asarray(images)
            check_float_rows(B2, "images")
            if B2.shape != B.shape:
                raise ValueError(f"images: shape {list(B2.shape)} differs from block's {list(B.shape)}")
            B2 = B2.astype(dt)
        L, W, sig = cast_map(nmap, dt)
        return _update(G, B.astype(dt), B2, L, W, sig, strategy=strat, backend=be)


@functools.partial(jax.jit, static_argnames=("strategy", "paired"))
def finalize_gram(G, W, *, strategy, paired):
    """The jitted finalisation of :func:`nystrom_finalize` on arrays (``W``: ``[m, r]`` float64)."""
    if strategy == "whiten":
        return 0.5 * (G + G.T)
    def wmw(M):
        return jnp.dot(W.T, jnp.dot(M, W, precision=_HI), precision=_HI)

    if paired:  # block by block: no [2m, 2r] block-diagonal W, no [2m, 2r] intermediate
        m = W.shape[0]
        tt, tx, xx = wmw(G[:m, :m]), wmw(G[:m, m:]), wmw(G[m:, m:])
        out = jnp.block([[tt, tx], [tx.T, xx]])
    else:
        out = wmw(G)
    return 0.5 * (out + out.T)


def host_update_available(backend: str = "auto") -> bool:
    """Whether :func:`nystrom_update_host` can run: the compiled core on a CPU default backend."""
    return (resolve_backend(backend) == "ffi" and jax.default_backend() == "cpu"
            and _ffi.host_entry_available("nystrom_host"))


def nystrom_update_host(G: np.ndarray, x: Any, nmap: NystromMap, *, images: Any = None, dtype=None,
                        landmarks: np.ndarray | None = None, num_threads: int = 0) -> np.ndarray:
    """In place on the host: G += Σ k(B, L)ᵀ k(B, L) over the rows of ``x`` (kernel form, float64 sums).

    The compiled core of :func:`nystrom_update` (strategy ``"kernel"``) on
    NumPy rows: no device copy, no dispatch, the GIL released; the streamed
    and in-memory Nyström passes use it on CPU (peak memory: the rows you
    pass, G, and the core's per-thread [R, R] float64 accumulators). Finish
    with :func:`nystrom_finalize` (``strategy="kernel"``).

    Args:
      G: ``[R, R]`` float64, C-contiguous, updated in place; R = m, or 2m
        with ``images`` (Z = [k(x, L) | k(images, L)]).
      x: ``[b, d]`` rows (the texts when ``images`` is given).
      nmap: the :class:`NystromMap` (its landmarks and σ).
      images: ``[b, d]`` paired rows, or None.
      dtype: compute dtype of the rows and landmarks (float32 or float64;
        default x's); kernel tiles in it, products and sums in float64.
      landmarks: the map's landmarks already cast to ``dtype`` (C-contiguous),
        to skip the cast on every call.
      num_threads: core threads (0: the CPUs this process may use).

    Returns:
      G.
    """
    dt = np.dtype(dtype) if dtype is not None else np.asarray(x).dtype
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype: float32 or float64, got {dt}")
    L = landmarks if landmarks is not None else np.ascontiguousarray(np.asarray(nmap.landmarks), dt)
    a = np.ascontiguousarray(x, dt)
    b = None if images is None else np.ascontiguousarray(images, dt)
    _ffi.nystrom_host(G, a, b, L, float(nmap.sigma), int(num_threads))
    return G


def finalize_host(M: np.ndarray, nmap: NystromMap, *, paired: bool = False) -> np.ndarray:
    """:func:`nystrom_finalize` (kernel form) in float64 NumPy, for the host accumulator of
    :func:`nystrom_update_host`: Wᵀ M W (per block when paired), symmetrised.

    Consumes M: the result ``[r, r]`` (``[2r, 2r]`` paired) is written into
    M's own storage (a C-contiguous view of its first elements), so beyond M
    only one ``[m, r]`` and one ``[r, r]`` temporary exist at a time.
    """
    W = np.asarray(nmap.whitening, np.float64)
    m, r = W.shape
    if not (M.flags.c_contiguous and M.dtype == np.float64):
        raise ValueError(f"finalize_host: M must be a C-contiguous float64 array, got {M.dtype} {M.shape}")

    def wmw(A):
        AW = A @ W
        return W.T @ AW

    if not paired:
        t = wmw(M)
        out = M.reshape(-1)[: r * r].reshape(r, r)
        out[...] = t
        del t
    else:
        # Output blocks go to the top-left [2r, 2r] corner of M as soon as they are computed: with r ≤ m a
        # block's target never overlaps the input blocks still to be read (texts-texts M[:m, :m] → rows
        # and columns < r; texts-images M[:m, m:] → rows < r, columns r..2r and its transpose; images-images
        # M[m:, m:] last).
        t = wmw(M[:m, :m])
        M[:r, :r] = t
        t = wmw(M[:m, m:])
        M[:r, r:2 * r] = t
        M[r:2 * r, :r] = t.T
        t = wmw(M[m:, m:])
        M[r:2 * r, r:2 * r] = t
        del t
        out = _compact_corner(M, 2 * r)
    symmetrise(out)
    return out


def _compact_corner(M: np.ndarray, k: int) -> np.ndarray:
    """M[:k, :k] moved to the front of M's buffer as a C-contiguous [k, k] view (rows copied forward)."""
    flat = M.reshape(-1)
    n = M.shape[1]
    if k != n:
        for i in range(k):  # row i moves from offset i·n to i·k ≤ i·n: rows not yet moved are never overwritten
            flat[i * k:(i + 1) * k] = M[i, :k]  # (NumPy buffers an assignment whose source and target overlap)
    return flat[: k * k].reshape(k, k)


def symmetrise(a: np.ndarray, block: int = 256) -> None:
    """a ← (a + aᵀ)/2 in place, by row blocks (temporaries of block × n, not n × n)."""
    n = a.shape[0]
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        d = a[i0:i1, i0:i1]
        d[...] = 0.5 * (d + d.T)
        up, lo = a[i0:i1, i1:], a[i1:, i0:i1]
        s = up + lo.T
        s *= 0.5
        up[...] = s
        lo[...] = s.T


def nystrom_finalize(
    G: jax.Array, nmap: NystromMap, *, paired: bool = False, strategy: str = "auto", backend: str = "auto"
) -> jax.Array:
    """The whitened Gram Σ Zᵀ Z (``[r, r]``, or ``[2r, 2r]`` paired) from the accumulator.

    ``"kernel"``: Wᵀ M W (block-diagonal W when paired), float64.
    ``"whiten"``: G itself (symmetrised).
    """
    strat = resolve_strategy(strategy, resolve_backend(backend))
    with x64():
        return finalize_gram(G, jnp.asarray(nmap.whitening, jnp.float64), strategy=strat, paired=bool(paired))


def default_block(n: int, backend: str, m: int) -> int:
    """Rows per accumulation call: all rows on the compiled core (it chunks and threads itself),
    ≈ 32 MB float32 kernel tiles on pure JAX."""
    if backend == "ffi":
        return max(n, 1)  # one call: the core chunks and threads internally
    return int(max(256, min(n, (1 << 23) // max(m, 1))))  # ≈ 32 MB float32 tile


def nystrom_accumulator(rows: tuple, L, W, sig, *, block: int, strategy: str, backend: str,
                        num_threads: int | None = None) -> jax.Array:
    """The unfinalised accumulator over ``rows`` (``(x,)`` or ``(texts, images)``), folded over blocks
    of ``block`` rows (traceable; the per-device body of the sharded pass too): Σ Zᵀ Z with Z the
    whitened features (``"whiten"``) or the kernel tiles (``"kernel"``, whitened by
    :func:`nystrom_finalize`)."""
    paired = len(rows) == 2
    per = L.shape[0] if strategy == "kernel" else W.shape[1]
    R = (2 if paired else 1) * per
    Wk = W if strategy == "whiten" else None

    def step(g, *blocks):
        b2 = blocks[1] if paired else None
        if backend == "ffi":
            return _ffi.nystrom_accumulate(g, blocks[0], L, Wk, sig, B2=b2, num_threads=num_threads)
        return _ffi.nystrom_accumulate_jax(g, blocks[0], L, Wk, sig, B2=b2)

    return fold_blocks(tuple(rows), block, step, jnp.zeros((R, R), jnp.float64))


@functools.partial(jax.jit, static_argnames=("block", "strategy", "backend", "paired"))
def _gram(x, x2, L, W, sig, *, block, strategy, backend, paired):
    rows = (x, x2) if paired else (x,)
    G = nystrom_accumulator(rows, L, W, sig, block=block, strategy=strategy, backend=backend)
    return finalize_gram(G, W.astype(jnp.float64), strategy=strategy, paired=paired)


def _gram_entry(x, x2, nmap, *, block_size, backend, strategy, dtype):
    be = resolve_backend(backend)
    strat = resolve_strategy(strategy, be)
    with x64():
        x = jnp.asarray(x)
        check_float_rows(x)
        if x2 is not None:
            x2 = jnp.asarray(x2)
            check_float_rows(x2, "images")
            if x2.shape != x.shape:
                raise ValueError(f"images: shape {list(x2.shape)} differs from texts' {list(x.shape)}")
        if x.shape[1] != nmap.landmarks.shape[1]:
            raise ValueError(
                f"x: dimension {x.shape[1]} differs from the landmarks' {nmap.landmarks.shape[1]}"
            )
        dt = jnp.dtype(dtype) if dtype is not None else x.dtype
        n = x.shape[0]
        if block_size is None:
            block = default_block(n, be, nmap.num_landmarks)
        else:
            if isinstance(block_size, bool) or int(block_size) < 1:
                raise ValueError(f"block_size: expected an integer >= 1, got {block_size!r}")
            block = int(block_size)
        L, W, sig = cast_map(nmap, dt)
        W64 = jnp.asarray(nmap.whitening, jnp.float64)
        Wc = W if strat == "whiten" else W64
        return _gram(x.astype(dt), None if x2 is None else x2.astype(dt), L, Wc, sig,
                     block=max(1, min(block, max(n, 1))), strategy=strat, backend=be,
                     paired=x2 is not None), n


def nystrom_gram(
    x: jax.Array,
    nmap: NystromMap,
    *,
    block_size: int | None = None,
    backend: str = "auto",
    strategy: str = "auto",
    dtype=None,
) -> jax.Array:
    """Σ_i Φ(x_i)ᵀ Φ(x_i) over all rows, streamed in blocks: ``[r, r]`` float64.

    Args:
      x: ``[n, d]`` embeddings (float32 stays float32 in the kernel tiles).
      nmap: the map from :func:`nystrom_map`.
      block_size: rows per accumulation call (default: all rows in one call
        for ``"ffi"``, whose core chunks and threads internally; ≈ 32 MB
        kernel tiles for ``"jax"``). The result does not depend on it beyond
        rounding (tests: 3+ block sizes).
      backend: ``"auto"``, ``"ffi"`` or ``"jax"``.
      strategy: ``"auto"`` (``"kernel"`` on ffi, ``"whiten"`` on jax),
        ``"kernel"`` or ``"whiten"`` (see the module docstring).
      dtype: compute dtype of the kernel tiles (default x's dtype).
    """
    g, _ = _gram_entry(x, None, nmap, block_size=block_size, backend=backend, strategy=strategy, dtype=dtype)
    return g


def nystrom_covariance(x: jax.Array, nmap: NystromMap, **kwargs) -> jax.Array:
    """C = Σ Φ(x_i)ᵀ Φ(x_i) / n (``[r, r]`` float64); same options as :func:`nystrom_gram`."""
    g, n = _gram_entry(x, None, nmap, **_gram_kwargs(kwargs))
    with x64():
        return g / max(n, 1)


def nystrom_joint_gram(texts: jax.Array, images: jax.Array, nmap: NystromMap, **kwargs) -> jax.Array:
    """Σ Zᵀ Z with Z = [Φ(texts) | Φ(images)]: ``[2r, 2r]`` float64 (one pass, one syrk per chunk).

    Text and image share the landmarks' kernel map (SPEC.md), so both must
    have the landmarks' dimension. Same options as :func:`nystrom_gram`.
    """
    g, _ = _gram_entry(texts, images, nmap, **_gram_kwargs(kwargs))
    return g


def nystrom_joint_covariances(texts: jax.Array, images: jax.Array, nmap: NystromMap, **kwargs):
    """C_TT, C_TX, C_XX (÷ n, ``[r, r]`` each) of the Nyström features of paired rows.

    Returns:
      :class:`clipcore.covariance.Covariances`.
    """
    g, n = _gram_entry(texts, images, nmap, **_gram_kwargs(kwargs))
    r = nmap.rank
    with x64():
        g = g / max(n, 1)
        return Covariances(g[:r, :r], g[:r, r:], g[r:, r:])


def _gram_kwargs(kwargs):
    allowed = {"block_size", "backend", "strategy", "dtype"}
    bad = set(kwargs) - allowed
    if bad:
        raise TypeError(f"unexpected keyword arguments {sorted(bad)} (allowed: {sorted(allowed)})")
    return dict(block_size=kwargs.get("block_size"), backend=kwargs.get("backend", "auto"),
                strategy=kwargs.get("strategy", "auto"), dtype=kwargs.get("dtype"))


def captured_trace(cov: jax.Array) -> tuple[float, float]:
    """(tr C, 1 − tr C) of a Nyström covariance: captured part of tr(K)/n = 1 and the missing mass."""
    t = float(jnp.trace(cov))
    return t, 1.0 - t


# the exact ‖K‖_F² moved to :mod:`clipcore.frobenius`; its names stay importable from here
from .frobenius import StreamedRKE, kernel_sq_frobenius, rke_streamed, sq_frobenius_panels  # noqa: E402
