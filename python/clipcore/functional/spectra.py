"""Covariances and Gram matrices → spectra → scores: the one implementation of the scores' linear algebra.

The host API (:mod:`clipcore._pipeline.run`) and :func:`clipcore.functional.sce` / ``vendi`` both end here:

* primal: C_TT, C_TX, C_XX (``[D, D]``) → R, S → eig(R), eig(S), eig(C_XX) (SPEC.md, "The Schur
  decomposition"); :func:`sce_from_covariances`;
* dual: K_T, K_X (``[n, n]``) → the same non-zero spectra (SPEC.md, "Primal and dual"), zero-padded to the
  primal dimension; :func:`sce_from_grams`;
* spectra → entropies and scores (SPEC.md, "Scores from a spectrum"): :func:`sce_scores`,
  :func:`vendi_scores`.

Every function is jitted (options static), differentiable (:mod:`.schur_rules`; eigenvalues through
:func:`clipcore._ffi.eigvalsh`'s rule, finite at repeated eigenvalues) and batches under ``jax.vmap``.

What the gradient is where the scores are not smooth:

* the 1e-10 clamp: λ ← max(λ, clamp), so an eigenvalue below the clamp contributes a constant and its
  derivative is 0 (at exactly the clamp JAX's ``maximum`` splits it, ½); when every eigenvalue of S is
  below the clamp (S = 0: the prompts explain everything) the gradient of SCE is exactly 0;
* the pseudo-inverse cutoff: the kept set of C_TT's eigen-directions is held fixed (the derivative of the
  fixed-rank pseudo-inverse; a direction crossing the cutoff is a jump, not a slope);
* repeated eigenvalues (duplicated rows, symmetric sets): the scores are symmetric functions of the
  spectrum, smooth there, and their gradients are the limits (no 1/(λ_i − λ_j) anywhere).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jax.custom_derivatives import SymbolicZero

from .._ffi import eigvalsh, eigvalsh_tangent
from ..covariance import Covariances
from ..entropy import DEFAULT_CLAMP, matrix_entropy, renyi_entropy
from ..schur import EPSILON, SchurSpectra, desc_eigvalsh, pad
from .schur_rules import dual_blocks, schur_matrices
from .setup import check_clamp, default_rtol, ridge_mode
from .types import SCEScores, VendiScores

def _three(a, b, c):
    e = eigvalsh(jnp.stack([a, b, c]))
    return e[0], e[1], e[2]


_three_eigvalsh = jax.custom_jvp(_three)


def _three_jvp(primals, tangents):
    # each spectrum's tangent on its own (eigenvectors only for those differentiated), so a loss that uses
    # one spectrum (log SCE) pays one eigendecomposition in its gradient: the others' are dead code
    out = _three_eigvalsh(*primals)
    return out, tuple(jnp.zeros_like(e) if isinstance(t, SymbolicZero) else eigvalsh_tangent(m, t)
                      for m, t, e in zip(primals, tangents, out))


_three_eigvalsh.defjvp(_three_jvp, symbolic_zeros=True)


def three_spectra(a: jax.Array, b: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Descending eigenvalues, clipped at 0, of three symmetric ``[k, k]`` matrices: one batched solve
    (:func:`clipcore.schur.desc_eigvalsh` of their stack, same numbers), the tangents separately."""
    sym = [0.5 * (m + m.T) for m in (a, b, c)]
    return tuple(jnp.maximum(e[::-1], 0.0) for e in _three_eigvalsh(*sym))


__all__ = ["three_spectra", "schur_spectra_primal", "schur_spectra_dual", "sce_scores", "vendi_scores", "sce_from_covariances",
           "sce_from_grams", "vendi_from_covariance"]


@functools.partial(jax.jit, static_argnames=("mode",))
def schur_spectra_primal(c_tt, c_tx, c_xx, rtol, eps=EPSILON, ridge=0.0, *, mode="pinv") -> SchurSpectra:
    """Spectra of R, S and C_XX from the primal covariances (descending, clipped at 0), differentiable.

    Args:
      c_tt: ``[D_T, D_T]``; c_tx: ``[D_T, D_X]``; c_xx: ``[D_X, D_X]`` (Φᵀ Φ / n).
      rtol: pseudo-inverse cutoff relative to the largest eigenvalue of C_TT + εI.
      eps: ε (pinv mode). ridge: λ (ridge mode). mode: ``"pinv"`` or ``"ridge"``.

    Returns:
      :class:`clipcore.schur.SchurSpectra` (``[D_X]`` each, and the kept rank).
    """
    r, s, rank = schur_matrices(c_tt, c_tx, c_xx, rtol, eps, ridge, mode)
    text, comp, image = three_spectra(r, s, c_xx)
    return SchurSpectra(text, comp, image, rank)


@functools.partial(jax.jit, static_argnames=("mode", "pad_to"))
def schur_spectra_dual(k_t, k_x, rtol, eps=EPSILON, ridge=0.0, *, mode="pinv", pad_to=None) -> SchurSpectra:
    """Spectra of R, S and C_XX from the ``[n, n]`` Gram matrices K_T, K_X (÷ n), differentiable.

    Args:
      k_t: ``[n, n]`` Φ_T Φ_Tᵀ / n (or the exact kernel k(t_i, t_j) / n); k_x: ``[n, n]``.
      pad_to: zero-pad (or cut) the n eigenvalues to the primal dimension (the 1e-10 clamp then counts the
        same entries as the primal), or None to keep n.
    """
    b_r, b_s, rank = dual_blocks(k_t, k_x, rtol, eps, ridge, mode)
    text, comp, image = three_spectra(b_r, b_s, k_x)
    return SchurSpectra(pad(text, pad_to), pad(comp, pad_to), pad(image, pad_to), rank)


@functools.partial(jax.jit, static_argnames=("clamp",))
def sce_scores(spectra: SchurSpectra, clamp: float | None = DEFAULT_CLAMP) -> SCEScores:
    """SCE, text and image scores of Schur spectra: −Σ λ log(λ / Σλ) of eig(S) and eig(R), the order-1
    Rényi entropy of eig(C_XX), and their exponentials (SPEC.md).

    Args:
      spectra: :class:`clipcore.schur.SchurSpectra`.
      clamp: eigenvalue floor (static), or None to drop eigenvalues ≤ 0.
    """
    log_sce = matrix_entropy(spectra.complement, clamp)
    log_text = matrix_entropy(spectra.text, clamp)
    log_image = renyi_entropy(spectra.image, 1.0, clamp)
    return SCEScores(jnp.exp(log_sce), jnp.exp(log_text), jnp.exp(log_image), log_sce, log_text, log_image,
                     spectra.complement, spectra.text, spectra.image, spectra.rank)


@functools.partial(jax.jit, static_argnames=("order", "clamp"))
def vendi_scores(eigenvalues: jax.Array, order: float = 1.0, clamp: float | None = DEFAULT_CLAMP) -> VendiScores:
    """Vendi score of order α of a spectrum ``[k]`` (α = 1, 2 = RKE, ∞, any α > 0; static)."""
    log = renyi_entropy(eigenvalues, order, clamp)
    return VendiScores(jnp.exp(log), log, eigenvalues)


def sce_from_covariances(cov: Covariances, *, rtol=None, ridge=0.0, clamp: float | None = DEFAULT_CLAMP) -> SCEScores:
    """SCE of the primal covariances ``cov = (C_TT, C_TX, C_XX)`` (each Φᵀ Φ / n).

    Args:
      cov: :class:`clipcore.covariance.Covariances` (or any ``(tt, tx, xx)``): ``[D_T, D_T]``,
        ``[D_T, D_X]``, ``[D_X, D_X]``.
      rtol: pseudo-inverse cutoff (default D_T · eps(float32), SPEC.md); may be traced.
      ridge: 0 (default): the cut pseudo-inverse of C_TT + 1e-12·I; λ > 0: (C_TT + λI)⁻¹ instead.
      clamp: eigenvalue floor (1e-10, the reference code's) or None.

    Returns:
      :class:`SCEScores` with ``[D_X]`` spectra.
    """
    tt, tx, xx = cov
    mode, lam = ridge_mode(ridge)
    sp = schur_spectra_primal(tt, tx, xx, default_rtol(rtol, tt.shape[0]), EPSILON, lam, mode=mode)
    return sce_scores(sp, check_clamp(clamp))


def sce_from_grams(k_t: jax.Array, k_x: jax.Array, *, rtol=None, ridge=0.0, clamp: float | None = DEFAULT_CLAMP,
                   pad_to: int | None = None) -> SCEScores:
    """SCE of the dual Gram matrices (n < D, or the exact Gaussian kernel).

    Args:
      k_t: ``[n, n]`` K_T = Φ_T Φ_Tᵀ / n (exact kernel: k(t_i, t_j) / n); k_x: ``[n, n]`` K_X.
      rtol: cutoff (default: ``pad_to`` (the primal D_T; pass it) or n, times eps(float32)).
      ridge, clamp: as in :func:`sce_from_covariances`.
      pad_to: the primal dimension D (the spectra are zero-padded to it), or None (n eigenvalues: the
        exact kernel, whose primal dimension is n).

    Returns:
      :class:`SCEScores` with ``[pad_to or n]`` spectra.
    """
    mode, lam = ridge_mode(ridge)
    rt = default_rtol(rtol, pad_to if pad_to is not None else k_t.shape[0])
    sp = schur_spectra_dual(k_t, k_x, rt, EPSILON, lam, mode=mode, pad_to=pad_to)
    return sce_scores(sp, check_clamp(clamp))


@functools.partial(jax.jit, static_argnames=("order", "clamp", "pad_to"))
def _vendi_of(c, *, order, clamp, pad_to):
    return vendi_scores(pad(desc_eigvalsh(c), pad_to), order, clamp)


def vendi_from_covariance(c: jax.Array, *, order: float = 1.0, clamp: float | None = DEFAULT_CLAMP,
                          pad_to: int | None = None) -> VendiScores:
    """Vendi score of order α of C = Φᵀ Φ / n (``[D, D]``), or of the dual K / n (``[n, n]``, same non-zero
    spectrum; ``pad_to`` = D zero-pads it to the primal's D eigenvalues, None keeps n: the exact kernel).

    Args:
      c: ``[k, k]`` symmetric PSD matrix of trace 1 (the kernel has k(x, x) = 1).
      order: α > 0 or ``float("inf")`` (static). clamp: as in :func:`sce_from_covariances`.
    """
    return _vendi_of(c, order=check_order(order), clamp=check_clamp(clamp), pad_to=pad_to)


def check_order(order) -> float:
    """The Rényi order α: a number > 0, or ``inf`` (static)."""
    try:
        value = float(order)
    except (TypeError, ValueError):
        raise ValueError(f"order: expected a number α > 0 or inf, got {order!r}") from None
    if not value > 0:
        raise ValueError(f"order: expected α > 0 (or inf), got {value}")
    return value
