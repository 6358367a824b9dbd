"""The Hadamard-kernel ‖K_X ∘ K_T‖_F² as an XLA FFI call, its pure-JAX twin and its host entry.

    hadamard_sq_frobenius   Σ_ij k_X(x_i, x_j)² k_T(t_i, t_j)²    (paired rows, no n×n matrix)

the order-2 joint entropy of Conditional / Information Vendi (Jalali, Ospanov, Gohari & Farnia,
"Conditional Vendi Score", arXiv 2411.02817): ρ_XT = (K_X ∘ K_T)/n, so
H₂(X, T) = −log(‖K_X ∘ K_T‖_F² / n²). Kernels (one for both modalities):

* ``"gaussian"``: k(a, b) = exp(−‖a − b‖² / (2σ²)) with σ_x for the images x and σ_t for the
  texts t. k_X² k_T² = exp(−‖z − z'‖²) with z = [x/σ_x, t/σ_t]: the twin forms its tiles with the
  one Gaussian tile (:func:`clipcore.kernels.gaussian_tile`, γ = 1) on z;
* ``"cosine"``: k = cos, so the product is (cos_x cos_t)².

The compiled core (csrc/frobenius/hadamard_frobenius.cc, csrc/ffi/hadamard_handler.cc) visits the
symmetric tile pairs once, threaded, summing in float64; a point with itself is exactly 1.

Transformations: the call has a differentiation rule (``jax.custom_jvp``; reverse mode by JAX's
transposition of it) with respect to x, t, σ_x and σ_t: the twin's tangent (its tile loop
rematerialised in reverse mode, so a gradient keeps no n×n residuals). Under ``jax.vmap`` the call
runs once per batch element (``vmap_method="sequential"``). Off CPU the twin runs.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import check_sigma
from ..kernels import gaussian_tile
from . import registration as reg
from .checks import FLOATS, desc, int_attrs, sigma_operand, traced, wide

__all__ = [
    "HADAMARD_SQ_FROBENIUS_TARGET",
    "PRODUCT_KERNELS",
    "hadamard_sq_frobenius",
    "hadamard_sq_frobenius_jax",
    "hadamard_sq_frobenius_host",
    "hadamard_host_available",
]

#: FFI target name (platform "cpu").
HADAMARD_SQ_FROBENIUS_TARGET = "clipcore_hadamard_sq_frobenius"

#: The kernels of the product and their attribute values.
PRODUCT_KERNELS = {"gaussian": 0, "cosine": 1}

_OP = "hadamard_sq_frobenius"


def _kernel_code(kernel: str) -> int:
    if kernel not in PRODUCT_KERNELS:
        raise ValueError(f"{_OP}: kernel must be 'gaussian' or 'cosine', got {kernel!r}")
    return PRODUCT_KERNELS[kernel]


def _check_pair(x, t, names=("x", "t")) -> None:
    """x ``[n, dx]`` and t ``[n, dt]``: paired rank-2 rows of one float dtype."""
    if np.dtype(x.dtype) not in FLOATS or t.dtype != x.dtype:
        raise ValueError(f"{_OP}: {names[0]} and {names[1]} must share float32 or float64, got {desc(x)} and "
                         f"{desc(t)}")
    if x.ndim != 2 or t.ndim != 2 or x.shape[0] != t.shape[0]:
        raise ValueError(f"{_OP}: {names[0]} [n, dx] and {names[1]} [n, dt] must be paired rank-2 arrays, got "
                         f"{desc(x)} and {desc(t)}")


def _sigmas(kernel: str, sigma_x, sigma_t) -> jax.Array:
    """(σ_x, σ_t) as one ``[2]`` operand (ones for the cosine kernel, which has no bandwidth)."""
    if kernel == "cosine":
        for name, s in (("sigma_x", sigma_x), ("sigma_t", sigma_t)):
            if s is not None:
                raise ValueError(f"{_OP}: {name} is only used by the Gaussian kernel (got kernel='cosine')")
        return jnp.ones((2,), wide())
    if sigma_x is None or sigma_t is None:
        raise ValueError(f"{_OP}: the Gaussian kernel needs sigma_x and sigma_t")
    sx, st = sigma_operand(_OP, sigma_x), sigma_operand(_OP, sigma_t)
    dt = jnp.promote_types(sx.dtype, st.dtype)
    return jnp.stack([sx.astype(dt), st.astype(dt)])


def hadamard_sq_frobenius(x: jax.Array, t: jax.Array, sigma_x=None, sigma_t=None, *, kernel: str = "gaussian",
                          tile_rows: int | None = None, num_threads: int | None = None) -> jax.Array:
    """``‖K_X ∘ K_T‖_F² = Σ_ij k_X(x_i, x_j)² k_T(t_i, t_j)²`` streamed over tiles (no n×n matrix).

    The compiled core on CPU (threaded, float64 sums, O(n²·(dx + dt))), the twin
    :func:`hadamard_sq_frobenius_jax` elsewhere. Usable under ``jit``, ``grad`` (x, t, σ_x, σ_t) and
    ``vmap``.

    Args:
      x: ``[n, dx]`` float32|float64 image rows. t: ``[n, dt]`` text rows of x's dtype (row i of each
        belong together).
      sigma_x, sigma_t: the Gaussian bandwidths (floats or 0-d arrays, may be traced); None for cosine.
      kernel: ``"gaussian"`` or ``"cosine"``.
      tile_rows: tile edge (default 512). num_threads: threads for this call.

    Returns:
      0-d float64 (float32 when x64 is off).

    Raises:
      ValueError: bad shapes, dtypes or bandwidths (the target names a non-finite value or, for the
        cosine kernel, a zero row, with its operand and row).
    """
    x, t = jnp.asarray(x), jnp.asarray(t)
    code = _kernel_code(kernel)
    _check_pair(x, t)
    sig = _sigmas(kernel, sigma_x, sigma_t)
    attrs = int_attrs(_OP, tile_rows=tile_rows, num_threads=num_threads)
    attrs["kernel"] = np.int64(code)
    if not reg.available():
        raise RuntimeError(f"{_OP}: {reg.unavailable_reason()}")
    call = _call if traced(x, t, sig) else _primal
    return call(x, t, sig, (tuple(attrs.items()), kernel, tile_rows))


def _primal(x, t, sig, spec):
    """The FFI call on CPU, the twin elsewhere; spec = (attrs, kernel, tile_rows)."""
    attrs, kernel, tile_rows = spec
    out = jax.ShapeDtypeStruct((), wide())

    def on_cpu(a, b, s):
        return jax.ffi.ffi_call(HADAMARD_SQ_FROBENIUS_TARGET, out, vmap_method="sequential")(a, b, s, **dict(attrs))

    def default(a, b, s):
        return _twin(a, b, s, kernel, tile_rows).astype(out.dtype)

    return jax.lax.platform_dependent(x, t, sig, cpu=on_cpu, default=default)


_call = jax.custom_jvp(_primal, nondiff_argnums=(3,))


@_call.defjvp
def _jvp(spec, primals, tangents):
    _, kernel, tile_rows = spec
    out = _call(*primals, spec)
    twin = functools.partial(_twin, kernel=kernel, tile_rows=tile_rows)
    return out, jax.jvp(twin, primals, tangents)[1].astype(out.dtype)


def _twin(x, t, sig, kernel, tile_rows, y=None, u=None):
    """The tile loop on (x, t) [against (y, u)] with sig = [σ_x, σ_t]."""
    if kernel == "gaussian":
        s = sig.astype(x.dtype)
        a = jnp.concatenate([x / s[0], t / s[1]], axis=1)
        b = None if y is None else jnp.concatenate([y / s[0], u / s[1]], axis=1)
        return _tile_sum(a, b, lambda p, q: gaussian_tile(p, q, 1.0), tile_rows)
    dx = x.shape[1]

    def unit(r):
        return r / jnp.linalg.norm(r, axis=1, keepdims=True)

    a = jnp.concatenate([unit(x), unit(t)], axis=1)
    b = None if y is None else jnp.concatenate([unit(y), unit(u)], axis=1)
    hi = jax.lax.Precision.HIGHEST

    def tile(p, q):
        v = jnp.dot(p[:, :dx], q[:, :dx].T, precision=hi) * jnp.dot(p[:, dx:], q[:, dx:].T, precision=hi)
        return v * v

    return _tile_sum(a, b, tile, tile_rows)


def _tile_sum(a, b, tile, tile_rows):
    """Σ over tile pairs (I ≤ J, off-diagonal doubled; or every pair against b) of ``tile(a_I, b_J)``,
    padding rows masked out, a point with itself exactly 1, float64 sums (float32 when x64 is off)."""
    cross = b is not None
    n = a.shape[0]
    p = b.shape[0] if cross else n
    wd = wide()
    if n == 0 or p == 0:
        return jnp.zeros((), wd)
    t = int(max(1, min(tile_rows or 512, max(n, p))))
    nbx, nby = -(-n // t), -(-p // t)
    ap = jnp.pad(a, ((0, nbx * t - n), (0, 0)))
    bp = jnp.pad(b, ((0, nby * t - p), (0, 0))) if cross else ap
    wx = (jnp.arange(nbx * t) < n).astype(wd)
    wy = (jnp.arange(nby * t) < p).astype(wd) if cross else wx
    ii, jj = (np.divmod(np.arange(nbx * nby), nby) if cross else np.triu_indices(nbx))
    ii, jj = jnp.asarray(ii, jnp.int32), jnp.asarray(jj, jnp.int32)
    eye = jnp.eye(t, dtype=bool)

    def body(q, acc):
        i, j = ii[q], jj[q]
        ai = jax.lax.dynamic_slice_in_dim(ap, i * t, t, axis=0)
        bj = jax.lax.dynamic_slice_in_dim(bp, j * t, t, axis=0)
        k2 = tile(ai, bj)
        if not cross:
            k2 = jnp.where(eye & (i == j), jnp.ones((), k2.dtype), k2)
        wi = jax.lax.dynamic_slice_in_dim(wx, i * t, t)
        wj = jax.lax.dynamic_slice_in_dim(wy, j * t, t)
        s = wi @ k2.astype(wd) @ wj
        return acc + (s if cross else jnp.where(i == j, s, 2.0 * s))

    # remat: under reverse-mode differentiation a pair's tile is recomputed, not stored (no n×n residuals)
    return jax.lax.fori_loop(0, int(ii.shape[0]), jax.checkpoint(body), jnp.zeros((), wd))


def hadamard_sq_frobenius_jax(x: jax.Array, t: jax.Array, sigma_x=None, sigma_t=None, *, y: jax.Array | None = None,
                              u: jax.Array | None = None, kernel: str = "gaussian",
                              tile_rows: int | None = None) -> jax.Array:
    """Pure-JAX twin of :func:`hadamard_sq_frobenius` (a ``lax.fori_loop`` over tile pairs), or with a
    second paired set ``(y [p, dx], u [p, dt])`` the cross sum Σ_ij k_X(x_i, y_j)² k_T(t_i, u_j)²
    (the panel terms of :func:`hadamard_sq_frobenius_host`).

    Each tile comes from the one Gaussian tile on z = [x/σ_x, t/σ_t] (γ = 1), or from the two cosine
    GEMMs, in x's dtype, summed in float64 (float32 when x64 is off). Same arguments otherwise.
    """
    x, t = jnp.asarray(x), jnp.asarray(t)
    _kernel_code(kernel)
    _check_pair(x, t)
    if (y is None) != (u is None):
        raise ValueError(f"{_OP}: pass both y and u (the second paired set), or neither")
    if y is not None:
        y, u = jnp.asarray(y), jnp.asarray(u)
        _check_pair(y, u, ("y", "u"))
        if y.shape[1] != x.shape[1] or u.shape[1] != t.shape[1] or y.dtype != x.dtype:
            raise ValueError(f"{_OP}: y, u must be [p, {x.shape[1]}], [p, {t.shape[1]}] {x.dtype}, got {desc(y)}, "
                             f"{desc(u)}")
    sig = _sigmas(kernel, sigma_x, sigma_t)
    return _twin(x, t, sig, kernel, tile_rows, y, u)


def hadamard_host_available() -> bool:
    """True when the loaded extension has the host entry ``hadamard_sq_frobenius_host``."""
    return reg.available() and hasattr(reg.loaded_extension(), "hadamard_sq_frobenius_host")


def hadamard_sq_frobenius_host(x: np.ndarray, t: np.ndarray, sigma_x: float | None = None,
                               sigma_t: float | None = None, *, y: np.ndarray | None = None,
                               u: np.ndarray | None = None, kernel: str = "gaussian", tile_rows: int | None = None,
                               num_threads: int | None = None) -> float:
    """The compiled ‖K_X ∘ K_T‖_F² on host rows, outside XLA (GIL released, the process's threads):
    the symmetric sum over (x, t), or with ``(y, u)`` the cross sum Σ_ij k_X(x_i, y_j)² k_T(t_i, u_j)².
    Rows are made C-contiguous of x's dtype (float32|float64).

    Returns:
      The sum, a Python float.

    Raises:
      ValueError: bad shapes, dtypes or bandwidths, a non-finite value or (cosine) a zero row, named.
      RuntimeError: the extension is not loaded.
    """
    code = _kernel_code(kernel)
    ext = reg.extension("hadamard_sq_frobenius_host")
    x = np.ascontiguousarray(x)
    if x.dtype not in FLOATS:
        raise ValueError(f"{_OP}: x dtype must be float32 or float64, got {x.dtype}")
    t = np.ascontiguousarray(t, dtype=x.dtype)
    if (y is None) != (u is None):
        raise ValueError(f"{_OP}: pass both y and u (the second paired set), or neither")
    if y is not None:
        y, u = np.ascontiguousarray(y, dtype=x.dtype), np.ascontiguousarray(u, dtype=x.dtype)
    if kernel == "gaussian":
        sx = check_sigma(sigma_x, f"{_OP}: sigma_x", required=True)
        st = check_sigma(sigma_t, f"{_OP}: sigma_t", required=True)
    else:
        _sigmas(kernel, sigma_x, sigma_t)
        sx = st = 1.0
    for name, v in (("tile_rows", tile_rows), ("num_threads", num_threads)):
        if v is not None and (isinstance(v, bool) or int(v) < 0):
            raise ValueError(f"{_OP}: {name} must be an integer >= 0, got {v!r}")
    return float(ext.hadamard_sq_frobenius_host(x, t, y, u, code, sx, st, int(num_threads or 0),
                                                int(tile_rows or 0)))
