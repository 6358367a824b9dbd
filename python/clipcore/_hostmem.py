"""Host memory and BLAS threads around the large-n phases (no math here).

* :func:`release_heap` hands freed heap pages back to the OS (glibc
  ``malloc_trim``) between phases, so a phase's large NumPy temporaries do
  not add to the next phase's peak RSS;
* :func:`one_blas_thread` limits NumPy/SciPy's BLAS to one thread for an
  m×m LAPACK call (threaded, its threads spin on every small BLAS-2 call:
  on a shared 2-core machine m = 2000 took 17–22 s instead of about 1 s).
"""

from __future__ import annotations

import contextlib
import ctypes

__all__ = ["release_heap", "one_blas_thread"]

_TRIM: list = []  # [callable or None], filled on first use


def release_heap() -> None:
    """``malloc_trim(0)`` where glibc has it; a no-op elsewhere."""
    if not _TRIM:
        try:
            _TRIM.append(ctypes.CDLL("libc.so.6").malloc_trim)
        except (OSError, AttributeError):
            _TRIM.append(None)
    if _TRIM[0] is not None:
        _TRIM[0](0)


def one_blas_thread():
    """A context limiting the BLAS of NumPy/SciPy to one thread (threadpoolctl, a scikit-learn dependency)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
