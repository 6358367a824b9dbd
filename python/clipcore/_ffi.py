"""The compiled core (``clipcore._ext``) as XLA FFI calls, and its pure-JAX twins.

One operation today, the in-place Gram accumulation

    G_out = G_in + Φᵀ Φ,      Φ: [b, D] float32|float64,  G: [D, D] float32|float64

computed on CPU by a threaded, blocked BLAS ``syrk`` (scipy-openblas32):
float32 Φ is multiplied in sub-blocks of at most ``block_rows`` rows (4096 by
default) in float32, each sub-block's Gram added to a float64 accumulator, so
the error does not grow with the number of rows; float64 Φ goes through
``dsyrk``. G_in is added in float64 and the full symmetric result is rounded
once to G's dtype. Rows are split over threads (XLA's CPU thread pool, one
float64 accumulator each, single-threaded BLAS).

Importing this module loads the extension and registers its FFI targets for
platform ``"cpu"`` (once). If the extension cannot be loaded, ``available()``
is False, ``unavailable_reason()`` says why, and callers use the pure-JAX
twin :func:`gram_accumulate_jax` instead.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "available",
    "unavailable_reason",
    "blas_info",
    "gram_accumulate",
    "gram_accumulate_jax",
    "GRAM_TARGET",
    "EIGVALSH_TARGET",
    "eigvalsh",
    "PREFERRED",
]

#: FFI target name of the Gram accumulation (platform "cpu").
GRAM_TARGET = "clipcore_gram_accumulate"

#: FFI target name of the LAPACK eigenvalue solver (platform "cpu").
EIGVALSH_TARGET = "clipcore_eigvalsh"

#: Whether "auto" backends should prefer the compiled core on CPU: measured
#: faster than XLA's dot (which computes the full Φᵀ Φ GEMM, twice syrk's
#: flops), measured with bench/bench_gram.py.
PREFERRED = True

_STRATEGIES = {"rows": 0, "blas": 1}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

_lock = threading.Lock()
_ext: Any = None
_error: str | None = None
_registered = False


def _preload_openblas() -> None:
    """Load scipy-openblas32's library globally before the extension.

    The extension's RPATH ($ORIGIN/../scipy_openblas32/lib) finds it in a
    normal install; preloading covers editable installs and unusual layouts
    (the dynamic linker then matches the already loaded soname).
    """
    try:
        import scipy_openblas32 as sob
    except ImportError:
        return
    path = os.path.join(sob.get_lib_dir(), sob.get_library(True))
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        pass


def _load() -> None:
    global _ext, _error, _registered
    with _lock:
        if _registered or _error is not None:
            return
        try:
            _preload_openblas()
            from . import _ext as ext  # type: ignore[attr-defined]
        except Exception as exc:  # ImportError, OSError (missing BLAS), ...
            _error = f"clipcore._ext could not be imported: {type(exc).__name__}: {exc}"
            return
        try:
            for name, capsule in ext.registrations().items():
                jax.ffi.register_ffi_target(name, capsule, platform="cpu")
        except Exception as exc:
            _error = f"registering clipcore FFI targets failed: {type(exc).__name__}: {exc}"
            return
        _ext = ext
        _registered = True


_load()


def available() -> bool:
    """True when the compiled extension is loaded and its targets registered."""
    return _registered


def unavailable_reason() -> str | None:
    """Why :func:`available` is False (None when it is True)."""
    return None if _registered else (_error or "not loaded")


def blas_info() -> str:
    """The linked BLAS, its thread setting and the extension's build flags."""
    if not _registered:
        raise RuntimeError(unavailable_reason())
    return _ext.blas_info()


def _check(G, phi) -> tuple[np.dtype, np.dtype]:
    g_shape, p_shape = tuple(np.shape(G)), tuple(np.shape(phi))
    g_dt, p_dt = np.dtype(G.dtype), np.dtype(phi.dtype)
    if len(p_shape) != 2:
        raise ValueError(f"gram_accumulate: phi must be rank 2 [b, D], got shape {list(p_shape)}")
    d = p_shape[1]
    if g_shape != (d, d):
        raise ValueError(
            f"gram_accumulate: G must be [D, D] with D = phi.shape[1] = {d}, got {list(g_shape)}"
        )
    if p_dt not in _FLOATS:
        raise ValueError(f"gram_accumulate: phi dtype must be float32 or float64, got {p_dt}")
    if g_dt not in _FLOATS:
        raise ValueError(f"gram_accumulate: G dtype must be float32 or float64, got {g_dt}")
    return g_dt, p_dt


def _attrs(block_rows, num_threads, strategy) -> dict[str, np.int64]:
    attrs: dict[str, np.int64] = {}
    if block_rows is not None:
        if int(block_rows) < 1:
            raise ValueError(f"gram_accumulate: block_rows must be >= 1, got {block_rows}")
        attrs["block_rows"] = np.int64(block_rows)
    if num_threads is not None:
        if int(num_threads) < 1:
            raise ValueError(f"gram_accumulate: num_threads must be >= 1, got {num_threads}")
        attrs["num_threads"] = np.int64(num_threads)
    if strategy is not None:
        if strategy not in _STRATEGIES:
            raise ValueError(
                f"gram_accumulate: strategy must be one of {sorted(_STRATEGIES)}, got {strategy!r}"
            )
        attrs["strategy"] = np.int64(_STRATEGIES[strategy])
    return attrs


def gram_accumulate(
    G: jax.Array,
    phi: jax.Array,
    *,
    block_rows: int | None = None,
    num_threads: int | None = None,
    strategy: str | None = None,
) -> jax.Array:
    """``G + Φᵀ Φ`` through the compiled core (XLA FFI, CPU), G updated in place.

    Usable inside ``jax.jit`` and loop bodies (``lax.fori_loop``/``scan``);
    the output aliases G (``input_output_aliases={0: 0}``), so a loop carry is
    updated without a copy. On a non-CPU backend the pure-JAX twin runs
    instead (``lax.platform_dependent``).

    Args:
      G: [D, D] float32 or float64 accumulator (used as given; need not be
        symmetric).
      phi: [b, D] float32 or float64 rows; b may be 0.
      block_rows: rows per float32 ``ssyrk`` sub-block (default 4096); the
        float32 rounding error is that of one sub-block.
      num_threads: threads for this call (default: ``CLIPCORE_NUM_THREADS`` or
        the CPUs this process may use).
      strategy: ``"rows"`` (default: rows split over threads, one float64
        accumulator each) or ``"blas"`` (OpenBLAS's own threads).

    Returns:
      [D, D] array of G's dtype: G + Φᵀ Φ, accumulated in float64.

    Raises:
      ValueError: bad shapes or dtypes.
      RuntimeError: the compiled extension is not available
        (see :func:`unavailable_reason`).
    """
    _check(G, phi)
    if not _registered:
        raise RuntimeError(f"gram_accumulate: {unavailable_reason()}")
    attrs = _attrs(block_rows, num_threads, strategy)
    G = jnp.asarray(G)
    phi = jnp.asarray(phi)

    def on_cpu(g, p):
        call = jax.ffi.ffi_call(
            GRAM_TARGET,
            jax.ShapeDtypeStruct(g.shape, g.dtype),
            input_output_aliases={0: 0},
        )
        return call(g, p, **attrs)

    return jax.lax.platform_dependent(G, phi, cpu=on_cpu, default=gram_accumulate_jax)


def gram_accumulate_jax(G: jax.Array, phi: jax.Array) -> jax.Array:
    """Pure-JAX twin of :func:`gram_accumulate`: ``G + (Φᵀ Φ)`` in G's dtype.

    The product is one XLA dot with ``preferred_element_type`` = G's dtype
    (float64 if Φ is float64) and HIGHEST precision (a full GEMM; no float64 sub-block accumulation, so for
    float32 Φ and a float32 G the rounding grows with b).

    Args:
      G: [D, D] float32 or float64.
      phi: [b, D] float32 or float64.

    Returns:
      [D, D] array of G's dtype.
    """
    g_dt, p_dt = _check(G, phi)
    acc_dt = jnp.promote_types(g_dt, p_dt)
    G = jnp.asarray(G)
    phi = jnp.asarray(phi)
    prod = jax.lax.dot_general(
        phi,
        phi,
        dimension_numbers=(((0,), (0,)), ((), ())),
        precision=jax.lax.Precision.HIGHEST,
        preferred_element_type=acc_dt,
    )
    # One rounding to G's dtype (a float32 G with float64 Φ is summed in float64).
    return (G.astype(acc_dt) + prod).astype(g_dt)


def eigvalsh(a: jax.Array) -> jax.Array:
    """Eigenvalues (ascending) of a symmetric matrix, or of a batch of them.

    On CPU this calls LAPACK ``?syevr`` through the compiled core (XLA's CPU
    ``eigh`` always forms the eigenvectors, about twice the work), solving
    the matrices of a batch concurrently; elsewhere, or when the extension is
    missing, ``jnp.linalg.eigvalsh``. Usable inside ``jax.jit``. The upper
    triangle is read (symmetrise first).

    Args:
      a: ``[n, n]`` or ``[b, n, n]``, float32 or float64.

    Returns:
      ``[n]`` or ``[b, n]`` eigenvalues in ascending order, ``a``'s dtype.
    """
    a = jnp.asarray(a)
    if a.ndim not in (2, 3) or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"eigvalsh: expected a square [n, n] matrix or [b, n, n], got shape {list(a.shape)}")
    if np.dtype(a.dtype) not in _FLOATS:
        raise ValueError(f"eigvalsh: dtype must be float32 or float64, got {a.dtype}")

    def default(m):
        return jnp.linalg.eigvalsh(m, UPLO="U", symmetrize_input=False)

    if not _registered:
        return default(a)

    def on_cpu(m):
        call = jax.ffi.ffi_call(EIGVALSH_TARGET, jax.ShapeDtypeStruct(m.shape[:-1], m.dtype))
        return call(m)

    return jax.lax.platform_dependent(a, cpu=on_cpu, default=default)

