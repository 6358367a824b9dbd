"""Conditional and Information Vendi: prompt-aware diversity beside SCE (the public composition).

Jalali, Ospanov, Gohari & Farnia (2024), "Conditional Vendi Score: An Information-Theoretic Approach
to Diversity Evaluation of Prompt-based Generative Models", arXiv:2411.02817 (the authors' code:
mjalali/conditional-vendi, ``ConditionalEvaluation.conditional_entropy``). With ρ_X = K_X/n,
ρ_T = K_T/n and ρ_XT = (K_X ∘ K_T)/tr(K_X ∘ K_T):

* Conditional Vendi = exp H(X|T), H(X|T) = H(X, T) − H(T): the diversity of the images beyond what
  the prompts explain (the sibling of SCE, "Scendi", Ospanov, Farnia & Jalali 2024);
* Information Vendi = exp I(X; T), I(X; T) = H(X) + H(T) − H(X, T): how much the images depend on
  the prompts.

:func:`conditional_vendi` resolves its flat keywords into option groups, classifies the input
(:func:`clipcore._pipeline.inputs.paired_inputs`: arrays, files, shards, iterators), plans
(:func:`clipcore._pipeline.conditional_run.plan_conditional`), runs
(:func:`clipcore._pipeline.conditional_run.run_conditional`) and returns a
:class:`ConditionalVendiResult`; ``groups=`` adds per-prompt scores (:mod:`clipcore.groups` does the
same for any score).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import _validate as V
from . import sharding as SH
from ._options import (DEFAULT_RESIDUAL_SAMPLE, DEFAULT_TAIL_ESTIMATE, METHODS, TAIL_ESTIMATES, resolve_execution, resolve_key,
                       resolve_numerics, resolve_nystrom)
from ._pipeline.conditional_run import (ConditionalRun, Part, check_sigma_pair, plan_conditional, resolve_sigmas,
                                        run_conditional, spooled)
from ._pipeline.inputs import paired_inputs, resolve_source_options
from .groups import check_groups
from .results import VendiEstimate, nystrom_info
from .scores import check_order

__all__ = ["ConditionalVendiResult", "ConditionalGroupScores", "conditional_vendi"]

_SCORES = ("conditional_vendi", "information_vendi", "conditional_entropy", "mutual_information",
           "joint_entropy", "image_entropy", "text_entropy")


class ConditionalGroupScores(NamedTuple):
    """Conditional Vendi per group (prompt or class id) and the means over groups.

    Every group is scored alone with the pooled call's bandwidths, order, kernel and options (exact for
    groups of ≤ ``EXACT_ROWS`` rows); ``top_k`` is capped at the group's size.

    Attributes:
      ids: the distinct group ids, sorted (``numpy.unique``).
      sizes: ``[G]`` rows per group.
      conditional_vendi, information_vendi, conditional_entropy, mutual_information, joint_entropy,
        image_entropy, text_entropy: ``[G]`` each group's values.
      mean_conditional_vendi, mean_information_vendi, mean_conditional_entropy, mean_mutual_information:
        the unweighted means over groups.
    """

    ids: list
    sizes: np.ndarray
    conditional_vendi: np.ndarray
    information_vendi: np.ndarray
    conditional_entropy: np.ndarray
    mutual_information: np.ndarray
    joint_entropy: np.ndarray
    image_entropy: np.ndarray
    text_entropy: np.ndarray
    mean_conditional_vendi: float
    mean_information_vendi: float
    mean_conditional_entropy: float
    mean_mutual_information: float

    def summary(self) -> dict:
        """JSON-ready: lists and floats (ids as Python scalars)."""
        out = {}
        for k, v in self._asdict().items():
            out[k] = [x.item() if hasattr(x, "item") else x for x in v] if isinstance(v, (list, np.ndarray)) else v
        return out


class ConditionalVendiResult(NamedTuple):
    """Conditional / Information Vendi of paired images and texts (natural log).

    Attributes:
      conditional_vendi: exp H(X|T). information_vendi: exp I(X; T).
      conditional_entropy: H(X|T) = H(X, T) − H(T). mutual_information: I(X; T) = H(X) + H(T) − H(X, T).
      joint_entropy: H(X, T) of ρ_XT = (K_X ∘ K_T)/tr. image_entropy: H(X) of K_X/n. text_entropy: H(T).
      order: the Rényi order α. top_k: the truncation (None: none).
      kernel: ``"gaussian"`` or ``"cosine"``. sigma_images, sigma_texts: the bandwidths (None for cosine).
      method: the joint's path (``"dual"``, ``"frobenius"``, ``"nystrom"``, ``"rff"``, ``"tensor"``,
        ``"product-features"``). methods: ``{"joint", "images", "texts"}`` → how each entropy was computed.
      n: rows. num_features: part → n (exact), Nyström rank or feature dimension.
      joint_eigenvalues, image_eigenvalues, text_eigenvalues: the spectra (descending; empty at order 2
        without truncation, which uses ‖ρ‖_F² and never forms them; λ_max alone for the exact order ∞ above
        512 rows, found by Lanczos).
      clamp, dtype, backend, seed: provenance.
      estimate: the named Nyström estimate the scores use (None off Nyström); estimates: every
        estimate → the seven values; nystrom: part → :class:`clipcore.results.NystromInfo`.
      groups: per-group scores (:class:`ConditionalGroupScores`) when ``groups=`` was given.
      error: ``{"conditional_vendi": ±, "information_vendi": ±}`` (absolute) on the Nyström path: the
        largest distance from the chosen estimate's score to another estimate's (the rule of
        :class:`clipcore.SCEError` for Nyström); None elsewhere (exact paths; random features give no ±).
      pairing: how shards paired by number were matched (:meth:`clipcore.sources.PairingReport.to_dict`:
        complete pairs read, shards skipped with ``skip_incomplete``), or None.
    """

    conditional_vendi: float
    information_vendi: float
    conditional_entropy: float
    mutual_information: float
    joint_entropy: float
    image_entropy: float
    text_entropy: float
    order: float
    top_k: int | None
    kernel: str
    sigma_images: float | None
    sigma_texts: float | None
    method: str
    methods: dict
    n: int
    num_features: dict
    joint_eigenvalues: np.ndarray
    image_eigenvalues: np.ndarray
    text_eigenvalues: np.ndarray
    clamp: float | None
    dtype: str
    backend: str
    seed: int | None
    estimate: str | None = None
    estimates: dict | None = None
    nystrom: dict | None = None
    groups: ConditionalGroupScores | None = None
    error: dict | None = None
    pairing: dict | None = None

    def __repr__(self) -> str:
        """The scores and how they were computed, on one line (eigenvalues are fields)."""
        sig = "" if self.sigma_images is None else f", sigma=({self.sigma_images:.4g}, {self.sigma_texts:.4g})"
        top = "" if self.top_k is None else f", top_k={self.top_k}"
        grp = "" if self.groups is None else f", groups={len(self.groups.ids)}"
        pm = (lambda k: "" if self.error is None else f" ± {self.error[k]:.3g}")  # noqa: E731
        return (f"ConditionalVendiResult(conditional_vendi={self.conditional_vendi:.6g}{pm('conditional_vendi')}, "
                f"information_vendi={self.information_vendi:.6g}{pm('information_vendi')}, order={self.order:g}{top}, "
                f"kernel={self.kernel!r}"
                f"{sig}, method={self.method!r}, n={self.n}{grp})")

    def summary(self) -> dict:
        """JSON-ready scores and provenance (eigenvalues left out)."""
        skip = {"joint_eigenvalues", "image_eigenvalues", "text_eigenvalues"}
        out = {k: v for k, v in self._asdict().items() if k not in skip}
        out["order"] = "inf" if np.isinf(self.order) else self.order
        out["nystrom"] = None if self.nystrom is None else {k: v.as_dict() for k, v in self.nystrom.items()}
        out["groups"] = None if self.groups is None else self.groups.summary()
        return out


def _values(joint: float, images: float, texts: float) -> dict:
    cond, mutual = joint - texts, images + texts - joint
    return dict(conditional_vendi=float(np.exp(cond)), information_vendi=float(np.exp(mutual)),
                conditional_entropy=float(cond), mutual_information=float(mutual), joint_entropy=float(joint),
                image_entropy=float(images), text_entropy=float(texts))


def _nystrom_fields(run: ConditionalRun, estimate: str):
    parts = {"joint": run.joint, "images": run.images, "texts": run.texts}
    if run.joint.estimates is None:
        return None, None, None
    ests = {k: _values(run.joint.estimates[k], run.images.estimates[k], run.texts.estimates[k])
            for k in run.joint.estimates}
    infos = {name: nystrom_info(p.nystrom, estimate, {k: VendiEstimate(float(np.exp(h)), float(h))
                                                      for k, h in p.estimates.items()})
             for name, p in parts.items()}
    return estimate, ests, infos


def _error(ests: dict | None, estimate: str | None) -> dict | None:
    """± of the two scores from every named Nyström estimate's (None off Nyström)."""
    if ests is None:
        return None
    return {k: float(max(abs(e[k] - ests[estimate][k]) for e in ests.values()))
            for k in ("conditional_vendi", "information_vendi")}


def _result(run: ConditionalRun, *, kernel, order, top_k, numerics, execution, seed, nys,
            groups: ConditionalGroupScores | None, pairing: dict | None = None) -> ConditionalVendiResult:
    parts: dict[str, Part] = {"joint": run.joint, "images": run.images, "texts": run.texts}
    estimate, ests, infos = _nystrom_fields(run, nys.estimate)
    return ConditionalVendiResult(
        **_values(run.joint.entropy, run.images.entropy, run.texts.entropy), order=order, top_k=top_k,
        kernel=kernel, sigma_images=run.sigma_images, sigma_texts=run.sigma_texts, method=run.path,
        methods={k: p.method for k, p in parts.items()}, n=run.n,
        num_features={k: int(p.num_features) for k, p in parts.items()},
        joint_eigenvalues=run.joint.eigenvalues, image_eigenvalues=run.images.eigenvalues,
        text_eigenvalues=run.texts.eigenvalues, clamp=numerics.clamp, dtype=numerics.precision.name,
        backend=execution.backend, seed=seed.seed, estimate=estimate, estimates=ests, nystrom=infos, groups=groups,
        error=_error(ests, estimate), pairing=pairing)


def _group_rows(inputs, idx: np.ndarray):
    if inputs.src is None:
        return np.asarray(inputs.images)[idx], np.asarray(inputs.texts)[idx]
    return inputs.src.images.take(idx), inputs.src.texts.take(idx)


def _groups(inputs, groups: Any, run: ConditionalRun, options: dict) -> ConditionalGroupScores:
    ids, inverse = check_groups(groups, inputs.n)
    sigma = None if options["kernel"] == "cosine" else (run.sigma_images, run.sigma_texts)
    rows, sizes = [], []
    for k in range(ids.shape[0]):
        idx = np.flatnonzero(inverse == k)
        x, t = _group_rows(inputs, idx)
        top_k = None if options["top_k"] is None else min(options["top_k"], idx.size)
        r = conditional_vendi(x, t, **{**options, "sigma": sigma, "top_k": top_k, "progress": False})
        rows.append([getattr(r, f) for f in _SCORES])
        sizes.append(idx.size)
    v = np.asarray(rows, np.float64).T
    cols = dict(zip(_SCORES, v))
    return ConditionalGroupScores([i.item() if hasattr(i, "item") else i for i in ids], np.asarray(sizes), **cols,
                       mean_conditional_vendi=float(v[0].mean()), mean_information_vendi=float(v[1].mean()),
                       mean_conditional_entropy=float(v[2].mean()), mean_mutual_information=float(v[3].mean()))


def conditional_vendi(
    images: Any,
    texts: Any = None,
    *,
    kernel: str = "gaussian",
    sigma: Any = None,
    order: float = 1.0,
    top_k: int | None = None,
    method: str = "auto",
    landmarks: int | None = None,
    landmark_method: str = "pivoted-cholesky",
    estimate: str = DEFAULT_TAIL_ESTIMATE,
    residual_sample: int = DEFAULT_RESIDUAL_SAMPLE,
    rff_features: int | None = None,
    key: Any = None,
    dtype: Any = None,
    clamp: float | None = None,
    block_size: int | None = None,
    backend: str = "auto",
    progress: bool | None = None,
    mesh: Any = None,
    groups: Any = None,
    images_key: str | None = None,
    texts_key: str | None = None,
    skip_incomplete: bool = False,
) -> ConditionalVendiResult:
    """Conditional Vendi exp H(X|T) and Information Vendi exp I(X; T) of paired images and texts.

    Jalali, Ospanov, Gohari & Farnia (2024), arXiv:2411.02817: ρ_X = K_X/n, ρ_T = K_T/n,
    ρ_XT = (K_X ∘ K_T)/tr(K_X ∘ K_T); H = the Rényi entropy of order α of each spectrum (natural
    log); H(X|T) = H(X, T) − H(T), I(X; T) = H(X) + H(T) − H(X, T).

    Paths (``method="auto"``): the exact n×n kernels in memory up to ``EXACT_ROWS`` rows; order 2
    exactly at any n through ‖K‖_F² streamed by tiles (``method="frobenius"``; the default above
    ``FROBENIUS_ROWS`` in-memory rows); beyond, features of the product kernel streamed in an m×m
    primal form: for the Gaussian kernel K_X ∘ K_T is the Gaussian kernel (σ = 1) of
    z = [x/σ_x, t/σ_t], so Nyström landmarks (default, ``landmarks=``) or random Fourier features
    (``rff_features=``) of z; for the cosine kernel the product is ⟨x̂ ⊗ t̂, x̂' ⊗ t̂'⟩: exact
    tensor features when d_x·d_t ≤ 4096 (and ≤ n), else ``rff_features`` (default 4096) random
    features of the product. H(X) and H(T) take :func:`clipcore.vendi`'s path for their kernel.

    Args:
      images: ``[n, d_x]`` image embeddings in any form :func:`clipcore.sce` takes: an array, a ``.npy``
        path, shards, a folder of a known layout (then ``texts`` may be omitted), or an iterator of
        ``(images_block, texts_block)`` pairs (spooled to temporary files: the rows are read three times).
      texts: ``[n, d_t]`` prompt embeddings; row i is image i's prompt.
      kernel: ``"gaussian"`` (default, as the authors) or ``"cosine"``.
      sigma: a number (both modalities), a pair ``(sigma_images, sigma_texts)`` or None: clipcore's
        median heuristic per modality (the median pairwise distance of a seeded sample of ≤ 2000 rows of
        each, as :func:`clipcore.vendi` takes it; for the texts, of the distinct prompts in the sample,
        since repeated prompts would pull the median to 0; an entry of the pair may be None). Any real
        number type is honoured (the authors' code silently ignores a NumPy scalar). Refused with the
        cosine kernel.
      order: the Rényi order α > 0, including 1 (Shannon) and ``inf``; order 2 uses ‖ρ‖_F².
      top_k: keep the k largest eigenvalues of each ρ and spread the missing mass evenly over them (the
        authors' ``truncated-vendi``), applied alike to the joint and both marginals at every order (the
        authors' code truncates only the marginals unless ``feature_dim = top_k``, and ignores it at
        order 2); 1 ≤ k ≤ n. A missing mass at the rounding level (ρ of rank < k) is 0, not spread.
      method: ``"auto"``, ``"dual"`` (n×n), ``"primal"`` or ``"frobenius"`` (order 2, exact, any n).
      landmarks, landmark_method, estimate, residual_sample: Nyström (Gaussian), as in :func:`clipcore.sce`
        except that the estimate is one of the tail models (``"residual"`` by default; the joint part is a
        product kernel, which the "projected" estimate does not cover);
        one m for each of x, t and z.
      rff_features: D random Fourier frequencies (Gaussian: of x, t and z), or D random features of the
        cosine product kernel.
      key: an int seed or a ``jax.random`` key for every random choice (default seed 0).
      dtype: ``None``/``"float64"`` or ``"float32"`` (features in float32, sums in float64).
      clamp: eigenvalue floor (default None: eigenvalues ≤ 0 dropped, the authors' p > 0; 1e-10 is the
        Vendi code's).
      block_size, backend, progress, mesh: as in :func:`clipcore.sce` (a mesh shards the primal paths).
      groups: an ``[n]`` array of prompt / class ids: the result's ``groups`` holds each group's scores
        (computed alone, with the pooled σ's) and their means, next to the pooled scores. For a folder
        with per-row captions: :func:`clipcore.sources.prompt_ids` (same file options).
      images_key, texts_key, skip_incomplete: as in :func:`clipcore.sce` (the arrays inside ``.npz``
        shards or the Parquet columns; only the complete shard pairs, reported in ``result.pairing``).

    Returns:
      :class:`ConditionalVendiResult`.

    Raises:
      ValueError: bad input (unpaired rows, NaN, σ ≤ 0, order ≤ 0, top_k > n, ...), naming the argument.
    """
    order = check_order(order)
    top_k = V.check_positive_int(top_k, "top_k")
    kernel = V.check_choice(kernel, "kernel", ("gaussian", "cosine"))
    given = check_sigma_pair(sigma)
    rff_features = V.check_positive_int(rff_features, "rff_features")
    V.check_choice(method, "method", METHODS)
    numerics = resolve_numerics(dtype=dtype, clamp=clamp)
    nys = resolve_nystrom(landmarks=landmarks, landmark_method=landmark_method, estimate=estimate,
                          residual_sample=residual_sample, estimates=TAIL_ESTIMATES)
    execution = resolve_execution(backend=backend, block_size=block_size, progress=progress,
                                  mesh=SH.resolve_mesh(mesh))
    seed = resolve_key(key)
    files = resolve_source_options(images_key=images_key, texts_key=texts_key, skip_incomplete=skip_incomplete)
    cosine = kernel == "cosine"
    with numerics.precision.context():
        first = paired_inputs(images, texts, nonzero=cosine, same_dim=False, files=files)
        with spooled(first, nonzero=cosine, progress=execution.progress) as inputs:
            if top_k is not None and top_k > inputs.n:
                raise ValueError(f"top_k: expected at most n = {inputs.n} eigenvalues, got {top_k}")
            if groups is not None:
                check_groups(groups, inputs.n)
            sigmas = resolve_sigmas(kernel, given, inputs)
            plan = plan_conditional(kernel=kernel, n=inputs.n, d_images=inputs.d_images, d_texts=inputs.d_texts,
                                    streamed=inputs.streamed, in_memory=inputs.in_memory, order=order, top_k=top_k,
                                    method=method, landmarks=nys.requested, rff_features=rff_features,
                                    mesh=execution.mesh is not None)
            run = run_conditional(plan, inputs, kernel=kernel, sigmas=sigmas, numerics=numerics, nys=nys,
                                  execution=execution, seed=seed, order=order, top_k=top_k, clamp=numerics.clamp,
                                  rff_features=rff_features)
            grouped = None
            if groups is not None:
                options = dict(kernel=kernel, order=order, top_k=top_k, key=key, dtype=dtype, clamp=clamp,
                               backend=backend, landmark_method=landmark_method, estimate=estimate,
                               residual_sample=residual_sample)
                grouped = _groups(inputs, groups, run, options)
    return _result(run, kernel=kernel, order=order, top_k=top_k, numerics=numerics, execution=execution, seed=seed,
                   nys=nys, groups=grouped, pairing=first.pairing)
