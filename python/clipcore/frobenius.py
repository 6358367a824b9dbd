"""The exact ‖K‖_F² = Σ_ij k(x_i, x_j)² at any n, without an n×n matrix (SPEC.md, "Large n").

The Rényi-2 (RKE) score needs no eigendecomposition: exp(H₂) = n² / ‖K‖_F².
For the Gaussian kernel ‖K‖_F² is streamed over symmetric tiles (the compiled
core, threaded, or its pure-JAX twin), or panel against panel for rows read
from files (:func:`sq_frobenius_panels`); for the cosine kernel k = cos, so
‖K‖_F² = ‖X̂ᵀ X̂‖_F² from the d×d covariance, no tiles at all.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _ffi
from ._options import resolve_backend, x64
from ._validate import check_sigma
from .covariance import feature_covariance
from .kernels import FeatureMap
from .landmarks import check_float_rows

__all__ = ["kernel_sq_frobenius", "sq_frobenius_panels", "StreamedRKE", "rke_streamed"]


def kernel_sq_frobenius(
    x: jax.Array,
    *,
    y: jax.Array | None = None,
    kernel: str = "gaussian",
    sigma: float | None = None,
    backend: str = "auto",
    tile_rows: int | None = None,
    block_size: int | None = None,
) -> float:
    """‖K‖_F² = Σ_ij k(x_i, x_j)² without an n×n matrix (float64); with ``y``
    the cross term Σ_ij k(x_i, y_j)² = ‖k(X, Y)‖_F².

    * ``"gaussian"``: symmetric tiles (I ≤ J, off-diagonal doubled), each a
      GEMM + exp, summed in float64: the compiled core (threaded) or the
      pure-JAX twin (a ``lax.fori_loop`` over tile pairs). O(n²·d). The cross
      term visits every tile pair; with ``backend="ffi"`` it runs in the
      compiled core on host copies of the rows.
    * ``"cosine"``: k = cos(x_i, x_j), so Σ k² = ‖X̂ᵀ X̂‖_F² with X̂ the
      row-normalised x: one streamed d×d covariance, no tiles. O(n·d²). The
      cross term is ⟨X̂ᵀX̂, ŶᵀŶ⟩_F.

    Args:
      x: ``[n, d]`` embeddings.
      y: optional ``[p, d]`` second set (same dtype as x).
      sigma: Gaussian bandwidth.
      backend: ``"auto"``, ``"ffi"``, ``"jax"``.
      tile_rows: Gaussian tile edge (default 512).
      block_size: cosine accumulation block.
    """
    be = resolve_backend(backend)
    with x64():
        x = jnp.asarray(x)
        check_float_rows(x)
        if y is not None:
            y = jnp.asarray(y)
            check_float_rows(y, "y")
            if y.shape[1] != x.shape[1]:
                raise ValueError(f"y: expected [p, {x.shape[1]}] rows like x, got shape {list(y.shape)}")
        n = x.shape[0]
        if kernel == "gaussian":
            sig = check_sigma(sigma, required=True)
            if y is not None:
                if be == "ffi":
                    return _ffi.gaussian_sq_frobenius_host(np.asarray(x), sig, y=np.asarray(y, dtype=x.dtype),
                                                           tile_rows=tile_rows)
                return float(_ffi.gaussian_sq_frobenius_jax(x, sig, y=y.astype(x.dtype), tile_rows=tile_rows))
            fn = _ffi.gaussian_sq_frobenius if be == "ffi" else _ffi.gaussian_sq_frobenius_jax
            return float(fn(x, sig, tile_rows=tile_rows))
        if kernel == "cosine":
            if n == 0 or (y is not None and y.shape[0] == 0):
                return 0.0
            def cov(a, name):  # X̂ᵀX̂ (a sum, not a mean)
                norms = np.asarray(jnp.linalg.norm(a.astype(jnp.float64), axis=1))
                if not np.all(norms > 0):
                    raise ValueError(f"{name}: the cosine kernel needs non-zero rows")
                c = feature_covariance(a, FeatureMap("cosine"), block_size=block_size,
                                       feature_dtype=jnp.float64, acc_dtype=jnp.float64, backend=be)
                return c * float(a.shape[0])

            cx = cov(x, "x")
            cy = cx if y is None else cov(y, "y")
            return float(jnp.sum(cx * cy))
        raise ValueError(f"kernel: expected 'gaussian' or 'cosine', got {kernel!r}")


def sq_frobenius_panels(
    read,
    n: int,
    sigma: float,
    *,
    panel_rows: int,
    backend: str = "auto",
    tile_rows: int | None = None,
    on_pairs=None,
) -> float:
    """The Gaussian ‖K‖_F² of n rows read by panels: Σ_P ‖K_PP‖² + 2 Σ_{P<Q} ‖K_PQ‖².

    Two panels are in memory at a time, so rows that do not fit (files,
    shards) get the exact ‖K‖_F² in bounded memory; panel Q is read again
    for every P < Q (n² / (2 · panel_rows) rows read in all). Each term is one
    call of the compiled core on host rows (``backend="ffi"``) or of its JAX
    twin, summed in float64 in a fixed order.

    Args:
      read: ``read(start, stop)`` → host rows ``[stop − start, d]``
        (float32|float64, validated by the caller).
      n: total rows.
      sigma: bandwidth.
      panel_rows: rows per panel (≥ 1).
      backend: ``"auto"``, ``"ffi"``, ``"jax"``.
      on_pairs: called with the number of pairs (i ≤ j) each term covered,
        e.g. a progress bar's ``update``.
    """
    be = resolve_backend(backend)
    sig = check_sigma(sigma, required=True)
    panel_rows = int(panel_rows)
    if panel_rows < 1:
        raise ValueError(f"panel_rows: expected a positive integer, got {panel_rows}")

    def term(a, b=None):
        if be == "ffi":
            return _ffi.gaussian_sq_frobenius_host(a, sig, y=b, tile_rows=tile_rows)
        with x64():
            return float(_ffi.gaussian_sq_frobenius_jax(jnp.asarray(a), sig, y=None if b is None else jnp.asarray(b),
                                                        tile_rows=tile_rows))

    starts = list(range(0, n, panel_rows))
    total = 0.0
    for k, a0 in enumerate(starts):
        a1 = min(n, a0 + panel_rows)
        A = read(a0, a1)
        total += term(A)
        if on_pairs is not None:
            on_pairs((a1 - a0) * (a1 - a0 + 1) // 2)
        for b0 in starts[k + 1:]:
            b1 = min(n, b0 + panel_rows)
            total += 2.0 * term(A, read(b0, b1))
            if on_pairs is not None:
                on_pairs((a1 - a0) * (b1 - b0))
    return total


class StreamedRKE(NamedTuple):
    """The exact RKE (Rényi-2 kernel entropy) from the streamed ‖K‖_F².

    Attributes:
      score: exp(H₂) = n² / ‖K‖_F² = 1 / Σ λ² (λ: eigenvalues of K/n).
      entropy: H₂ = log(score).
      frobenius_sq: ‖K‖_F².
      n: rows.
      kernel: ``"gaussian"`` or ``"cosine"``.
      sigma: bandwidth (Gaussian), else None.
    """

    score: float
    entropy: float
    frobenius_sq: float
    n: int
    kernel: str
    sigma: float | None


def rke_streamed(
    x: jax.Array,
    *,
    kernel: str = "gaussian",
    sigma: float | None = None,
    backend: str = "auto",
    tile_rows: int | None = None,
    block_size: int | None = None,
) -> StreamedRKE:
    """Exact RKE score of x at any n: n² / ‖K‖_F² (no eigendecomposition, no n×n matrix).

    Same as ``clipcore.rke`` (order-2 Vendi of K/n) without the 1e-10
    eigenvalue clamp (which adds ≤ n·1e-20 to Σλ²). See
    :func:`kernel_sq_frobenius` for the arguments.
    """
    x = x if isinstance(x, jax.Array) else np.asarray(x)
    f = kernel_sq_frobenius(x, kernel=kernel, sigma=sigma, backend=backend, tile_rows=tile_rows,
                            block_size=block_size)
    n = int(x.shape[0])
    if n == 0:
        raise ValueError("x: no rows")
    score = n * n / f
    return StreamedRKE(score, float(np.log(score)), f, n, kernel,
                       None if kernel == "cosine" else float(sigma))
