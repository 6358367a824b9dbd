"""Typed results of the scores: :class:`SCEResult`, :class:`VendiResult` and the Nyström provenance
(:class:`NystromInfo` with one :class:`SCEEstimate` / :class:`VendiEstimate` per named estimate).

Results are NamedTuples of host values (Python floats, NumPy arrays) that carry their provenance
(SPEC.md, "Results carry their provenance"); ``summary()`` gives the JSON-ready part.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._warnings import warn_user
from .groups import GroupedScores
from ._pipeline.errors import ApproximationWarning, SCEError
from ._pipeline.inputs import KernelSetup
from ._pipeline.nystrom_run import Entropies, LowCaptureWarning, NystromRun
from ._pipeline.run import SCERun, VendiRun

__all__ = ["SCEResult", "VendiResult", "NystromInfo", "SCEEstimate", "VendiEstimate", "DegenerateWarning",
           "LowCaptureWarning", "ApproximationWarning", "SCEError", "nystrom_info", "warn_degenerate", "sce_result", "vendi_result", "frobenius_result"]


class DegenerateWarning(UserWarning):
    """The text part explains every sample direction: S ≈ 0, SCE ≈ 1."""


class _ByName:
    """Field access by name too (``info["captured_trace"]``), as the dicts these types replace allowed."""

    __slots__ = ()

    def __getitem__(self, key):
        if isinstance(key, str):
            try:
                return getattr(self, key)
            except AttributeError:
                raise KeyError(key) from None
        return tuple.__getitem__(self, key)

    def keys(self):
        return self._fields


class _SCEEstimateFields(NamedTuple):
    """SCE, text and image scores (and their logs and traces) under one named Nyström estimate."""

    sce: float
    text_score: float
    image_score: float
    log_sce: float
    log_text_score: float
    log_image_score: float
    trace_complement: float
    trace_text: float
    trace_image: float



class SCEEstimate(_ByName, _SCEEstimateFields):
    """SCE, text and image scores (and their logs and traces) under one named Nyström estimate."""

    __slots__ = ()

    @classmethod
    def of(cls, e: Entropies) -> "SCEEstimate":
        return cls(float(np.exp(e.log_complement)), float(np.exp(e.log_text)), float(np.exp(e.log_image)),
                   float(e.log_complement), float(e.log_text), float(e.log_image),
                   float(e.trace_complement), float(e.trace_text), float(e.trace_image))


class _VendiEstimateFields(NamedTuple):
    """The Vendi score and its log under one named Nyström estimate."""

    score: float
    log_score: float



class VendiEstimate(_ByName, _VendiEstimateFields):
    """The Vendi score and its log under one named Nyström estimate."""

    __slots__ = ()

    @classmethod
    def of(cls, e: Entropies) -> "VendiEstimate":
        return cls(float(np.exp(e.log_image)), float(e.log_image))


class _NystromInfoFields(NamedTuple):
    """Nyström provenance of a score (SPEC.md, "Large n").

    Attributes:
      landmarks: m as asked (or the number of given points).
      selected: landmarks actually chosen (≤ m: selection stops when the kernel is captured).
      rank: r, the Nyström feature dimension.
      landmark_method: ``"pivoted-cholesky"``, ``"kmeans++"``, ``"uniform"`` or ``"given"``.
      captured_trace: tr C_XX ≤ 1 (the fraction of the kernel trace the features hold).
      captured_trace_texts: tr C_TT (SCE), else None.
      missing_mass: 1 − captured_trace.
      estimate: the named estimate the result's scores use.
      estimates: every named estimate (``"projected"``, ``"residual"``, ``"missing-mass"``, ``"renormalised"``;
        the tail models alone for Conditional Vendi's parts) → its
        :class:`SCEEstimate` or :class:`VendiEstimate`.
    """

    landmarks: int
    selected: int
    rank: int
    landmark_method: str
    captured_trace: float
    captured_trace_texts: float | None
    missing_mass: float
    estimate: str
    estimates: dict


class NystromInfo(_ByName, _NystromInfoFields):
    __doc__ = _NystromInfoFields.__doc__
    __slots__ = ()

    def __repr__(self) -> str:
        return (f"NystromInfo(landmarks={self.landmarks}, rank={self.rank}, landmark_method={self.landmark_method!r}, "
                f"captured_trace={self.captured_trace:.4g}, estimate={self.estimate!r})")

    def as_dict(self) -> dict:
        out = self._asdict()
        out["estimates"] = {k: v._asdict() for k, v in self.estimates.items()}
        return out


def nystrom_info(run: NystromRun, estimate: str, estimates: dict) -> NystromInfo:
    """The typed info of a :class:`clipcore._pipeline.nystrom_run.NystromRun`."""
    return NystromInfo(int(run.asked), int(run.landmarks.points.shape[0]), int(run.nmap.rank),
                       run.landmarks.method, float(run.captured),
                       None if run.captured_texts is None else float(run.captured_texts),
                       1.0 - float(run.captured), estimate, estimates)


def warn_degenerate(rank: int, n: int) -> None:
    """The text part kept as many directions as there are samples: S ≈ 0."""
    if rank >= n:
        warn_user(
            f"sce: the text part kept {rank} directions for n = {n} samples, so it explains every "
            "sample direction: S ≈ 0 and SCE ≈ 1 say nothing about diversity. Use more samples "
            "than text features (n > D), fewer RFF features, or a larger rtol/ridge.",
            DegenerateWarning)


class SCEResult(NamedTuple):
    """Schur Complement Entropy of paired image/text embeddings.

    Attributes:
      sce: exp of the entropy of S (the prompt-independent diversity).
      text_score: the same score of R (the prompt-explained part).
      image_score: Vendi (order 1) of C_XX.
      log_sce, log_text_score, log_image_score: the entropies themselves.
      complement_eigenvalues, text_eigenvalues, image_eigenvalues: ``[k]``
        eigenvalues of S, R, C_XX (descending, negatives from rounding
        clipped to 0; k = d for cosine, 2D for RFF, n for the exact kernel).
      trace_complement, trace_text, trace_image: their sums (≥ 0).
      rank_kept: directions of C_TT kept by the pseudo-inverse.
      kernel, sigma, method, convention, n, num_features, rff_features, rtol,
      ridge, clamp, dtype, seed, omega: provenance.
      nystrom: with ``landmarks=m`` (Nyström, SPEC.md "Large n"), a
        :class:`NystromInfo` (landmarks, rank, captured trace, the estimate
        used and every named estimate's scores); else None. The eigenvalue
        fields hold the r Nyström eigenvalues as measured.
      pairing: how shards paired by number were matched (a dict), or None.
      error: for approximate kernels (random Fourier features, Nyström) the ± of each score as a
        :class:`clipcore.results.SCEError` (how it is estimated and how often it brackets the exact value:
        the guide "Evaluate a model"); None for exact kernels.
    """

    sce: float
    text_score: float
    image_score: float
    log_sce: float
    log_text_score: float
    log_image_score: float
    complement_eigenvalues: np.ndarray
    text_eigenvalues: np.ndarray
    image_eigenvalues: np.ndarray
    trace_complement: float
    trace_text: float
    trace_image: float
    rank_kept: int
    kernel: str
    sigma: float | None
    method: str
    convention: str
    n: int
    num_features: int
    rff_features: int | None
    rtol: float
    ridge: float | None
    clamp: float | None
    dtype: str
    backend: str
    seed: int | None
    omega: np.ndarray | None
    nystrom: "NystromInfo | None" = None
    pairing: dict | None = None
    error: SCEError | None = None

    def __repr__(self) -> str:
        """The scores and how they were computed, on one line (the eigenvalues and ω are fields)."""
        sigma = "" if self.sigma is None else f", sigma={self.sigma:.4g}"
        pm = ("", "", "") if self.error is None else tuple(f" ± {e:.3g}" for e in self.error)
        return (f"SCEResult(sce={self.sce:.6g}{pm[0]}, text_score={self.text_score:.6g}{pm[1]}, "
                f"image_score={self.image_score:.6g}{pm[2]}, kernel={self.kernel!r}{sigma}, method={self.method!r}, "
                f"n={self.n}, dtype={self.dtype!r})")

    def summary(self) -> dict:
        """JSON-ready scores and provenance (eigenvalues and ω left out; the Nyström info as a dict)."""
        skip = {"complement_eigenvalues", "text_eigenvalues", "image_eigenvalues", "omega"}
        out = {k: v for k, v in self._asdict().items() if k not in skip}
        out["nystrom"] = None if self.nystrom is None else self.nystrom.as_dict()
        out["error"] = None if self.error is None else self.error._asdict()
        return out


class VendiResult(NamedTuple):
    """Vendi score of order α of one set of embeddings (RKE: α = 2).

    Attributes:
      score: exp of the Rényi entropy of order α of eig(C) (C = Φᵀ Φ / n).
      log_score: the entropy.
      eigenvalues: ``[k]`` descending, clipped at 0 (empty for
        ``method="frobenius"``, which never forms them).
      nystrom: a :class:`NystromInfo` (provenance and every named estimate), or None.
      pairing: how shards paired by number were matched, or None.
      error: the ± of the score for approximate kernels (RFF, Nyström), else None.
      groups: with ``groups=``, a :class:`clipcore.groups.GroupedScores`: each group's score
        (``.scores``, ``.ids``, ``.sizes``, ``.results``) and their mean (``.mean``); else None.
    """

    score: float
    log_score: float
    order: float
    eigenvalues: np.ndarray
    kernel: str
    sigma: float | None
    method: str
    n: int
    num_features: int
    rff_features: int | None
    clamp: float | None
    dtype: str
    backend: str
    seed: int | None
    nystrom: "NystromInfo | None" = None
    pairing: dict | None = None
    error: float | None = None
    groups: GroupedScores | None = None

    def __float__(self) -> float:
        return float(self.score)

    def __repr__(self) -> str:
        """The score and how it was computed, on one line (the eigenvalues are a field)."""
        sigma = "" if self.sigma is None else f", sigma={self.sigma:.4g}"
        pm = "" if self.error is None else f" ± {self.error:.3g}"
        grp = "" if self.groups is None else f", groups={len(self.groups.ids)} (mean {self.groups.mean:.6g})"
        return (f"VendiResult(score={self.score:.6g}{pm}, order={self.order:g}, kernel={self.kernel!r}{sigma}, "
                f"method={self.method!r}, n={self.n}, dtype={self.dtype!r}{grp})")

    def summary(self) -> dict:
        """JSON-ready score and provenance (eigenvalues left out; the Nyström info and groups as dicts)."""
        out = {k: v for k, v in self._asdict().items() if k != "eigenvalues"}
        out["nystrom"] = None if self.nystrom is None else self.nystrom.as_dict()
        out["groups"] = None if self.groups is None else self.groups.summary(pooled=False)
        return out


def sce_result(run: SCERun, setup: KernelSetup, numerics, execution, nys, pairing: dict | None = None,
               error: SCEError | None = None) -> SCEResult:
    """The typed :class:`SCEResult` of a run (SPEC.md's provenance)."""
    info = None
    if run.nystrom is not None:
        info = nystrom_info(run.nystrom, nys.estimate, {k: SCEEstimate.of(e) for k, e in run.estimates.items()})
    kernel = "gaussian" if run.nystrom is not None else setup.kernel
    return SCEResult(
        sce=float(np.exp(run.log_sce)), text_score=float(np.exp(run.log_text)),
        image_score=float(np.exp(run.log_image)), log_sce=run.log_sce, log_text_score=run.log_text,
        log_image_score=run.log_image, complement_eigenvalues=run.complement, text_eigenvalues=run.text,
        image_eigenvalues=run.image, trace_complement=run.traces[0], trace_text=run.traces[1],
        trace_image=run.traces[2], rank_kept=run.rank_kept, kernel=kernel, sigma=setup.sigma, method=run.method,
        convention=numerics.convention, n=run.n, num_features=run.num_features,
        rff_features=None if run.nystrom is not None else setup.rff_frequencies, rtol=run.rtol,
        ridge=numerics.ridge, clamp=numerics.clamp, dtype=numerics.precision.name, backend=execution.backend,
        seed=run.seed, omega=None if setup.omega is None or run.nystrom is not None else np.asarray(setup.omega),
        nystrom=info, pairing=pairing, error=error,
    )


def vendi_result(run: VendiRun, order: float, setup: KernelSetup, numerics, execution, nys,
                 pairing: dict | None = None, error: float | None = None) -> VendiResult:
    """The typed :class:`VendiResult` of a run."""
    info = None
    if run.nystrom is not None:
        info = nystrom_info(run.nystrom, nys.estimate, {k: VendiEstimate.of(e) for k, e in run.estimates.items()})
    return VendiResult(
        score=float(np.exp(run.log_score)), log_score=run.log_score, order=order, eigenvalues=run.eigenvalues,
        kernel=setup.kernel, sigma=setup.sigma, method=run.method, n=run.n, num_features=run.num_features,
        rff_features=None if run.nystrom is not None else setup.rff_frequencies, clamp=numerics.clamp,
        dtype=numerics.precision.name, backend=execution.backend, seed=run.seed, nystrom=info, pairing=pairing,
        error=error,
    )


def frobenius_result(f: float, n: int, setup: KernelSetup, numerics, execution,
                     pairing: dict | None = None) -> VendiResult:
    """The exact RKE n² / ‖K‖_F² as a :class:`VendiResult` (no eigenvalues; the clamp is not applied)."""
    log_score = float(np.log(n) * 2 - np.log(f))
    return VendiResult(
        score=float(np.exp(log_score)), log_score=log_score, order=2.0, eigenvalues=np.zeros(0),
        kernel="gaussian", sigma=setup.sigma, method="frobenius/exact", n=n, num_features=n, rff_features=None,
        clamp=None, dtype=numerics.precision.name, backend=execution.backend, seed=None, pairing=pairing,
    )
