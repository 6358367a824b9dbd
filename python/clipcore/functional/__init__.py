"""clipcore.functional: the scores as pure JAX functions — jit, grad, jvp, vmap, sharded rows.

For JAX programs: an evaluation step on device, a diversity score as guidance or regulariser (gradient
through the eigendecomposition into the embeddings), a sweep scoring many sets at once::

    import jax, clipcore.functional as F
    s = jax.jit(F.sce)(images, texts)                       # SCEScores: .sce, .text_score, .image_score, ...
    g = jax.grad(lambda x: F.sce(x, texts).log_sce)(images)
    bank = F.moments(bank_images, bank_texts)               # a memory bank: D×D sums, computed once
    loss = lambda x: -F.sce_from_moments(bank + F.moments(x, batch_texts)).log_sce   # O(b·D²) per step

Scores (same definitions, defaults and numbers as :func:`clipcore.sce` / ``vendi`` / ``rke`` /
``clip_score`` for in-memory arrays; SPEC.md; Ospanov, Farnia & Jalali 2024, arXiv:2412.18645):
:func:`sce`, :func:`vendi`, :func:`rke`, :func:`clip_score`; Conditional / Information Vendi (Jalali et al.
2024, arXiv:2411.02817) in its exact n×n form: :func:`conditional_vendi`. Kernels: cosine; Gaussian through given RFF
``omega`` (or ``key`` + ``rff_features``), or the exact n×n kernel for small n. σ may be traced; σ=None is
the median heuristic computed in JAX (:func:`median_sigma`, ``stop_gradient``-ed: a gradient is taken at
fixed σ). The primal D×D or dual n×n form is chosen statically from the shapes (primal when every feature
dimension D ≤ n), as the host API does.

Arguments: the arrays (images, texts, x, ``sigma``, ``omega``, ``key``, ``rtol``, a ``ridge`` λ > 0) may be
traced; every other option (kernel, method, order, clamp, dtype, backend, mesh, …) is static Python — close
over it, ``jax.jit(lambda x, t: F.sce(x, t, kernel="gaussian", sigma=s))``. A traced ``ridge`` selects the
ridge form (λ > 0); ``ridge=0`` (the cut pseudo-inverse) must be a Python number.

Sums as a monoid: :func:`moments` → :class:`Moments` (``+``, ``sum``, ``jax.lax.psum``);
:func:`sce_from_moments`, :func:`vendi_from_moments`. Linear algebra: :func:`sce_from_covariances`,
:func:`sce_from_grams`, :func:`vendi_from_covariance`, :func:`sce_scores`, :func:`vendi_scores` (the host
API runs these too: one implementation).

Precision:

* x64 enabled: float64 throughout (``dtype="float32"``: float32 features, float64 sums and linear algebra,
  as the host API's ``dtype="float32"``);
* x64 off (JAX's default): float32 features and float32 sums compensated over blocks (Kahan; the compiled
  core sums each block in float64 before its one rounding) and float32 linear algebra. Agreement with
  float64, tested (tests/functional/test_precision.py): |score₃₂/score₆₄ − 1| < 1e-4 for SCE, the text and
  image scores and RKE; measured ≤ 1e-6 on CLIP-like pairs (n = 2000, d = 32 and n = 10⁴, d = 512, cosine
  and RFF, both backends). The error is that of float32 eigenvalues, ≈ eps(float32)·λ_max each, so it grows
  when much of a score rests on eigenvalues below ~1e-6·λ_max;
* a float64 request that cannot be honoured (``dtype="float64"``, or NumPy float64 inputs, with x64 off)
  warns once per process (:class:`PrecisionWarning`); nothing is downgraded silently.

Gradients (see :mod:`clipcore.functional.spectra`): finite at duplicated rows, a rank-deficient C_TT and
eigenvalues at the clamp; an eigenvalue below the 1e-10 clamp contributes 0 to the gradient.

Sharding: ``mesh=`` (or inputs with an explicit row sharding) sums each device's rows and adds the D×D
sums with one psum; the compiled program holds no all-gather of the ``[n, d]`` rows.
"""

from ._moments import moments, sce_from_moments, vendi_from_moments
from .scores import CLIP_SCORE_VARIANTS, clip_score, rke, sce, vendi
from .conditional import ConditionalVendiScores, conditional_vendi, distinct_median_sigma
from .setup import PrecisionWarning, median_sigma
from .spectra import (check_order, sce_from_covariances, sce_from_grams, sce_scores, schur_spectra_dual,
                      schur_spectra_primal, vendi_from_covariance, vendi_scores)
from .types import ClipScores, Moments, SCEScores, VendiScores

__all__ = [
    "sce", "vendi", "rke", "clip_score", "CLIP_SCORE_VARIANTS",
    "conditional_vendi", "ConditionalVendiScores", "distinct_median_sigma",
    "moments", "sce_from_moments", "vendi_from_moments",
    "sce_from_covariances", "sce_from_grams", "vendi_from_covariance", "sce_scores", "vendi_scores",
    "schur_spectra_primal", "schur_spectra_dual", "check_order", "median_sigma",
    "SCEScores", "VendiScores", "Moments", "ClipScores", "PrecisionWarning",
]
