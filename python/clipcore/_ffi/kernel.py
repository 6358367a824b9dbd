"""The Gaussian-kernel core of the Nyström path as XLA FFI calls, with their pure-JAX twins.

Four accumulation targets and the streamed ‖K‖_F² (csrc/nystrom,
csrc/ffi/nystrom_handler.cc; CUDA handlers in csrc/cuda):

    nystrom_accumulate      G + Φᵀ Φ,  Φ = k(B, L) W      (whitened, then syrk)
                            G + Zᵀ Z,  Z = [Φ(B) | Φ(B2)]  (paired: texts, images)
    (whitening=None)        G + k(B, L)ᵀ k(B, L)          (float64 products; whiten the sum)
    gaussian_sq_frobenius   Σ_ij k(x_i, x_j)²              (symmetric tiles, no n×n)

k(x, y) = exp(−‖x − y‖² / (2σ²)), σ an operand (may be traced). The twins
form their tiles with the one Gaussian tile, :func:`clipcore.kernels.gaussian_tile`.

Transformations: every call has a differentiation rule (``jax.custom_jvp``;
reverse mode by JAX's transposition of it) with respect to all its array
operands, σ included. The accumulations' tangent is the GEMM dG + dZᵀZ + ZᵀdZ
with (Z, dZ) the twin's features and their tangent; the ‖K‖_F² tangent is
the twin's (a tile loop whose body is rematerialised in reverse mode, so a
gradient holds no n×n residuals). The twins run only under differentiation.
Under ``jax.vmap`` the calls run once per batch element
(``vmap_method="sequential"``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..kernels import gamma_of, gaussian_tile
from . import registration as reg
from .checks import check_nystrom, check_x, int_attrs, sigma_operand, traced, wide
from .gram import gram_tangent

__all__ = [
    "NYSTROM_TARGET",
    "NYSTROM_PAIRED_TARGET",
    "KERNEL_ACC_TARGET",
    "KERNEL_ACC_PAIRED_TARGET",
    "SQ_FROBENIUS_TARGET",
    "nystrom_accumulate",
    "nystrom_accumulate_jax",
    "gaussian_sq_frobenius",
    "gaussian_sq_frobenius_jax",
]

#: FFI target names (platform "cpu"; "CUDA" too in a CUDA build).
NYSTROM_TARGET = "clipcore_nystrom_accumulate"
NYSTROM_PAIRED_TARGET = "clipcore_nystrom_accumulate_paired"
KERNEL_ACC_TARGET = "clipcore_kernel_accumulate"
KERNEL_ACC_PAIRED_TARGET = "clipcore_kernel_accumulate_paired"
SQ_FROBENIUS_TARGET = "clipcore_gaussian_sq_frobenius"


def _gamma(sigma, dtype):
    """γ = 1/(2σ²) with σ cast to ``dtype`` first."""
    return gamma_of(jnp.asarray(sigma, dtype))


def nystrom_accumulate(
    G: jax.Array,
    B: jax.Array,
    landmarks: jax.Array,
    whitening: jax.Array | None,
    sigma,
    *,
    B2: jax.Array | None = None,
    block_rows: int | None = None,
    tile_rows: int | None = None,
    num_threads: int | None = None,
) -> jax.Array:
    """Fused Nyström accumulation through the compiled core (XLA FFI, CPU).

    With ``Φ(B) = k(B, L) W`` (Gaussian kernel, bandwidth σ):

    * ``G + Φ(B)ᵀ Φ(B)``                       (``B2=None``),
    * ``G + Zᵀ Z`` with ``Z = [Φ(B) | Φ(B2)]`` (paired: texts and images of
      the same rows; the four blocks are C_TT, C_TX, C_XT, C_XX · n).

    With ``whitening=None`` Φ(B) = k(B, L) (the unwhitened kernel sum, whose
    products are always float64: whiten it once afterwards).

    Per row chunk: the kernel tile from one GEMM (‖b‖² + ‖l‖² − 2 b·lᵀ) and
    an exp pass, the whitening GEMM, one syrk into a per-thread float64
    accumulator; chunks are spread over XLA's CPU threads. float32 inputs:
    tile and whitening in float32, each chunk's Φᵀ Φ (≤ ``block_rows`` rows,
    default 2048) in float32, summed in float64. Usable in ``jax.jit`` and
    loops; G is updated in place (``input_output_aliases``). Off CPU the
    pure-JAX twin :func:`nystrom_accumulate_jax` runs (or the CUDA handler in
    a CUDA build).

    Args:
      G: ``[R, R]`` float32|float64, R = (2 if B2 else 1) · (r or m).
      B: ``[b, d]`` float32|float64 rows (b may be 0). B2: same shape/dtype.
      landmarks: ``[m, d]`` of B's dtype.
      whitening: ``[m, r]`` of B's dtype, or None.
      sigma: bandwidth (Python float or 0-d array; may be traced).
      block_rows: rows per chunk (= per syrk). tile_rows: rows per kernel tile.
      num_threads: threads for this call.

    Returns:
      ``[R, R]`` of G's dtype.

    Raises:
      ValueError: bad shapes/dtypes/σ (also raised by the target itself, with
        shapes, for non-finite inputs).
      RuntimeError: the compiled extension is not available.
    """
    op = "nystrom_accumulate" if whitening is not None else "kernel_accumulate"
    G, B, landmarks = jnp.asarray(G), jnp.asarray(B), jnp.asarray(landmarks)
    whitening = None if whitening is None else jnp.asarray(whitening)
    B2 = None if B2 is None else jnp.asarray(B2)
    check_nystrom(op, G, B, landmarks, whitening, B2)
    sig = sigma_operand(op, sigma)
    attrs = int_attrs(op, block_rows=block_rows, tile_rows=tile_rows, num_threads=num_threads)
    if not reg.available():
        raise RuntimeError(f"{op}: {reg.unavailable_reason()}")
    if whitening is not None:
        target = NYSTROM_PAIRED_TARGET if B2 is not None else NYSTROM_TARGET
    else:
        target = KERNEL_ACC_PAIRED_TARGET if B2 is not None else KERNEL_ACC_TARGET
    ops = (G, B, B2, landmarks, whitening, sig)
    return (_nystrom_call if traced(ops) else _nystrom_primal)(ops, (target, tuple(attrs.items())))


def _nystrom_primal(ops, spec):
    """The accumulation on ops = (G, B, B2 | None, L, W | None, σ): the FFI call (spec = (target, attrs)) on
    CPU (and CUDA in a CUDA build), the twin elsewhere."""
    G, B, B2, landmarks, whitening, sig = ops
    target, attrs = spec
    operands = [G, B] + ([B2] if B2 is not None else []) + [landmarks]
    operands += ([whitening] if whitening is not None else []) + [sig]
    n_b = 2 if B2 is not None else 1

    def on_cpu(*o):
        call = jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(G.shape, G.dtype), input_output_aliases={0: 0},
                                vmap_method="sequential")
        return call(*o, **dict(attrs))

    def default(*o):
        g, blocks, rest = o[0], o[1 : 1 + n_b], o[1 + n_b :]
        w = rest[1] if whitening is not None else None
        return nystrom_accumulate_jax(g, blocks[0], rest[0], w, rest[-1], B2=blocks[1] if n_b == 2 else None)

    return jax.lax.platform_dependent(*operands, cpu=on_cpu, cuda=on_cpu if reg.cuda_available() else default,
                                      default=default)


_nystrom_call = jax.custom_jvp(_nystrom_primal, nondiff_argnums=(1,))


@_nystrom_call.defjvp
def _nystrom_jvp(spec, primals, tangents):
    (ops,), (dots,) = primals, tangents
    z, dz = jax.jvp(_features, ops[1:], dots[1:])
    return _nystrom_call(ops, spec), gram_tangent(ops[0].dtype, z, dots[0], dz)


def _features(B, B2, landmarks, whitening, sigma) -> jax.Array:
    """The twin's Z: [Φ(B) | Φ(B2)] with Φ = k(·, L) W in B's dtype (whitened), or k(·, L) widened to
    float64 (float32 when x64 is off) without W."""
    gamma = _gamma(sigma, B.dtype)
    blocks = [B] + ([B2] if B2 is not None else [])
    if whitening is not None:
        hi = jax.lax.Precision.HIGHEST
        feats = [jnp.dot(gaussian_tile(blk, landmarks, gamma), whitening, precision=hi) for blk in blocks]
    else:
        wd = jnp.promote_types(B.dtype, wide())
        feats = [gaussian_tile(blk, landmarks, gamma).astype(wd) for blk in blocks]
    return feats[0] if len(feats) == 1 else jnp.concatenate(feats, axis=1)


def nystrom_accumulate_jax(
    G: jax.Array,
    B: jax.Array,
    landmarks: jax.Array,
    whitening: jax.Array | None,
    sigma,
    *,
    B2: jax.Array | None = None,
) -> jax.Array:
    """Pure-JAX twin of :func:`nystrom_accumulate` (same arguments, same result).

    Whitened: Φ in B's dtype, ``Φᵀ Φ`` of the block in B's dtype, added to G
    in ``promote(G, B)``. Unwhitened: the kernel tile widened to float64
    (float32 when x64 is off) before the product.
    """
    op = "nystrom_accumulate" if whitening is not None else "kernel_accumulate"
    G, B, landmarks = jnp.asarray(G), jnp.asarray(B), jnp.asarray(landmarks)
    whitening = None if whitening is None else jnp.asarray(whitening)
    B2 = None if B2 is None else jnp.asarray(B2)
    check_nystrom(op, G, B, landmarks, whitening, B2)
    z = _features(B, B2, landmarks, whitening, sigma)
    prod = jax.lax.dot_general(z, z, (((0,), (0,)), ((), ())), precision=jax.lax.Precision.HIGHEST,
                               preferred_element_type=z.dtype)
    acc = jnp.promote_types(G.dtype, prod.dtype)
    return (G.astype(acc) + prod.astype(acc)).astype(G.dtype)


def gaussian_sq_frobenius(
    x: jax.Array, sigma, *, tile_rows: int | None = None, num_threads: int | None = None
) -> jax.Array:
    """``‖K‖_F² = Σ_ij k(x_i, x_j)²`` of the Gaussian kernel, streamed (no n×n matrix).

    The compiled core visits the tile pairs I ≤ J once (one GEMM + one exp
    pass each, off-diagonal tiles doubled), sums in float64 and is threaded
    over row tiles; the diagonal k(x_i, x_i) = 1 is exact. RKE = n² / ‖K‖_F².
    On CUDA the same target runs when the extension was built with
    ``CLIPCORE_ENABLE_CUDA`` (csrc/cuda/frobenius_cuda.cu: one cuBLAS GEMM and
    one fused k² + float64 sum kernel per tile pair); elsewhere off CPU the
    twin :func:`gaussian_sq_frobenius_jax` runs.

    Args:
      x: ``[n, d]`` float32|float64. sigma: bandwidth (float or 0-d array).
      tile_rows: tile edge (default 512 on CPU, 4096 on CUDA). num_threads: threads for this call.

    Returns:
      0-d float64 (float32 when x64 is off).
    """
    op = "gaussian_sq_frobenius"
    x = jnp.asarray(x)
    check_x(op, x)
    sig = sigma_operand(op, sigma)
    attrs = int_attrs(op, tile_rows=tile_rows, num_threads=num_threads)
    if not reg.available():
        raise RuntimeError(f"{op}: {reg.unavailable_reason()}")
    call = _sq_frobenius_call if traced(x, sig) else _sq_frobenius_primal
    return call(x, sig, (tuple(attrs.items()), tile_rows))


def _sq_frobenius_primal(x, sig, spec):
    """‖K‖_F²: the FFI call on CPU (and CUDA in a CUDA build), the twin elsewhere; spec = (attrs, tile_rows)."""
    attrs, tile_rows = spec
    out = jax.ShapeDtypeStruct((), wide())

    def on_cpu(a, s):
        return jax.ffi.ffi_call(SQ_FROBENIUS_TARGET, out, vmap_method="sequential")(a, s, **dict(attrs))

    def default(a, s):
        return gaussian_sq_frobenius_jax(a, s, tile_rows=tile_rows)

    return jax.lax.platform_dependent(x, sig, cpu=on_cpu, cuda=on_cpu if reg.cuda_available() else default,
                                      default=default)


_sq_frobenius_call = jax.custom_jvp(_sq_frobenius_primal, nondiff_argnums=(2,))


@_sq_frobenius_call.defjvp
def _sq_frobenius_jvp(spec, primals, tangents):
    twin = functools.partial(gaussian_sq_frobenius_jax, tile_rows=spec[1])
    out = _sq_frobenius_call(*primals, spec)
    return out, jax.jvp(twin, primals, tangents)[1].astype(out.dtype)


def gaussian_sq_frobenius_jax(x: jax.Array, sigma, *, y: jax.Array | None = None,
                              tile_rows: int | None = None) -> jax.Array:
    """Pure-JAX twin of :func:`gaussian_sq_frobenius`: a ``lax.fori_loop`` over tile pairs I ≤ J
    (or, with ``y [p, d]``, over all pairs of x's and y's tiles: Σ_ij k(x_i, y_j)², the cross term of
    :func:`~clipcore._ffi.host.gaussian_sq_frobenius_host`).

    x (and y) are padded to a whole number of tiles (the padding rows are
    masked out); each pair's k² tile comes from one dot and one exp in x's
    dtype and is summed in float64 (float32 when x64 is off).

    Args:
      x: ``[n, d]`` float32|float64. sigma: bandwidth (float or 0-d array; may be traced).
      y: ``[p, d]`` of x's dtype, or None. tile_rows: tile edge (default 512).

    Returns:
      0-d float64 (float32 when x64 is off).
    """
    x = jnp.asarray(x)
    check_x("gaussian_sq_frobenius", x)
    cross = y is not None
    if cross:
        y = jnp.asarray(y)
        check_x("gaussian_sq_frobenius", y)
        if y.shape[1] != x.shape[1] or y.dtype != x.dtype:
            raise ValueError(f"gaussian_sq_frobenius: y must be [p, {x.shape[1]}] {x.dtype}, got "
                             f"{list(y.shape)} {y.dtype}")
    n = x.shape[0]
    p = y.shape[0] if cross else n
    wd = wide()
    if n == 0 or p == 0:
        return jnp.zeros((), wd)
    t = int(max(1, min(tile_rows or 512, max(n, p))))
    nbx, nby = -(-n // t), -(-p // t)
    xp = jnp.pad(x, ((0, nbx * t - n), (0, 0)))
    yp = jnp.pad(y, ((0, nby * t - p), (0, 0))) if cross else xp
    wx = (jnp.arange(nbx * t) < n).astype(wd)
    wy = (jnp.arange(nby * t) < p).astype(wd) if cross else wx
    ii, jj = (np.divmod(np.arange(nbx * nby), nby) if cross else np.triu_indices(nbx))
    n_pairs = len(ii)
    ii, jj = jnp.asarray(ii, jnp.int32), jnp.asarray(jj, jnp.int32)
    gamma2 = 2.0 * _gamma(sigma, x.dtype)
    eye = jnp.eye(t, dtype=bool)

    def body(q, acc):
        i, j = ii[q], jj[q]
        xi = jax.lax.dynamic_slice_in_dim(xp, i * t, t, axis=0)
        yj = jax.lax.dynamic_slice_in_dim(yp, j * t, t, axis=0)
        k2 = gaussian_tile(xi, yj, gamma2)
        if not cross:  # a point with itself: exactly 1
            k2 = jnp.where(eye & (i == j), jnp.ones((), k2.dtype), k2)
        wi = jax.lax.dynamic_slice_in_dim(wx, i * t, t)
        wj = jax.lax.dynamic_slice_in_dim(wy, j * t, t)
        s = wi @ k2.astype(wd) @ wj
        return acc + (s if cross else jnp.where(i == j, s, 2.0 * s))

    # remat: under reverse-mode differentiation a pair's tile is recomputed, not stored (no n×n residuals)
    return jax.lax.fori_loop(0, n_pairs, jax.checkpoint(body), jnp.zeros((), wd))
