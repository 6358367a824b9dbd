"""The pytrees :mod:`clipcore.functional` returns: scores, moments (sums that add), CLIPScore.

Every field is a ``jax.Array`` (or ``None``), so results leave ``jax.jit``, stack under ``jax.vmap``,
and are differentiable where they are floating point. :class:`Moments` is a monoid: ``m1 + m2`` adds the
sums of two disjoint sets of rows (and ``jax.lax.psum(m, axis)`` adds them over devices).
"""

from __future__ import annotations

from typing import NamedTuple

import jax

from ..covariance import Covariances

__all__ = ["SCEScores", "VendiScores", "Moments", "ClipScores"]


class SCEScores(NamedTuple):
    """SCE, the text score and the image (Vendi) score of paired embeddings, their logs and spectra.

    Ospanov, Farnia & Jalali (2024), arXiv:2412.18645: S = C_XX − C_TXᵀ (C_TT + εI)⁺ C_TX, R = C_XX − S;
    SCE = exp(−Σ λ log(λ / Σλ)) over eig(S) (SPEC.md, "Scores from a spectrum").

    Attributes:
      sce: ``[]`` exp(log_sce), the prompt-independent diversity.
      text_score: ``[]`` the same score of R (the prompt-explained part).
      image_score: ``[]`` the order-1 Vendi score of C_XX.
      log_sce: ``[]`` −Σ λ log(λ / Σλ) over eig(S) (λ clamped).
      log_text_score: ``[]`` the same over eig(R).
      log_image_score: ``[]`` −Σ λ log λ over eig(C_XX).
      complement: ``[k]`` eig(S), descending, clipped at 0 (k = D primal, D or n dual: SPEC.md padding).
      text: ``[k]`` eig(R).
      image: ``[k]`` eig(C_XX).
      rank: ``[]`` int, directions of C_TT the pseudo-inverse kept.
    """

    sce: jax.Array
    text_score: jax.Array
    image_score: jax.Array
    log_sce: jax.Array
    log_text_score: jax.Array
    log_image_score: jax.Array
    complement: jax.Array
    text: jax.Array
    image: jax.Array
    rank: jax.Array


class VendiScores(NamedTuple):
    """Vendi score of order α (Friedman & Dieng 2023; RKE is α = 2, Jalali et al. 2023).

    Attributes:
      score: ``[]`` exp(log_score).
      log_score: ``[]`` the Rényi entropy of order α of eig(C) (natural log).
      eigenvalues: ``[k]`` eig(C) (or eig(K / n)), descending, clipped at 0.
    """

    score: jax.Array
    log_score: jax.Array
    eigenvalues: jax.Array


class Moments(NamedTuple):
    """Sufficient statistics of a set of (paired) rows: the unnormalised second moments of the features.

    ``m1 + m2`` is the moments of the union of the two sets of rows (same feature map: the cosine map,
    or RFF with the same ω), ``sum([m1, m2, ...])`` works, and ``jax.lax.psum(m, axis)`` adds them
    over devices. :func:`clipcore.functional.sce_from_moments` and ``vendi_from_moments`` score them.

    Attributes:
      n: ``[]`` the number of rows (floating, the sums' dtype).
      tt: ``[D_T, D_T]`` Σ φ(t)ᵀ φ(t), or None for one set.
      tx: ``[D_T, D_X]`` Σ φ(t)ᵀ φ(x), or None for one set.
      xx: ``[D_X, D_X]`` Σ φ(x)ᵀ φ(x).
    """

    n: jax.Array
    tt: jax.Array | None
    tx: jax.Array | None
    xx: jax.Array

    def __add__(self, other):
        if not isinstance(other, Moments):
            return NotImplemented
        if (self.tt is None) != (other.tt is None):
            raise ValueError("moments: cannot add paired moments (images and texts) to moments of one set")
        add = (lambda a, b: None if a is None else a + b)
        return Moments(self.n + other.n, add(self.tt, other.tt), add(self.tx, other.tx), self.xx + other.xx)

    def __radd__(self, other):
        if isinstance(other, int) and other == 0:  # sum([m1, m2, ...]) starts from 0
            return self
        return NotImplemented

    @property
    def paired(self) -> bool:
        """Moments of paired images and texts (else of one set)."""
        return self.tt is not None

    def covariances(self) -> Covariances:
        """C_TT, C_TX, C_XX = the sums / n (paired moments only)."""
        if self.tt is None:
            raise ValueError("moments: covariances need paired moments (moments(images, texts))")
        return Covariances(self.tt / self.n, self.tx / self.n, self.xx / self.n)


class ClipScores(NamedTuple):
    """CLIPScore of paired embeddings (Hessel et al. 2021, Eq. 1; or torchmetrics' convention).

    Attributes:
      score: ``[]`` the corpus score (hessel: mean of w·max(cos, 0); torchmetrics: max(mean of w·cos, 0)).
      per_sample: ``[n]`` hessel: w·max(cos, 0); torchmetrics: w·cos.
      cosines: ``[n]`` cos(x_i, t_i).
    """

    score: jax.Array
    per_sample: jax.Array
    cosines: jax.Array
