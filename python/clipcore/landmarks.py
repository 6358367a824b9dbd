"""Landmarks for Nyström features: m rows chosen among the data (SPEC.md, "Large n").

Three seeded, deterministic methods (:func:`select_landmarks`): uniform rows,
k-means++ seeding in the kernel's feature space, and the greedy pivoted
Cholesky of the Gaussian kernel (the compiled core or its pure-JAX twin).
k-means++ and pivoted Cholesky look at a seeded pool of at most
:func:`default_pool` rows.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _ffi
from ._options import LANDMARK_METHODS, resolve_backend, resolve_key, x64
from ._validate import check_choice, check_number, check_sigma
from .kernels import gaussian_tile

__all__ = ["Landmarks", "LANDMARK_METHODS", "select_landmarks", "default_pool", "pool_indices",
           "check_float_rows"]


def check_float_rows(x, name: str = "x") -> None:
    """``x`` must be a ``[n, d]`` float32|float64 array (shapes and dtypes only; values are the caller's)."""
    if getattr(x, "ndim", None) != 2:
        raise ValueError(f"{name}: expected a [n, d] array, got shape {list(np.shape(x))}")
    if np.dtype(x.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{name}: dtype must be float32 or float64, got {np.dtype(x.dtype)}")


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


def pool_indices(n: int, pool: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted rows of a seeded uniform pool (all n rows when ``pool ≥ n``), int64."""
    if pool >= n:
        return np.arange(n, dtype=np.int64)
    return np.sort(rng.choice(n, size=pool, replace=False)).astype(np.int64)


@functools.partial(jax.jit, static_argnames=("m",))
def _kmeanspp(x, gamma, key, *, m):
    """D² sampling with the squared RKHS distance 2 − 2k(x, c) to the nearest centre."""
    p = x.shape[0]
    xw = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    k0, key = jax.random.split(key)
    first = jax.random.randint(k0, (), 0, p, dtype=jnp.int32)

    def dist_to(c):
        k = gaussian_tile(xw, lax.dynamic_slice_in_dim(xw, c, 1, axis=0), gamma)[:, 0].astype(gamma.dtype)
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


def _kmeanspp_landmarks(x, pidx: np.ndarray, m: int, sig: float, key) -> "Landmarks":
    n, psize = x.shape[0], len(pidx)
    xp = jnp.asarray(x)[pidx] if psize < n else jnp.asarray(x)
    with x64():
        gamma = 1.0 / (2.0 * sig * sig)
        chosen, count = _kmeanspp(xp, jnp.asarray(gamma, jnp.float64), key, m=min(m, psize))
        sel = np.asarray(chosen)[: int(count)].astype(np.int64)
    idx = pidx[sel]
    return Landmarks(idx, jnp.asarray(x)[idx], "kmeans++", None, None, psize)


def select_landmarks(
    x: Any,
    m: int,
    *,
    sigma: float | None = None,
    method: str = "uniform",
    key: Any = 0,
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
      key: an int seed or a ``jax.random`` key (:func:`clipcore._options.resolve_key`: the NumPy
        draws use its int seed, k-means++ its key).
      tol: pivoted Cholesky relative residual-trace tolerance (None: 0).
      pool: rows kmeans++ / pivoted-cholesky look at (default
        :func:`default_pool`; a seeded uniform subsample when < n).
      backend: pivoted Cholesky backend, ``"auto"``/``"ffi"``/``"jax"``.

    Returns:
      :class:`Landmarks`.
    """
    check_choice(method, "method", LANDMARK_METHODS)
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m: expected an integer >= 1, got {m!r}")
    m = int(m)
    seed = resolve_key(key)
    x = x if isinstance(x, jax.Array) else np.asarray(x)
    check_float_rows(x)
    n = x.shape[0]
    if n == 0:
        raise ValueError("x: no rows to choose landmarks from")
    rng = np.random.default_rng(seed.numpy)
    if method == "uniform":
        idx = np.sort(rng.choice(n, size=min(m, n), replace=False)).astype(np.int64)
        # host rows are gathered on the host: only the m chosen rows go to the device
        pts = x[idx] if isinstance(x, jax.Array) else jnp.asarray(x[idx])
        return Landmarks(idx, pts, method, None, None, n)

    if sigma is None:
        raise ValueError(f"sigma: method={method!r} needs the kernel bandwidth")
    sig = check_sigma(sigma)
    if pool is None:
        pool = default_pool(n, m)
    elif isinstance(pool, bool) or not isinstance(pool, (int, np.integer)) or pool < 1:
        raise ValueError(f"pool: expected an integer >= 1, got {pool!r}")
    pidx = pool_indices(n, int(pool), rng)
    psize = len(pidx)
    be = resolve_backend(backend)
    tol = check_number(tol, "tol", positive=False)
    if method == "kmeans++":
        return _kmeanspp_landmarks(x, pidx, m, sig, seed.key)
    if be == "ffi" and not isinstance(x, jax.Array) and _ffi.host_entry_available("pivoted_cholesky_host"):
        # host rows: the compiled core on the host pool directly (no device copy, no XLA call, no [m, m] factor)
        xh = x[pidx] if psize < n else x
        xh = np.ascontiguousarray(xh, xh.dtype if xh.dtype in (np.float32, np.float64) else np.float64)
        piv, count, rtr = _ffi.pivoted_cholesky_host(xh, sig, min(m, psize), (tol or 0.0) * psize,
                                                     _ffi.MIN_PIVOT)
        del xh
        idx = pidx[np.asarray(piv)[:count]]
        rtrace = np.asarray(rtr, np.float64)[:count]
        return Landmarks(idx, jnp.asarray(x[idx]), method, rtrace, 1.0 - rtrace / psize, psize)
    xp = jnp.asarray(x)[pidx] if len(pidx) < n else jnp.asarray(x)
    trace_tol = (tol or 0.0) * psize
    with x64():
        fn = _ffi.pivoted_cholesky if be == "ffi" else _ffi.pivoted_cholesky_jax
        res = fn(xp, sig, min(m, psize), trace_tol=trace_tol)
        count = int(res.count)
        sel = np.asarray(res.pivots)[:count].astype(np.int64)
        rtrace = np.asarray(res.residual_trace, np.float64)[:count]
    idx = pidx[sel]
    return Landmarks(idx, jnp.asarray(x)[idx], method, rtrace, 1.0 - rtrace / psize, psize)
