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

Backends: ``"ffi"`` (the compiled core, CPU; see ``_ffi.py``), ``"jax"``
(the pure-JAX twins), ``"auto"`` (ffi when available).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _ffi

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
    "nystrom_gram",
    "nystrom_covariance",
    "nystrom_joint_gram",
    "nystrom_joint_covariances",
    "captured_trace",
    "kernel_sq_frobenius",
    "sq_frobenius_panels",
    "StreamedRKE",
    "rke_streamed",
    "DEFAULT_RTOL",
]

#: Default relative eigenvalue cutoff of the whitening: eps(float32).
DEFAULT_RTOL = float(np.finfo(np.float32).eps)

LANDMARK_METHODS = ("uniform", "kmeans++", "pivoted-cholesky")
_STRATEGIES = ("auto", "kernel", "whiten")
_BACKENDS = ("auto", "ffi", "jax")
_HI = lax.Precision.HIGHEST


def _x64():
    """Enable x64 locally when it is off (the whitening and sums are float64)."""
    return contextlib.nullcontext() if jax.config.jax_enable_x64 else jax.enable_x64(True)


def _backend(backend: str) -> str:
    if backend not in _BACKENDS:
        raise ValueError(f"backend: expected one of {_BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "ffi" if _ffi.available() and jax.default_backend() == "cpu" else "jax"
    if backend == "ffi" and not _ffi.available():
        raise RuntimeError(f"backend='ffi': {_ffi.unavailable_reason()}")
    return backend


def _strategy(strategy: str, backend: str) -> str:
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy: expected one of {_STRATEGIES}, got {strategy!r}")
    if strategy == "auto":
        return "kernel" if backend == "ffi" else "whiten"
    return strategy


def _check_sigma(sigma) -> float:
    try:
        v = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(f"sigma: expected a positive number, got {sigma!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"sigma: expected a positive finite number, got {v}")
    return v


def _check_rows(x, name="x") -> None:
    if getattr(x, "ndim", None) != 2:
        raise ValueError(f"{name}: expected a [n, d] array, got shape {list(np.shape(x))}")
    if np.dtype(x.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{name}: dtype must be float32 or float64, got {np.dtype(x.dtype)}")


# ============================================================== landmarks


class Landmarks(NamedTuple):
    """Landmarks chosen from the rows of x (a pytree; None leaves where not applicable).

    Attributes:
      indices: ``[m']`` int64 rows of x (m' ≤ m): sorted for ``"uniform"``,
        in selection order otherwise.
      points: ``[m', d]`` x[indices] (x's dtype).
      method: the selection method.
      residual_trace: pivoted Cholesky only: ``[m']`` Σ of the residual
        kernel diagonal over the candidate pool after each step (tr K = pool
        size before the first).
      captured: pivoted Cholesky only: ``[m']`` 1 − residual_trace / pool,
        the fraction of tr K on the pool the landmarks capture.
      pool_size: rows the selection looked at (n, or a seeded uniform
        subsample of them; see :func:`default_pool`).
    """

    indices: np.ndarray
    points: jax.Array
    method: str
    residual_trace: np.ndarray | None
    captured: np.ndarray | None
    pool_size: int


def default_pool(n: int, m: int, *, budget: int = 1 << 24) -> int:
    """Rows a k-means++ / pivoted-Cholesky selection looks at by default.

    Both hold an ``[pool, m]`` float64 factor or read the pool once per
    landmark, so the pool is capped at ``budget`` numbers (2²⁴: 128 MiB of
    factor): all n rows when n·m ≤ budget, else a seeded uniform subsample
    of max(m, budget // m) rows (8388 rows for m = 2000). The cap was 2²⁵
    until the streamed default call had to fit in 0.5 GB; at n = 10⁴,
    m = 2000 (``bench/accuracy.py``) pools of 16 776, 8388 and 4194 rows
    gave the same entropy errors to 0.1 % (bench/RESULTS.md).
    """
    if n * max(m, 1) <= budget:
        return int(n)
    return int(min(n, max(m, budget // max(m, 1))))


def _pool_indices(n: int, pool: int, rng: np.random.Generator) -> np.ndarray:
    if pool >= n:
        return np.arange(n, dtype=np.int64)
    return np.sort(rng.choice(n, size=pool, replace=False)).astype(np.int64)


@functools.partial(jax.jit, static_argnames=("m",))
def _kmeanspp(x, gamma, key, *, m):
    """D² sampling with the squared RKHS distance 2 − 2k(x, c) to the nearest centre."""
    p = x.shape[0]
    xw = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    norms = jnp.sum(xw * xw, axis=1)
    k0, key = jax.random.split(key)
    first = jax.random.randint(k0, (), 0, p, dtype=jnp.int32)

    floor = float(np.finfo(xw.dtype).eps) * (4.0 + 2.0 * np.sqrt(x.shape[1]))

    def dist_to(c):
        nsum = norms + norms[c]
        sq = nsum - 2.0 * jnp.dot(xw, xw[c], precision=_HI)
        k = jnp.exp(jnp.where(sq > floor * nsum, -gamma * sq, 0.0))
        return jnp.maximum(2.0 - 2.0 * k, 0.0)

    chosen = jnp.full((m,), -1, jnp.int32).at[0].set(first)
    dmin = dist_to(first).at[first].set(0.0)

    def body(i, st):
        chosen, dmin, count, key = st
        key, sub = jax.random.split(key)
        total = jnp.sum(dmin)
        ok = total > 0
        logits = jnp.where(dmin > 0, jnp.log(jnp.where(dmin > 0, dmin, 1.0)), -jnp.inf)
        c = jax.random.categorical(sub, jnp.where(ok, logits, 0.0)).astype(jnp.int32)
        new_d = jnp.minimum(dmin, dist_to(c)).at[c].set(0.0)
        chosen = jnp.where(ok, chosen.at[i].set(c), chosen)
        return chosen, jnp.where(ok, new_d, dmin), count + ok.astype(jnp.int32), key

    chosen, _, count, _ = lax.fori_loop(1, m, body, (chosen, dmin, jnp.int32(1), key))
    return chosen, count


def _check_tol(tol):
    if tol is None:
        return None
    tol = float(tol)
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol: expected a finite number >= 0, got {tol}")
    return tol


def select_landmarks(
    x: Any,
    m: int,
    *,
    sigma: float | None = None,
    method: str = "uniform",
    key: int = 0,
    tol: float | None = None,
    pool: int | None = None,
    backend: str = "auto",
) -> Landmarks:
    """Choose m landmarks among the rows of x (seeded, deterministic).

    Methods:
      * ``"uniform"``: m distinct rows uniformly at random
        (``numpy.random.default_rng(key)``), returned sorted.
      * ``"kmeans++"``: k-means++ seeding (D² sampling) in the kernel's
        feature space: the first landmark uniform, each next one drawn with
        probability ∝ the squared RKHS distance to its nearest landmark,
        ‖φ(x) − φ(c)‖² = 2 − 2k(x, c) (not the Euclidean distance: far
        outliers saturate at 2 instead of dominating). Streams the pool once
        per landmark (``jax.random`` key from ``key``). Stops early when
        every pool row coincides with a landmark.
      * ``"pivoted-cholesky"``: greedy pivoted Cholesky of k(pool, pool)
        (each next landmark is the row worst explained by the previous ones),
        in the compiled core (``backend="ffi"``) or its pure-JAX twin; stops
        at m, when the residual trace ≤ ``tol`` · pool, or when no row adds
        more than 1e-10 of kernel variance. Records the residual trace and the
        captured fraction per step.

    Args:
      x: ``[n, d]`` embeddings (array-like, float32|float64).
      m: number of landmarks (≥ 1).
      sigma: Gaussian bandwidth (needed by kmeans++ and pivoted-cholesky).
      method: one of ``LANDMARK_METHODS``.
      key: int seed.
      tol: pivoted Cholesky relative residual-trace tolerance (None: 0).
      pool: rows kmeans++ / pivoted-cholesky look at (default
        :func:`default_pool`; a seeded uniform subsample when < n).
      backend: pivoted Cholesky backend, ``"auto"``/``"ffi"``/``"jax"``.

    Returns:
      :class:`Landmarks`.
    """
    if method not in LANDMARK_METHODS:
        raise ValueError(f"method: expected one of {LANDMARK_METHODS}, got {method!r}")
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m: expected an integer >= 1, got {m!r}")
    m = int(m)
    x = x if isinstance(x, jax.Array) else np.asarray(x)
    _check_rows(x)
    n = x.shape[0]
    if n == 0:
        raise ValueError("x: no rows to choose landmarks from")
    rng = np.random.default_rng(key)
    if method == "uniform":
        idx = np.sort(rng.choice(n, size=min(m, n), replace=False)).astype(np.int64)
        # host rows are gathered on the host: only the m chosen rows go to the device
        pts = x[idx] if isinstance(x, jax.Array) else jnp.asarray(x[idx])
        return Landmarks(idx, pts, method, None, None, n)

    sig = _check_sigma(sigma) if sigma is not None else None
    if sig is None:
        raise ValueError(f"sigma: method={method!r} needs the kernel bandwidth")
    if pool is None:
        pool = default_pool(n, m)
    elif isinstance(pool, bool) or not isinstance(pool, (int, np.integer)) or pool < 1:
        raise ValueError(f"pool: expected an integer >= 1, got {pool!r}")
    pidx = _pool_indices(n, int(pool), rng)
    psize = len(pidx)
    be = _backend(backend)
    if method == "pivoted-cholesky" and be == "ffi" and not isinstance(x, jax.Array) and _ffi.available():
        # host rows: the compiled core on the host pool directly (no device copy, no XLA call, no [m, m] factor)
        tol_v = _check_tol(tol)
        xh = x[pidx] if psize < n else x
        xh = np.ascontiguousarray(xh, xh.dtype if xh.dtype in (np.float32, np.float64) else np.float64)
        piv, count, rtr = _ffi._ext.pivoted_cholesky_host(xh, sig, min(m, psize), (tol_v or 0.0) * psize,
                                                          _ffi.MIN_PIVOT, 0)
        del xh
        idx = pidx[np.asarray(piv)[:count]]
        rtrace = np.asarray(rtr, np.float64)[:count]
        return Landmarks(idx, jnp.asarray(x[idx]), method, rtrace, 1.0 - rtrace / psize, psize)
    xp = jnp.asarray(x)[pidx] if len(pidx) < n else jnp.asarray(x)

    if method == "kmeans++":
        with _x64():
            gamma = 1.0 / (2.0 * sig * sig)
            chosen, count = _kmeanspp(xp, jnp.asarray(gamma, jnp.float64), jax.random.PRNGKey(key),
                                      m=min(m, psize))
            sel = np.asarray(chosen)[: int(count)].astype(np.int64)
        idx = pidx[sel]
        return Landmarks(idx, jnp.asarray(x)[idx], method, None, None, psize)

    tol = _check_tol(tol)
    trace_tol = (tol or 0.0) * psize
    with _x64():
        fn = _ffi.pivoted_cholesky if be == "ffi" else _ffi.pivoted_cholesky_jax
        res = fn(xp, sig, min(m, psize), trace_tol=trace_tol)
        count = int(res.count)
        sel = np.asarray(res.pivots)[:count].astype(np.int64)
        rtrace = np.asarray(res.residual_trace, np.float64)[:count]
    idx = pidx[sel]
    return Landmarks(idx, jnp.asarray(x)[idx], method, rtrace, 1.0 - rtrace / psize, psize)


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


def _one_blas_thread():
    """Limit NumPy/SciPy's BLAS to one thread (threadpoolctl, shipped with scikit-learn) for a block."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn (a dependency) brings it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _gauss_np(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """exp(−γ‖a_i − b_j‖²) ``[len(a), len(b)]`` (float64 for float64 rows), built in place: one [na, nb] array."""
    k = a @ b.T
    k *= -2.0
    k += (a * a).sum(1)[:, None]
    k += (b * b).sum(1)[None, :]
    np.maximum(k, 0.0, out=k)  # rounding can make a squared distance negative
    k *= -gamma
    return np.exp(k, out=k)


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
    _check_rows(pts, "landmarks")
    sig = _check_sigma(sigma)
    rtol = DEFAULT_RTOL if rtol is None else float(rtol)
    if not (np.isfinite(rtol) and 0 <= rtol < 1):
        raise ValueError(f"rtol: expected a number in [0, 1), got {rtol}")
    L64 = np.asarray(pts, dtype=np.float64)
    if not np.all(np.isfinite(L64)):
        raise ValueError("landmarks: contain NaN or Inf")
    m = L64.shape[0]
    if m == 0:
        w, W = np.zeros((0,)), np.zeros((0, 0))
        dropped = 0
    else:
        K = _gauss_np(L64, L64, 1.0 / (2.0 * sig * sig))
        np.fill_diagonal(K, 1.0)
        # NumPy's LAPACK syevd (its eigenvector signs are the map's convention) on one BLAS thread: threaded,
        # its threads spin on every small BLAS-2 call and, on a shared 2-core machine, m = 2000 took 17-22 s
        # instead of about 1 s (2026-11-23)
        with _one_blas_thread():
            lam, U = np.linalg.eigh(K)
        del K
        lam, U = lam[::-1], U[:, ::-1]
        keep = lam > rtol * lam[0]
        w = lam[keep]
        W = np.ascontiguousarray(U[:, keep] / np.sqrt(w)[None, :])
        dropped = int(m - keep.sum())
    return NystromMap(pts, np.float64(sig), W, np.ascontiguousarray(w), rtol, dropped)


def _cast_map(nmap: NystromMap, dtype):
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
    with _x64():
        x = jnp.asarray(x)
        _check_rows(x)
        dt = jnp.dtype(dtype) if dtype is not None else x.dtype
        L, W, sig = _cast_map(nmap, dt)
        return _features(x.astype(dt), L, W, sig)


@jax.jit
def _features(x, L, W, sig):
    gamma = 1.0 / (2.0 * sig.astype(x.dtype) ** 2)
    return jnp.dot(_ffi.gaussian_tile_jax(x, L, gamma), W, precision=_HI)


# ============================================================== accumulation


def nystrom_init(nmap: NystromMap, *, paired: bool = False, strategy: str = "auto", backend: str = "auto") -> jax.Array:
    """The zero float64 accumulator for :func:`nystrom_update`.

    ``[R, R]`` with R = (2 if paired else 1) · (m for ``"kernel"``, r for
    ``"whiten"``).
    """
    strat = _strategy(strategy, _backend(backend))
    per = nmap.num_landmarks if strat == "kernel" else nmap.rank
    R = (2 if paired else 1) * per
    with _x64():
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
    be = _backend(backend)
    strat = _strategy(strategy, be)
    with _x64():
        B = jnp.asarray(block)
        _check_rows(B, "block")
        dt = jnp.dtype(dtype) if dtype is not None else B.dtype
        B2 = None
        if images is not None:
            B2 = jnp.asarray(images)
            _check_rows(B2, "images")
            if B2.shape != B.shape:
                raise ValueError(f"images: shape {list(B2.shape)} differs from block's {list(B.shape)}")
            B2 = B2.astype(dt)
        L, W, sig = _cast_map(nmap, dt)
        return _update(G, B.astype(dt), B2, L, W, sig, strategy=strat, backend=be)


@functools.partial(jax.jit, static_argnames=("strategy", "paired"))
def _finalize(G, W, *, strategy, paired):
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
    return (_backend(backend) == "ffi" and jax.default_backend() == "cpu"
            and hasattr(_ffi._ext, "nystrom_host"))


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
    _ffi._ext.nystrom_host(G, a, b, L, float(nmap.sigma), int(num_threads))
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
    _symmetrise(out)
    return out


def _compact_corner(M: np.ndarray, k: int) -> np.ndarray:
    """M[:k, :k] moved to the front of M's buffer as a C-contiguous [k, k] view (rows copied forward)."""
    flat = M.reshape(-1)
    n = M.shape[1]
    if k != n:
        for i in range(k):  # row i moves from offset i·n to i·k ≤ i·n: rows not yet moved are never overwritten
            flat[i * k:(i + 1) * k] = M[i, :k]  # (NumPy buffers an assignment whose source and target overlap)
    return flat[: k * k].reshape(k, k)


def _symmetrise(a: np.ndarray, block: int = 256) -> None:
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
    strat = _strategy(strategy, _backend(backend))
    with _x64():
        return _finalize(G, jnp.asarray(nmap.whitening, jnp.float64), strategy=strat, paired=bool(paired))


def _default_block(n: int, backend: str, m: int) -> int:
    if backend == "ffi":
        return max(n, 1)  # one call: the core chunks and threads internally
    return int(max(256, min(n, (1 << 23) // max(m, 1))))  # ≈ 32 MB float32 tile


def _fold(arrays, block, fn, init):
    n = arrays[0].shape[0]
    nb, rem = divmod(n, block)

    def body(i, carry):
        return fn(carry, *[lax.dynamic_slice_in_dim(a, i * block, block, axis=0) for a in arrays])

    carry = lax.fori_loop(0, nb, body, init) if nb > 0 else init
    if rem:
        carry = fn(carry, *[a[nb * block :] for a in arrays])
    return carry


@functools.partial(jax.jit, static_argnames=("block", "strategy", "backend", "paired"))
def _gram(x, x2, L, W, sig, *, block, strategy, backend, paired):
    per = L.shape[0] if strategy == "kernel" else W.shape[1]
    R = (2 if paired else 1) * per
    Wk = W if strategy == "whiten" else None
    acc = _ffi.nystrom_accumulate if backend == "ffi" else _ffi.nystrom_accumulate_jax

    def step(g, *blocks):
        return acc(g, blocks[0], L, Wk, sig, B2=blocks[1] if paired else None)

    arrays = (x, x2) if paired else (x,)
    G = _fold(arrays, block, step, jnp.zeros((R, R), jnp.float64))
    return _finalize(G, W.astype(jnp.float64), strategy=strategy, paired=paired)


def _gram_entry(x, x2, nmap, *, block_size, backend, strategy, dtype):
    be = _backend(backend)
    strat = _strategy(strategy, be)
    with _x64():
        x = jnp.asarray(x)
        _check_rows(x)
        if x2 is not None:
            x2 = jnp.asarray(x2)
            _check_rows(x2, "images")
            if x2.shape != x.shape:
                raise ValueError(f"images: shape {list(x2.shape)} differs from texts' {list(x.shape)}")
        if x.shape[1] != nmap.landmarks.shape[1]:
            raise ValueError(
                f"x: dimension {x.shape[1]} differs from the landmarks' {nmap.landmarks.shape[1]}"
            )
        dt = jnp.dtype(dtype) if dtype is not None else x.dtype
        n = x.shape[0]
        if block_size is None:
            block = _default_block(n, be, nmap.num_landmarks)
        else:
            if isinstance(block_size, bool) or int(block_size) < 1:
                raise ValueError(f"block_size: expected an integer >= 1, got {block_size!r}")
            block = int(block_size)
        L, W, sig = _cast_map(nmap, dt)
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
    with _x64():
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
    from .covariance import Covariances

    g, n = _gram_entry(texts, images, nmap, **_gram_kwargs(kwargs))
    r = nmap.rank
    with _x64():
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


# ============================================================== exact RKE, streamed


def kernel_sq_frobenius(
    x: jax.Array,
    *,
    y: jax.Array | None = None,
    kernel: str = "gaussian",
    sigma: float | None = None,
    backend: str = "auto",
    tile_rows: int | None = None,
    block_size: int | None = None,
) -> float:
    """‖K‖_F² = Σ_ij k(x_i, x_j)² without an n×n matrix (float64); with ``y``
    the cross term Σ_ij k(x_i, y_j)² = ‖k(X, Y)‖_F².

    * ``"gaussian"``: symmetric tiles (I ≤ J, off-diagonal doubled), each a
      GEMM + exp, summed in float64: the compiled core (threaded) or the
      pure-JAX twin (a ``lax.fori_loop`` over tile pairs). O(n²·d). The cross
      term visits every tile pair; with ``backend="ffi"`` it runs in the
      compiled core on host copies of the rows.
    * ``"cosine"``: k = cos(x_i, x_j), so Σ k² = ‖X̂ᵀ X̂‖_F² with X̂ the
      row-normalised x: one streamed d×d covariance, no tiles. O(n·d²). The
      cross term is ⟨X̂ᵀX̂, ŶᵀŶ⟩_F.

    Args:
      x: ``[n, d]`` embeddings.
      y: optional ``[p, d]`` second set (same dtype as x).
      sigma: Gaussian bandwidth.
      backend: ``"auto"``, ``"ffi"``, ``"jax"``.
      tile_rows: Gaussian tile edge (default 512).
      block_size: cosine accumulation block.
    """
    be = _backend(backend)
    with _x64():
        x = jnp.asarray(x)
        _check_rows(x)
        if y is not None:
            y = jnp.asarray(y)
            _check_rows(y, "y")
            if y.shape[1] != x.shape[1]:
                raise ValueError(f"y: expected [p, {x.shape[1]}] rows like x, got shape {list(y.shape)}")
        n = x.shape[0]
        if kernel == "gaussian":
            sig = _check_sigma(sigma)
            if y is not None:
                if be == "ffi":
                    return _ffi.gaussian_sq_frobenius_host(np.asarray(x), sig, y=np.asarray(y, dtype=x.dtype),
                                                           tile_rows=tile_rows)
                return float(_ffi.gaussian_sq_frobenius_jax(x, sig, y=y.astype(x.dtype), tile_rows=tile_rows))
            fn = _ffi.gaussian_sq_frobenius if be == "ffi" else _ffi.gaussian_sq_frobenius_jax
            return float(fn(x, sig, tile_rows=tile_rows))
        if kernel == "cosine":
            if n == 0 or (y is not None and y.shape[0] == 0):
                return 0.0
            from .covariance import feature_covariance
            from .kernels import FeatureMap

            def cov(a, name):  # X̂ᵀX̂ (a sum, not a mean)
                norms = np.asarray(jnp.linalg.norm(a.astype(jnp.float64), axis=1))
                if not np.all(norms > 0):
                    raise ValueError(f"{name}: the cosine kernel needs non-zero rows")
                c = feature_covariance(a, FeatureMap("cosine"), block_size=block_size,
                                       feature_dtype=jnp.float64, acc_dtype=jnp.float64, backend=be)
                return c * float(a.shape[0])

            cx = cov(x, "x")
            cy = cx if y is None else cov(y, "y")
            return float(jnp.sum(cx * cy))
        raise ValueError(f"kernel: expected 'gaussian' or 'cosine', got {kernel!r}")


def sq_frobenius_panels(
    read,
    n: int,
    sigma: float,
    *,
    panel_rows: int,
    backend: str = "auto",
    tile_rows: int | None = None,
    on_pairs=None,
) -> float:
    """The Gaussian ‖K‖_F² of n rows read by panels: Σ_P ‖K_PP‖² + 2 Σ_{P<Q} ‖K_PQ‖².

    Two panels are in memory at a time, so rows that do not fit (files,
    shards) get the exact ‖K‖_F² in bounded memory; panel Q is read again
    for every P < Q (n² / (2 · panel_rows) rows read in all). Each term is one
    call of the compiled core on host rows (``backend="ffi"``) or of its JAX
    twin, summed in float64 in a fixed order.

    Args:
      read: ``read(start, stop)`` → host rows ``[stop − start, d]``
        (float32|float64, validated by the caller).
      n: total rows.
      sigma: bandwidth.
      panel_rows: rows per panel (≥ 1).
      backend: ``"auto"``, ``"ffi"``, ``"jax"``.
      on_pairs: called with the number of pairs (i ≤ j) each term covered,
        e.g. a progress bar's ``update``.
    """
    be = _backend(backend)
    sig = _check_sigma(sigma)
    panel_rows = int(panel_rows)
    if panel_rows < 1:
        raise ValueError(f"panel_rows: expected a positive integer, got {panel_rows}")

    def term(a, b=None):
        if be == "ffi":
            return _ffi.gaussian_sq_frobenius_host(a, sig, y=b, tile_rows=tile_rows)
        with _x64():
            return float(_ffi.gaussian_sq_frobenius_jax(jnp.asarray(a), sig, y=None if b is None else jnp.asarray(b),
                                                        tile_rows=tile_rows))

    starts = list(range(0, n, panel_rows))
    total = 0.0
    for k, a0 in enumerate(starts):
        a1 = min(n, a0 + panel_rows)
        A = read(a0, a1)
        total += term(A)
        if on_pairs is not None:
            on_pairs((a1 - a0) * (a1 - a0 + 1) // 2)
        for b0 in starts[k + 1:]:
            b1 = min(n, b0 + panel_rows)
            total += 2.0 * term(A, read(b0, b1))
            if on_pairs is not None:
                on_pairs((a1 - a0) * (b1 - b0))
    return total


class StreamedRKE(NamedTuple):
    """The exact RKE (Rényi-2 kernel entropy) from the streamed ‖K‖_F².

    Attributes:
      score: exp(H₂) = n² / ‖K‖_F² = 1 / Σ λ² (λ: eigenvalues of K/n).
      entropy: H₂ = log(score).
      frobenius_sq: ‖K‖_F².
      n: rows.
      kernel: ``"gaussian"`` or ``"cosine"``.
      sigma: bandwidth (Gaussian), else None.
    """

    score: float
    entropy: float
    frobenius_sq: float
    n: int
    kernel: str
    sigma: float | None


def rke_streamed(
    x: jax.Array,
    *,
    kernel: str = "gaussian",
    sigma: float | None = None,
    backend: str = "auto",
    tile_rows: int | None = None,
    block_size: int | None = None,
) -> StreamedRKE:
    """Exact RKE score of x at any n: n² / ‖K‖_F² (no eigendecomposition, no n×n matrix).

    Same as ``clipcore.rke`` (order-2 Vendi of K/n) without the 1e-10
    eigenvalue clamp (which adds ≤ n·1e-20 to Σλ²). See
    :func:`kernel_sq_frobenius` for the arguments.
    """
    x = x if isinstance(x, jax.Array) else np.asarray(x)
    f = kernel_sq_frobenius(x, kernel=kernel, sigma=sigma, backend=backend, tile_rows=tile_rows,
                            block_size=block_size)
    n = int(x.shape[0])
    if n == 0:
        raise ValueError("x: no rows")
    score = n * n / f
    return StreamedRKE(score, float(np.log(score)), f, n, kernel,
                       None if kernel == "cosine" else float(sigma))
