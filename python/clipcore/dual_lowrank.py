"""The Schur spectra through the kept subspace of K_T (dual) or C_TT (primal): host float64 linear algebra.

SPEC.md's dual form: with K_T = U diag(w) Uᵀ and the pseudo-inverse filter f = w·g(w) (1 on the kept
directions to within ε/w, 0 on the dropped ones), R and S have the non-zero spectra of
K_X^{1/2} U diag(f) Uᵀ K_X^{1/2} and K_X^{1/2} U diag(1 − f) Uᵀ K_X^{1/2}. In the pseudo-inverse mode only
the k directions the cutoff keeps carry f > 0, and k is small for a Gaussian kernel (its spectrum decays
fast: k = 10 to 65 of 6000 on CLIP-like sets), so instead of a full eigendecomposition of K_T with vectors
and products with n×n bases:

* k and U_k, the kept directions and their eigenvectors, exactly as the dense form finds them
  (|w + ε| > rtol · max |w + ε|), by :func:`kept_eigenpairs`: block subspace iteration with Rayleigh–Ritz
  until every kept Ritz pair's residual is below ``1e-13 · λ_max`` (n²·b flops per step), the count
  certified by one Cholesky factorisation of cut · I − (K_T − U_k Θ U_kᵀ) (n³/3 flops, no spectrum of K_T);
  for larger k one tridiagonalisation of K_T, whose spectrum counts k before the k vectors are formed
  (:func:`tridiagonal_kept_pairs`; with the compiled core LAPACK's two-stage reduction, the vectors by inverse
  iteration on its band, :func:`two_stage_kept_pairs`); the forms decline (None) before any eigenvector when k
  is large; where
  prompts repeat (several images each) from the u×u problem of the u distinct prompts
  (:func:`repeated_kept_pairs`, :func:`repeated_feature_pairs` for C_TT);
* R: the k×k matrix diag(√f) U_kᵀ K_X U_k diag(√f);
* S: Q K_X Q with Q = I − U_k A U_kᵀ, A = diag(1 − √(1 − f_k)) (the square root of I − U_k F U_kᵀ), formed
  in place by one symmetric rank-2k update (?syr2k); its spectrum equals the dense form's;
* the image spectrum eig(K_X), in the same batched call as S's.

Two ``eigvalsh`` (the compiled core's two-stage LAPACK, one matrix per thread), a Cholesky factorisation
and O(n²k) work where k is small (a tridiagonalisation of K_T where it is not), against one
eigendecomposition with vectors, two n³ products and three ``eigvalsh`` for the dense form. Results agree
with :func:`clipcore.schur.schur_dual` to float64 rounding (tests/test_dual_lowrank.py).
"""

from __future__ import annotations

import mmap
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import scipy.linalg

from . import _ffi
from ._options import x64
from .schur import EPSILON, spectral_filter

__all__ = ["LowRankSpectra", "kept_eigenpairs", "tridiagonal_kept_pairs", "two_stage_kept_pairs", "certify",
           "schur_dual_lowrank", "repeated_kept_pairs", "repeated_feature_pairs", "schur_primal_lowrank",
           "schur_projected", "RESIDUAL_TOL", "MAX_KEPT_FRACTION", "SUBSPACE_KEPT_FRACTION", "SLOW_STEPS",
           "TWO_STAGE_ROWS", "BAND_WIDTH", "ORTH_TOL", "INSEPARABLE"]

#: Ritz pairs are accepted when ‖K u − θ u‖ ≤ RESIDUAL_TOL · λ_max.
RESIDUAL_TOL = 1e-13
#: Above this fraction of n kept directions the kept-subspace form gains nothing over the dense one:
#: :func:`schur_dual_lowrank` / :func:`schur_primal_lowrank` return None and the caller takes the dense form.
MAX_KEPT_FRACTION = 1 / 3
#: Up to this fraction of n kept directions the vectors come by subspace iteration (n = 6000, k = 60–65:
#: 1.5–2.7 s against 12 s for LAPACK's subset solver); above it by one tridiagonalisation, whose cost
#: does not depend on how slowly the spectrum decays past k.
SUBSPACE_KEPT_FRACTION = 1 / 50
#: A block whose residuals would need more steps than this (at their last rate) to reach
#: :data:`RESIDUAL_TOL` is grown, or past :data:`SUBSPACE_KEPT_FRACTION` left for the tridiagonal route
#: (n = 10,000, σ = 3.5: 48 columns for 37 kept directions converged at 0.85 a step, 20 s of iterations).
SLOW_STEPS = 20
#: Below this many rows :func:`tridiagonal_kept_pairs` takes one dense ``eigh``.
SMALL_ROWS = 64
#: From this many rows on :func:`tridiagonal_kept_pairs` goes through the two-stage reduction where the compiled
#: core is loaded (:func:`two_stage_kept_pairs`).
TWO_STAGE_ROWS = 1024
#: Subdiagonals of :func:`two_stage_kept_pairs`' band (n = 5000: 16 to 32 measured alike; each band LU costs n·kd²).
BAND_WIDTH = 32
#: :func:`two_stage_kept_pairs` accepts its eigenvectors when max |ZᵀZ − I| is below this.
ORTH_TOL = 1e-11


class LowRankSpectra(NamedTuple):
    """Descending spectra (length n, clipped at 0) of R, S, C_XX and the kept rank k."""

    text: np.ndarray
    complement: np.ndarray
    image: np.ndarray
    rank: int


def _eigvalsh(a) -> np.ndarray:
    """Ascending eigenvalues of a symmetric float64 matrix ``[..., n, n]`` (host or ``jax.Array``; the
    compiled two-stage LAPACK, which reads the upper triangle of a C-ordered matrix)."""
    with x64():
        return np.asarray(_ffi.eigvalsh(jnp.asarray(a)), np.float64)


def _cut(top: float, rtol: float, eps: float) -> float:
    """The value a PSD matrix's eigenvalue w must exceed to pass |w + ε| > rtol · max |w + ε| (λ_max = top)."""
    return rtol * (max(top, 0.0) + eps) - eps


def certify(k_mat: np.ndarray, w: np.ndarray, u: np.ndarray, cut: float) -> bool:
    """Whether every eigenvalue of K − U diag(w) Uᵀ is below ``cut`` (cut · I − K + U diag(w) Uᵀ has a
    Cholesky factor, LAPACK ?potrf: n³/3 flops). With (w, U) Ritz pairs of K above the cut, K then has exactly
    len(w) eigenvalues above it: at least that many by interlacing, at most by the inertia of a rank-len(w)
    update of a negative definite matrix."""
    m = (u * w[None, :]) @ u.T
    m -= k_mat
    m[np.diag_indices_from(m)] += cut
    # m is symmetric: its transpose is the same matrix in Fortran order, factorised in place (no copy)
    _, info = scipy.linalg.lapack.dpotrf(m.T, lower=1, overwrite_a=1, clean=0)
    return info == 0


def kept_eigenpairs(k_mat: np.ndarray, rtol: float, eps: float = EPSILON, *, seed: int = 0,
                    max_iter: int = 100) -> tuple[np.ndarray, np.ndarray] | None:
    """The eigenpairs ``([k], [n, k])`` of a symmetric PSD matrix that pass the pseudo-inverse cutoff
    |w + ε| > rtol · max |w + ε| (:func:`clipcore.schur.spectral_filter`), descending; None when more than
    :data:`MAX_KEPT_FRACTION` of n pass (the dense form is cheaper then).

    Block subspace iteration with Rayleigh–Ritz, the block grown while fewer than a few Ritz values lie
    below the cut (Ritz values are lower bounds of the eigenvalues) or while the residuals fall too slowly
    (:data:`SLOW_STEPS`), until the pairs above the cut have
    ‖K u − θ u‖ ≤ :data:`RESIDUAL_TOL` · θ_max; their count is then certified exact by one Cholesky
    factorisation (:func:`certify`) — no spectrum of K. Beyond :data:`SUBSPACE_KEPT_FRACTION` of n kept, or
    when the certificate fails, one tridiagonalisation gives the count and the pairs
    (:func:`tridiagonal_kept_pairs`).
    """
    n = k_mat.shape[0]
    if n == 0:
        return np.zeros(0), np.zeros((0, 0))
    if np.trace(k_mat) <= 0:  # K = 0: every direction passes the cut (|0 + ε| > rtol · ε), more than the limit
        return None
    rng = np.random.default_rng(seed)
    limit = max(int(SUBSPACE_KEPT_FRACTION * n), 1)
    b = min(n, 32)
    q = np.linalg.qr(k_mat @ rng.standard_normal((n, b)))[0]
    previous = None  # the last step's largest relative residual at this block size

    def grown(z, j):
        # every Ritz value above the cut: at least b kept, so triple (n = 6000, k = 60: 32 → 96 columns in one
        # step instead of two; fewer steps before the tridiagonal route where k is past the limit); else room
        # for more than j
        grow = 2 * b if j == b else max(j + max(16, j // 2), b + max(16, b // 2)) - b
        return np.linalg.qr(np.concatenate([z, rng.standard_normal((n, grow))], 1))[0], b + grow

    for _ in range(max_iter):
        z = k_mat @ q
        theta, y = scipy.linalg.eigh(q.T @ z, check_finite=False, driver="evd")
        theta, y = theta[::-1], y[:, ::-1]
        cut = _cut(theta[0], rtol, eps)
        j = int(np.sum(theta > cut))
        if b - j < max(8, j // 4):  # too few Ritz values below the cut for the kept ones to converge
            # past the limit, or every Ritz value passing with no room under the limit for the block k needs
            if b >= limit or 2 * b >= n or (j == b and j + max(8, j // 4) >= limit):
                break
            (q, b), previous = grown(z, j), None
            continue
        u = q @ y[:, :j]
        res = np.linalg.norm(z @ y[:, :j] - u * theta[:j], axis=0) if j else np.zeros(0)
        if not j or res.max() <= RESIDUAL_TOL * max(theta[0], 0.0):
            if certify(k_mat, theta[:j], u, cut):
                return theta[:j], u
            break
        r = res.max() / theta[0]
        if previous is not None:  # the residuals fall by θ_{b+1}/θ_j a step: too slowly, a larger block
            rate = r / previous
            steps = np.log(RESIDUAL_TOL / r) / np.log(rate) if 0.0 < rate < 1.0 else np.inf
            if steps > SLOW_STEPS:
                if b >= limit or 2 * b >= n:
                    break
                (q, b), previous = grown(z, j), None
                continue
        previous = r
        q = np.linalg.qr(z)[0]
    return tridiagonal_kept_pairs(k_mat, rtol, eps)


def tridiagonal_kept_pairs(k_mat: np.ndarray, rtol: float,
                           eps: float = EPSILON) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`kept_eigenpairs` by one tridiagonalisation: K = Q T Qᵀ (LAPACK ?sytrd, 4n³/3 flops), T's
    whole spectrum (?sterf, O(n²)) gives the count k that the dense form keeps, then the k top eigenvectors
    of T (inverse iteration, ?stein, at ?sterf's eigenvalues — bisection, ?stebz, first where T splits into
    blocks; MRRR, ?stemr, if that fails) and Q applied to
    them (?ormqr on the reflectors: 2n²k flops). The cost of LAPACK's subset solver (?syevr) without a
    second tridiagonalisation to count k first; None, before any eigenvector, when k exceeds
    :data:`MAX_KEPT_FRACTION` of n. From :data:`TWO_STAGE_ROWS` rows on, with the compiled core, the two-stage
    reduction first (:func:`two_stage_kept_pairs`), this route where it declines.

    Args:
      k_mat: ``[n, n]`` symmetric PSD float64 (read, never written: LAPACK works on a copy).
    """
    lapack = scipy.linalg.lapack
    n = k_mat.shape[0]
    if n < SMALL_ROWS:  # one dense eigh (and LAPACK's f2py wrappers refuse an empty off-diagonal at n = 1)
        w, v = _dense_kept_pairs(k_mat, rtol, eps)
        return None if w.size > MAX_KEPT_FRACTION * n else (w, np.ascontiguousarray(v))
    if n >= TWO_STAGE_ROWS and _ffi.band_available():
        pairs = two_stage_kept_pairs(k_mat, rtol, eps)
        if pairs is not INSEPARABLE:
            return pairs
    a = _copy_to_scratch(k_mat).T  # K is symmetric: the Fortran-ordered view of the C-ordered copy is K
    c, d, e, tau, info = lapack.dsytrd(a, lower=1, lwork=32 * n, overwrite_a=1)
    _check(info, "dsytrd", n)
    w, info = lapack.dsterf(d, e)
    _check(info, "dsterf", n)
    k = _kept_count(w[::-1], rtol, eps)
    if k > MAX_KEPT_FRACTION * n:
        return None
    if k == 0:
        return np.zeros(0), np.zeros((n, 0))
    if _splits(d, e):  # T splits into blocks: ?stein wants the eigenvalues grouped by block (?stebz)
        m, wk, iblock, isplit, info = lapack.dstebz(d, e, 3, 0.0, 0.0, n - k + 1, n, 2 * np.finfo(float).tiny,
                                                    b"B")
    else:  # one block: ?sterf's eigenvalues, ascending, are what ?stein reads (no bisection)
        m, wk, info = k, np.ascontiguousarray(w[n - k:]), 0
        iblock, isplit = np.ones(n, np.int32), np.zeros(n, np.int32)
        isplit[0] = n
    if info == 0 and m == k:
        z, info = lapack.dstein(d, e, wk[:m], iblock, isplit)
    if info != 0 or m != k:  # inverse iteration did not converge: MRRR
        m, wk, z, info = lapack.dstemr(d, np.append(e, 0.0), 2, 0.0, 0.0, n - k + 1, n)
        _check(info or (m != k), "dstemr", n)
        z = z[:, :m]
    order = np.argsort(wk[:k])[::-1]
    wk, z = wk[order], z[:, order]
    # Q = H_1 ⋯ H_{n-1}, H_j acting on rows j+1… with its vector below T's subdiagonal in column j of c
    # (?ormtr's lower case is ?ormqr on c[1:, :n-1]). c[1:, :n-1] is not contiguous; the contiguous
    # n × (n-1) window that starts at c[1, 0] is it with one more row, c[0, 1:], set to zero: the
    # reflectors' extra entry then meets a zero pad row of the right-hand side, and nothing is copied.
    c[0, 1:] = 0.0
    window = c.reshape(-1, order="F")[1:1 + n * (n - 1)].reshape((n, n - 1), order="F")
    rhs = np.zeros((n, k), order="F")
    rhs[:n - 1] = z[1:]
    rhs, _, info = lapack.dormqr(b"L", b"N", window, tau, rhs, lwork=64 * (k + 65), overwrite_c=1)
    _check(info, "dormqr", n)
    u = np.empty((n, k))
    u[0], u[1:] = z[0], rhs[:n - 1]
    return wk, u


#: What :func:`two_stage_kept_pairs` returns where inverse iteration cannot tell the kept eigenvectors apart.
INSEPARABLE = object()


def two_stage_kept_pairs(k_mat: np.ndarray, rtol: float, eps: float = EPSILON):
    """:func:`tridiagonal_kept_pairs` through LAPACK's two-stage reduction (the compiled core,
    :mod:`clipcore._ffi.band`): dense to band with BLAS-3 keeping the reflectors Q1, the whole spectrum from the
    band (bulge chasing, ?sterf) gives k, each kept eigenvector of the band B comes from inverse iteration at its
    eigenvalue (a band LU each, the k of them over the core's threads) and Q1 maps them back. One-stage ?sytrd
    spends half its flops in memory-bound BLAS-2 (n = 6000: 10.3 s against 7.0 s here, k = 65). The vectors are
    accepted when orthonormal to :data:`ORTH_TOL` and their band residuals are below :data:`RESIDUAL_TOL` · λ_max;
    else (eigenvalues too close for inverse iteration to tell apart) :data:`INSEPARABLE` and the caller
    takes the one-stage route. None, before any eigenvector, when k exceeds :data:`MAX_KEPT_FRACTION` of n.

    Args:
      k_mat: ``[n, n]`` symmetric PSD float64 (read, never written: the core works on a copy).
    """
    n = k_mat.shape[0]
    a = _copy_to_scratch(k_mat)  # C-ordered and symmetric: read column-major it is K
    w, ab, tau = _ffi.band_reduce(a, BAND_WIDTH)
    w = w[::-1]
    k = _kept_count(w, rtol, eps)
    if k > MAX_KEPT_FRACTION * n:
        return None
    if k == 0:
        return np.zeros(0), np.zeros((n, 0))
    lams = np.ascontiguousarray(w[:k])
    z, res = _ffi.band_eigenvectors(ab, lams)
    if np.abs(z.T @ z - np.eye(k)).max() > ORTH_TOL or res.max() > RESIDUAL_TOL * max(w[0], 0.0):
        return INSEPARABLE
    return lams, np.ascontiguousarray(_ffi.apply_reflectors(a, tau, BAND_WIDTH, z))


def _kept_count(w: np.ndarray, rtol: float, eps: float) -> int:
    """How many of the eigenvalues ``w`` (descending) pass the pseudo-inverse cutoff."""
    return int(spectral_filter(w, rtol, eps, 0.0, mode="pinv", xp=np)[1].sum())


def _dense_kept_pairs(m: np.ndarray, rtol: float, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The kept pairs of a symmetric matrix by one dense ``eigh``, descending."""
    w, v = scipy.linalg.eigh(m, check_finite=False, driver="evd")  # ?syevr fails on near-diagonal matrices
    w, v = w[::-1], v[:, ::-1]
    k = _kept_count(w, rtol, eps)
    return w[:k], v[:, :k]


def _splits(d: np.ndarray, e: np.ndarray) -> bool:
    """Whether ?stebz would split the tridiagonal T = (d, e) into blocks: e_j² ≤ |d_j d_{j+1}| ulp² + safemin
    for some j (its own test)."""
    fi = np.finfo(np.float64)
    return bool(np.any(e * e <= np.abs(d[1:] * d[:-1]) * float(fi.eps) ** 2 + float(fi.tiny)))


def _check(info, routine: str, n: int) -> None:
    if info:
        raise np.linalg.LinAlgError(f"LAPACK {routine} failed (info={info}) on a {n}×{n} kernel matrix")


def _kept_gain(w: np.ndarray, rtol: float, eps: float) -> np.ndarray:
    """g(w) of the k kept eigenvalues (descending, λ_max first, so max |w + ε| is the full spectrum's)."""
    if w.size == 0:
        return w
    g, _ = spectral_filter(w, rtol, eps, 0.0, mode="pinv", xp=np)
    return g


def _kept_filter(w: np.ndarray, rtol: float, eps: float) -> np.ndarray:
    """f = w·g(w) ∈ [0, 1] of the kept eigenvalues."""
    return np.clip(w * _kept_gain(w, rtol, eps), 0.0, 1.0)


def repeated_kept_pairs(k_t, first: np.ndarray, inverse: np.ndarray, rtol: float,
                        eps: float = EPSILON) -> tuple[np.ndarray, np.ndarray] | None:
    """K_T's kept eigenpairs (as :func:`kept_eigenpairs`) when its rows repeat: prompts scored with several
    images each. With E the ``[n, u]`` indicator of the u distinct rows and G their ``[u, u]`` block of K_T,
    K_T = E G Eᵀ; with W = EᵀE (the counts), M = W^{1/2} G W^{1/2} has K_T's non-zero spectrum and each of its
    eigenvectors y gives K_T's E W^{-1/2} y (orthonormal, as EᵀE = W). The other n − u eigenvalues of K_T are
    0 and fail the cutoff, so the kept pairs come from one u×u problem instead of an n×n one. None where the
    cutoff would keep K_T's zero eigenvalues (rtol · max < ε: every direction kept, the dense form).

    Args:
      k_t: ``[n, n]`` float64 (K/n), host array or ``jax.Array``.
      first: ``[u]`` the index of one row of each distinct prompt; inverse: ``[n]`` each row's prompt (0 … u−1).
    """
    g = np.asarray(k_t)[np.ix_(first, first)]
    root = np.sqrt(np.bincount(inverse, minlength=first.size).astype(np.float64))
    pairs = _small_kept_pairs(root[:, None] * g * root[None, :], rtol, eps)
    if pairs is None:
        return None
    w, y = pairs
    return w, y[inverse] / root[inverse][:, None]


def repeated_feature_pairs(phi_u: np.ndarray, counts: np.ndarray, n: int, rtol: float,
                           eps: float = EPSILON) -> tuple[np.ndarray, np.ndarray] | None:
    """C_TT's kept eigenpairs (as :func:`kept_eigenpairs`) when its n rows repeat u distinct prompts: with
    A = W^{1/2} Φ_u / √n (``[u, D]``, W the counts) C_TT = Aᵀ A, whose non-zero spectrum is that of the u×u
    M = A Aᵀ; each of M's eigenpairs (λ, y) gives C_TT's unit eigenvector Aᵀ y / √λ. One u×u problem instead
    of a D×D one; None where the cutoff would keep C_TT's zero eigenvalues (rtol · max < ε).

    Args:
      phi_u: ``[u, D]`` the features of the distinct prompts; counts: ``[u]`` how many rows each has.
    """
    a = np.asarray(phi_u, np.float64) * np.sqrt(np.asarray(counts, np.float64) / n)[:, None]
    pairs = _small_kept_pairs(a @ a.T, rtol, eps)
    if pairs is None:
        return None
    w, y = pairs
    return w, (a.T @ y) / np.sqrt(w)[None, :]


def _small_kept_pairs(m: np.ndarray, rtol: float, eps: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The kept pairs of the small PSD matrix of :func:`repeated_kept_pairs` / :func:`repeated_feature_pairs`
    (:func:`kept_eigenpairs`, or one dense ``eigh`` where it keeps more than a third); None where the cutoff
    lies below 0 (the larger matrix's zero eigenvalues would pass it too)."""
    m = 0.5 * (m + m.T)
    pairs = kept_eigenpairs(m, rtol, eps)
    if pairs is None:
        pairs = _dense_kept_pairs(m, rtol, eps)
    if pairs[0].size and _cut(pairs[0][0], rtol, eps) < 0.0:
        return None
    return pairs


def schur_dual_lowrank(k_t, k_x, rtol: float, eps: float = EPSILON, *,
                       pairs: tuple[np.ndarray, np.ndarray] | None = None) -> LowRankSpectra | None:
    """The dual Schur spectra (pseudo-inverse mode) through the kept subspace of K_T; None when K_T keeps
    more than :data:`MAX_KEPT_FRACTION` of its directions (the dense form is cheaper then).

    Args:
      k_t, k_x: ``[n, n]`` float64 Gram matrices (K/n), symmetric: host arrays or ``jax.Array`` (read, never
        written; S is the one n×n array formed).
      rtol: the cutoff relative to max |w + ε|.
      eps: the ε of the pseudo-inverse.
      pairs: K_T's kept eigenpairs ``([k], [n, k])``, descending, where the caller has them
        (:func:`repeated_kept_pairs`); else :func:`kept_eigenpairs` finds them.
    """
    n = k_t.shape[0]
    if pairs is None:
        pairs = kept_eigenpairs(np.asarray(k_t), rtol, eps)  # the kept directions: the top k (w ≥ 0)
    if pairs is None or pairs[0].size > MAX_KEPT_FRACTION * n:
        return None
    w, u = pairs  # descending
    k = w.size
    f = _kept_filter(w, rtol, eps)
    kx = np.asarray(k_x)
    ku = kx @ u
    m = u.T @ ku
    m = 0.5 * (m + m.T)
    sf = np.sqrt(f)
    text = np.zeros(n)
    if k:
        text[:k] = np.maximum(scipy.linalg.eigvalsh(sf[:, None] * m * sf[None, :], check_finite=False)[::-1], 0.0)
    # S = Q K_X Q with Q = I − U A Uᵀ: K_X − (UA) (K_X U)ᵀ − (K_X U) (UA)ᵀ + (UA) M (UA)ᵀ, the symmetric
    # rank-2k update K_X − (P Wᵀ + W Pᵀ) with P = UA, W = K_X U − P M / 2 (one ?syr2k into S's triangle)
    ua = u * (1.0 - np.sqrt(1.0 - f))[None, :]
    pair = _image_and_copy(kx)
    _sym_update(pair[1], ua, ku - 0.5 * (ua @ m))
    image, comp = _pair_spectra(pair)
    return LowRankSpectra(text, comp, image, k)


def _image_and_copy(a: np.ndarray) -> np.ndarray:
    """``[2, n, n]``: two copies of a, the second to become S (both spectra then come from one call)."""
    pair = _scratch((2, *a.shape))
    pair[0] = a
    pair[1] = a
    return pair


def _scratch(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised C-ordered float64 array in fresh anonymous memory, without the huge-page advice
    NumPy gives its large allocations: where the host's free memory is fragmented the kernel compacts it to
    back such an allocation (on the 2-core VM: 2.2 s for the 576 MB of an n = 6000 pair, against 0.2 s in
    small pages), and these n×n scratch buffers are written once and read a few times."""
    count = int(np.prod(shape))
    return np.frombuffer(mmap.mmap(-1, max(8 * count, 1)), np.float64, count=count).reshape(shape)


def _copy_to_scratch(a: np.ndarray) -> np.ndarray:
    out = _scratch(a.shape)
    out[...] = a
    return out


def _pair_spectra(pair: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Descending spectra (clipped at 0) of the image matrix and S, by one batched compiled ``eigvalsh``:
    each matrix on its own thread with one-thread LAPACK, so the sequential band-to-tridiagonal stage of one
    overlaps the other's (n = 6000: 10.7 s against 13.1 s one after the other, on 2 cores)."""
    w = _eigvalsh(pair)
    return np.maximum(w[0][::-1], 0.0), np.maximum(w[1][::-1], 0.0)


def _sym_update(s: np.ndarray, p: np.ndarray, q: np.ndarray | None = None) -> None:
    """s ← s − (p qᵀ + q pᵀ) (?syr2k), or s ← s − p pᵀ (?syrk) without q, in place on the triangle
    :func:`_eigvalsh` reads (the upper one of a C-ordered s); p, q: ``[n, k]``."""
    blas = scipy.linalg.blas
    if p.shape[1] == 0:
        return
    if q is None:
        blas.dsyrk(-1.0, p, beta=1.0, c=s.T, lower=1, overwrite_c=1)
    else:
        blas.dsyr2k(-1.0, p, q, beta=1.0, c=s.T, lower=1, overwrite_c=1)


def schur_primal_lowrank(c_tt: np.ndarray, c_tx: np.ndarray, c_xx: np.ndarray, rtol: float,
                         eps: float = EPSILON) -> LowRankSpectra | None:
    """The primal Schur spectra (pseudo-inverse mode) through the kept subspace of C_TT; None when C_TT
    keeps more than :data:`MAX_KEPT_FRACTION` of its directions (the dense form is cheaper then).

    R = Bᵀ diag(g_k) B with B = U_kᵀ C_TX over the k kept eigen-directions of C_TT (the dropped ones have
    g = 0), so its spectrum is that of the k×k matrix diag(√g) B Bᵀ diag(√g); S = C_XX − R and C_XX need
    one ``eigvalsh`` each, and C_TT its kept pairs (:func:`kept_eigenpairs`) — no eigendecomposition with
    vectors of a D×D matrix.

    Args:
      c_tt: ``[D_T, D_T]``; c_tx: ``[D_T, D_X]``; c_xx: ``[D_X, D_X]`` float64 (Φᵀ Φ / n), host arrays or
        ``jax.Array`` (read, never written; S and a copy of C_XX are the D_X × D_X arrays formed).
    """
    pairs = kept_eigenpairs(np.asarray(c_tt), rtol, eps)
    if pairs is None:
        return None
    w, u = pairs
    return schur_projected(w, u.T @ np.asarray(c_tx), c_xx, rtol, eps)


def schur_projected(w: np.ndarray, b: np.ndarray, c_xx: np.ndarray, rtol: float,
                    eps: float = EPSILON) -> LowRankSpectra:
    """The primal Schur spectra (pseudo-inverse mode) from C_TT's kept eigenvalues and the cross covariance
    projected on their directions, B = U_kᵀ C_TX (:func:`schur_primal_lowrank`'s second half: a caller that
    has the features forms B as (Φ_T U_k)ᵀ Φ_X / n, without C_TX).

    Args:
      w: ``[k]`` the kept eigenvalues of C_TT, descending (λ_max first: the filter's cutoff is relative to it).
      b: ``[k, D_X]`` U_kᵀ C_TX.
      c_xx: ``[D_X, D_X]`` float64 (read, never written).
    """
    d_x = c_xx.shape[0]
    k = w.size
    sg = np.sqrt(_kept_gain(w, rtol, eps))
    text = np.zeros(d_x)
    if k:
        small = (sg[:, None] * b) @ (b.T * sg[None, :])
        text[:min(k, d_x)] = np.maximum(scipy.linalg.eigvalsh(0.5 * (small + small.T), check_finite=False)[::-1],
                                        0.0)[:d_x]
    pair = _image_and_copy(np.asarray(c_xx))
    _sym_update(pair[1], (sg[:, None] * b).T)  # S = C_XX − Bᵀ diag(g) B
    image, comp = _pair_spectra(pair)
    return LowRankSpectra(text, comp, image, k)
