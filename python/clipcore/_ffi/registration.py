"""Loading the compiled extension ``clipcore._ext`` and registering its XLA FFI targets.

The one module of clipcore that imports ``_ext``. Importing it loads the
extension (once) and registers its targets for platform ``"cpu"``, and, when
the extension was built with ``CLIPCORE_ENABLE_CUDA=ON`` and the jaxlib
supports it, for ``"CUDA"``. If the extension cannot be loaded,
:func:`available` is False, :func:`unavailable_reason` says why, and every
operation of ``clipcore._ffi`` has a pure-JAX twin that callers use instead.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

import jax

__all__ = [
    "PREFERRED",
    "load",
    "available",
    "unavailable_reason",
    "cuda_available",
    "blas_info",
    "extension",
    "loaded_extension",
]

#: Whether "auto" backends should prefer the compiled core on CPU: measured
#: faster than XLA's dot (which computes the full Φᵀ Φ GEMM, twice syrk's
#: flops), measured with bench/bench_gram.py.
PREFERRED = True

_lock = threading.Lock()
_ext: Any = None
_error: str | None = None
_registered = False
_cuda_registered = False


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


def _register_cuda(ext: Any) -> None:
    global _cuda_registered
    cuda = getattr(ext, "cuda_registrations", None)  # built with CLIPCORE_ENABLE_CUDA=ON
    if cuda is None:
        return
    try:
        for name, capsule in cuda().items():
            jax.ffi.register_ffi_target(name, capsule, platform="CUDA")
        _cuda_registered = True
    except Exception:  # a CPU-only jaxlib: the CUDA handlers stay unused
        _cuda_registered = False


def load() -> None:
    """Load the extension and register its targets; idempotent (a second call neither raises nor
    registers again, also after a failed first load)."""
    global _ext, _error, _registered
    with _lock:
        if _registered or _error is not None:
            return
        try:
            _preload_openblas()
            from .. import _ext as ext  # type: ignore[attr-defined]
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
        _register_cuda(ext)


load()


def available() -> bool:
    """True when the compiled extension is loaded and its targets registered."""
    return _registered


def cuda_available() -> bool:
    """True when the extension was built with CUDA handlers and they are registered (platform "CUDA")."""
    return _cuda_registered


def unavailable_reason() -> str | None:
    """Why :func:`available` is False (None when it is True)."""
    return None if _registered else (_error or "not loaded")


def loaded_extension() -> Any:
    """The loaded extension module ``clipcore._ext``, or None when it could not be loaded."""
    return _ext


def extension(op: str = "clipcore._ffi") -> Any:
    """The loaded extension module; a ``RuntimeError`` starting with ``op`` (and saying why) when it is not."""
    if not _registered:
        raise RuntimeError(f"{op}: {unavailable_reason()}")
    return _ext


def blas_info() -> str:
    """The linked BLAS, its thread setting and the extension's build flags."""
    if not _registered:
        raise RuntimeError(unavailable_reason())
    return _ext.blas_info()
