"""Scores: SCE (with its text part), Vendi and RKE — the public compositions.

Schur Complement Entropy — Ospanov, Farnia & Jalali (2024), "Dissecting
CLIP: Decomposition with a Schur Complement-based Approach", arXiv:2412.18645.
Vendi — Friedman & Dieng (2023), "The Vendi Score", TMLR.
RKE — Jalali et al. (2023), "An Information-Theoretic Evaluation of
Generative Models in Learning Multi-modal Distributions", NeurIPS.

Each entry resolves its flat keywords into validated option groups
(:mod:`clipcore._options`: numerics, Nyström, execution; the kernel options),
classifies its input (:mod:`clipcore._pipeline.inputs`), builds ONE plan
(:func:`clipcore._pipeline.plan.plan_call`), runs it and returns a typed result
(:mod:`clipcore.results`).
"""

from __future__ import annotations

from typing import Any

from . import _validate as V
from . import sharding as SH
from ._options import (DEFAULT_ESTIMATE, DEFAULT_RESIDUAL_SAMPLE, METHODS, precision_for, resolve_execution,
                       resolve_numerics, resolve_nystrom)
from ._pipeline.errors import sce_error, vendi_error, warn_if_large
from ._pipeline.frobenius_run import frobenius_sq
from ._pipeline.inputs import (paired_inputs, resolve_kernel, resolve_kernel_options, resolve_source_options,
                               single_inputs)
from ._pipeline.plan import DEFAULT_LANDMARKS, EXACT_ROWS, EXACT_VENDI_ROWS, FROBENIUS_ROWS, plan_call
from ._pipeline.run import feature_dim, run_sce, run_vendi
from .entropy import DEFAULT_CLAMP
from .groups import check_groups, per_group
from .results import (DegenerateWarning, LowCaptureWarning, SCEResult, VendiResult, frobenius_result,
                      sce_result, vendi_result, warn_degenerate)

__all__ = ["SCEResult", "VendiResult", "sce", "vendi", "rke", "DegenerateWarning", "LowCaptureWarning",
           "EXACT_ROWS", "EXACT_VENDI_ROWS", "FROBENIUS_ROWS", "DEFAULT_LANDMARKS"]


def check_order(order: Any) -> float:
    """The Rényi order α: a number > 0, or ``inf``."""
    try:
        order = float(order)
    except (TypeError, ValueError):
        raise ValueError(f"order: expected a number α > 0 or inf, got {order!r}") from None
    if not order > 0:
        raise ValueError(f"order: expected α > 0 (or inf), got {order}")
    return order


def sce(
    images: Any,
    texts: Any = None,
    *,
    kernel: str = "cosine",
    sigma: float | None = None,
    rff_features: int | None = None,
    omega: Any = None,
    key: Any = None,
    method: str = "auto",
    convention: str = "paper",
    dtype: Any = None,
    rtol: float | None = None,
    ridge: float | None = None,
    clamp: float | None = DEFAULT_CLAMP,
    normalize: bool = False,
    block_size: int | None = None,
    backend: str = "auto",
    progress: bool | None = None,
    landmarks: int | None = None,
    landmark_method: str = "pivoted-cholesky",
    estimate: str = DEFAULT_ESTIMATE,
    residual_sample: int = DEFAULT_RESIDUAL_SAMPLE,
    mesh: Any = None,
    images_key: str | None = None,
    texts_key: str | None = None,
    skip_incomplete: bool = False,
) -> SCEResult:
    """Schur Complement Entropy of images given their prompts.

    Splits C_XX into the prompt-explained part R = C_TXᵀ (C_TT + εI)⁺ C_TX
    and the Schur complement S = C_XX − R, and scores each with
    exp(−Σ λ log(λ / Σλ)) (Ospanov, Farnia & Jalali 2024, Eq. 8–10; the
    reference code's ``schur_vendi``; SPEC.md).

    Args:
      images: ``[n, d_x]`` image embeddings: an array, a ``.npy`` path (read
        by blocks), a directory or glob of ``.npy`` shards, a clipcore shard
        directory (then ``texts`` may be omitted), or an iterable of
        ``(images_block, texts_block)`` pairs (``texts`` omitted). Files and
        iterators are streamed in bounded memory (see
        :mod:`clipcore.sources`); they take the primal path.
      texts: ``[n, d_t]`` text embeddings, in any of the same forms; row i is
        the prompt of image i.
      kernel: ``"cosine"`` (φ = x/‖x‖) or ``"gaussian"``.
      sigma: Gaussian bandwidth; default the median pairwise distance of
        (a seeded sample of) the images.
      rff_features: D random Fourier frequencies (2D features); ``None`` with
        the Gaussian kernel means the exact kernel (dual, n×n).
      omega: ``[d, D]`` RFF frequencies already scaled by 1/σ (e.g. the
        reference code's draw); overrides ``key``.
      key: an int seed or a ``jax.random`` key (default seed 0), for every random choice of the call:
        RFF's ω, Nyström's landmark pool and residual subsample.
      method: ``"auto"`` (the smaller of D×D and n×n), ``"primal"``, ``"dual"``.
      convention: ``"paper"`` or ``"clip-dissection"`` (the reference code's
        column-cosine covariance for the cosine kernel).
      dtype: ``None`` (default): precision follows the input — float64 rows stay float64; float32,
        float16 or bfloat16 rows get float32 features and block GEMMs, accumulated and decomposed in
        float64 (:func:`clipcore._options.precision_for`; SCE through RFF, primal or dual, keeps
        float64). ``"float64"`` or ``"float32"`` force one (x64 is enabled locally, no global switch).
      rtol: pseudo-inverse cutoff relative to the largest eigenvalue of
        C_TT + εI; default D_T · eps(float32) whatever the dtype.
      ridge: use (C_TT + ridge·I)⁻¹ instead of the cut pseudo-inverse.
      clamp: eigenvalue floor of the score (1e-10, the code's), or ``None`` to
        drop zero eigenvalues.
      normalize: L2-normalise rows before the Gaussian kernel.
      block_size: rows per accumulation block (primal).
      backend: ``"auto"``, ``"jax"`` or ``"ffi"`` (compiled core) for the
        primal accumulation.
      progress: progress bar for streamed inputs (and an elapsed-time line
        for in-memory steps that report no progress of their own: an n×n
        decomposition, the exact ‖K‖_F², Nyström's landmarks and
        eigenvalues): ``None`` shows it once a step has lasted 2 s, ``True``
        always, ``False`` never.
      landmarks: m: the Gaussian kernel through m Nyström landmarks (SPEC.md,
        "Large n"): one streamed pass, m×m memory, any n; texts and images
        share the landmarks' kernel map (landmarks are drawn from both).
        Or ``[m, d]`` landmark points to use as given.
      landmark_method: ``"pivoted-cholesky"`` (default), ``"kmeans++"`` or
        ``"uniform"`` (:func:`clipcore.landmarks.select_landmarks`, seeded by
        ``key``).
      estimate: how the mass Nyström misses enters the scores:
        ``"projected"`` (default: the exact kernel compressed onto the
        landmarks' span plus the residual measured on a seeded subsample,
        split between the text part and the complement;
        :mod:`clipcore.nystrom_projected`), or one of the tail models
        ``"residual"``, ``"missing-mass"``, ``"renormalised"``
        (:mod:`clipcore.nystrom_spectra`); all four are in ``result.nystrom``.
      residual_sample: rows (pairs) of the seeded subsample the
        ``"projected"`` and ``"residual"`` estimates study (default 2000).
      mesh: a :class:`jax.sharding.Mesh`, or a number of devices k (a 1-D
        ``"rows"`` mesh of the first k): the rows of in-memory inputs are
        sharded over its devices and the primal sums (cosine, RFF,
        Nyström) accumulated per device and added with one ``psum``
        (:mod:`clipcore.sharding`); same result to float rounding. Streamed
        inputs shard each block. Across processes: :mod:`clipcore.distributed`.

      images_key, texts_key: the array inside ``.npz`` shards (DataComp: ``"l14_img"``) or the Parquet
        column of the embeddings, for folders holding several (:func:`clipcore.sources.paired_source`).
      skip_incomplete: for shards paired by number, score the complete pairs only (recorded in
        ``result.pairing``) instead of stopping with one error naming every missing or mismatched shard.

    Returns:
      :class:`SCEResult`.

    Every option is validated whichever path runs (a bad value of an option the
    chosen path does not use is still refused).

    Raises:
      ValueError: on invalid input, naming the argument.
    """
    numerics = resolve_numerics(dtype=dtype, rtol=rtol, ridge=ridge, clamp=clamp, convention=convention,
                                normalize=normalize)
    kopts = resolve_kernel_options(kernel=kernel, sigma=sigma, rff_features=rff_features, omega=omega, key=key)
    nys = resolve_nystrom(landmarks=landmarks, landmark_method=landmark_method, estimate=estimate,
                          residual_sample=residual_sample)
    execution = resolve_execution(backend=backend, block_size=block_size, progress=progress,
                                  mesh=SH.resolve_mesh(mesh))
    files = resolve_source_options(images_key=images_key, texts_key=texts_key, skip_incomplete=skip_incomplete)
    V.check_choice(method, "method", METHODS)
    with numerics.precision.context():
        inputs = paired_inputs(images, texts, nonzero=kopts.kernel == "cosine" or numerics.normalize,
                               same_dim=kopts.kernel == "gaussian", files=files)
        setup = resolve_kernel(kopts, normalize=numerics.normalize, convention=numerics.convention,
                               sample=inputs.sample, dim=inputs.d_images)
        dims = (feature_dim(setup, inputs.d_texts, inputs.n), feature_dim(setup, inputs.d_images, inputs.n))
        plan = plan_call(score="sce", kernel=setup.kind, n=inputs.n, feature_dims=dims, streamed=inputs.streamed,
                         in_memory=inputs.in_memory, method=method, landmarks=nys.requested,
                         mesh=execution.mesh is not None, convention=numerics.convention)
        numerics = numerics.follow(precision_for(dtype, inputs.dtype, kernel=setup.kind, score="sce"))
        run = run_sce(plan, inputs, setup, numerics, nys, execution, kopts.seed)
        error = sce_error(run, setup, numerics, inputs, execution, nys.estimate)
    warn_degenerate(run.rank_kept, run.n)
    result = sce_result(run, setup, numerics, execution, nys, inputs.pairing, error)
    warn_if_large(error, (result.sce, result.text_score, result.image_score), "sce")
    return result


def vendi(
    x: Any,
    *,
    kernel: str = "cosine",
    sigma: float | None = None,
    order: float = 1.0,
    rff_features: int | None = None,
    omega: Any = None,
    key: Any = None,
    clamp: float | None = DEFAULT_CLAMP,
    normalize: bool = False,
    method: str = "auto",
    dtype: Any = None,
    block_size: int | None = None,
    backend: str = "auto",
    progress: bool | None = None,
    landmarks: int | None = None,
    landmark_method: str = "pivoted-cholesky",
    estimate: str = DEFAULT_ESTIMATE,
    residual_sample: int = DEFAULT_RESIDUAL_SAMPLE,
    mesh: Any = None,
    images_key: str | None = None,
    skip_incomplete: bool = False,
    groups: Any = None,
) -> VendiResult:
    """Vendi score of order α: exp of the Rényi entropy of eig(K / n).

    Friedman & Dieng (2023); order α (Pasarkar & Dieng 2024): α = 1 is
    exp(−Σ λ log λ), α = 2 is RKE (Jalali et al. 2023), α = ∞ is 1 / max λ.
    With ``clamp=None`` this is the vendi-score package's ``score_K(K, q)``.

    Args:
      x: ``[n, d]`` embeddings: an array, a ``.npy`` path, a directory, glob
        or list of ``.npy`` / ``.npz`` shards, or an iterator of ``[b, d]``
        blocks (streamed in bounded memory, primal path; for an iterator the
        σ heuristic and Nyström's landmarks see its first block only).
      kernel, sigma, rff_features, omega, key, normalize, dtype, block_size,
        backend, progress: as in :func:`sce`.
      order: α > 0 or ``float("inf")``.
      clamp: eigenvalue floor 1e-10 (the reference code) or ``None``.
      method: ``"auto"``, ``"primal"`` (D×D covariance) or ``"dual"`` (n×n);
        for the exact Gaussian kernel at order 2 also ``"frobenius"``:
        exp(H₂) = n² / ‖K‖_F² from streamed kernel tiles (the compiled core;
        no eigendecomposition, no n×n matrix), which ``"auto"`` picks above
        ``FROBENIUS_ROWS`` rows. No eigenvalues are returned then and the
        1e-10 clamp is not applied (it would add ≤ n·1e-20 to Σλ²).
      landmarks, landmark_method, estimate, residual_sample: Nyström for the
        Gaussian kernel at large n, as in :func:`sce` (landmarks drawn from x).
      mesh: shard the rows over a device mesh (primal paths), as in :func:`sce`.

      images_key, skip_incomplete: as in :func:`sce` (the set's column in shards).
      groups: an ``[n]`` array of prompt or class ids (ints or strings, each on ≥ 2 rows): the result's
        ``groups`` (:class:`clipcore.groups.GroupedScores`) holds the score of each group's rows alone and
        their unweighted mean, next to the pooled score. Every group is scored with the pooled call's σ
        (so the groups are comparable), kernel, features (``rff_features`` / ``omega`` / ``key``), order,
        clamp and precision; Nyström landmarks and ``mesh`` are not used for the groups (``method="auto"``:
        exact up to ``EXACT_ROWS`` rows). Arrays and files (each group's rows read alone); not iterators.

    Returns:
      :class:`VendiResult` (``float(result)`` is the score).
    """
    order = check_order(order)
    numerics = resolve_numerics(dtype=dtype, clamp=clamp, normalize=normalize)
    kopts = resolve_kernel_options(kernel=kernel, sigma=sigma, rff_features=rff_features, omega=omega, key=key)
    nys = resolve_nystrom(landmarks=landmarks, landmark_method=landmark_method, estimate=estimate,
                          residual_sample=residual_sample)
    execution = resolve_execution(backend=backend, block_size=block_size, progress=progress,
                                  mesh=SH.resolve_mesh(mesh))
    files = resolve_source_options(images_key=images_key, skip_incomplete=skip_incomplete)
    V.check_choice(method, "method", METHODS)
    with numerics.precision.context():
        inputs = single_inputs(x, nonzero=kopts.kernel == "cosine" or numerics.normalize, files=files)
        if groups is not None:
            _check_vendi_groups(groups, inputs)
        setup = resolve_kernel(kopts, normalize=numerics.normalize, convention="paper", sample=inputs.sample,
                               dim=inputs.d_images)
        plan = plan_call(score="vendi", kernel=setup.kind, n=inputs.n,
                         feature_dims=(feature_dim(setup, inputs.d_images, inputs.n),), streamed=inputs.streamed,
                         in_memory=inputs.in_memory, method=method, order=order, landmarks=nys.requested,
                         mesh=execution.mesh is not None)
        numerics = numerics.follow(precision_for(dtype, inputs.dtype, kernel=setup.kind,
                                                 score="vendi"))
        if plan.path == "frobenius":
            f, n = frobenius_sq(inputs, setup.sigma, numerics.precision, execution, numerics.normalize)
            result = frobenius_result(f, n, setup, numerics, execution, inputs.pairing)
        else:
            run = run_vendi(plan, inputs, setup, numerics, nys, execution, kopts.seed, order)
            error = vendi_error(run, setup, numerics, inputs, execution, nys.estimate, order)
            result = vendi_result(run, order, setup, numerics, execution, nys, inputs.pairing, error)
            warn_if_large(error, result.score, "vendi")
    if groups is None:
        return result
    opts = dict(kernel=kernel, order=order, rff_features=rff_features, omega=omega, key=key, clamp=clamp,
                normalize=normalize, method="auto" if landmarks is not None else method, dtype=dtype,
                block_size=block_size, backend=backend, progress=False)
    rows = inputs.images if inputs.src is None else inputs.src.images
    return result._replace(groups=per_group(vendi, rows, groups, pooled=result, **opts))


def _check_vendi_groups(groups: Any, inputs) -> None:
    """``groups=`` of :func:`vendi`: rows that can be read again, one id per row."""
    if inputs.src is not None and inputs.src.iterator is not None:
        raise ValueError("groups: per-group scores read each group's rows again; pass an array or files, not "
                         "an iterator of blocks")
    check_groups(groups, inputs.n)


def rke(
    x: Any,
    *,
    kernel: str = "cosine",
    sigma: float | None = None,
    order: float = 2.0,
    rff_features: int | None = None,
    omega: Any = None,
    key: Any = None,
    clamp: float | None = DEFAULT_CLAMP,
    normalize: bool = False,
    method: str = "auto",
    dtype: Any = None,
    block_size: int | None = None,
    backend: str = "auto",
    progress: bool | None = None,
    landmarks: int | None = None,
    landmark_method: str = "pivoted-cholesky",
    estimate: str = DEFAULT_ESTIMATE,
    residual_sample: int = DEFAULT_RESIDUAL_SAMPLE,
    mesh: Any = None,
    images_key: str | None = None,
    skip_incomplete: bool = False,
    groups: Any = None,
) -> VendiResult:
    """RKE (Rényi Kernel Entropy) score: :func:`vendi` of order 2.

    exp(H₂) = 1 / Σ λ² = n² / ‖K‖_F² (Jalali et al. 2023). The options are
    :func:`vendi`'s (``groups=`` too); ``order`` may only be 2 (use
    ``vendi(order=...)`` for others).
    """
    if check_order(order) != 2.0:
        raise ValueError(f"order: rke is the order-2 Vendi score (got order={order}); use vendi(order=...) for "
                         "others")
    return vendi(x, kernel=kernel, sigma=sigma, order=2.0, rff_features=rff_features, omega=omega, key=key,
                 clamp=clamp, normalize=normalize, method=method, dtype=dtype, block_size=block_size,
                 backend=backend, progress=progress, landmarks=landmarks, landmark_method=landmark_method,
                 estimate=estimate, residual_sample=residual_sample, mesh=mesh, images_key=images_key,
                 skip_incomplete=skip_incomplete, groups=groups)
