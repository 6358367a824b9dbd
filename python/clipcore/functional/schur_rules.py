"""The Schur decomposition with differentiation rules that stay finite where C_TT (or K_T) is singular.

Ospanov, Farnia & Jalali (2024), arXiv:2412.18645 (SPEC.md, "The Schur decomposition"):

    R = C_TXᵀ G C_TX,   S = C_XX − R,   G = (C_TT + εI)⁺ = V diag(g(w)) Vᵀ  (C_TT = V diag(w) Vᵀ)

with the spectral filter g of :func:`clipcore.schur.spectral_filter` (pinv: g = 1/(w + ε) on the kept
directions, 0 elsewhere; ridge: g = 1/(max(w, 0) + λ)). The forward pass is the computation of
:func:`clipcore.schur.schur_matrices` / :func:`clipcore.schur.schur_dual` (same operations, same numbers).

Why own rules: ``jnp.linalg.eigh``'s derivative holds 1/(w_i − w_j), which is infinite where C_TT has
repeated eigenvalues — always the case when prompts repeat (C_TT rank-deficient: a block of zeros) — and
its 0 · ∞ gives NaN gradients although G, R and S are smooth there. The rules here differentiate G as a
matrix function (Daleckii–Krein): dG = V (L ∘ (Vᵀ dC_TT V)) Vᵀ with the Loewner matrix of divided
differences L_ij = (g(w_i) − g(w_j)) / (w_i − w_j), written in closed forms without cancellation:

* both kept: −g_i g_j (the divided difference of 1/(w + ε); its limit g' = −g² at ties);
* one kept, one dropped: g_i / (w_i − w_j) (the cutoff separates them, so w_i − w_j is not 0);
* both dropped: 0.

The kept set is held fixed (it is piecewise constant; an eigenvalue crossing the cutoff is a jump of the
function, not a derivative). This is the derivative of the fixed-rank pseudo-inverse, exactly the function
the forward pass computes in a neighbourhood where no eigenvalue crosses the cutoff. ``rtol``, ε and the
ridge λ are not differentiated (zero tangent).

The dual (n < D, SPEC.md "Primal and dual"): with K_T = U diag(w) Uᵀ and f = w g ∈ [0, 1], R and S have
the non-zero eigenvalues of F^½ K_X F^½ and (I − F)^½ K_X (I − F)^½, F = U diag(f) Uᵀ; the forward pass
forms them in U's basis, diag(√f) Uᵀ K_X U diag(√f), as :func:`clipcore.schur.schur_dual` does. Their
tangents are those of the basis-free matrices rotated by the same U (so the eigenvalue tangents, the only
use of these blocks, are exact): d(F^½) = U (L^{√f} ∘ (Uᵀ dK_T U)) Uᵀ with divided differences of √f from
those of f, (f_i − f_j)/(w_i − w_j) = ε g_i g_j (pinv, kept) or λ g_i g_j · (max(w_i,0) − max(w_j,0))/(w_i − w_j)
(ridge), divided by √f_i + √f_j (0 where both are 0: the one-sided derivative at K_T's null space).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from ..schur import spectral_filter

__all__ = ["schur_matrices", "dual_blocks", "inverse_differences", "filter_differences"]

_HI = jax.lax.Precision.HIGHEST


def _sym(a):
    return 0.5 * (a + a.T)


def _mm(a, b):
    return jnp.matmul(a, b, precision=_HI)


def _ratio(num, den):
    """``num / den`` where ``den != 0``, else 0 (no NaN in either branch's derivative)."""
    zero = den == 0
    return jnp.where(zero, jnp.zeros_like(num), num / jnp.where(zero, jnp.ones_like(den), den))


def _clamped_slope(w):
    """(max(w_i, 0) − max(w_j, 0)) / (w_i − w_j) ∈ [0, 1], and 1[w_i > 0] at ties."""
    mw = jnp.maximum(w, 0.0)
    dw = w[:, None] - w[None, :]
    tie = jnp.broadcast_to((w > 0).astype(w.dtype)[:, None], dw.shape)
    return jnp.where(dw == 0, tie, _ratio(mw[:, None] - mw[None, :], dw))


def inverse_differences(w, g, keep, *, mode: str):
    """The Loewner matrix of the filter g: L_ij = (g_i − g_j) / (w_i − w_j), g'(w_i) at ties.

    Args:
      w: ``[k]`` eigenvalues of C_TT; g, keep: :func:`clipcore.schur.spectral_filter`'s ``(g, keep)``.
      mode: ``"pinv"`` or ``"ridge"``.

    Returns:
      ``[k, k]`` finite everywhere (see the module docstring for the closed forms).
    """
    gg = g[:, None] * g[None, :]
    if mode == "ridge":
        return -gg * _clamped_slope(w)
    both = keep[:, None] & keep[None, :]
    one = keep[:, None] ^ keep[None, :]
    mixed = _ratio(g[:, None] - g[None, :], w[:, None] - w[None, :])
    return jnp.where(both, -gg, jnp.where(one, mixed, jnp.zeros_like(gg)))


def filter_differences(w, g, keep, f, eps, ridge, *, mode: str):
    """Divided differences of f = w·g (the dual's projector weights): ``[k, k]``, finite.

    pinv: ε g_i g_j (both kept), f_i / (w_i − w_j) (one kept), 0 (none); ridge: λ g_i g_j times the
    clamped slope of max(w, 0).
    """
    gg = g[:, None] * g[None, :]
    if mode == "ridge":
        return ridge * gg * _clamped_slope(w)
    both = keep[:, None] & keep[None, :]
    one = keep[:, None] ^ keep[None, :]
    mixed = _ratio(f[:, None] - f[None, :], w[:, None] - w[None, :])
    return jnp.where(both, eps * gg, jnp.where(one, mixed, jnp.zeros_like(gg)))


def _primal_parts(c_tt, c_tx, c_xx, rtol, eps, ridge, mode):
    w, v = jnp.linalg.eigh(_sym(c_tt))
    g, keep = spectral_filter(w, rtol, eps, ridge, mode=mode)
    b = v.T @ c_tx
    gb = g[:, None] * b
    r = _sym(b.T @ gb)
    return (r, _sym(c_xx) - r, jnp.sum(keep)), (w, v, g, keep, b, gb)


@functools.partial(jax.custom_jvp, nondiff_argnums=(6,))
def schur_matrices(c_tt, c_tx, c_xx, rtol, eps, ridge, mode):
    """R, S (``[D_X, D_X]``) and the kept rank, as :func:`clipcore.schur.schur_matrices`, differentiable.

    Args:
      c_tt: ``[D_T, D_T]``; c_tx: ``[D_T, D_X]``; c_xx: ``[D_X, D_X]``.
      rtol, eps, ridge: the filter's cutoff, ε and λ (not differentiated).
      mode: ``"pinv"`` or ``"ridge"`` (static).
    """
    return _primal_parts(c_tt, c_tx, c_xx, rtol, eps, ridge, mode)[0]


def _zero(t) -> bool:
    """A symbolic zero tangent (an input not differentiated): its terms are skipped, not multiplied by 0."""
    return isinstance(t, SymbolicZero)


def _schur_matrices_jvp(mode, primals, tangents):
    c_tt, c_tx, c_xx, rtol, eps, ridge = primals
    d_tt, d_tx, d_xx = tangents[:3]
    (r, s, rank), (w, v, g, keep, b, gb) = _primal_parts(c_tt, c_tx, c_xx, rtol, eps, ridge, mode)
    dr = jnp.zeros_like(r)
    if not _zero(d_tx):
        half = _mm(_mm(v.T, d_tx).T, gb)                 # dbᵀ diag(g) b
        dr = dr + half + half.T
    if not _zero(d_tt):
        e = inverse_differences(w, g, keep, mode=mode) * _mm(v.T, _mm(_sym(d_tt), v))
        dr = dr + _sym(_mm(b.T, _mm(e, b)))              # bᵀ E b
    ds = -dr if _zero(d_xx) else _sym(d_xx) - dr
    return (r, s, rank), (dr, ds, np.zeros(rank.shape, jax.dtypes.float0))


schur_matrices.defjvp(_schur_matrices_jvp, symbolic_zeros=True)


def _dual_parts(k_t, k_x, rtol, eps, ridge, mode):
    w, u = jnp.linalg.eigh(_sym(k_t))
    g, keep = spectral_filter(w, rtol, eps, ridge, mode=mode)
    f = jnp.clip(w * g, 0.0, 1.0)
    m = _sym(u.T @ k_x @ u)
    sf, sc = jnp.sqrt(f), jnp.sqrt(1.0 - f)
    out = (sf[:, None] * m * sf[None, :], sc[:, None] * m * sc[None, :], jnp.sum(keep))
    return out, (w, u, g, keep, f, m, sf, sc)


@functools.partial(jax.custom_jvp, nondiff_argnums=(5,))
def dual_blocks(k_t, k_x, rtol, eps, ridge, mode):
    """The dual's R and S in K_T's eigenbasis and the kept rank (``[n, n]``, ``[n, n]``, ``[]``).

    Their eigenvalues are the non-zero eigenvalues of R and S (:func:`clipcore.schur.schur_dual`, which
    forms the same matrices); only their eigenvalues are meaningful (the basis is K_T's, arbitrary inside
    a repeated eigenvalue), and the tangents are exact for those.

    Args:
      k_t: ``[n, n]`` Φ_T Φ_Tᵀ / n (or the exact kernel / n); k_x: ``[n, n]``.
      rtol, eps, ridge: as in :func:`schur_matrices`; mode: static.
    """
    return _dual_parts(k_t, k_x, rtol, eps, ridge, mode)[0]


def _dual_blocks_jvp(mode, primals, tangents):
    k_t, k_x, rtol, eps, ridge = primals
    d_t, d_x = tangents[:2]
    (b_r, b_s, rank), (w, u, g, keep, f, m, sf, sc) = _dual_parts(k_t, k_x, rtol, eps, ridge, mode)
    dm = None if _zero(d_x) else _mm(u.T, _mm(_sym(d_x), u))
    p = None if _zero(d_t) else _mm(u.T, _mm(_sym(d_t), u))
    lf = filter_differences(w, g, keep, f, eps, ridge, mode=mode)

    def block(h, lh):
        # d(D m D) with D = diag(h), dD = lh ∘ p:  dD m D + D dm D + D m dD
        out = jnp.zeros_like(m)
        if dm is not None:
            out = out + h[:, None] * dm * h[None, :]
        if p is not None:
            half = _mm(lh * p, m * h[None, :])
            out = out + half + half.T
        return out

    l_sf = _ratio(lf, sf[:, None] + sf[None, :])
    l_sc = -_ratio(lf, sc[:, None] + sc[None, :])
    return (b_r, b_s, rank), (block(sf, l_sf), block(sc, l_sc), np.zeros(rank.shape, jax.dtypes.float0))


dual_blocks.defjvp(_dual_blocks_jvp, symbolic_zeros=True)
