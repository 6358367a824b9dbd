"""The compiled core's host entries: the same C++ on NumPy arrays, outside XLA.

For rows already in host memory (files, shards, large NumPy arrays) these
run the core with its own threads and the GIL released: no device copy, no
per-block dispatch. Accumulators are updated in place, so they are checked,
never converted (a converted copy would lose the update silently); rows are
made C-contiguous (a no-op when they are) and otherwise passed as given, the
core refusing other dtypes with a ``ValueError``. Every function raises a
``RuntimeError`` when the extension is not loaded (see
:func:`host_entry_available`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import check_sigma
from . import registration as reg
from .cholesky import MIN_PIVOT

__all__ = [
    "HOST_ENTRIES",
    "host_entry_available",
    "joint_gram_host",
    "nystrom_host",
    "pivoted_cholesky_host",
    "gaussian_sq_frobenius_host",
    "release_buffers",
]

#: The host entries of the extension that this module wraps.
HOST_ENTRIES = ("joint_gram_host", "nystrom_host", "pivoted_cholesky_host", "gaussian_sq_frobenius_host",
                "release_buffers")


def host_entry_available(name: str) -> bool:
    """True when the loaded extension has the host entry ``name`` (one of :data:`HOST_ENTRIES`)."""
    if name not in HOST_ENTRIES:
        raise ValueError(f"name: expected one of {', '.join(map(repr, HOST_ENTRIES))}, got {name!r}")
    return reg.available() and hasattr(reg.loaded_extension(), name)


def _entry(name: str):
    return getattr(reg.extension(name), name)


def _count(value: Any, op: str, what: str) -> int:
    """A non-negative integer option (threads, rows; 0 = the core's default)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{op}: {what} must be an integer >= 0, got {value!r}")
    if int(value) < 0:
        raise ValueError(f"{op}: {what} must be >= 0, got {int(value)}")
    return int(value)


def _accumulator(G: Any, R: int, op: str) -> np.ndarray:
    if (not isinstance(G, np.ndarray) or G.dtype != np.float64 or G.shape != (R, R)
            or not G.flags.c_contiguous or not G.flags.writeable):
        got = f"{G.dtype} {list(G.shape)}" if isinstance(G, np.ndarray) else type(G).__name__
        raise ValueError(f"{op}: G must be a writeable C-contiguous [{R}, {R}] float64 NumPy array (updated in "
                         f"place), got {got}")
    return G


def _rows(x: Any, op: str, name: str, shape: str = "[b, d]") -> np.ndarray:
    a = np.ascontiguousarray(x)
    if a.ndim != 2:
        raise ValueError(f"{op}: {name} must be {shape}, got {list(a.shape)}")
    return a


def joint_gram_host(G: np.ndarray, texts: Any, images: Any, normalize: bool, *, num_threads: int = 0) -> np.ndarray:
    """In place: ``G += Zᵀ Z`` with ``Z = [f(texts) | f(images)]`` (the core of
    :func:`~clipcore._ffi.gram.joint_gram_accumulate` on host rows; float64 sums).

    Args:
      G: ``[dT + dX, dT + dX]`` float64, C-contiguous, writeable; updated in place.
      texts: ``[b, dT]``; images: ``[b, dX]``: paired rows of one dtype, float32 or float64.
      normalize: f = row L2 normalisation (the cosine kernel; zero rows stay zero), else the identity.
      num_threads: core threads (0: the CPUs this process may use).

    Returns:
      G.
    """
    op = "joint_gram_host"
    fn = _entry(op)
    threads = _count(num_threads, op, "num_threads")
    a, b = _rows(texts, op, "texts"), _rows(images, op, "images")
    _accumulator(G, a.shape[1] + b.shape[1], op)
    fn(G, a, b, bool(normalize), threads)
    return G


def nystrom_host(G: np.ndarray, rows: Any, images: Any, landmarks: Any, sigma: float, num_threads: int = 0,
                 *, block_rows: int = 0) -> np.ndarray:
    """In place: ``G += Zᵀ Z`` with ``Z = k(rows, L)`` or, paired, ``Z = [k(rows, L) | k(images, L)]``
    (Gaussian kernel, bandwidth σ; the kernel form of :func:`~clipcore._ffi.kernel.nystrom_accumulate` on
    host rows: tiles in the rows' dtype, products and sums in float64).

    Args:
      G: ``[R, R]`` float64, C-contiguous, writeable, R = m (or 2m paired); updated in place.
      rows: ``[b, d]`` float32|float64 (the texts when paired).
      images: ``[b, d]`` paired rows of rows' dtype, or None.
      landmarks: ``[m, d]`` of rows' dtype.
      sigma: bandwidth (a finite positive number).
      num_threads: core threads (0: the CPUs this process may use).
      block_rows: rows per chunk (0: the core's default); the sums do not depend on it.

    Returns:
      G.

    Raises:
      ValueError: bad shapes, dtypes, σ, or a non-finite row (G then unchanged).
    """
    op = "nystrom_host"
    fn = _entry(op)
    threads, block = _count(num_threads, op, "num_threads"), _count(block_rows, op, "block_rows")
    a = _rows(rows, op, "rows")
    b = None if images is None else _rows(images, op, "images")
    L = _rows(landmarks, op, "landmarks", "[m, d]")
    sig = check_sigma(sigma, f"{op}: sigma", required=True)
    _accumulator(G, (2 if b is not None else 1) * L.shape[0], op)
    fn(G, a, b, L, sig, threads, block)
    return G


def pivoted_cholesky_host(x: Any, sigma: float, m: int, trace_tol: float = 0.0, min_pivot: float = MIN_PIVOT,
                          num_threads: int = 0) -> tuple[np.ndarray, int, np.ndarray]:
    """Greedy pivoted Cholesky of the Gaussian kernel k(x, x) on host rows (landmark selection): the
    pivots and residual traces of :func:`~clipcore._ffi.cholesky.pivoted_cholesky`, no device copy of
    the rows and no ``[m, m]`` pivot factor.

    Args:
      x: ``[n, d]`` float32|float64 rows.
      sigma: bandwidth (a finite positive number). m: most pivots (≥ 0).
      trace_tol: absolute residual-trace threshold. min_pivot: stop when no residual exceeds this.
      num_threads: core threads (0: the CPUs this process may use).

    Returns:
      ``(pivots [m] int64, count, residual_trace [m] float64)``: −1 and NaN after ``count``.
    """
    op = "pivoted_cholesky_host"
    fn = _entry(op)
    a = _rows(x, op, "x", "[n, d]")
    sig = check_sigma(sigma, f"{op}: sigma", required=True)
    m = _count(m, op, "m")
    if not np.isfinite(float(min_pivot)) or float(min_pivot) < 0:
        raise ValueError(f"{op}: min_pivot must be finite and >= 0, got {min_pivot}")
    if np.isnan(float(trace_tol)):
        raise ValueError(f"{op}: trace_tol must not be NaN")
    piv, count, trace = fn(a, sig, m, float(trace_tol), float(min_pivot), _count(num_threads, op, "num_threads"))
    return piv, int(count), trace


def gaussian_sq_frobenius_host(x: np.ndarray, sigma: float, *, y: np.ndarray | None = None,
                               tile_rows: int | None = None, num_threads: int | None = None) -> float:
    """The compiled ‖K‖_F² on host rows, outside XLA: Σ_ij k(x_i, x_j)², or with ``y [p, d]`` the cross
    term Σ_ij k(x_i, y_j)² (float64 sums, GIL released, the process's threads). ``x`` and ``y`` are made
    C-contiguous float32|float64 of one dtype (y takes x's).

    Args:
      x: ``[n, d]`` float32|float64. sigma: bandwidth (a finite positive number).
      y: ``[p, d]`` or None. tile_rows: tile edge. num_threads: core threads (None: all).

    Returns:
      The sum, a Python float.
    """
    op = "gaussian_sq_frobenius_host"
    fn = _entry(op)
    x = np.ascontiguousarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{op}: x dtype must be float32 or float64, got {x.dtype}")
    sig = check_sigma(sigma, f"{op}: sigma", required=True)
    if y is not None:
        y = np.ascontiguousarray(y, dtype=x.dtype)
    threads = _count(0 if num_threads is None else num_threads, op, "num_threads")
    return float(fn(x, y, sig, threads, _count(0 if tile_rows is None else tile_rows, op, "tile_rows")))


def release_buffers() -> int:
    """Free the core's cached per-thread accumulators (kept between calls up to
    ``CLIPCORE_BUFFER_CACHE_MB``, default 128); returns the bytes freed."""
    return int(_entry("release_buffers")())
