"""The compiled LAPACK eigenvalue solver (``?syevr``, no eigenvectors) as an XLA FFI call.

Transformations: a differentiation rule (``jax.custom_jvp``; reverse mode by
JAX's transposition of it) whose tangent is ``dλ_i = (Vᵀ Ȧ V)_ii`` with Ȧ the
tangent of the matrix the solver reads (its upper triangle, mirrored). The
eigenvectors V (``jnp.linalg.eigh``) are computed only under differentiation;
the primal is the no-vector call. The rule has no 1/(λ_i − λ_j) terms, so it
is finite for repeated eigenvalues: within a cluster of equal eigenvalues
the individual tangents depend on the basis V picks, their sum (the
derivative of any symmetric function of the spectrum, e.g. Σ λ log λ) does
not. Under ``jax.vmap`` the handler solves the whole batch at once
(``vmap_method="broadcast_all"``: it takes any leading batch dimensions).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import registration as reg
from .checks import check_square, traced

__all__ = ["EIGVALSH_TARGET", "eigvalsh", "eigvalsh_jax", "eigvalsh_tangent"]

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
    ``jax.jit``, ``jax.grad`` / ``jax.jvp`` (see :func:`eigvalsh_tangent`) and
    ``jax.vmap``. The upper triangle is read (symmetrise first).

    Args:
      a: ``[n, n]`` or ``[b, n, n]``, float32 or float64.

    Returns:
      ``[n]`` or ``[b, n]`` eigenvalues in ascending order, ``a``'s dtype.
    """
    a = jnp.asarray(a)
    check_square(a)
    return (_eigvalsh if traced(a) else _eigvalsh_primal)(a)


def eigvalsh_tangent(a: jax.Array, da: jax.Array) -> jax.Array:
    """The tangent of :func:`eigvalsh` at ``a`` along ``da``: ``(Vᵀ Ȧ V)_ii`` with V the eigenvectors
    of a's upper triangle (ascending order, as the eigenvalues) and Ȧ = triu(da) + triu(da, 1)ᵀ.

    Args:
      a: ``[..., n, n]``. da: same shape and dtype.

    Returns:
      ``[..., n]`` of a's dtype, finite for repeated eigenvalues.
    """
    _, v = jnp.linalg.eigh(a, UPLO="U", symmetrize_input=False)
    du = jnp.triu(da) + jnp.swapaxes(jnp.triu(da, 1), -1, -2)
    return jnp.sum(v * jnp.matmul(du, v, precision=jax.lax.Precision.HIGHEST), axis=-2)


def _eigvalsh_primal(a):
    """The no-vector solve: the FFI call on CPU, the twin elsewhere or without the extension."""
    if not reg.available():
        return eigvalsh_jax(a)

    def on_cpu(m):
        call = jax.ffi.ffi_call(EIGVALSH_TARGET, jax.ShapeDtypeStruct(m.shape[:-1], m.dtype),
                                vmap_method="broadcast_all")
        return call(m)

    return jax.lax.platform_dependent(a, cpu=on_cpu, default=eigvalsh_jax)


_eigvalsh = jax.custom_jvp(_eigvalsh_primal)


@_eigvalsh.defjvp
def _eigvalsh_jvp(primals, tangents):
    (a,), (da,) = primals, tangents
    return _eigvalsh(a), eigvalsh_tangent(a, da)
