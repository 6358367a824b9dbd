"""Independent float64 NumPy references for DEC and the clustering metrics.

Written from the paper's formulas (Xie, Girshick & Farhadi 2016, eqs. 1–5 and
10) and from the textbook definitions of the pair-counting and information
indices, not from clipcore's code: explicit loops / differences, the closed
form gradient of the paper (eqs. 4–5), ACC by brute force over all
one-to-one maps (no Hungarian algorithm).
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def soft_assignment(z, mu, alpha: float = 1.0) -> np.ndarray:
    """q_ij = (1 + ‖z_i − μ_j‖²/α)^(−(α+1)/2) / Σ_j' (…) (eq. 1), float64."""
    z = np.asarray(z, np.float64)
    mu = np.asarray(mu, np.float64)
    q = np.empty((z.shape[0], mu.shape[0]))
    for i in range(z.shape[0]):
        for j in range(mu.shape[0]):
            diff = z[i] - mu[j]
            q[i, j] = (1.0 + diff @ diff / alpha) ** (-(alpha + 1.0) / 2.0)
        q[i] /= q[i].sum()
    return q


def target_distribution(q) -> np.ndarray:
    """p_ij = (q_ij² / f_j) / Σ_j' (q_ij'² / f_j'), f_j = Σ_i q_ij (eq. 3)."""
    q = np.asarray(q, np.float64)
    f = q.sum(axis=0)
    p = np.empty_like(q)
    for i in range(q.shape[0]):
        w = q[i] ** 2 / f
        p[i] = w / w.sum()
    return p


def kl(p, q) -> float:
    """Σ_i Σ_j p_ij log(p_ij / q_ij) (eq. 2), summed (not averaged) over i."""
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    total = 0.0
    for pij, qij in zip(p.ravel(), q.ravel()):
        if pij > 0:
            total += pij * math.log(pij / qij)
    return total


def kl_gradients(z, mu, p, alpha: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The paper's closed-form gradients (eqs. 4–5) of L = KL(P‖Q) with P fixed.

    ∂L/∂z_i = (α+1)/α Σ_j (1 + ‖z_i − μ_j‖²/α)^(−1) (p_ij − q_ij)(z_i − μ_j)
    ∂L/∂μ_j = −(α+1)/α Σ_i (1 + ‖z_i − μ_j‖²/α)^(−1) (p_ij − q_ij)(z_i − μ_j)
    """
    z = np.asarray(z, np.float64)
    mu = np.asarray(mu, np.float64)
    q = soft_assignment(z, mu, alpha)
    gz = np.zeros_like(z)
    gmu = np.zeros_like(mu)
    c = (alpha + 1.0) / alpha
    for i in range(z.shape[0]):
        for j in range(mu.shape[0]):
            diff = z[i] - mu[j]
            w = c * (p[i, j] - q[i, j]) * diff / (1.0 + diff @ diff / alpha)
            gz[i] += w
            gmu[j] -= w
    return gz, gmu


# ------------------------------------------------------------------ metrics
def _contingency(t, c) -> np.ndarray:
    tv = sorted(set(np.asarray(t).tolist()))
    cv = sorted(set(np.asarray(c).tolist()))
    w = np.zeros((len(cv), len(tv)))
    for a, b in zip(np.asarray(c).tolist(), np.asarray(t).tolist()):
        w[cv.index(a), tv.index(b)] += 1
    return w


def accuracy_bruteforce(t, c) -> float:
    """max over one-to-one maps cluster → class of the matched fraction (eq. 10), by enumeration."""
    w = _contingency(t, c)
    m = max(w.shape)
    sq = np.zeros((m, m))
    sq[: w.shape[0], : w.shape[1]] = w
    best = max(sum(sq[i, perm[i]] for i in range(m)) for perm in itertools.permutations(range(m)))
    return best / len(t)


def _pairs(t, c) -> tuple[float, float, float, float]:
    """(same in both, same in t only, same in c only, n choose 2) by counting every pair."""
    t = np.asarray(t).tolist()
    c = np.asarray(c).tolist()
    both = only_t = only_c = 0
    n = len(t)
    for i in range(n):
        for j in range(i + 1, n):
            st, sc = t[i] == t[j], c[i] == c[j]
            both += st and sc
            only_t += st and not sc
            only_c += sc and not st
    return float(both), float(only_t), float(only_c), n * (n - 1) / 2.0


def fmi(t, c) -> float:
    """Fowlkes–Mallows: TP / √((TP + FP)(TP + FN)) over pairs."""
    tp, fn, fp, _ = _pairs(t, c)
    return tp / math.sqrt((tp + fp) * (tp + fn))


def ari(t, c) -> float:
    """Hubert–Arabie adjusted Rand index from pair counts."""
    tp, fn, fp, total = _pairs(t, c)
    a_t = tp + fn  # pairs together in t
    a_c = tp + fp  # pairs together in c
    expected = a_t * a_c / total
    return (tp - expected) / (0.5 * (a_t + a_c) - expected)


def _entropy(labels) -> float:
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def mutual_information(t, c) -> float:
    """I(T; C) = Σ_ij (n_ij / n) log(n n_ij / (a_i b_j)) from the contingency table, natural logs."""
    w = _contingency(t, c)
    n = w.sum()
    mi = 0.0
    for a in range(w.shape[0]):
        for b in range(w.shape[1]):
            if w[a, b] > 0:
                mi += w[a, b] / n * math.log(n * w[a, b] / (w[a].sum() * w[:, b].sum()))
    return mi


def nmi(t, c) -> float:
    """I(T; C) / ((H(T) + H(C)) / 2), natural logs."""
    return mutual_information(t, c) / (0.5 * (_entropy(t) + _entropy(c)))


def expected_mutual_information(t, c) -> float:
    """E[I(T; C)] over random labellings with the same cluster sizes (the hypergeometric model of Vinh,
    Epps & Bailey 2010, "Information theoretic measures for clusterings comparison", JMLR, eq. 24a):

        Σ_i Σ_j Σ_{n_ij} (n_ij / n) log(n n_ij / (a_i b_j)) · C(a_i, n_ij) C(n − a_i, b_j − n_ij) / C(n, b_j),

    n_ij from max(1, a_i + b_j − n) to min(a_i, b_j), every term in float64 (log-binomials by lgamma)."""
    w = _contingency(t, c)
    n = int(w.sum())
    rows, cols = [int(r) for r in w.sum(axis=1)], [int(k) for k in w.sum(axis=0)]

    def log_binom(m, k):
        return math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1)

    emi = 0.0
    for a in rows:
        for b in cols:
            for nij in range(max(1, a + b - n), min(a, b) + 1):
                p = math.exp(log_binom(a, nij) + log_binom(n - a, b - nij) - log_binom(n, b))
                emi += nij / n * math.log(n * nij / (a * b)) * p
    return emi


def ami(t, c) -> float:
    """Adjusted mutual information, arithmetic mean: (I − E[I]) / ((H(T) + H(C)) / 2 − E[I]) (Vinh et al. 2010)."""
    emi = expected_mutual_information(t, c)
    return (mutual_information(t, c) - emi) / (0.5 * (_entropy(t) + _entropy(c)) - emi)
