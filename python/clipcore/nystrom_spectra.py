"""Gaussian-kernel SCE / Vendi at large n through Nyström features (SPEC.md, "Large n").

The public entry points are :func:`clipcore.sce` and :func:`clipcore.vendi`
with ``landmarks=m``; the pipeline they share lives in :mod:`clipcore._pipeline.nystrom_run`;
this module holds its host float64 linear algebra (steps 4 and 5):

1. landmarks: m rows chosen by :func:`clipcore.nystrom.select_landmarks`
   from a seeded pool of rows (for SCE the pool holds texts *and* images:
   both modalities go through the same map, so both must be represented);
2. the map Φ(x) = k(x, L) W (float64 whitening, :func:`nystrom_map`);
3. one streamed pass over the rows accumulating Σ Zᵀ Z, Z = [Φ(T) | Φ(X)]
   (the compiled core or its JAX twin; arrays, files, shards, iterators);
4. the Schur decomposition of the r×r blocks (:func:`schur_from_gram`, the filter of
   :func:`clipcore.schur.spectral_filter`);
5. the entropies, with the mass Nyström misses handled by one of three
   named *tail models* (all three are always reported; the default estimate,
   ``"projected"``, is :mod:`clipcore.nystrom_projected`'s):

   * ``"renormalised"``: eigenvalues divided by the captured trace
     t = tr C_XX, so they sum to 1 as the exact ones do;
   * ``"missing-mass"``: the missing mass μ = 1 − t spread evenly over the
     n − r directions Nyström does not see (SPEC.md's estimate (b));
   * ``"residual"``: the unseen spectrum estimated from the
     Nyström residual E = K − K̃ on a seeded subsample of s rows: E's mean
     diagonal c̄ is a nugget spread over the n − r unseen directions, and
     the eigenvalues of E's off-diagonal part (÷ s) add the structure the
     landmarks missed; the tail is scaled to mass μ. On the accuracy bench
     (bench/accuracy.py) it halves the error of "missing-mass", which
     assumes a flat tail and overestimates the entropy.

   The tail belongs to the image spectrum and to S (the landmarks'
   complement is, to first order, what the prompts do not explain); R is
   used as measured except under "renormalised".

Tails of up to n − r equal values are never materialised: the entropies
below take (explicit eigenvalues, count, value of the flat part).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import scipy.linalg

from ._hostmem import one_blas_thread
from ._options import DEFAULT_ESTIMATE, DEFAULT_RESIDUAL_SAMPLE, ESTIMATES
from .entropy import Spectrum
from .kernels import gaussian_tile_host
from .landmarks import pool_indices
from .nystrom import NystromMap, symmetrise
from .schur import EPSILON, schur_primal, spectral_filter

__all__ = ["ESTIMATES", "DEFAULT_ESTIMATE", "DEFAULT_RESIDUAL_SAMPLE", "residual_kernel", "residual_tail", "pool_rows",
           "NystromSpectra", "gram_eigvalsh", "schur_from_gram", "schur_from_gram_host", "estimate_spectra"]


def residual_kernel(sample: np.ndarray, nmap: NystromMap) -> tuple[np.ndarray, np.ndarray]:
    """Φ_S ``[s, r]`` and the Nyström residual E_ss = k(S, S) − Φ_S Φ_Sᵀ ``[s, s]`` of sampled rows
    (float64 NumPy, in place: at most three ``[s, max(s, m)]`` arrays alive at once)."""
    x = np.asarray(sample, np.float64)
    gamma = 1.0 / (2.0 * float(nmap.sigma) ** 2)
    phi = gaussian_tile_host(x, np.asarray(nmap.landmarks, np.float64), gamma) @ np.asarray(nmap.whitening, np.float64)
    e = gaussian_tile_host(x, x, gamma)
    e -= phi @ phi.T
    return phi, e


def residual_tail(sample: np.ndarray, nmap: NystromMap, n: int, mass: float, *,
                  residual: np.ndarray | None = None) -> Spectrum:
    """The spectrum of E/n (E = K − K̃, the Nyström residual) beyond the r captured directions.

    From s sampled rows: E_ss = k(S, S) − Φ_S Φ_Sᵀ (float64). Its mean
    diagonal c̄ is a nugget: c̄/n on each of the n − r unseen directions; the
    eigenvalues of its off-diagonal part divided by s (the Nyström scaling
    of a subsample) add structure on s of them. Clipped at 0 and scaled so
    the tail carries ``mass`` (= 1 − tr C, exact).

    Args:
      sample: ``[s, d]`` rows (a seeded subsample of the data).
      nmap: the Nyström map.
      n: rows of the whole data.
      mass: the missing mass 1 − tr C.
      residual: E_ss of those rows when already computed (:func:`residual_kernel`); overwritten.
    """
    r = nmap.rank
    unseen = max(n - r, 0)
    if unseen == 0 or mass <= 0:
        return Spectrum(np.zeros(0), 0.0, 0.0)
    E = residual_kernel(sample, nmap)[1] if residual is None else residual
    s = E.shape[0]
    cbar = max(float(np.mean(np.diag(E))), 0.0)
    np.fill_diagonal(E, 0.0)  # the off-diagonal part O
    # LAPACK syevr in place on one BLAS thread (no copy of E; see clipcore._hostmem.one_blas_thread)
    with one_blas_thread():
        struct = scipy.linalg.eigvalsh(E, overwrite_a=True, check_finite=False, driver="evr")[::-1] / s
    del E
    k = min(s, unseen)
    explicit = np.maximum(cbar / n + struct[:k], 0.0)
    flat = unseen - k
    total = explicit.sum() + flat * cbar / n
    if total <= 1e-10 * unseen / n:  # no residual left in the sample (rounding noise only): spread evenly
        return Spectrum(np.zeros(0), float(unseen), mass / unseen)
    scale = mass / total
    return Spectrum(explicit * scale, float(flat), cbar / n * scale)


def pool_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted seeded row indices (all rows when size ≥ n): the landmark pool's draw, seeded by an int."""
    return pool_indices(n, size, np.random.default_rng(seed))


class NystromSpectra(NamedTuple):
    """Spectra of a Nyström SCE (or Vendi, where text/complement are None)."""

    image: np.ndarray
    text: np.ndarray | None
    complement: np.ndarray | None
    rank_kept: int
    captured: float
    captured_texts: float | None
    nmap: NystromMap


def _owned_host(g: Any) -> bool:
    """g is a host float64 array the caller may overwrite (the compiled pass's result)."""
    return isinstance(g, np.ndarray) and g.dtype == np.float64 and g.flags.c_contiguous and g.flags.writeable


def _eigvalsh_desc_inplace(a: np.ndarray) -> np.ndarray:
    """Eigenvalues of the symmetric float64 a (overwritten), descending, clipped at 0 (syevd, no vectors)."""
    lam = scipy.linalg.eigh(a, eigvals_only=True, overwrite_a=True, check_finite=False, driver="evd")
    return np.maximum(lam[::-1], 0.0)


def gram_eigvalsh(g: Any, n: int) -> np.ndarray:
    """Eigenvalues of g / n (the Nyström Gram, symmetric ``[r, r]``), descending, clipped at 0, float64.

    A host g from the compiled pass is scaled and decomposed in its own
    storage, on one BLAS thread (see :func:`clipcore.nystrom.nystrom_map`);
    anything else is copied to the host first.
    """
    c = g if _owned_host(g) else np.array(g, np.float64)
    c /= max(n, 1)
    with one_blas_thread():
        return _eigvalsh_desc_inplace(c)


def schur_from_gram(g: Any, n: int, r: int, rtol: float, ridge: float | None):
    """Schur spectra (host float64) from the joint Nyström Gram Σ Zᵀ Z ([2r, 2r]).

    Returns ``(image, text, complement, rank, tr C_XX, tr C_TT)``. A host
    float64 g (the compiled pass's result) is solved by :func:`schur_from_gram_host`
    in its own storage; anything else by the jitted :func:`clipcore.schur.schur_primal`.
    """
    if _owned_host(g):
        return schur_from_gram_host(g, n, r, rtol, ridge)
    c = jnp.asarray(g) / max(n, 1)
    tt, tx, xx = c[:r, :r], c[:r, r:], c[r:, r:]
    mode = "ridge" if ridge is not None else "pinv"
    sp = schur_primal(tt, tx, xx, rtol, EPSILON, ridge if ridge is not None else 0.0, mode=mode)
    h = lambda a: np.asarray(a, np.float64)  # noqa: E731
    return h(sp.image), h(sp.text), h(sp.complement), int(sp.rank), float(jnp.trace(xx)), float(jnp.trace(tt))


def schur_from_gram_host(g: np.ndarray, n: int, r: int, rtol: float, ridge: float | None):
    """:func:`schur_from_gram` in float64 NumPy/LAPACK, consuming g (scaled in place).

    The same arithmetic as :func:`clipcore.schur.schur_matrices` and
    :func:`clipcore.schur.schur_primal`, with the same spectral filter (SPEC.md: R = C_TXᵀ (C_TT + εI)⁺ C_TX,
    S = C_XX − R, spectra of R, S and C_XX), with three ``[r, r]`` temporaries
    beside g instead of the jitted version's device copies (about 0.3 GB less
    at r = 2000); m×m LAPACK calls on one BLAS thread, as in
    :func:`clipcore.nystrom.nystrom_map`.
    """
    g /= max(n, 1)
    tt, tx, xx = g[:r, :r], g[:r, r:], g[r:, r:]
    cap_x, cap_t = float(np.trace(xx)), float(np.trace(tt))

    with one_blas_thread():
        a = np.array(tt)
        symmetrise(a)
        w, v = scipy.linalg.eigh(a, overwrite_a=True, check_finite=False, driver="evd")
        del a
        inv, keep = spectral_filter(w, rtol, EPSILON, ridge if ridge is not None else 0.0,
                                    mode="ridge" if ridge is not None else "pinv", xp=np)
        rank = int(keep.sum())
        b = v.T @ tx
        del v
        gb = inv[:, None] * b
        R = b.T @ gb  # the text-explained part
        del gb
        symmetrise(R)
        S = b  # [r, r]: its storage holds S = sym(C_XX) − R (b is not needed any more)
        del b
        np.copyto(S, xx)
        symmetrise(S)
        S -= R
        text = _eigvalsh_desc_inplace(R)
        comp = _eigvalsh_desc_inplace(S)
        np.copyto(R, xx)  # R's storage for C_XX
        symmetrise(R)
        image = _eigvalsh_desc_inplace(R)
    return image, text, comp, rank, cap_x, cap_t


def estimate_spectra(
    kind: str, image: np.ndarray, complement: np.ndarray | None, text: np.ndarray | None,
    captured: float, tail: Spectrum | None, n: int,
) -> tuple[Spectrum, Spectrum | None, Spectrum | None]:
    """(image, complement, text) spectra under one named estimate."""
    mass = max(1.0 - captured, 0.0)
    r = image.shape[0]
    if kind == "renormalised":
        f = 1.0 / captured if captured > 0 else 1.0
        mk = lambda a: None if a is None else Spectrum(a * f)  # noqa: E731
        return mk(image), mk(complement), mk(text)
    if kind == "missing-mass":
        unseen = max(n - r, 0)
        t = Spectrum(np.zeros(0), float(unseen), mass / unseen if unseen else 0.0)
    elif kind == "residual":
        t = tail if tail is not None else Spectrum(np.zeros(0))
    else:  # pragma: no cover - validated by the caller
        raise ValueError(kind)

    def add(a):
        return Spectrum(np.concatenate([a, t.explicit]), t.count, t.value)

    return add(image), None if complement is None else add(complement), (
        None if text is None else Spectrum(text))
