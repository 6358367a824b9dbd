"""The Schur decomposition of the image covariance (SPEC.md).

Ospanov, Farnia & Jalali (2024), "Dissecting CLIP: Decomposition with a
Schur Complement-based Approach", arXiv:2412.18645:

    R = C_TXᵀ (C_TT + εI)⁺ C_TX       the text-explained part of C_XX
    S = C_XX − R                      the Schur complement (prompt-independent)

The pseudo-inverse keeps the eigen-directions of C_TT + εI whose eigenvalue
exceeds ``rtol`` times the largest (``mode="pinv"``, the paper's code), or
replaces it by the ridge inverse (C_TT + ridge·I)⁻¹ (``mode="ridge"``).
Both act on C_TT through a *filter* on its spectrum w:

    C_TT⁺ = V diag(g(w)) Vᵀ,   f(w) = w · g(w) ∈ [0, 1]

which gives the dual form used when n < D (SPEC.md, "Primal and dual"): with
K_T = U diag(w) Uᵀ, R and S have the non-zero eigenvalues of
diag(√f) Uᵀ K_X U diag(√f) and diag(√(1−f)) Uᵀ K_X U diag(√(1−f)).

Everything here is pure and jit-able; ``mode`` and ``pad_to`` are static.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._ffi import eigvalsh

__all__ = [
    "SchurSpectra",
    "spectral_filter",
    "schur_primal",
    "schur_dual",
    "schur_matrices",
    "regression_coefficient",
    "desc_eigvalsh",
    "pad",
    "EPSILON",
]

EPSILON = 1e-12


class SchurSpectra(NamedTuple):
    """Eigenvalues of R, S and C_XX (descending, clipped at 0).

    Attributes:
      text: ``[k]`` eigenvalues of R (prompt-explained part).
      complement: ``[k]`` eigenvalues of S (Schur complement).
      image: ``[k]`` eigenvalues of C_XX.
      rank: number of directions of C_TT kept by the pseudo-inverse.
    """

    text: jax.Array
    complement: jax.Array
    image: jax.Array
    rank: jax.Array


def _sym(a: jax.Array) -> jax.Array:
    return 0.5 * (a + a.T)


def desc_eigvalsh(a: jax.Array) -> jax.Array:
    """Descending eigenvalues clipped at 0 of ``[n, n]`` or ``[b, n, n]`` symmetric
    matrices (LAPACK ?syevr on CPU, no vectors, a batch solved concurrently)."""
    a = 0.5 * (a + jnp.swapaxes(a, -1, -2))
    return jnp.maximum(eigvalsh(a)[..., ::-1], 0.0)


def spectral_filter(w: jax.Array, rtol, eps, ridge, *, mode: str, xp=jnp):
    """Inverse weights g(w) and the kept mask for the spectrum ``w`` of C_TT.

    The same filter serves the jitted primal/dual forms (``xp=jax.numpy``) and
    the host float64 solve of the large-n path (``xp=numpy``,
    :mod:`clipcore.nystrom_spectra`).

    Args:
      w: ``[k]`` eigenvalues of C_TT (or of K_T in the dual).
      rtol: relative cutoff (pinv mode): keep |w + ε| > rtol · max |w + ε|.
      eps: the ε added to the diagonal before the pseudo-inverse.
      ridge: the ridge λ (ridge mode): g = 1 / (max(w, 0) + λ).
      mode: ``"pinv"`` or ``"ridge"``.
      xp: the array module (``jax.numpy`` or ``numpy``).

    Returns:
      ``(g, keep)``: ``[k]`` inverse weights and ``[k]`` boolean mask.
    """
    if mode == "ridge":
        g = 1.0 / (xp.maximum(w, 0.0) + ridge)
        return g, xp.ones(w.shape, bool)
    shifted = w + eps
    cut = rtol * (xp.max(xp.abs(shifted)) if w.shape[0] else 0.0)
    keep = xp.abs(shifted) > cut
    g = xp.where(keep, 1.0 / xp.where(keep, shifted, 1.0), 0.0)
    return g, keep


@functools.partial(jax.jit, static_argnames=("mode",))
def schur_matrices(c_tt, c_tx, c_xx, rtol, eps=EPSILON, ridge=0.0, *, mode="pinv"):
    """R and S (primal, ``[D_X, D_X]``) and the kept rank.

    Args:
      c_tt: ``[D_T, D_T]``; c_tx: ``[D_T, D_X]``; c_xx: ``[D_X, D_X]``.
    """
    w, v = jnp.linalg.eigh(_sym(c_tt))
    g, keep = spectral_filter(w, rtol, eps, ridge, mode=mode)
    b = v.T @ c_tx
    r = _sym(b.T @ (g[:, None] * b))
    s = _sym(c_xx) - r
    return r, s, jnp.sum(keep)


@functools.partial(jax.jit, static_argnames=("mode",))
def schur_primal(c_tt, c_tx, c_xx, rtol, eps=EPSILON, ridge=0.0, *, mode="pinv") -> SchurSpectra:
    """Spectra of R, S, C_XX from the primal ``[D, D]`` covariances."""
    r, s, rank = schur_matrices(c_tt, c_tx, c_xx, rtol, eps, ridge, mode=mode)
    text, comp, image = desc_eigvalsh(jnp.stack([r, s, c_xx]))
    return SchurSpectra(text, comp, image, rank)


def pad(e: jax.Array, pad_to: int | None) -> jax.Array:
    """Eigenvalues ``e: [k]`` cut or zero-padded to ``pad_to`` (None: as they are); the dual's n
    eigenvalues meet the primal dimension so the 1e-10 clamp counts the same entries (SPEC.md)."""
    if pad_to is None or pad_to <= e.shape[0]:
        return e if pad_to is None else e[:pad_to]
    return jnp.concatenate([e, jnp.zeros((pad_to - e.shape[0],), e.dtype)])


@functools.partial(jax.jit, static_argnames=("mode", "pad_to"))
def schur_dual(k_t, k_x, rtol, eps=EPSILON, ridge=0.0, *, mode="pinv", pad_to=None) -> SchurSpectra:
    """Spectra of R, S, C_XX from the ``[n, n]`` Gram matrices K_T, K_X (÷ n).

    Args:
      k_t: ``[n, n]`` Φ_T Φ_Tᵀ / n (or the exact kernel k(t_i, t_j) / n).
      k_x: ``[n, n]`` Φ_X Φ_Xᵀ / n.
      pad_to: append zeros up to the primal dimension (the 1e-10 clamp of the
        code counts them), or ``None`` to keep n eigenvalues.
    """
    w, u = jnp.linalg.eigh(_sym(k_t))
    g, keep = spectral_filter(w, rtol, eps, ridge, mode=mode)
    f = jnp.clip(w * g, 0.0, 1.0)
    m = _sym(u.T @ k_x @ u)
    sf, sc = jnp.sqrt(f), jnp.sqrt(1.0 - f)
    # the three spectra are independent: one batched call solves them together
    text, comp, image = desc_eigvalsh(
        jnp.stack([sf[:, None] * m * sf[None, :], sc[:, None] * m * sc[None, :], k_x])
    )
    return SchurSpectra(pad(text, pad_to), pad(comp, pad_to), pad(image, pad_to), jnp.sum(keep))


@functools.partial(jax.jit, static_argnames=("mode",))
def regression_coefficient(c_ss, c_st, rtol, eps=EPSILON, ridge=0.0, *, mode="pinv"):
    """A* = (C_SS + εI)⁺ C_ST: the least-squares map from source to target features.

    Args:
      c_ss: ``[D_S, D_S]`` source covariance; c_st: ``[D_S, D_T]`` cross covariance.

    Returns:
      ``[D_S, D_T]`` coefficient, so that φ(t) A* predicts φ(x).
    """
    w, v = jnp.linalg.eigh(_sym(c_ss))
    g, _ = spectral_filter(w, rtol, eps, ridge, mode=mode)
    return v @ (g[:, None] * (v.T @ c_st))
