"""The Gram accumulations of the compiled core as XLA FFI calls, with their pure-JAX twins.

The in-place Gram accumulation

    G_out = G_in + Φᵀ Φ,      Φ: [b, D] float32|float64,  G: [D, D] float32|float64

computed on CPU by a threaded, blocked BLAS ``syrk`` (scipy-openblas32):
float32 Φ is multiplied in sub-blocks of at most ``block_rows`` rows (4096 by
default) in float32, each sub-block's Gram added to a float64 accumulator, so
the error does not grow with the number of rows; float64 Φ goes through
``dsyrk``. G_in is added in float64 and the full symmetric result is rounded
once to G's dtype. Rows are split over threads (XLA's CPU thread pool, one
float64 accumulator each, single-threaded BLAS). The joint form packs
``Z = [f(A) | f(B)]`` on the fly (f: row normalisation or identity).

Transformations: both calls have a differentiation rule (``jax.custom_jvp``;
reverse mode by JAX's transposition of it): the tangent of G + ZᵀZ is the
GEMM dG + dZᵀZ + ZᵀdZ (:func:`gram_tangent`; for the joint form dZ is the
tangent of the row normalisation), computed in JAX only under
differentiation, so the forward pass is the FFI call alone. Under ``jax.vmap``
the calls run once per batch element (``vmap_method="sequential"``: the
handlers take one [b, D] block).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from . import registration as reg
from .checks import check_gram, check_joint, gram_attrs, joint_attrs, traced

__all__ = [
    "GRAM_TARGET",
    "JOINT_GRAM_TARGET",
    "gram_accumulate",
    "gram_accumulate_jax",
    "joint_gram_accumulate",
    "joint_gram_accumulate_jax",
    "gram_tangent",
]

#: FFI target name of the Gram accumulation (platforms "cpu" and, in a CUDA build, "CUDA").
GRAM_TARGET = "clipcore_gram_accumulate"

#: FFI target name of the packed joint Gram [f(A) | f(B)] (platform "cpu").
JOINT_GRAM_TARGET = "clipcore_joint_gram_accumulate"


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
        (see :func:`~clipcore._ffi.registration.unavailable_reason`).
    """
    check_gram(G, phi)
    if not reg.available():
        raise RuntimeError(f"gram_accumulate: {reg.unavailable_reason()}")
    attrs = gram_attrs(block_rows, num_threads, strategy)
    G, phi = jnp.asarray(G), jnp.asarray(phi)
    return (_gram_call if traced(G, phi) else _gram_primal)(G, phi, tuple(attrs.items()))


def gram_tangent(g_dtype, z: jax.Array, dG: jax.Array, dz: jax.Array) -> jax.Array:
    """The tangent of ``G + Zᵀ Z``: ``dG + dZᵀ Z + Zᵀ dZ`` (one GEMM), accumulated in
    ``promote(G, Z)`` and rounded once to G's dtype, exactly symmetric when dG is.

    Args:
      g_dtype: G's dtype. z: ``[b, D]`` the rows. dG: ``[D, D]`` G's tangent. dz: ``[b, D]`` z's tangent.

    Returns:
      ``[D, D]`` of G's dtype.
    """
    acc = jnp.promote_types(g_dtype, z.dtype)
    s = jax.lax.dot_general(dz, z, (((0,), (0,)), ((), ())), precision=jax.lax.Precision.HIGHEST,
                            preferred_element_type=acc)
    return (dG.astype(acc) + (s + s.T)).astype(g_dtype)


def _gram_primal(G, phi, attrs):
    """G + ΦᵀΦ: the FFI call on CPU (and CUDA in a CUDA build), the twin elsewhere."""

    def on_cpu(g, p):
        call = jax.ffi.ffi_call(GRAM_TARGET, jax.ShapeDtypeStruct(g.shape, g.dtype), input_output_aliases={0: 0},
                                vmap_method="sequential")
        return call(g, p, **dict(attrs))

    return jax.lax.platform_dependent(G, phi, cpu=on_cpu, cuda=on_cpu if reg.cuda_available() else gram_accumulate_jax,
                                      default=gram_accumulate_jax)


_gram_call = jax.custom_jvp(_gram_primal, nondiff_argnums=(2,))


@_gram_call.defjvp
def _gram_jvp(attrs, primals, tangents):
    (G, phi), (dG, dphi) = primals, tangents
    return _gram_call(G, phi, attrs), gram_tangent(G.dtype, phi, dG, dphi)


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
    g_dt, p_dt = check_gram(G, phi)
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


def joint_gram_accumulate(
    G: jax.Array, A: jax.Array, B: jax.Array, *, normalize: bool, block_rows: int | None = None,
    num_threads: int | None = None,
) -> jax.Array:
    """``G + Zᵀ Z`` with Z = [f(A) | f(B)] packed on the fly (XLA FFI, CPU; G updated in place).

    f is the row L2-normalisation (the cosine kernel's feature map, norms in
    float64) when ``normalize``, else the identity. The compiled core packs
    each chunk of rows into a per-thread scratch and syrks it: the
    normalised rows and their concatenation are never written to memory
    (two passes over the data fewer than normalising and concatenating in
    XLA). Same threading and float64 accumulation as :func:`gram_accumulate`.
    Off CPU the twin :func:`joint_gram_accumulate_jax` runs.

    Args:
      G: ``[dA + dB, dA + dB]`` float32|float64 accumulator.
      A: ``[b, dA]``, B: ``[b, dB]`` paired rows, one dtype (float32|float64).
      normalize: row-normalise A's and B's rows (zero rows stay zero).
      block_rows, num_threads: as in :func:`gram_accumulate`.

    Returns:
      ``[dA + dB, dA + dB]`` of G's dtype.
    """
    check_joint(G, A, B)
    if not reg.available():
        raise RuntimeError(f"joint_gram_accumulate: {reg.unavailable_reason()}")
    br, nt = joint_attrs(block_rows, num_threads)
    G, A, B = jnp.asarray(G), jnp.asarray(A), jnp.asarray(B)
    return (_joint_call if traced(G, A, B) else _joint_primal)(G, A, B, (bool(normalize), br, nt))


def _joint_primal(G, A, B, spec):
    """G + [f(A) | f(B)]ᵀ[f(A) | f(B)]: the FFI call on CPU, the twin elsewhere; spec = (normalize, br, nt)."""
    normalize, br, nt = spec

    def on_cpu(g, a, b):
        call = jax.ffi.ffi_call(JOINT_GRAM_TARGET, jax.ShapeDtypeStruct(g.shape, g.dtype),
                                input_output_aliases={0: 0}, vmap_method="sequential")
        return call(g, a, b, normalize=np.int64(normalize), block_rows=np.int64(br), num_threads=np.int64(nt))

    def other(g, a, b):
        return joint_gram_accumulate_jax(g, a, b, normalize=normalize)

    return jax.lax.platform_dependent(G, A, B, cpu=on_cpu, default=other)


_joint_call = jax.custom_jvp(_joint_primal, nondiff_argnums=(3,))


@_joint_call.defjvp
def _joint_jvp(spec, primals, tangents):
    (G, A, B), (dG, dA, dB) = primals, tangents
    f = functools.partial(_rows, normalize=spec[0])
    fa, dfa = jax.jvp(f, (A,), (dA,))
    fb, dfb = jax.jvp(f, (B,), (dB,))
    z, dz = jnp.concatenate([fa, fb], axis=1), jnp.concatenate([dfa, dfb], axis=1)
    return _joint_call(G, A, B, spec), gram_tangent(G.dtype, z, dG, dz)


def _rows(x: jax.Array, normalize: bool) -> jax.Array:
    """f(x): rows L2-normalised (norms in float64 for float64 rows, else float32; zero rows stay zero, with a
    zero derivative: the square root never sees 0, so no 0 · ∞ in a gradient)."""
    if not normalize:
        return x
    sq = jnp.sum(jnp.square(x.astype(jnp.float64 if x.dtype == jnp.float64 else jnp.float32)), axis=1, keepdims=True)
    return jnp.where(sq > 0, x / jnp.sqrt(jnp.where(sq > 0, sq, 1)), 0).astype(x.dtype)


def joint_gram_accumulate_jax(G: jax.Array, A: jax.Array, B: jax.Array, *, normalize: bool) -> jax.Array:
    """Pure-JAX twin of :func:`joint_gram_accumulate` (same arguments, same result): the rows
    normalised and concatenated in XLA, then :func:`gram_accumulate_jax`."""
    check_joint(G, A, B)
    A, B = jnp.asarray(A), jnp.asarray(B)
    return gram_accumulate_jax(G, jnp.concatenate([_rows(A, normalize), _rows(B, normalize)], axis=1))
