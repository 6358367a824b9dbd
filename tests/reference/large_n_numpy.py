"""Independent float64 NumPy reference for the Nyström scores (SPEC.md, "Large n").

Everything materialised: the Nyström features of every row, the covariances,
the Schur complement, and the estimated tails as explicit eigenvalue arrays
of length n (the library never materialises them).
"""

from __future__ import annotations

import numpy as np

from . import nystrom_numpy as ny
from . import sce_numpy as ref

EPS32 = float(np.finfo(np.float32).eps)


def tails(x_sample, landmarks, sigma, n, r, mass):
    """The three estimates' extra eigenvalues for the image spectrum, explicit (length n − r or 0)."""
    unseen = n - r
    out = {"renormalised": np.zeros(0), "missing-mass": np.full(unseen, mass / unseen)}
    s = x_sample.shape[0]
    F = ny.features(x_sample, landmarks, sigma, EPS32)
    E = ny.gaussian(x_sample, x_sample, sigma) - F @ F.T
    nugget = np.mean(np.diag(E)) / n
    off = E.copy()
    np.fill_diagonal(off, 0.0)
    struct = np.sort(np.linalg.eigvalsh(off))[::-1] / s
    k = min(s, unseen)
    tail = np.concatenate([np.maximum(nugget + struct[:k], 0.0), np.full(unseen - k, nugget)])
    out["residual"] = tail * (mass / tail.sum())
    return out


def nystrom_sce(t, x, landmarks, sigma, sample_rows, *, clamp=1e-10):
    """{estimate: (log_sce, log_text, log_image)} and the captured trace."""
    n = x.shape[0]
    Ft = ny.features(t, landmarks, sigma, EPS32)
    Fx = ny.features(x, landmarks, sigma, EPS32)
    r = Fx.shape[1]
    c_tt, c_tx, c_xx = Ft.T @ Ft / n, Ft.T @ Fx / n, Fx.T @ Fx / n
    S, R, _ = ref.schur(c_tt, c_tx, c_xx, ridge=1e-12, rtol=r * EPS32)
    ls, lr, li = (np.maximum(ref.eigvals_desc(a), 0.0) for a in (S, R, c_xx))
    cap = np.trace(c_xx)
    out = {}
    for kind, tail in tails(x[sample_rows], landmarks, sigma, n, r, 1.0 - cap).items():
        if kind == "renormalised":
            s_, r_, i_ = ls / cap, lr / cap, li / cap
        else:
            s_, r_, i_ = np.concatenate([ls, tail]), lr, np.concatenate([li, tail])
        out[kind] = (ref.log_code_score(s_, clamp), ref.log_code_score(r_, clamp), ref.log_renyi(i_, 1.0, clamp))
    return out, cap


def nystrom_vendi(x, landmarks, sigma, sample_rows, order, *, clamp=1e-10):
    n = x.shape[0]
    Fx = ny.features(x, landmarks, sigma, EPS32)
    r = Fx.shape[1]
    li = np.maximum(ref.eigvals_desc(Fx.T @ Fx / n), 0.0)
    cap = li.sum()
    out = {}
    for kind, tail in tails(x[sample_rows], landmarks, sigma, n, r, 1.0 - cap).items():
        spec = li / cap if kind == "renormalised" else np.concatenate([li, tail])
        out[kind] = ref.log_renyi(spec, order, clamp)
    return out
