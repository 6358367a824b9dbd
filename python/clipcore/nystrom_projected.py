"""The "projected" estimate of a Nyström SCE / Vendi: the exact kernel compressed onto the Nyström subspace,
with the residual's share in it measured on a seeded sample of rows (host float64; SPEC.md, "Large n").

The Nyström pass measures C = Σ Zᵀ Z / n, Z = [Φ(T) | Φ(X)]: the compression of the exact covariance onto
the landmarks' span. What it misses is the residual E = K − Φ Φᵀ (PSD, trace μ = 1 − tr C_XX in K/n units).
The other named estimates put all of μ into a tail beside the captured spectrum and into S; on CLIP-like sets
at the median σ a third of it lies *inside* the captured directions (it lifts their eigenvalues), and part of
it is prompt-explained (it belongs to R), so they overestimate SCE and the image score and underestimate the
text score (+9 % / −5 % on 6000 rows with 2000 landmarks). This estimate works in the dual, with n-vectors
that are functions of the rows:

1. the text directions: K_T ≈ Φ_T Φ_Tᵀ + E_T compressed onto range(Φ_T) (the r×r matrix diag(c) + N_T,
   with N_T = U_Tᵀ E_T U_T / n estimated from the sample, below); its eigenvectors above the cutoff
   (the same filter as the exact dual, :func:`clipcore.schur.spectral_filter`) span P's range W_k;
2. Q, an orthonormal basis of range([Φ_X, W_k]) (q = r + k columns), and the compression of K_X onto it,
   A = Qᵀ Φ_X Φ_Xᵀ Q / n + N_X (N_X = Qᵀ E_X Q / n from the sample);
3. R: the k×k block of A on W_k (with the filter's weights), S: A with W_k projected out (as
   :mod:`clipcore.dual_lowrank` does), image: A;
4. the rest of the residual, μ − tr N_X, outside Q: a tail over the n − q remaining directions of the
   image spectrum and of S (shaped by the sample's residual outside Q where the sample has rows to spare,
   else flat).

The block products Uᵀ E U / n are U-statistics over the s sampled rows (the diagonal scaled by n/s, the
off-diagonal pairs by n(n−1)/(s(s−1))): unbiased, and exact when every row is sampled. Everything is r×r or
q×q; the n-vectors are never formed.

Its ± (:func:`clipcore._pipeline.errors.projected_sce_error`): what is not measured is the tail's shape
(where the sample has rows to spare beyond Q's columns the tail takes the shape of the sample's residual
outside Q, else it is flat — a flat tail has the largest entropy for its mass) and the sample's noise. SCE
and the image score move by spreading the flat tail over half as many directions plus twice the move of
the sampled shape (Vendi of order 2 or ∞, which the tail barely moves: at least the size of the
in-span correction); the text
directions come from the sample, so the text score is recomputed on each of :data:`SAMPLE_GROUPS` disjoint
parts of it (a Rayleigh–Ritz step from the whole sample's directions) and their spread and bias give its ±,
also added to SCE's.

Measured on CLIP-like pairs (``synthetic_pairs(n, 512, num_prompts=300, num_modes=16, gap=0.8)``, median σ,
against the exact dual; ``bench/nystrom_error_sweep.py``): within 0.5 % of SCE, the text and image scores at
n = 6000 and 10,000 with 2000 landmarks (the tail models: +9 % / −5 % / +3 %), within 2.7 % with 500 to 1000.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg

from ._hostmem import one_blas_thread
from .entropy import Spectrum, matrix_entropy_tail, renyi_entropy_tail
from .nystrom_spectra import residual_kernel
from .schur import EPSILON, spectral_filter

__all__ = ["SAMPLE_GROUPS", "ProjectedSpectra", "sample_residual_form", "orthonormalizer", "projected_spectra",
           "tail_shifts"]


#: The sample is split into this many disjoint groups for the text score's ± (:func:`projected_spectra`).
SAMPLE_GROUPS = 4


class ProjectedSpectra(NamedTuple):
    """Spectra of the "projected" estimate (image, complement with the tail; text explicit) and what its ±
    needs: the tail mass, the kept rank, the text score from each of :data:`SAMPLE_GROUPS` disjoint parts
    of the sample, and whether the kept text directions filled the landmarks' text space (``truncated``:
    the cutoff lies beyond what the landmarks capture, so more directions may pass it)."""

    image: Spectrum
    complement: Spectrum | None
    text: Spectrum | None
    rank: int
    tail_mass: float
    image_flat: Spectrum
    complement_flat: Spectrum | None = None
    text_groups: tuple[float, ...] | None = None
    truncated: bool = False


def sample_residual_form(u_s: np.ndarray, e: np.ndarray, n: int) -> np.ndarray:
    """Estimate Uᵀ E U / n (``[c, c]``) from the rows of a seeded sample: U-statistics of the sampled pairs.

    Args:
      u_s: ``[s, c]`` the n-vectors U at the s sampled rows.
      e: ``[s, s]`` the residual kernel E on the sampled rows.
      n: rows of the whole data.
    """
    s = e.shape[0]
    d = np.diag(e).copy()
    e = e - np.diag(d)
    out = (n / s) * (u_s.T * d) @ u_s
    if s > 1:
        out += (n * (n - 1) / (s * (s - 1))) * (u_s.T @ (e @ u_s))
    out /= n
    return 0.5 * (out + out.T)


def _eigh_desc(a: np.ndarray, top: int | None = None):
    """Descending eigenpairs of sym(a) (all, or the top ``top``); LAPACK on one BLAS thread (see
    :func:`clipcore.nystrom.nystrom_map`)."""
    a = 0.5 * (a + a.T)
    with one_blas_thread():
        if top is None:
            w, v = scipy.linalg.eigh(a, overwrite_a=True, check_finite=False, driver="evd")
        elif top == 0:
            return np.zeros(0), np.zeros((a.shape[0], 0))
        else:
            try:
                w, v = scipy.linalg.eigh(a, check_finite=False, driver="evr",
                                         subset_by_index=(a.shape[0] - top, a.shape[0] - 1))
            except np.linalg.LinAlgError:  # ?syevr's "internal error" (near-diagonal matrices): all pairs
                w, v = scipy.linalg.eigh(a, overwrite_a=True, check_finite=False, driver="evd")
                w, v = w[-top:], v[:, -top:]
    return w[::-1], v[:, ::-1]


def _eigvalsh_desc(a: np.ndarray, clip: bool = True) -> np.ndarray:
    with one_blas_thread():
        w = scipy.linalg.eigh(0.5 * (a + a.T), eigvals_only=True, overwrite_a=True, check_finite=False,
                              driver="evd")[::-1]
    return np.maximum(w, 0.0) if clip else w


class _TextDirections(NamedTuple):
    d: np.ndarray  # [r, k]: W_k = Φ_T d / √n
    f: np.ndarray  # [k] the filter's weights
    top: float  # the compressed K_T's largest eigenvalue
    inside: float  # tr N_T: the part of E_T's trace (K/n units) inside range(Φ_T)


def orthonormalizer(g: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """b ``[c, k]`` with bᵀ g b = I_k spanning g's numerical range, from a pivoted Cholesky (LAPACK ?pstrf,
    stopped at pivots below ``rtol`` · max diag g): for g = Bᵀ B, B b is an orthonormal basis of range(B)."""
    if g.shape[0] == 0:
        return np.zeros((0, 0))
    with one_blas_thread():
        low, piv, rank, info = scipy.linalg.lapack.dpstrf(0.5 * (g + g.T), lower=1,
                                                          tol=rtol * float(np.max(np.diag(g))))
    if info < 0:  # pragma: no cover - argument errors only
        raise ValueError(f"orthonormalizer: LAPACK ?pstrf argument {-info} of a {g.shape} matrix")
    inv, info = scipy.linalg.lapack.dtrtri(np.tril(low[:rank, :rank]), lower=1)
    b = np.zeros((g.shape[0], rank))
    b[piv[:rank] - 1] = inv.T
    return b


def _text_directions(basis, ktc0, phi_t, e_t, n, rtol, ridge, start: np.ndarray | None = None):
    """Step 1: the kept directions of K_T compressed onto range(Φ_T) (U_T = Φ_T b / √n; ``ktc0`` = U_Tᵀ Φ_T Φ_Tᵀ
    U_T / n = (C_TT b)ᵀ (C_TT b)), with the sampled E_T.

    Returns the directions and the top eigenvectors of the compression (a few beyond the kept ones). Given
    ``start`` (those of the whole sample, pseudo-inverse mode), the eigenpairs come from one Rayleigh–Ritz
    step on [start, K start] instead of an eigendecomposition: the sample's parts for the ± (module
    docstring).
    """
    nt = sample_residual_form(phi_t @ basis / np.sqrt(n), e_t, n)
    ktc = ktc0 + nt
    mode, lam = ("ridge", ridge) if ridge is not None else ("pinv", 0.0)
    if start is None or ridge is not None:
        g, keep = spectral_filter(_eigvalsh_desc(ktc, clip=False), rtol, EPSILON, lam, mode=mode, xp=np)
        k = int(keep.sum())  # the kept directions are the top k (w ≥ 0 up to rounding)
        w, z = _eigh_desc(ktc, top=k if ridge is not None else min(k + 32 + k // 8, ktc.shape[0]))
    else:
        y, _ = np.linalg.qr(np.concatenate([start, ktc @ start], 1))
        w, v = _eigh_desc(y.T @ ktc @ y)
        z = y @ v
        g, keep = spectral_filter(w, rtol, EPSILON, lam, mode=mode, xp=np)
        k = int(keep.sum())
    return _TextDirections(basis @ z[:, :k], np.clip(w[:k] * g[:k], 0.0, 1.0),
                           float(w[0]) if w.size else 0.0, float(np.trace(nt))), z


def _text_log(c_tx, td: _TextDirections, phi_t, phi_x, e_x, n) -> float:
    """log text score from the text directions alone: R = √f (W_kᵀ Φ_X Φ_Xᵀ W_k / n + W_kᵀ E_X W_k / n) √f."""
    h = c_tx.T @ td.d  # [r, k] = Φ_Xᵀ W_k / √n
    rk = h.T @ h + sample_residual_form(phi_t @ td.d / np.sqrt(n), e_x, n)
    sf = np.sqrt(td.f)
    return matrix_entropy_tail(Spectrum(_eigvalsh_desc(sf[:, None] * rk * sf[None, :])), None)


def _compressed(c_xx, c_tx, td: _TextDirections | None, phi_x, phi_t, e_x, n):
    """Steps 2: A = Qᵀ K_X Q / n over Q = orthonormal basis of range([Φ_X, W_k]), Pq = Qᵀ W_k, tr N_X."""
    if td is None:
        h, gb = c_xx, c_xx
        u_s = phi_x
    else:
        cd = c_tx.T @ td.d  # [r, k]
        k = td.d.shape[1]
        h = np.concatenate([c_xx, cd.T], 0)  # B'ᵀ Φ_X / √n, B' = [Φ_X / √n, W_k]
        gb = np.block([[c_xx, cd], [cd.T, np.eye(k)]])
        u_s = np.concatenate([phi_x, phi_t @ td.d], 1)
    m = orthonormalizer(gb, 1e-10)  # Q = B' m
    hm = h.T @ m
    q_s = u_s @ m / np.sqrt(n)
    nx = sample_residual_form(q_s, e_x, n)
    a = hm.T @ hm + nx
    pq = None if td is None else m.T @ np.concatenate([cd, np.eye(td.d.shape[1])], 0)
    return a, pq, float(np.trace(nx)), q_s


def flat_tail(mass: float, unseen: int) -> Spectrum:
    """``mass`` spread evenly over ``unseen`` directions."""
    return Spectrum(np.zeros(0), float(unseen), mass / unseen) if unseen and mass > 0 else Spectrum(np.zeros(0))


def _tail_shape(q_s: np.ndarray, e: np.ndarray, n: int, mass: float, unseen: int) -> Spectrum:
    """Step 4: the residual outside Q. Where the sample has rows to spare beyond Q's q columns, its shape
    comes from the sample's residual with span(Q at the sampled rows) projected out (as
    :func:`clipcore.nystrom_spectra.residual_tail`: the mean diagonal c̄/n on every unseen direction, the
    off-diagonal part's eigenvalues ÷ s on s − q of them; exact when every row is sampled and the diagonal
    is constant), scaled to ``mass``; else flat."""
    s = e.shape[0]
    if unseen == 0 or mass <= 0:
        return Spectrum(np.zeros(0))
    if s - q_s.shape[1] < 8:  # no rows to spare beyond Q's columns
        return flat_tail(mass, unseen)
    u = q_s @ orthonormalizer(q_s.T @ q_s, 1e-10) if q_s.shape[1] else q_s  # orthonormal, span(Q at the rows)
    spare = min(s - u.shape[1], unseen)
    if spare < 8:
        return flat_tail(mass, unseen)
    eu = e @ u
    out = e - u @ eu.T - eu @ u.T + u @ (u.T @ eu) @ u.T
    cbar = max(float(np.mean(np.diag(out))), 0.0)
    np.fill_diagonal(out, 0.0)
    explicit = np.maximum(cbar / n + _eigvalsh_desc(out, clip=False)[:spare] / s, 0.0)
    total = explicit.sum() + (unseen - spare) * cbar / n
    if total <= 0:
        return flat_tail(mass, unseen)
    f = mass / total
    return Spectrum(explicit * f, float(unseen - spare), cbar / n * f)


def _with_tail(explicit: np.ndarray, tail: Spectrum) -> Spectrum:
    return Spectrum(np.concatenate([explicit, tail.explicit]), tail.count, tail.value)


def projected_spectra(c: np.ndarray, n: int, nmap, images: np.ndarray, texts: np.ndarray | None,
                      rtol: float | None, ridge: float | None, *,
                      image_residual: tuple[np.ndarray, np.ndarray] | None = None) -> ProjectedSpectra:
    """The "projected" estimate's spectra.

    Args:
      c: Σ Zᵀ Z / n: ``[2r, 2r]`` (texts first) when paired, else ``[r, r]``; host float64, not modified.
      n: rows of the whole data.
      nmap: the :class:`clipcore.nystrom.NystromMap`.
      images, texts: ``[s, d]`` the sampled rows (texts None for one set), float64.
      rtol: the cutoff of K_T's spectrum (the exact dual's, n · eps32 by default); ridge: the ridge
        alternative (None: pseudo-inverse).
      image_residual: Φ and E of the sampled images when already computed
        (:func:`clipcore.nystrom_spectra.residual_kernel`); not modified.
    """
    r = nmap.rank
    phi_x, e_x = residual_kernel(images, nmap) if image_residual is None else image_residual
    c_xx = c[-r:, -r:]
    mu = max(1.0 - float(np.trace(c_xx)), 0.0)
    td, groups, phi_t, c_tx = None, None, None, None
    if texts is not None:
        phi_t, e_t = residual_kernel(texts, nmap)
        c_tt, c_tx = c[:r, :r], c[:r, r:]
        tb = orthonormalizer(c_tt)
        cb = c_tt @ tb
        ktc0 = cb.T @ cb
        td, z = _text_directions(tb, ktc0, phi_t, e_t, n, rtol, ridge)
        groups = tuple(_group_text_score(h, tb, ktc0, c_tx, phi_t, phi_x, e_t, e_x, n, rtol, ridge, z)
                       for h in _groups(e_x.shape[0]))
    a, pq, tr_nx, q_s = _compressed(c_xx, c_tx, td, phi_x, phi_t, e_x, n)
    q = a.shape[0]
    out = max(mu - tr_nx, 0.0)
    unseen = max(n - q, 0)
    tail, flat = _tail_shape(q_s, e_x, n, out, unseen), flat_tail(out, unseen)
    image = _eigvalsh_desc(a)
    if td is None:
        return ProjectedSpectra(_with_tail(image, tail), None, None, 0, out, _with_tail(image, flat))
    sf = np.sqrt(td.f)
    text = Spectrum(_eigvalsh_desc((pq * sf).T @ a @ (pq * sf)))
    proj = np.eye(q) - (pq * (1.0 - np.sqrt(1.0 - td.f))) @ pq.T  # the square root of I − P F Pᵀ
    comp = _eigvalsh_desc(proj @ a @ proj.T)
    # the kept directions fill the landmarks' text space while the text trace outside it could hold more
    truncated = td.f.size >= tb.shape[1] and 1.0 - float(np.trace(c_tt)) - td.inside > (rtol or 0.0) * td.top
    return ProjectedSpectra(_with_tail(image, tail), _with_tail(comp, tail), text, int(td.f.size), out,
                            _with_tail(image, flat), _with_tail(comp, flat), groups, truncated)


def _group_text_score(h, tb, ktc0, c_tx, phi_t, phi_x, e_t, e_x, n, rtol, ridge, start) -> float:
    """The text score from the sampled rows ``h`` alone (their own text directions, from ``start``)."""
    td, _ = _text_directions(tb, ktc0, phi_t[h], e_t[np.ix_(h, h)], n, rtol, ridge, start=start)
    return float(np.exp(_text_log(c_tx, td, phi_t[h], phi_x[h], e_x[np.ix_(h, h)], n)))


def _groups(s: int) -> list[np.ndarray]:
    """Disjoint parts of the sample (none when it is too small to split)."""
    if s < 8 * SAMPLE_GROUPS:
        return []
    return [np.arange(g, s, SAMPLE_GROUPS) for g in range(SAMPLE_GROUPS)]


def _tail_shift(sp: Spectrum, log_score) -> float:
    """|change of a log score| when the flat tail is spread over half as many directions."""
    if sp.count < 2 or sp.value <= 0:
        return 0.0
    half = Spectrum(sp.explicit, sp.count / 2, sp.value * 2)
    return abs(log_score(half) - log_score(sp))


def tail_shifts(ps: ProjectedSpectra, clamp: float | None, order: float = 1.0) -> tuple[float, float]:
    """How far the log SCE and the log image score (Rényi of ``order``) may move with the tail's unmeasured
    shape (SCE 0 for one set): the flat tail's move when spread over half as many directions plus twice the
    distance between the sampled shape and the flat one (what the shape moved is taken to be at most as
    large again beyond it: the coupling of the tail to Q is not modelled; module docstring)."""
    log_s = lambda sp: matrix_entropy_tail(sp, clamp)  # noqa: E731
    log_i = lambda sp: renyi_entropy_tail(sp, order, clamp)  # noqa: E731

    def shift(chosen, flat, log_score):
        return _tail_shift(flat, log_score) + 2.0 * abs(log_score(chosen) - log_score(flat))

    return (0.0 if ps.complement is None else shift(ps.complement, ps.complement_flat, log_s),
            shift(ps.image, ps.image_flat, log_i))
