"""Greedy pivoted Cholesky of the Gaussian kernel matrix (landmark selection) as an XLA FFI call,
with its pure-JAX twin.

k(x, y) = exp(−‖x − y‖² / (2σ²)), σ an operand (may be traced); the kernel
matrix k(x, x) is never formed.

Transformations: a differentiation rule (``jax.custom_jvp``; reverse mode by
JAX's transposition of it). The pivots and the count are integers (zero
tangent: the choice is piecewise constant in x and σ); the float outputs are
differentiated with the pivots the call chose held fixed, where they are
smooth functions of x and σ: with P the first ``count`` pivots,
pivot_factor = chol(k(x_P, x_P)), factor = k(x, x_P) pivot_factorᵀ⁻¹ and
residual_trace[k] = n − Σ_{j≤k} ‖factor[:, j]‖² (:func:`fixed_pivot_factors`,
in JAX, only under differentiation; O(n·m·d + n·m² + m³)). Entries after
``count`` have zero tangent. Under ``jax.vmap`` the call runs once per batch
element (``vmap_method="sequential"``).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from ..kernels import gamma_of, gaussian_tile
from . import registration as reg
from .checks import check_pc, int_attrs, sigma_operand, traced, wide

__all__ = [
    "PIVOTED_CHOLESKY_TARGET",
    "MIN_PIVOT",
    "PivotedCholesky",
    "pivoted_cholesky",
    "pivoted_cholesky_jax",
    "fixed_pivot_factors",
]

#: FFI target name (platform "cpu"; "CUDA" too in a CUDA build).
PIVOTED_CHOLESKY_TARGET = "clipcore_pivoted_cholesky"

#: Default stopping threshold of the pivoted Cholesky on the largest residual
#: diagonal (the kernel diagonal is 1): a landmark must add at least this much
#: new kernel variance.
MIN_PIVOT = 1e-10


class PivotedCholesky(NamedTuple):
    """Result of :func:`pivoted_cholesky` (arrays of the full size m; see count).

    Attributes:
      pivots: ``[m]`` pivot rows in the order chosen, −1 after ``count``.
      count: 0-d number of pivots taken (≤ min(m, n)).
      residual_trace: ``[m]`` Σ_i residual diagonal after each step (tr K = n
        before the first), NaN after ``count``.
      pivot_factor: ``[m, m]`` L[pivots, :], the lower-triangular Cholesky
        factor of k(x_P, x_P); zero outside the leading count × count block.
      factor: ``[n, m]`` L (k(x, x) ≈ L Lᵀ), zero after column ``count``;
        ``[0, m]`` unless ``return_factor``.
    """

    pivots: jax.Array
    count: jax.Array
    residual_trace: jax.Array
    pivot_factor: jax.Array
    factor: jax.Array


def _pc_out(n: int, m: int, return_factor: bool) -> PivotedCholesky:
    wd = wide()
    idt = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    return PivotedCholesky(
        jax.ShapeDtypeStruct((m,), idt),
        jax.ShapeDtypeStruct((), idt),
        jax.ShapeDtypeStruct((m,), wd),
        jax.ShapeDtypeStruct((m, m), wd),
        jax.ShapeDtypeStruct((n if return_factor else 0, m), wd),
    )


def pivoted_cholesky(
    x: jax.Array,
    sigma,
    m: int,
    *,
    trace_tol: float = 0.0,
    min_pivot: float = MIN_PIVOT,
    return_factor: bool = False,
    panel: int | None = None,
    candidates: int | None = None,
    block_rows: int | None = None,
    num_threads: int | None = None,
) -> PivotedCholesky:
    """Greedy pivoted Cholesky of the Gaussian kernel matrix k(x, x), never formed.

    Sequential definition: residual diagonal r = 1, trace t = n; at each step
    stop if m pivots were taken, t ≤ ``trace_tol`` or max r ≤ ``min_pivot``;
    else p = argmax r (lowest index among ties), L[:, k] = (K[:, p] −
    L[:, :k] L[p, :k]ᵀ)/√r_p, r −= L[:, k]², r_p = 0. The compiled core gets
    the same pivots with BLAS-3 panels (candidate rows of largest residual,
    then one GEMM + exp + GEMM + triangular solve over all rows per panel,
    threaded): O(n·m·d + n·m²) flops, O(n·m) memory (see
    csrc/nystrom/pivoted_cholesky.h), float64 arithmetic. On CUDA the same
    target runs when the extension was built with ``CLIPCORE_ENABLE_CUDA``
    (csrc/cuda/pivoted_cholesky_cuda.cu: the sequential definition, one step
    after another on the device, the same pivots); elsewhere off CPU the twin
    :func:`pivoted_cholesky_jax` runs.

    Args:
      x: ``[n, d]`` float32|float64. sigma: bandwidth. m: most pivots.
      trace_tol: absolute residual-trace threshold (``tol · n`` for a
        relative tolerance).
      min_pivot: stop when no residual exceeds this.
      return_factor: also return the ``[n, m]`` factor.
      panel, candidates, block_rows, num_threads: tuning (defaults 128,
        max(4·panel, 512), 1024, all CPUs); the result does not depend on them.

    Returns:
      :class:`PivotedCholesky` (int64/float64 under x64, else int32/float32).
    """
    op = "pivoted_cholesky"
    x = jnp.asarray(x)
    check_pc(op, x, m, trace_tol, min_pivot)
    sig = sigma_operand(op, sigma)
    attrs = int_attrs(op, panel=panel, candidates=candidates, block_rows=block_rows, num_threads=num_threads)
    attrs["trace_tol"] = np.float64(trace_tol)
    attrs["min_pivot"] = np.float64(min_pivot)
    if not reg.available():
        raise RuntimeError(f"{op}: {reg.unavailable_reason()}")
    spec = (int(m), float(trace_tol), float(min_pivot), bool(return_factor), tuple(attrs.items()))
    return (_pc_call if traced(x, sig) else _pc_primal)(x, sig, spec)


def _pc_primal(x, sig, spec):
    """The FFI call on CPU (and CUDA in a CUDA build), the twin elsewhere;
    spec = (m, trace_tol, min_pivot, return_factor, attrs)."""
    m, trace_tol, min_pivot, return_factor, attrs = spec
    out = _pc_out(x.shape[0], m, return_factor)

    def on_cpu(a, s):
        call = jax.ffi.ffi_call(PIVOTED_CHOLESKY_TARGET, tuple(out), vmap_method="sequential")
        return PivotedCholesky(*call(a, s, **dict(attrs)))

    def default(a, s):
        return pivoted_cholesky_jax(a, s, m, trace_tol=trace_tol, min_pivot=min_pivot, return_factor=return_factor)

    return jax.lax.platform_dependent(x, sig, cpu=on_cpu, cuda=on_cpu if reg.cuda_available() else default,
                                      default=default)


_pc_call = jax.custom_jvp(_pc_primal, nondiff_argnums=(2,))


@_pc_call.defjvp
def _pc_jvp(spec, primals, tangents):
    out = _pc_call(*primals, spec)
    fixed = functools.partial(fixed_pivot_factors, pivots=out.pivots, count=out.count, return_factor=spec[3])
    _, (d_trace, d_pf, d_factor) = jax.jvp(fixed, primals, tangents)
    zero = functools.partial(np.zeros, dtype=jax.dtypes.float0)
    return out, PivotedCholesky(zero(out.pivots.shape), zero(out.count.shape), d_trace, d_pf, d_factor)


def fixed_pivot_factors(x: jax.Array, sigma, pivots: jax.Array, count: jax.Array, *,
                        return_factor: bool = False) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The float outputs of :func:`pivoted_cholesky` for given pivots: smooth in x and σ (the derivative
    rule differentiates this with the call's pivots).

    With P = pivots[:count]: pivot_factor = chol(k(x_P, x_P)), factor = k(x, x_P) pivot_factorᵀ⁻¹,
    residual_trace[k] = n − Σ_{j≤k} ‖factor[:, j]‖² (exactly the sequential definition's values for
    those pivots, up to rounding); entries after ``count`` as in :class:`PivotedCholesky`.

    Args:
      x: ``[n, d]``. sigma: bandwidth. pivots: ``[m]`` (−1 after count). count: 0-d.
      return_factor: return the ``[n, m]`` factor (else ``[0, m]``).

    Returns:
      ``(residual_trace [m], pivot_factor [m, m], factor)``, float64 (float32 when x64 is off).
    """
    n, m = x.shape[0], pivots.shape[0]
    wd = wide()
    xw = x.astype(wd)
    gamma = gamma_of(jnp.asarray(sigma, wd))
    valid = jnp.arange(m) < count
    both = valid[:, None] & valid[None, :]
    xp = xw[jnp.where(valid, pivots, 0)]
    kpp = jnp.where(both, gaussian_tile(xp, xp, gamma), jnp.eye(m, dtype=wd))  # identity after count
    lpp = jnp.linalg.cholesky(kpp)
    kxp = jnp.where(valid[None, :], gaussian_tile(xw, xp, gamma), 0.0)
    factor = solve_triangular(lpp, kxp.T, lower=True).T  # factor lppᵀ = k(x, x_P)
    rtrace = jnp.where(valid, n - jnp.cumsum(jnp.sum(factor * factor, axis=0)), jnp.nan)
    return rtrace, jnp.where(both, lpp, 0.0), factor if return_factor else jnp.zeros((0, m), wd)


def pivoted_cholesky_jax(
    x: jax.Array,
    sigma,
    m: int,
    *,
    trace_tol: float = 0.0,
    min_pivot: float = MIN_PIVOT,
    return_factor: bool = False,
) -> PivotedCholesky:
    """Pure-JAX twin of :func:`pivoted_cholesky`: the sequential definition in a ``lax.fori_loop``.

    One step per iteration (a kernel column k(x, x_p): the one Gaussian tile
    :func:`clipcore.kernels.gaussian_tile` of x against the pivot row; one
    matrix-vector product with the [n, m] factor); float64 (float32 when x64
    is off).

    Args:
      x: ``[n, d]`` float32|float64. sigma: bandwidth (may be traced). m: most pivots.
      trace_tol, min_pivot, return_factor: as in :func:`pivoted_cholesky`.

    Returns:
      :class:`PivotedCholesky`.
    """
    op = "pivoted_cholesky"
    x = jnp.asarray(x)
    check_pc(op, x, m, trace_tol, min_pivot)
    m = int(m)
    out = _pc_out(x.shape[0], m, bool(return_factor))
    wd = out.residual_trace.dtype
    idt = out.pivots.dtype
    n = x.shape[0]
    me = min(m, n)
    xw = x.astype(wd)
    gamma = gamma_of(jnp.asarray(sigma, wd))
    hi = jax.lax.Precision.HIGHEST
    nan = jnp.asarray(np.nan, wd)

    init = (
        jnp.zeros((n, m), wd),  # L
        jnp.ones((n,), wd),  # residual diagonal
        jnp.zeros((n,), bool),  # pivoted
        jnp.full((m,), -1, idt),
        jnp.full((m,), nan, wd),
        jnp.zeros((), idt),
        jnp.asarray(False),
        jnp.asarray(float(n), wd),
    )

    def body(k, st):
        L, r, piv, pivots, rtrace, count, done, trace = st
        p = jnp.argmax(r)
        dp = r[p]
        stop = done | (trace <= trace_tol) | ~(dp > min_pivot)
        kcol = gaussian_tile(xw, jax.lax.dynamic_slice_in_dim(xw, p, 1, axis=0), gamma)[:, 0]
        pv = jnp.sqrt(jnp.where(stop, 1.0, dp))
        col = (kcol - jnp.dot(L, L[p], precision=hi)) / pv
        col = jnp.where(piv, 0.0, col).at[p].set(pv)
        r_new = jnp.maximum(r - col * col, 0.0).at[p].set(0.0)
        t_new = jnp.sum(r_new)
        upd = (
            L.at[:, k].set(col),
            r_new,
            piv.at[p].set(True),
            pivots.at[k].set(p.astype(idt)),
            rtrace.at[k].set(t_new),
            count + 1,
            done,
            t_new,
        )
        keep = (L, r, piv, pivots, rtrace, count, jnp.asarray(True), trace)
        return jax.tree_util.tree_map(lambda a, b: jnp.where(stop, a, b), keep, upd)

    L, _, _, pivots, rtrace, count, _, _ = jax.lax.fori_loop(0, me, body, init)
    safe = jnp.where(pivots >= 0, pivots, 0)
    rows = jnp.arange(m) < count
    pf = jnp.where(rows[:, None], L[safe], 0.0)
    factor = L if return_factor else jnp.zeros((0, m), wd)
    return PivotedCholesky(pivots, count, rtrace, pf, factor)
