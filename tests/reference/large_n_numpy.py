"""Independent float64 NumPy references for the Nyström scores (SPEC.md, "Large n").

Two kinds of reference, neither written from clipcore's code:

* the Nyström scores under the two estimates SPEC.md defines, everything
  materialised: the Nyström features of every row, the covariances, the
  Schur complement, and the tails as explicit eigenvalue arrays of length
  n − r (the library never materialises them): (a) ``"renormalised"``, the
  spectrum divided by the captured trace, and (b) ``"missing-mass"``, the
  missed mass spread evenly over the n − r unseen directions;
* the EXACT scores the estimates approximate: the full n×n Gaussian kernel in
  float64, its eigenvalues and entropies (Vendi of K/n, and the exact dual SCE
  of tests/reference/sce_numpy.py). The ``"residual"`` estimate (a model of the
  unseen spectrum from a subsample of the Nyström residual) has no closed form
  to copy; it is judged against these exact spectra (tests/test_nystrom_spectra.py).
"""

from __future__ import annotations

import numpy as np

from . import nystrom_numpy as ny
from . import sce_numpy as ref

EPS32 = float(np.finfo(np.float32).eps)

#: The estimates with a definition in SPEC.md ("Large n": (a) and (b)).
DEFINED_ESTIMATES = ("renormalised", "missing-mass")


def tails(n: int, r: int, mass: float) -> dict:
    """The defined estimates' extra eigenvalues for the image spectrum, explicit (length n − r or 0)."""
    unseen = n - r
    return {"renormalised": np.zeros(0), "missing-mass": np.full(unseen, mass / unseen)}


def nystrom_sce_spectra(t, x, landmarks, sigma):
    """Eigenvalues (descending, clipped at 0) of S, R and C_XX of the Nyström features (r×r blocks, the
    pseudo-inverse cut at r·eps32 with the ε = 1e-12 ridge), the kept rank and tr C_XX, tr C_TT."""
    n = x.shape[0]
    Ft = ny.features(t, landmarks, sigma, EPS32)
    Fx = ny.features(x, landmarks, sigma, EPS32)
    r = Fx.shape[1]
    c_tt, c_tx, c_xx = Ft.T @ Ft / n, Ft.T @ Fx / n, Fx.T @ Fx / n
    S, R, rank = ref.schur(c_tt, c_tx, c_xx, ridge=1e-12, rtol=r * EPS32)
    ls, lr, li = (np.maximum(ref.eigvals_desc(a), 0.0) for a in (S, R, c_xx))
    return ls, lr, li, rank, float(np.trace(c_xx)), float(np.trace(c_tt))


def nystrom_sce(t, x, landmarks, sigma, *, clamp=1e-10):
    """{estimate: (log_sce, log_text, log_image)} for the defined estimates, and the captured trace."""
    n = x.shape[0]
    ls, lr, li, _, cap, _ = nystrom_sce_spectra(t, x, landmarks, sigma)
    r = li.shape[0]
    out = {}
    for kind, tail in tails(n, r, 1.0 - cap).items():
        if kind == "renormalised":
            s_, r_, i_ = ls / cap, lr / cap, li / cap
        else:
            s_, r_, i_ = np.concatenate([ls, tail]), lr, np.concatenate([li, tail])
        out[kind] = (ref.log_code_score(s_, clamp), ref.log_code_score(r_, clamp), ref.log_renyi(i_, 1.0, clamp))
    return out, cap


def nystrom_vendi(x, landmarks, sigma, order, *, clamp=1e-10):
    """{estimate: Rényi entropy of order α} for the defined estimates."""
    n = x.shape[0]
    Fx = ny.features(x, landmarks, sigma, EPS32)
    r = Fx.shape[1]
    li = np.maximum(ref.eigvals_desc(Fx.T @ Fx / n), 0.0)
    cap = li.sum()
    out = {}
    for kind, tail in tails(n, r, 1.0 - cap).items():
        spec = li / cap if kind == "renormalised" else np.concatenate([li, tail])
        out[kind] = ref.log_renyi(spec, order, clamp)
    return out


def exact_vendi_entropy(x, sigma: float, order: float = 1.0, *, clamp=1e-10) -> float:
    """The Rényi entropy of order α of eig(K/n) with K the full n×n Gaussian kernel (float64)."""
    n = x.shape[0]
    return ref.log_renyi(ref.eigvals_desc(ref.gaussian_kernel(x, x, sigma) / n), order, clamp)


def exact_sce_entropies(t, x, sigma: float, *, rtol: float, clamp=1e-10) -> tuple[float, float, float]:
    """(log SCE, log text score, von Neumann entropy of K_X/n) of the exact Gaussian kernel (the n×n dual)."""
    spec = ref.sce_exact_gaussian(t, x, sigma, rtol=rtol)
    return (ref.log_code_score(spec.complement, clamp), ref.log_code_score(spec.text, clamp),
            ref.log_renyi(spec.image, 1.0, clamp))
