"""Error bars of the approximate paths: how far a random-Fourier-feature or Nyström score may be
from the exact kernel's, as ± per score, and a warning when that is large.

* Nyström, the default "projected" estimate (:mod:`clipcore.nystrom_projected`): what it does not
  measure — the shape of the tail outside the compressed space and the noise of the residual's sample —
  makes its ± (:func:`projected_sce_error`).
* Nyström, a tail model: the three differ only in how the kernel trace the landmarks miss enters the
  spectrum — dropped and renormalised (the least tail entropy), spread evenly (the most), or modelled from
  the residual — and the exact spectrum's tail lies between those extremes, so the ± is the largest
  distance from the chosen tail model to another. The text part, which every tail model but
  "renormalised" takes as measured, gets twice its spread.
* RFF: the D frequencies are split into G = 4 groups of D/4 and each group's score computed (a submatrix
  of the covariances already accumulated; no pass over the data): their spread estimates the noise and
  their mean the bias of lower resolution. With the bias taken to shrink as 1/√D (the conservative rate:
  1/D is typical), bias(D) ≈ mean(group) − score, and ± = |bias| + t₀.₉₅,₃ · sd(group) / √G.

On seeded test data the ± brackets the exact kernel's value in at least 90 % of draws
(tests/_pipeline/test_errors.py; bench figures in bench/RESULTS.md).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from .. import nystrom_projected as NP
from .._hostmem import one_blas_thread
from .._options import TAIL_ESTIMATES
from .._warnings import warn_user
from ..covariance import Covariances, dual_gram, feature_covariance, joint_covariances
from ..dual_lowrank import kept_eigenpairs, schur_projected
from ..entropy import matrix_entropy, renyi_entropy
from ..kernels import FeatureMap
from ..schur import EPSILON, desc_eigvalsh, pad, schur_dual, schur_primal

__all__ = ["SCEError", "ApproximationWarning", "WARN_RELATIVE", "RFF_GROUPS", "GROUP_LOWRANK_FEATURES",
           "GROUP_WORKERS", "GroupPlan", "group_plans", "nystrom_sce_error", "nystrom_vendi_error", "frequency_groups",
           "rff_sce_error", "rff_vendi_error", "warn_if_large", "sce_error", "vendi_error"]

#: A score whose ± exceeds this fraction of itself triggers an :class:`ApproximationWarning`.
WARN_RELATIVE = 0.1
#: Frequency groups of the RFF error.
RFF_GROUPS = 4
#: Frequency groups of this many features or more take the kept-subspace form in the pseudo-inverse mode
#: (:func:`group_plans`, used by :func:`rff_sce_error`; n = 6000, D = 2500, σ = 3.5: four groups of 1250
#: features, 2.3 s in the dense form).
GROUP_LOWRANK_FEATURES = 512
#: Frequency groups whose kept pairs :func:`group_plans` finds at once (at most the CPU count).
GROUP_WORKERS = 2
#: t quantile (0.95, G − 1 = 3 degrees of freedom).
_T95_3 = 2.353363434801823


class ApproximationWarning(UserWarning):
    """An approximate score (random Fourier features, Nyström) may be far from the exact kernel's."""


class SCEError(NamedTuple):
    """± (absolute) of SCE, the text score and the image score of an approximate result."""

    sce: float
    text_score: float
    image_score: float


def _spread(values: list[float], chosen: float) -> float:
    return float(max(abs(v - chosen) for v in values))


def nystrom_sce_error(scores: dict, chosen: str, among: tuple = TAIL_ESTIMATES) -> SCEError:
    """A tail model's ± from the ``(sce, text_score, image_score)`` of the estimates ``among`` (their spread)."""
    c = scores[chosen]
    tails = [v for k, v in scores.items() if k in among]
    per = [_spread([s[i] for s in tails], c[i]) for i in range(3)]
    return SCEError(per[0], 2.0 * per[1], per[2])


def nystrom_vendi_error(scores: dict, chosen: str) -> float:
    """A tail model's ± from every tail model's score (their spread)."""
    return _spread([v for k, v in scores.items() if k in TAIL_ESTIMATES], scores[chosen])


def projected_sce_error(ps, scores: dict, clamp) -> SCEError:
    """± of the "projected" estimate (:mod:`clipcore.nystrom_projected`): the tail's share
    (:func:`clipcore.nystrom_projected.tail_shifts`) for SCE and the image score; for the text score the RFF
    groups' rule (:func:`_bar`) over the sample's disjoint parts, also added to SCE's relative ±. When the
    kept text directions fill the landmarks' text space (or the sample is too small to split), the spread of
    every estimate instead: the score then rests on what the landmarks cannot see."""
    point = scores["projected"]
    if ps.truncated or not ps.text_groups:
        return nystrom_sce_error(scores, "projected", tuple(scores))
    d_sce, d_image = NP.tail_shifts(ps, clamp)
    text = _bar(point[1], np.asarray(ps.text_groups))
    return SCEError(point[0] * float(np.expm1(d_sce + text / point[1])), text, point[2] * float(np.expm1(d_image)))


def _correction(projected: float, residual: float) -> float:
    """|log projected − log residual|: how far the sampled residual inside the landmarks' span moved a Vendi
    score of order α ≠ 1, whose tail share is nil (the correction is taken to be off by at most its size)."""
    return abs(float(np.log(projected)) - float(np.log(residual)))


def frequency_groups(num_frequencies: int) -> list[np.ndarray] | None:
    """The RFF error's feature groups: G = :data:`RFF_GROUPS` index arrays of D/G frequencies each, their cos and
    sin features ``[f, D + f]`` (None below 2G frequencies)."""
    g = RFF_GROUPS if num_frequencies >= 2 * RFF_GROUPS else 0
    if not g:
        return None
    return [np.concatenate([f, num_frequencies + f]) for f in np.array_split(np.arange(num_frequencies), g)]


class GroupPlan(NamedTuple):
    """One frequency group of the RFF ± (:func:`group_plans`): its feature indices and the kept eigenpairs
    ``(w, U)`` of its scaled C_TT block, or None where it takes the dense form (from its whole block of C_TX)."""

    idx: np.ndarray
    pairs: tuple[np.ndarray, np.ndarray] | None


def group_plans(c_tt, num_frequencies: int, numerics) -> list[GroupPlan]:
    """The RFF ± groups (:func:`frequency_groups`) and, from :data:`GROUP_LOWRANK_FEATURES` features on in the
    pseudo-inverse mode, the kept pairs of each group's scaled C_TT block
    (:func:`clipcore.dual_lowrank.kept_eigenpairs`), so that the run forms B_g = U_gᵀ C_TX^g (k_g × |g|)
    instead of the group's whole block of C_TX. A group that keeps most of its directions takes the dense form,
    and so do the groups of the rounds after it (the groups are alike). The groups' pairs are found
    :data:`GROUP_WORKERS` at a time, each on its own thread with one BLAS thread (n = 6000, D = 2500, σ = 3.5:
    1.24 → 0.55 s for the four on two cores)."""
    groups = frequency_groups(num_frequencies) or []
    lowrank = numerics.mode == "pinv" and jnp.dtype(c_tt.dtype) == jnp.float64
    pairs: list = [None] * len(groups)
    workers = max(1, min(GROUP_WORKERS, os.cpu_count() or 1))
    todo = [i for i, idx in enumerate(groups) if lowrank and len(idx) >= GROUP_LOWRANK_FEATURES]
    for start in range(0, len(todo), workers):
        chunk = todo[start:start + workers]
        blocks = [np.asarray(_sub(c_tt, groups[i], _group_scale(num_frequencies, groups[i]))) for i in chunk]
        rtols = [numerics.rtol_for(len(groups[i])) for i in chunk]
        with one_blas_thread(), ThreadPoolExecutor(len(chunk)) as pool:
            found = list(pool.map(lambda b, r: kept_eigenpairs(b, r, EPSILON), blocks, rtols))
        for i, p in zip(chunk, found):
            pairs[i] = p
        if any(p is None for p in found):
            break
    return [GroupPlan(idx, p) for idx, p in zip(groups, pairs)]


def _group_scale(num_frequencies: int, idx: np.ndarray) -> float:
    """Features of D/G frequencies are scaled by √(G/D): each group's products by D / (D/G)."""
    return num_frequencies / (len(idx) // 2)


def _sub(c, idx: np.ndarray, scale: float):
    return jnp.asarray(c)[jnp.ix_(idx, idx)] * scale


def _bar(point: float, values: np.ndarray) -> float:
    """|bias| + t₀.₉₅ · sd / √G from G group values around the whole's ``point``, the bias taken to shrink as
    1/√size (the conservative rate): mean(group) − point = (√G − 1) · bias."""
    g = len(values)
    bias = values.mean() - point  # (√G − 1)·bias(D) with √G = 2 at G = 4
    return float(abs(bias) / (np.sqrt(g) - 1.0) + _T95_3 * values.std(ddof=1) / np.sqrt(g))


def rff_sce_error(cov: Covariances, num_frequencies: int, point: tuple[float, float, float], numerics,
                  cross=None) -> SCEError | None:
    """± of (SCE, text, image) from the 2D×2D covariances of D frequencies ``[cos | sin]`` (None below 8): each
    group through its kept pairs where :func:`group_plans` found them (B_g = U_gᵀ C_TX^g), else the dense form.

    Args:
      cross: where ``cov.tx`` is None, ``(plans, products)``: the :func:`group_plans` and, for each group,
        B_g = U_gᵀ C_TX^g where its plan has pairs, else its whole diagonal block of C_TX (unscaled).
    """
    if frequency_groups(num_frequencies) is None:
        return None
    plans, products = cross if cov.tx is None else (group_plans(cov.tt, num_frequencies, numerics), None)
    spectra = []
    for i, plan in enumerate(plans):
        idx, scale = plan.idx, _group_scale(num_frequencies, plan.idx)
        rtol, xx = numerics.rtol_for(len(idx)), _sub(cov.xx, idx, scale)
        if plan.pairs is not None:  # the group's kept pairs; B_g from the run, or from the block of C_TX
            w, u = plan.pairs
            b = (np.asarray(products[i]) * scale if products is not None
                 else u.T @ np.asarray(_sub(cov.tx, idx, scale)))
            spectra.append(schur_projected(w, b, np.asarray(xx), rtol, EPSILON))
            continue
        tx = _sub(cov.tx, idx, scale) if products is None else jnp.asarray(products[i]) * scale
        spectra.append(schur_primal(_sub(cov.tt, idx, scale), tx, xx, rtol, EPSILON, numerics.ridge_value,
                                    mode=numerics.mode))
    return _error_of_spectra(spectra, point, numerics)


def rff_vendi_error(c, num_frequencies: int, point: float, order: float, clamp) -> float | None:
    """± of the Vendi score from the 2D×2D covariance of D frequencies (None below 8 frequencies)."""
    groups = frequency_groups(num_frequencies)
    if groups is None:
        return None
    vals = np.array([float(np.exp(renyi_entropy(desc_eigvalsh(_sub(c, idx, num_frequencies / (len(idx) // 2))),
                                                order, clamp))) for idx in groups])
    return _bar(point, vals)


def warn_if_large(error, point, what: str) -> None:
    """An :class:`ApproximationWarning` when a ± exceeds :data:`WARN_RELATIVE` of its score."""
    if error is None:
        return
    pairs = zip(error._fields, error, point) if isinstance(error, tuple) else [("score", error, point)]
    large = [(k, e, p) for k, e, p in pairs if p > 0 and e > WARN_RELATIVE * p]
    if large:
        worst = ", ".join(f"{k} ±{e:.3g} ({100 * e / p:.0f} %)" for k, e, p in large)
        warn_user(f"{what}: the approximation may be far from the exact kernel's value: {worst}; use more "
                      "features (rff_features=) or landmarks (landmarks=), or a larger sigma",
                      ApproximationWarning)


def _group_spectra(inputs, setup, numerics, execution, freq: np.ndarray):
    """One frequency group's Schur spectra recomputed from rows in memory (the dual path keeps no
    covariances): primal when its 2·|F| features are fewer than the rows, else dual."""
    fmap = FeatureMap("rff", len(freq), setup.normalize)
    omega = jnp.asarray(setup.omega)[:, freq]
    prec = numerics.precision
    rtol = numerics.rtol_for(2 * len(freq))
    if 2 * len(freq) <= inputs.n:
        c = joint_covariances(inputs.texts, inputs.images, fmap, omega, feature_dtype=prec.feature,
                              acc_dtype=prec.acc, backend=execution.backend)
        return schur_primal(c.tt, c.tx, c.xx, rtol, EPSILON, numerics.ridge_value, mode=numerics.mode)
    grams = [dual_gram(a, fmap, omega, feature_dtype=prec.feature, acc_dtype=prec.acc, backend=execution.backend)
             for a in (inputs.texts, inputs.images)]
    return schur_dual(*grams, rtol, EPSILON, numerics.ridge_value, mode=numerics.mode, pad_to=2 * len(freq))


def sce_error(run, setup, numerics, inputs, execution, estimate: str) -> SCEError | None:
    """± of an SCE run: Nyström from its estimates, RFF from frequency groups, None for exact kernels."""
    if run.nystrom is not None:
        scores = {k: tuple(float(np.exp(v)) for v in (e.log_complement, e.log_text, e.log_image))
                  for k, e in run.estimates.items()}
        if estimate == "projected":
            return projected_sce_error(run.nystrom.projected, scores, numerics.clamp)
        return nystrom_sce_error(scores, estimate)
    if setup.kind != "rff":
        return None
    point = tuple(float(np.exp(v)) for v in (run.log_sce, run.log_text, run.log_image))
    D = setup.fmap.num_frequencies
    cov = run.covariances
    if cov is not None:
        return rff_sce_error(cov, D, point, numerics, run.cross_blocks)
    groups = frequency_groups(D)  # the dual path: each group's spectra from the rows
    if groups is None:
        return None
    spectra = [_group_spectra(inputs, setup, numerics, execution, idx[: len(idx) // 2]) for idx in groups]
    return _error_of_spectra(spectra, point, numerics)


def _error_of_spectra(spectra: list, point, numerics) -> SCEError:
    vals = np.asarray([[float(np.exp(matrix_entropy(sp.complement, numerics.clamp))),
                        float(np.exp(matrix_entropy(sp.text, numerics.clamp))),
                        float(np.exp(renyi_entropy(sp.image, 1.0, numerics.clamp)))] for sp in spectra])
    return SCEError(*(_bar(point[i], vals[:, i]) for i in range(3)))


def vendi_error(run, setup, numerics, inputs, execution, estimate: str, order: float) -> float | None:
    """± of a Vendi run (as :func:`sce_error`)."""
    if run.nystrom is not None:
        if estimate == "projected":
            point = float(np.exp(run.estimates["projected"].log_image))
            shift = NP.tail_shifts(run.nystrom.projected, numerics.clamp, order)[1]
            if order != 1.0:
                shift = max(shift, _correction(point, float(np.exp(run.estimates["residual"].log_image))))
            return point * float(np.expm1(shift))
        return nystrom_vendi_error({k: float(np.exp(e.log_image)) for k, e in run.estimates.items()}, estimate)
    if setup.kind != "rff":
        return None
    D, point = setup.fmap.num_frequencies, float(np.exp(run.log_score))
    if run.covariance is not None:
        return rff_vendi_error(run.covariance, D, point, order, numerics.clamp)
    groups = frequency_groups(D)
    if groups is None:
        return None
    vals = []
    for idx in groups:
        f = idx[: len(idx) // 2]
        fmap, omega = FeatureMap("rff", len(f), setup.normalize), jnp.asarray(setup.omega)[:, f]
        kw = dict(feature_dtype=numerics.precision.feature, acc_dtype=numerics.precision.acc,
                  backend=execution.backend)
        c = (feature_covariance(inputs.images, fmap, omega, **kw) if 2 * len(f) <= inputs.n
             else dual_gram(inputs.images, fmap, omega, **kw))
        vals.append(float(np.exp(renyi_entropy(pad(desc_eigvalsh(c), 2 * len(f)), order, numerics.clamp))))
    return _bar(point, np.asarray(vals))
