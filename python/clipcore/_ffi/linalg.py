"""The compiled LAPACK eigenvalue solver (``?syevr``, no eigenvectors) as an XLA FFI call."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import registration as reg
from .checks import check_square

__all__ = ["EIGVALSH_TARGET", "eigvalsh", "eigvalsh_jax"]

#: FFI target name of the LAPACK eigenvalue solver (platform "cpu").
EIGVALSH_TARGET = "clipcore_eigvalsh"


def eigvalsh_jax(a: jax.Array) -> jax.Array:
    """Pure-JAX twin of :func:`eigvalsh`: ``jnp.linalg.eigvalsh`` of the upper triangle.

    Args:
      a: ``[n, n]`` or ``[b, n, n]``, float32 or float64.

    Returns:
      ``[n]`` or ``[b, n]`` eigenvalues in ascending order, ``a``'s dtype.
    """
    return jnp.linalg.eigvalsh(a, UPLO="U", symmetrize_input=False)


def eigvalsh(a: jax.Array) -> jax.Array:
    """Eigenvalues (ascending) of a symmetric matrix, or of a batch of them.

    On CPU this calls LAPACK ``?syevr`` through the compiled core (XLA's CPU
    ``eigh`` always forms the eigenvectors, about twice the work), solving
    the matrices of a batch concurrently; elsewhere, or when the extension is
    missing, ``jnp.linalg.eigvalsh`` (:func:`eigvalsh_jax`). Usable inside
    ``jax.jit``. The upper triangle is read (symmetrise first).

    Args:
      a: ``[n, n]`` or ``[b, n, n]``, float32 or float64.

    Returns:
      ``[n]`` or ``[b, n]`` eigenvalues in ascending order, ``a``'s dtype.
    """
    a = jnp.asarray(a)
    check_square(a)
    if not reg.available():
        return eigvalsh_jax(a)

    def on_cpu(m):
        call = jax.ffi.ffi_call(EIGVALSH_TARGET, jax.ShapeDtypeStruct(m.shape[:-1], m.dtype))
        return call(m)

    return jax.lax.platform_dependent(a, cpu=on_cpu, default=eigvalsh_jax)
