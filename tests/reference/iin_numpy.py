"""Independent float64 NumPy reference for the IIN (Esser, Rombach & Ommer 2020).

Written from SPEC_MODELS.md's formulas, not from clipcore's code: a plain
loop over blocks and layers, the pair loss written per pair and per factor,
and CompVis/iin's factor-dimension estimator. Parameters come in as plain
arrays (``IIN.numpy_params()``: per block ``loc, scale, perm`` and the
``s1, t1, s2, t2`` MLPs as lists of ``(W [in, out], b [out])``).
"""

from __future__ import annotations

import numpy as np


def leaky_relu(x, slope=0.01):
    return np.where(x >= 0, x, slope * x)


def mlp(layers, x, *, tanh, slope=0.01):
    for w, b in layers[:-1]:
        x = leaky_relu(x @ w + b, slope)
    w, b = layers[-1]
    x = x @ w + b
    return np.tanh(x) if tanh else x


def block_forward(p, x, slope=0.01):
    """One block on x [n, D]: ActNorm, double affine coupling, permutation."""
    d = x.shape[1]
    h = d // 2
    x = p["scale"] * (x + p["loc"])
    logdet = np.full(x.shape[0], np.sum(np.log(np.abs(p["scale"]))))
    a, b = x[:, :h].copy(), x[:, h:].copy()
    s = mlp(p["s1"], a, tanh=True, slope=slope)
    b = b * np.exp(s) + mlp(p["t1"], a, tanh=False, slope=slope)
    logdet += s.sum(1)
    s = mlp(p["s2"], b, tanh=True, slope=slope)
    a = a * np.exp(s) + mlp(p["t2"], b, tanh=False, slope=slope)
    logdet += s.sum(1)
    y = np.concatenate([a, b], axis=1)
    out = np.empty_like(y)
    for new_pos, old_pos in enumerate(p["perm"]):  # y_perm[:, i] = y[:, perm[i]]
        out[:, new_pos] = y[:, old_pos]
    return out, logdet


def forward(params, x, slope=0.01):
    x = np.asarray(x, np.float64)
    total = np.zeros(x.shape[0])
    for p in params:
        x, ld = block_forward(p, x, slope)
        total += ld
    return x, total


def inverse(params, y, slope=0.01):
    y = np.asarray(y, np.float64)
    for p in reversed(params):
        x = np.empty_like(y)
        for new_pos, old_pos in enumerate(p["perm"]):
            x[:, old_pos] = y[:, new_pos]
        h = x.shape[1] // 2
        a, b = x[:, :h], x[:, h:]
        a = (a - mlp(p["t2"], b, tanh=False, slope=slope)) / np.exp(mlp(p["s2"], b, tanh=True, slope=slope))
        b = (b - mlp(p["t1"], a, tanh=False, slope=slope)) / np.exp(mlp(p["s1"], a, tanh=True, slope=slope))
        y = np.concatenate([a, b], axis=1) / p["scale"] - p["loc"]
    return y


def numeric_jacobian_logdet(params, x, eps=1e-6):
    """log|det J| of ``forward`` at each row of x by central differences."""
    out = []
    for row in np.asarray(x, np.float64):
        d = row.size
        jac = np.empty((d, d))
        for i in range(d):
            e = np.zeros(d)
            e[i] = eps
            jac[:, i] = (forward(params, (row + e)[None])[0][0] - forward(params, (row - e)[None])[0][0]) / (2 * eps)
        out.append(np.linalg.slogdet(jac)[1])
    return np.array(out)


def pair_loss(za, lda, zb, ldb, factor, sizes, rho=0.975):
    """Mean over pairs of
    ½‖z̄^a‖² − logdet^a + Σ_{k≠F} ½‖z̄^b_k‖² + ½‖z̄^b_F − ρ z̄^a_F‖²/(1−ρ²) − logdet^b."""
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    total = 0.0
    for p in range(za.shape[0]):
        f = int(factor[p])
        loss = 0.5 * float(np.dot(za[p], za[p])) - float(lda[p]) - float(ldb[p])
        for k in range(len(sizes)):
            a_k = za[p, bounds[k]:bounds[k + 1]]
            b_k = zb[p, bounds[k]:bounds[k + 1]]
            if k == f:
                loss += 0.5 * float(np.sum((b_k - rho * a_k) ** 2)) / (1 - rho ** 2)
            else:
                loss += 0.5 * float(np.sum(b_k ** 2))
        total += loss
    return total / za.shape[0]


def flow_loss(z, logdet):
    return float(np.mean(0.5 * np.sum(np.asarray(z) ** 2, axis=1) - np.asarray(logdet)))


def estimate_factor_sizes(za, zb, factor, num_attributes):
    """CompVis/iin's estimator: per-factor pair covariance over total variance,
    residual score 1, softmax, ⌊·D⌋, residual takes the remainder."""
    zall = np.concatenate([za, zb])
    var = np.sum(np.var(zall, axis=0))
    scores = []
    for f in range(num_attributes):
        a, b = za[factor == f], zb[factor == f]
        m = (a.mean(0) + b.mean(0)) / 2
        scores.append(np.sum(np.mean((a - m) * (b - m), axis=0)) / var)
    scores.append(1.0)
    scores = np.array(scores)
    soft = np.exp(scores) / np.exp(scores).sum()
    dims = [int(np.floor(s * za.shape[1])) for s in soft]
    dims[-1] = za.shape[1] - sum(dims[:-1])
    return tuple(dims)
