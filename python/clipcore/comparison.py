"""Compare text-to-image models fairly: one shared kernel for every set, bootstrap intervals over prompts,
and a ranking that says when two models cannot be told apart.

A comparison of SCE (Ospanov, Farnia & Jalali 2024) across models is only meaningful at ONE kernel: a
Gaussian bandwidth σ taken per set (the single-set default, each set's own median distance) rescales
each model's kernel differently, so :func:`compare` takes σ once, as the median distance over the pooled
image sets (or as given), and draws one ω (random Fourier features) or one landmark set (Nyström) from the
pooled rows for every model.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, NamedTuple

import numpy as np

from . import _validate as V
from ._options import KERNELS, resolve_key, x64
from ._pipeline.bootstrap import draw_prompt_weights, prompt_ids, replicate_scores
from ._pipeline.inputs import SourceOptions, paired_arrays, resolve_source_options
from ._pipeline.plan import DEFAULT_LANDMARKS, EXACT_ROWS
from .kernels import draw_omega, median_sigma, rff_features as rff_map
from .landmarks import select_landmarks
from .nystrom import nystrom_features, nystrom_map
from .conditional import ConditionalVendiResult, conditional_vendi
from .results import SCEResult
from .scores import sce
from .tables import CLIP_SCORE_VARIANTS, clip_score

__all__ = ["compare", "CompareResult", "ModelComparison", "RankEntry", "SCORES", "CONDITIONAL_SCORES",
           "BOOTSTRAP_LANDMARKS"]

#: The scores every model gets, in table order (with bootstrap intervals).
SCORES = ("sce", "text_score", "image_score", "clip_score")
#: Conditional / Information Vendi (Jalali et al. 2024) at the shared kernel, after them (no intervals).
CONDITIONAL_SCORES = ("conditional_vendi", "information_vendi")
#: Nyström features the bootstrap replicates of the Gaussian kernel use (when no ω is shared).
BOOTSTRAP_LANDMARKS = 256


class ModelComparison(NamedTuple):
    """One model's scores at the shared kernel.

    Attributes:
      name: the set's name; n: its rows; prompts: its distinct prompts.
      sce, text_score, image_score: SCE, the text score and Vendi (order 1) of its images.
      clip_score: CLIPScore (the chosen variant).
      intervals: score name → (low, high) bootstrap interval over prompts at the comparison's level.
      result: the full :class:`clipcore.SCEResult`.
      pairing: how the set's shards were paired by number (:meth:`clipcore.sources.PairingReport.to_dict`:
        complete pairs read, shards skipped with ``skip_incomplete``), or None for arrays and plain files.
      conditional_vendi, information_vendi: Conditional Vendi exp H(X|T) and Information Vendi exp I(X; T)
        (order 1) at the shared kernel; None with ``conditional=False``.
      conditional: the full :class:`clipcore.ConditionalVendiResult`, or None.
    """

    name: str
    n: int
    prompts: int
    sce: float
    text_score: float
    image_score: float
    clip_score: float
    intervals: dict
    result: SCEResult
    pairing: dict | None = None
    conditional_vendi: float | None = None
    information_vendi: float | None = None
    conditional: ConditionalVendiResult | None = None

    def __repr__(self) -> str:
        lo, hi = self.intervals.get("sce", (np.nan, np.nan))
        cond = ("" if self.conditional_vendi is None else
                f", conditional_vendi={self.conditional_vendi:.5g}, information_vendi={self.information_vendi:.5g}")
        return (f"ModelComparison({self.name!r}, sce={self.sce:.5g} [{lo:.5g}, {hi:.5g}], "
                f"text_score={self.text_score:.5g}, image_score={self.image_score:.5g}, "
                f"clip_score={self.clip_score:.4g}{cond}, n={self.n})")


class RankEntry(NamedTuple):
    """A place in the SCE ranking: the model, its SCE, and whether it is separable from the next one
    (the bootstrap interval of the difference excludes 0), with that interval."""

    name: str
    sce: float
    separable_from_next: bool | None
    difference_interval: tuple[float, float] | None


class CompareResult:
    """Scores of several models at one shared kernel, indexable by name (``r["model A"].sce``)."""

    def __init__(self, models: dict, ranking: list, settings: dict):
        self.models, self.ranking, self.settings = models, ranking, settings

    def __getitem__(self, name: str) -> ModelComparison:
        return self.models[name]

    def __iter__(self):
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def keys(self):
        return self.models.keys()

    @property
    def sigma(self) -> float | None:
        return self.settings["sigma"]

    def __repr__(self) -> str:
        return (f"CompareResult({len(self)} models, kernel={self.settings['kernel']!r}, sigma={self.sigma}, "
                f"ranking: {self._ranking_text()})")

    def _conditional_shown(self) -> tuple[str, ...]:
        return CONDITIONAL_SCORES if any(m.conditional_vendi is not None for m in self.models.values()) else ()

    def table(self) -> str:
        """The scores with their intervals (Conditional / Information Vendi: values), one row per model in
        ranking order."""
        level = int(round(100 * self.settings["level"]))
        cond = self._conditional_shown()
        head = f"{'model':<20} " + " ".join(f"{s:>26}" for s in SCORES) + "".join(f" {s:>18}" for s in cond)
        rows = [head, f"{'':<20} " + " ".join(f"{f'value [{level}% interval]':>26}" for _ in SCORES)
                + "".join(f" {'value':>18}" for _ in cond)]
        for e in self.ranking:
            m = self.models[e.name]
            cells = []
            for s in SCORES:
                lo, hi = m.intervals.get(s, (np.nan, np.nan))
                cells.append(f"{getattr(m, s):>9.4g} [{lo:.4g}, {hi:.4g}]".rjust(26))
            cells += [f"{getattr(m, s):>18.5g}" if getattr(m, s) is not None else f"{'-':>18}" for s in cond]
            rows.append(f"{e.name:<20} " + " ".join(cells))
        rows.append("ranking by SCE: " + self._ranking_text())
        return "\n".join(rows)

    def _ranking_text(self) -> str:
        """``A > B ≈ C``: ``>`` where the next model is separable, ``≈`` where it is not, ``,`` where no
        bootstrap was run (order by SCE only)."""
        parts = []
        for i, e in enumerate(self.ranking):
            parts.append(e.name)
            if i + 1 < len(self.ranking):
                parts.append({True: ">", False: "≈", None: ","}[e.separable_from_next])
        return " ".join(parts).replace(" ,", ",")

    def summary(self) -> dict:
        """JSON-ready: settings, every model's scores and intervals, the ranking."""
        models = {}
        for name, m in self.models.items():
            models[name] = {"n": m.n, "prompts": m.prompts, **{s: getattr(m, s) for s in SCORES + CONDITIONAL_SCORES},
                            "intervals": {k: list(v) for k, v in m.intervals.items()},
                            "provenance": m.result.summary(),
                            "conditional_provenance": None if m.conditional is None else m.conditional.summary()}
            if m.pairing is not None:
                models[name]["pairing"] = m.pairing
        ranking = [{"name": e.name, "sce": e.sce, "separable_from_next": e.separable_from_next,
                    "difference_interval": None if e.difference_interval is None else list(e.difference_interval)}
                   for e in self.ranking]
        return {"settings": self.settings, "models": models, "ranking": ranking}

    def to_json(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            json.dump(self.summary(), f, indent=2, default=float)

    def plot(self, path: str | os.PathLike) -> None:
        """A PNG bar chart of every score with its interval, one group of bars per score."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = [e.name for e in self.ranking]
        shown = SCORES + self._conditional_shown()
        fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.4))
        for ax, s in zip(axes, shown):
            vals = np.array([np.nan if getattr(self.models[k], s) is None else getattr(self.models[k], s)
                             for k in names], np.float64)
            iv = np.array([self.models[k].intervals.get(s, (v, v)) for k, v in zip(names, vals)])
            err = np.abs(np.stack([vals - iv[:, 0], iv[:, 1] - vals]))
            ax.bar(range(len(names)), vals, yerr=err, capsize=4, color="tab:blue", alpha=0.8)
            ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
            ax.set_title(s)
        fig.suptitle(f"kernel {self.settings['kernel']}, σ = {self.sigma}; "
                     f"{int(round(100 * self.settings['level']))}% bootstrap intervals over prompts")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


def _load(name: str, value: Any, files: SourceOptions) -> tuple[np.ndarray, np.ndarray, dict | None]:
    """A set's images and texts as host arrays (a pair, a mapping with "images"/"texts", or any path form)
    and its shards' pairing."""
    if isinstance(value, Mapping):
        images, texts = value.get("images"), value.get("texts")
    elif isinstance(value, (tuple, list)) and len(value) == 2 and not all(isinstance(v, (str, os.PathLike))
                                                                         for v in value):
        images, texts = value
    else:
        images, texts = value, None
    pairing = None
    if isinstance(images, (str, os.PathLike)) or isinstance(texts, (str, os.PathLike)):
        try:
            images, texts, pairing = paired_arrays(images, texts, nonzero=True, files=files)
        except ValueError as exc:
            raise ValueError(f"sets[{name!r}]: {exc}") from None
    if texts is None:
        raise ValueError(f"sets: {name!r} has no texts (give a folder with both columns, or a pair)")
    x = np.asarray(V.host_rows(images, f"sets[{name!r}].images", nonzero=True), np.float64)
    t = np.asarray(V.host_rows(texts, f"sets[{name!r}].texts", nonzero=True), np.float64)
    V.check_pair(x, t, same_dim=True, why="the sets are compared at one kernel over one embedding space")
    return x, t, pairing


def _check_sets(sets: Any, files: SourceOptions) -> tuple[dict, dict]:
    """name → (images, texts) host arrays, and name → the pairing of its shards (None for arrays)."""
    if not isinstance(sets, Mapping) or len(sets) < 2:
        raise ValueError("sets: expected a mapping of at least two names to sets (images, texts)")
    read = {str(k): _load(str(k), v, files) for k, v in sets.items()}
    loaded = {k: (x, t) for k, (x, t, _) in read.items()}
    dims = {k: x.shape[1] for k, (x, _) in loaded.items()}
    if len(set(dims.values())) > 1:
        raise ValueError(f"sets: the embedding dimensions differ ({dims}); compare sets from one CLIP model")
    return loaded, {k: p for k, (_, _, p) in read.items()}


def _shared_kernel(loaded: dict, kernel: str, sigma, rff_features, landmarks, key):
    """σ over the pooled images, and the one ω or landmark set every model uses."""
    seed = resolve_key(key)
    pooled_x = np.concatenate([x for x, _ in loaded.values()])
    if kernel == "cosine":
        return None, None, None, seed
    sigma = V.check_sigma(sigma) if sigma is not None else median_sigma(pooled_x)
    if rff_features is not None:
        with x64():
            omega = np.asarray(draw_omega(seed.key, pooled_x.shape[1], int(rff_features), sigma))
        return sigma, omega, None, seed
    pool = np.concatenate([np.concatenate([t, x]) for x, t in loaded.values()])
    n_max = max(x.shape[0] for x, _ in loaded.values())
    m = landmarks if landmarks is not None else (None if n_max <= EXACT_ROWS else DEFAULT_LANDMARKS)
    points = None
    if m is not None:
        points = np.asarray(select_landmarks(pool, int(m), sigma=sigma, method="pivoted-cholesky",
                                             key=seed.numpy).points)
    return sigma, None, points, seed


def _features(x, t, kernel, sigma, omega, boot_map):
    """Fixed features [Φ(T) | Φ(X)] of the bootstrap replicates."""
    if kernel == "cosine":
        f = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    elif omega is not None:
        f = lambda a: np.asarray(rff_map(a, omega))  # noqa: E731
    else:
        f = lambda a: np.asarray(nystrom_features(a, boot_map, dtype=np.float64))  # noqa: E731
    with x64():
        return np.concatenate([f(t), f(x)], axis=1), f(t).shape[1]


def _conditional(x, t, kernel, sigma, rff_features, points, key, progress) -> ConditionalVendiResult:
    """Conditional / Information Vendi of one set at the shared kernel (σ for both modalities; one ω draw
    from ``key``; Nyström with as many landmarks per set as SCE shares)."""
    kw: dict = dict(kernel=kernel, progress=progress, key=key)
    if kernel == "gaussian":
        kw.update(sigma=sigma, rff_features=rff_features,
                  landmarks=None if points is None or rff_features is not None else int(points.shape[0]))
    return conditional_vendi(x, t, **kw)


def _interval(point: float, reps: np.ndarray, level: float) -> tuple[float, float]:
    """The basic bootstrap interval: the point estimate plus the replicates' central spread."""
    a = (1.0 - level) / 2
    lo, hi = np.quantile(reps - reps.mean(), [a, 1 - a])
    return float(point + lo), float(point + hi)


def _ranking(models: dict, reps: dict, level: float) -> list:
    order = sorted(models, key=lambda k: -models[k].sce)
    out = []
    for i, name in enumerate(order):
        if i + 1 == len(order):
            out.append(RankEntry(name, models[name].sce, None, None))
            continue
        nxt = order[i + 1]
        iv = _interval(models[name].sce - models[nxt].sce, reps[name].sce - reps[nxt].sce, level)
        out.append(RankEntry(name, models[name].sce, bool(iv[0] > 0 or iv[1] < 0), iv))
    return out


def compare(
    sets: Mapping[str, Any],
    *,
    kernel: str = "gaussian",
    sigma: float | None = None,
    rff_features: int | None = None,
    landmarks: int | None = None,
    key: Any = 0,
    bootstrap: int = 200,
    level: float = 0.9,
    clip_variant: str = "hessel",
    progress: bool | None = None,
    images_key: str | None = None,
    texts_key: str | None = None,
    skip_incomplete: bool = False,
    conditional: bool = True,
) -> CompareResult:
    """Score several models' image sets for the same prompts at ONE kernel and rank them.

    Every model gets SCE, the text score and Vendi (Ospanov, Farnia & Jalali 2024; :func:`clipcore.sce`)
    and CLIPScore (:func:`clipcore.clip_score`), with bootstrap intervals over prompts (the prompts are
    resampled with replacement, each image following its prompt; models with the same prompts share the
    draws, so their differences are paired), and a ranking by SCE that says where two neighbours are not
    separable (the interval of their difference contains 0).

    Args:
      sets: name → the model's embeddings: ``(images [n, d], texts [n, d])``, a mapping with ``"images"``
        and ``"texts"``, or any path form :func:`clipcore.sce` reads (a shard directory with both columns).
        Rows of texts that are equal are one prompt.
      kernel: ``"gaussian"`` (the paper's) or ``"cosine"``.
      sigma: the one Gaussian bandwidth; default the median pairwise distance of a seeded sample of the
        pooled images of every set (stated in ``result.sigma``). Unit-norm CLIP embeddings have
        distances up to 2 (median about 1); raw CLIP features (norm ≈ 10) about 10× more.
      rff_features: D random Fourier frequencies shared by every model (one ω); default the exact
        kernel (n×n) up to ``EXACT_ROWS`` (7,168) rows per set, else Nyström with ``landmarks`` (default
        2,000) drawn once from the pooled rows.
      landmarks: Nyström landmarks shared by every model.
      key: seed or ``jax.random`` key of ω, the landmarks and the bootstrap.
      bootstrap: resamples of the prompts (0: no intervals).
      level: the intervals' coverage (0.9: from the 5th to the 95th percentile).
      clip_variant: ``"hessel"`` or ``"torchmetrics"`` (:func:`clipcore.clip_score`).
      progress: bars (None: after 2 s; True; False).
      images_key, texts_key, skip_incomplete: for the sets given as paths, as in :func:`clipcore.sce` (the
        arrays inside ``.npz`` shards or the Parquet columns; only the complete shard pairs, reported in
        each model's ``pairing``).
      conditional: also Conditional Vendi exp H(X|T) and Information Vendi exp I(X; T) of every set
        (:func:`clipcore.conditional_vendi`, order 1; Jalali et al. 2024) at the shared kernel: the one σ
        for images and texts (as SCE's), the same ``rff_features`` draw from ``key``; exact n×n kernels up
        to ``EXACT_ROWS`` (7,168) rows per set, beyond ``landmarks`` (default 2,000) Nyström landmarks per
        set. Point values, without intervals. ``False`` skips them (they cost about as much as SCE's exact
        kernel).

    Returns:
      :class:`CompareResult` (``r["name"].sce``, ``r.ranking``, ``r.table()``, ``r.summary()``, ``r.plot(path)``).
    """
    V.check_choice(kernel, "kernel", KERNELS)
    V.check_choice(clip_variant, "clip_variant", tuple(CLIP_SCORE_VARIANTS))
    conditional = V.check_flag(conditional, "conditional")
    draws = V.check_positive_int(bootstrap, "bootstrap") if bootstrap != 0 else 0
    level = V.check_number(level, "level", positive=True)
    if not level < 1:
        raise ValueError(f"level: expected a coverage in (0, 1), got {level}")
    files = resolve_source_options(images_key=images_key, texts_key=texts_key, skip_incomplete=skip_incomplete)
    loaded, pairings = _check_sets(sets, files)
    sigma, omega, points, seed = _shared_kernel(loaded, kernel, sigma, rff_features, landmarks, key)
    kw = dict(kernel=kernel, progress=progress)
    if kernel == "gaussian":
        kw.update(sigma=sigma, omega=omega, landmarks=points)
    boot_map = None
    if kernel == "gaussian" and omega is None and draws:
        pool = np.concatenate([np.concatenate([t, x]) for x, t in loaded.values()])
        m = min(BOOTSTRAP_LANDMARKS, pool.shape[0])
        boot_map = nystrom_map(select_landmarks(pool, m, sigma=sigma, method="pivoted-cholesky",
                                                key=seed.numpy), sigma)
    keys_ids = {name: prompt_ids(t) for name, (_, t) in loaded.items()}
    weights = dict(zip(loaded, draw_prompt_weights([k for k, _ in keys_ids.values()], draws, seed.numpy + 1)))
    models, reps = {}, {}
    for name, (x, t) in loaded.items():
        res = sce(x, t, **kw)
        clip = clip_score(x, t, variant=clip_variant)
        cond = _conditional(x, t, kernel, sigma, rff_features, points, key, progress) if conditional else None
        point = dict(sce=res.sce, text_score=res.text_score, image_score=res.image_score, clip_score=clip.score)
        intervals = {}
        if draws:
            z, dt = _features(x, t, kernel, sigma, omega, boot_map)
            reps[name] = replicate_scores(z, dt, clip.per_sample, keys_ids[name][1], weights[name],
                                          clamp=res.clamp, desc=f"compare: {name}", progress=progress)
            intervals = {s: _interval(point[s], getattr(reps[name], s), level) for s in SCORES}
        models[name] = ModelComparison(name, x.shape[0], len(keys_ids[name][0]), **point, intervals=intervals,
                                       result=res, pairing=pairings[name],
                                       conditional_vendi=None if cond is None else cond.conditional_vendi,
                                       information_vendi=None if cond is None else cond.information_vendi,
                                       conditional=cond)
    ranking = (_ranking(models, reps, level) if draws else
               [RankEntry(k, models[k].sce, None, None) for k in sorted(models, key=lambda k: -models[k].sce)])
    settings = dict(kernel=kernel, sigma=sigma, rff_features=rff_features,
                    landmarks=None if points is None else int(points.shape[0]), bootstrap=draws, level=level,
                    clip_variant=clip_variant, seed=seed.seed, conditional=conditional,
                    bootstrap_features=("cosine" if kernel == "cosine" else "rff" if omega is not None
                                        else f"nystrom-{BOOTSTRAP_LANDMARKS}"))
    return CompareResult(models, ranking, settings)
