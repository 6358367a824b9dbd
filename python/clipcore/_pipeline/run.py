"""Run a :class:`.plan.Plan`: the spectra and entropies of one SCE or Vendi call, before the typed result.

The in-memory steps (one n×n or D×D decomposition) run behind an elapsed-time line; the streamed and
Nyström passes show their own bars.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, NamedTuple

import numpy as np

from .. import _validate as V
from .. import functional as F
from .._progress import busy
from . import passes as P
from .inputs import Inputs, KernelSetup
from .nystrom_run import Entropies, NystromRun, run_nystrom, sce_entropies, vendi_entropies
from .errors import group_plans
from .plan import Plan

__all__ = ["SCERun", "VendiRun", "run_sce", "run_vendi", "feature_dim"]


class SCERun(NamedTuple):
    """Spectra (host float64, descending), entropies and what produced them."""

    complement: np.ndarray
    text: np.ndarray
    image: np.ndarray
    log_sce: float
    log_text: float
    log_image: float
    traces: tuple[float, float, float]
    rank_kept: int
    n: int
    method: str
    num_features: int
    rtol: float
    seed: int | None
    nystrom: NystromRun | None = None
    estimates: dict[str, Entropies] | None = None
    covariances: Any = None  # the primal covariances (primal and streamed paths), for the RFF error
    cross_blocks: Any = None  # the RFF ± groups' (plans, products) where ``covariances.tx`` is None


class VendiRun(NamedTuple):
    """Eigenvalues, the Rényi entropy and what produced them."""

    eigenvalues: np.ndarray
    log_score: float
    n: int
    method: str
    num_features: int
    seed: int | None
    nystrom: NystromRun | None = None
    estimates: dict[str, Entropies] | None = None
    covariance: Any = None  # the primal covariance (primal and streamed paths), for the RFF error


def feature_dim(setup: KernelSetup, d: int, n: int | None) -> int:
    """The primal dimension of one set: n for the exact kernel, else the feature map's."""
    return n if setup.exact else setup.fmap.dim(d)


def _host(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _with_m(nys, plan: Plan):
    return nys.with_landmarks(plan.landmarks) if plan.landmarks is not None else nys


def run_sce(plan: Plan, inputs: Inputs, setup: KernelSetup, numerics, nys, execution, seed) -> SCERun:
    """SCE's spectra and entropies along ``plan``."""
    nonzero = setup.kernel == "cosine" or numerics.normalize
    if plan.path == "nystrom":
        run = run_nystrom(inputs, setup, numerics, _with_m(nys, plan), execution, seed, paired=True,
                          nonzero=nonzero, desc="sce (nyström)")
        ests = sce_entropies(run, numerics.clamp)
        e = ests[nys.estimate]
        # the projected estimate keeps K_T's directions at the exact dual's cutoff (n rows), the tail models C_TT's
        proj = nys.estimate == "projected" and run.projected is not None
        rank, rtol = (run.projected.rank, numerics.rtol_for(run.n)) if proj else (run.rank_kept, run.rtol)
        return SCERun(run.complement, run.text, run.image, e.log_complement, e.log_text, e.log_image,
                      (e.trace_complement, e.trace_text, e.trace_image), rank, run.n, "primal/nystrom",
                      run.nmap.rank, rtol, run.seed, run, ests)
    n = inputs.n
    d_t, d_x = feature_dim(setup, inputs.d_texts, n), feature_dim(setup, inputs.d_images, n)
    rtol = numerics.rtol_for(d_t)
    colcos = setup.kernel == "cosine" and numerics.convention == "clip-dissection"
    if colcos and not inputs.streamed:
        V.check_nonzero_columns(inputs.images, "images")
        V.check_nonzero_columns(inputs.texts, "texts")
    prec, ridge, clamp = numerics.precision, numerics.ridge_value, numerics.clamp
    cross = None
    with busy("sce", execution.progress) if not inputs.streamed else contextlib.nullcontext():
        # the linear algebra and the entropies are clipcore.functional's (one implementation)
        if plan.path == "dual":
            sp = P.dual_schur(inputs.texts, inputs.images, setup.omega, setup.sigma, rtol, ridge,
                                **P.dual_static(setup, prec, numerics.convention, execution.backend),
                                mode=numerics.mode, pad_to=None if setup.exact else d_x)
            sc = F.sce_scores(sp, clamp)
        else:
            if plan.path == "streamed":
                cov, n = P.streamed_covariances(inputs.src, setup, prec, numerics.convention, execution,
                                                nonzero=nonzero, desc="sce")
                sc = P.primal_schur(cov, rtol, numerics)
            elif P.projected_applies(setup, prec, numerics, execution, d_t):
                plans = functools.partial(group_plans, num_frequencies=setup.fmap.num_frequencies, numerics=numerics)
                sc, cov, cross = P.projected_primal_schur(setup, prec, execution, inputs.texts, inputs.images, rtol,
                                                          numerics, plans)
            else:
                cov = P.primal_covariances(setup, prec, numerics.convention, execution, inputs.texts,
                                           inputs.images)
                sc = P.primal_schur(cov, rtol, numerics)
        logs = (float(sc.log_sce), float(sc.log_text_score), float(sc.log_image_score))
        comp, text, image = _host(sc.complement), _host(sc.text), _host(sc.image)
        rank = int(sc.rank)
    how = "dual" if plan.path == "dual" else "primal"
    return SCERun(comp, text, image, *logs, (float(comp.sum()), float(text.sum()), float(image.sum())), rank, n,
                  f"{how}/{setup.kind}", d_x, rtol, setup.seed, covariances=None if how == "dual" else cov,
                  cross_blocks=cross)


def run_vendi(plan: Plan, inputs: Inputs, setup: KernelSetup, numerics, nys, execution, seed,
              order: float, *, projected: bool = True) -> VendiRun:
    """Vendi's eigenvalues and Rényi entropy of order α along ``plan`` (not the Frobenius path); ``projected``:
    Nyström also computes the "projected" estimate (not for the parts of Conditional Vendi)."""
    nonzero = setup.kernel == "cosine" or numerics.normalize
    if plan.path == "nystrom":
        run = run_nystrom(inputs, setup, numerics, _with_m(nys, plan), execution, seed, paired=False,
                          nonzero=nonzero, desc="vendi (nyström)", projected=projected)
        ests = vendi_entropies(run, order, numerics.clamp)
        return VendiRun(run.image, ests[nys.estimate].log_image, run.n, "primal/nystrom", run.nmap.rank,
                        run.seed, run, ests)
    n, prec, clamp = inputs.n, numerics.precision, numerics.clamp
    d, c = feature_dim(setup, inputs.d_images, n), None
    with busy("vendi", execution.progress) if not inputs.streamed else contextlib.nullcontext():
        # eigenvalues and the Rényi entropy are clipcore.functional's (one implementation)
        if plan.path == "streamed":
            c, n = P.streamed_covariance(inputs.src, setup, prec, execution, nonzero=nonzero, desc="vendi")
            vs = F.vendi_from_covariance(c, order=order, clamp=clamp, pad_to=d)
        elif plan.path == "primal":
            c = P.primal_covariance(setup, prec, execution, inputs.images)
            vs = F.vendi_from_covariance(c, order=order, clamp=clamp, pad_to=d)
        else:
            # the dual's n eigenvalues are cut or zero-padded to the primal dimension d, so the 1e-10
            # clamp counts the same entries.
            eigs = P.dual_image_eigs(inputs.images, setup.omega, setup.sigma, pad_to=None if setup.exact else d,
                                     **P.dual_static(setup, prec, "paper", execution.backend))
            vs = F.vendi_scores(eigs, order, clamp)
        log_score = float(vs.log_score)
        host = _host(vs.eigenvalues)
    how = "dual" if plan.path == "dual" else "primal"
    return VendiRun(host, log_score, n, f"{how}/{setup.kind}", d, setup.seed, covariance=c)
