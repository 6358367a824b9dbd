"""Top-1 retrieval vs D' for neural MDS and its baselines (the body of ``clipcore mds``; issue 6).

Every method maps the same paired set to D' dimensions and is scored the same
way: image→text / text→image recall@k of the reduced embeddings
(:func:`clipcore.retrieval`) and Stress-1, satisfied-quad fraction and
Spearman ρ on one seeded sample of pairs and quads
(:func:`clipcore.models.mds_metrics`).  Neural MDS, PCA and random projection
are fitted on all pairs; scikit-learn's MDS (no out-of-sample transform) is
fitted on images and captions together, on at most ``sklearn_max`` pairs.
With ``holdout`` F a seeded fraction F of the pairs is set aside: every
method is fitted on the rest, scored there (in-sample) and on the held-out
pairs through its map (scikit-learn's MDS has no map and gets no held-out
figure).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from .._progress import check_progress
from ..retrieval import retrieval
from .mds import NeuralMDS, mds_metrics, pca_map

__all__ = ["run_mds", "METHODS", "DEFAULT_DIMS"]

#: Methods :func:`run_mds` knows ("sklearn-*" = scikit-learn's metric / non-metric SMACOF).
METHODS = ("isometric", "isotonic", "pca", "random", "sklearn-metric", "sklearn-nonmetric")
#: The D' values ``clipcore mds`` tries by default.
DEFAULT_DIMS = (8, 16, 32, 64, 128, 256)


class _Run(NamedTuple):
    """What every method of one run shares."""

    u: np.ndarray  # [n, D] fitted pairs (images)
    v: np.ndarray  # [n, D] (captions)
    hu: np.ndarray | None  # [m, D] held-out pairs (None without a hold-out)
    hv: np.ndarray | None
    z: np.ndarray  # [2n, D] float64 unit rows of [u; v]
    zh: np.ndarray | None  # [2m, D] of [hu; hv]
    sk_idx: np.ndarray | None  # scikit-learn's subsample of pairs
    seed: int
    sklearn_max_iter: int
    save_dir: str | None
    progress: bool | None
    mds_options: dict


def _l2n(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _retrieval_entry(r) -> dict:
    return {"retrieval": r.summary(), "top1_image_to_text": r.image_to_text_top1,
            "top1_text_to_image": r.text_to_image_top1}


def _score(u, v, lu, lv, *, ks, metric, seed, cross, matched, size) -> dict:
    r = retrieval(lu, lv, ks, metric=metric, progress=False)
    m = mds_metrics(u, v, lu, lv, seed=seed, cross_modal_fraction=cross, matched_fraction=matched, size=size)
    return {**_retrieval_entry(r), "stress1": m.stress1, "quad_fraction": m.quad_fraction, "spearman": m.spearman}


def _check_run(u: np.ndarray, v: np.ndarray, dims: Sequence[int], methods: Sequence[str], holdout: float) -> int:
    """The number of held-out pairs, after checking shapes, D' < D, the methods and the fraction."""
    if u.shape != v.shape:
        raise ValueError(f"texts: shape {v.shape} but images has {u.shape}; pairs need equal n and D")
    n, d = u.shape
    if not (0.0 <= holdout < 1.0):
        raise ValueError(f"holdout: expected a fraction in [0, 1), got {holdout}")
    n_test = int(round(holdout * n))
    if holdout > 0 and (n_test < 2 or n - n_test < 2):
        raise ValueError(f"holdout: {holdout} of {n} pairs leaves {n_test} held out and {n - n_test} to fit; "
                         f"both need at least 2")
    for k in dims:
        if k >= d:
            raise ValueError(f"dims: D'={k} must be smaller than the input dimension D={d} (images {u.shape})")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"method: unknown method {m!r}; choose from {', '.join(METHODS)}")
    return n_test


def run_mds(
    images: np.ndarray,
    texts: np.ndarray,
    dims: Sequence[int] = DEFAULT_DIMS,
    methods: Sequence[str] = ("isometric", "isotonic", "pca", "random"),
    *,
    ks: Sequence[int] = (1, 5, 10),
    metric: str = "euclidean",
    sklearn_max: int = 1000,
    sklearn_max_iter: int = 300,
    seed: int = 0,
    holdout: float = 0.0,
    metrics_size: int = 65536,
    save_dir: str | None = None,
    progress: bool | None = None,
    log: Callable[[str], Any] | None = None,
    **mds_options: Any,
) -> dict:
    """Fit every method at every D' and score it (the body of `clipcore mds`).

    Args:
      images, texts: ``[n, D]`` paired embeddings.
      dims: the D' values (each < D).
      methods: names from :data:`METHODS`.
      ks: recall cut-offs.
      metric: retrieval metric of the reduced embeddings (``"euclidean"``:
        nearest neighbour by distance, what MDS preserves; ``"cosine"``).
      sklearn_max: scikit-learn MDS runs on a seeded subsample of at most
        this many pairs (2 · sklearn_max points); 0 skips it.
      sklearn_max_iter: SMACOF iterations of scikit-learn's MDS.
      seed: seeds neural MDS, the random projection, the subsample, the
        held-out split and the evaluation sample.
      holdout: fraction of the pairs (0 ≤ F < 1) set aside by a seeded
        permutation; every method is fitted on the others and also scored
        on these through its map (``results[m][D']["holdout"]``).
      metrics_size: pairs and quads in the seeded sample behind Stress-1,
        the satisfied-quad fraction and Spearman ρ.
      save_dir: write each neural model as ``<method>_<D'>.safetensors`` here.
      progress: bars (``None``: after 2 s; ``True``: at once; ``False``: silent).
      log: callable taking one line of text per finished fit (or None).
      mds_options: further :class:`clipcore.models.NeuralMDS` options.

    Returns:
      A JSON-ready dict: ``full`` (the D-dimensional cosine retrieval of the
      pairs the methods are fitted on) and ``results[method][str(D')]`` with
      recall, top-1 both ways, Stress-1, satisfied-quad fraction, Spearman ρ,
      seconds (and per-epoch history for neural MDS), all in-sample.  With
      ``holdout`` > 0 also ``holdout`` (fraction, seed, pair counts, the
      full-D retrieval of the held-out pairs) and, per result, ``holdout``:
      the same scores on the held-out pairs (``None`` for scikit-learn MDS).
    """
    u, v = np.asarray(images), np.asarray(texts)
    holdout = float(holdout)
    n_test = _check_run(u, v, dims, methods, holdout)
    progress = check_progress(progress)
    say = log or (lambda line: None)
    n, d = u.shape
    score_kw = dict(ks=tuple(ks), metric=metric, seed=seed, cross=mds_options.get("cross_modal_fraction", 0.5),
                    matched=0.25 if mds_options.get("matched_fraction") is None else mds_options["matched_fraction"],
                    size=metrics_size)
    hu = hv = test_idx = None
    if n_test > 0:
        perm = np.random.default_rng(seed).permutation(n)
        test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
        hu, hv, u, v = u[test_idx], v[test_idx], u[train_idx], v[train_idx]
        n = u.shape[0]
    payload = _full_payload(u, v, hu, hv, test_idx, dims, methods, metric, ks, holdout, seed, progress, say)
    sk_idx = None
    if any(m.startswith("sklearn") for m in methods) and sklearn_max > 0:
        sk_idx = np.sort(np.random.default_rng(seed).choice(n, size=min(n, sklearn_max), replace=False))
        sub = retrieval(u[sk_idx], v[sk_idx], ks, metric="cosine", progress=False)
        payload["sklearn_subsample"] = {"pairs": int(sk_idx.size), "seed": seed, "full": _retrieval_entry(sub)}
    run = _Run(u, v, hu, hv, _l2n(np.concatenate([u, v]).astype(np.float64)),
               None if hu is None else _l2n(np.concatenate([hu, hv]).astype(np.float64)),
               sk_idx, seed, sklearn_max_iter, save_dir, progress, dict(mds_options))
    for method in methods:
        res: dict = {}
        payload["results"][method] = res
        if method.startswith("sklearn") and sk_idx is None:
            res["skipped"] = "sklearn_max is 0"
            continue
        for k in dims:
            t = time.perf_counter()
            entry, (lu, lv), held, (su, sv) = _fit(method, k, run)
            entry["fit_seconds"] = time.perf_counter() - t
            entry.update(_score(su, sv, lu, lv, **score_kw))
            if hu is not None:
                entry["holdout"] = None if held is None else _score(hu, hv, *held, **score_kw)
            res[str(k)] = entry
            say(_log_line(method, k, entry))
    return payload


def _full_payload(u, v, hu, hv, test_idx, dims, methods, metric, ks, holdout, seed, progress, say) -> dict:
    """The run's header: sizes, options, and the full-D cosine retrieval (fitted and held-out pairs)."""
    n, d = u.shape
    t0 = time.perf_counter()
    full = retrieval(u, v, ks, metric="cosine", progress=progress)
    payload: dict = {"n": n, "d": d, "dims": list(dims), "methods": list(methods), "metric": metric,
                     "full": {**_retrieval_entry(full), "seconds": time.perf_counter() - t0}, "results": {}}
    say(f"full D={d}: top-1 image->text {full.image_to_text_top1:.4f}, text->image {full.text_to_image_top1:.4f}"
        + (f" ({n} fitted pairs)" if hu is not None else ""))
    if hu is not None:
        hfull = retrieval(hu, hv, ks, metric="cosine", progress=False)
        payload["holdout"] = {"fraction": holdout, "seed": seed, "pairs": int(hu.shape[0]), "fit_pairs": n,
                              "indices": test_idx.tolist(), "full": _retrieval_entry(hfull)}
        say(f"full D={d} on {hu.shape[0]} held-out pairs: top-1 image->text {hfull.image_to_text_top1:.4f}, "
            f"text->image {hfull.text_to_image_top1:.4f}")
    return payload


def _fit(method: str, k: int, run: _Run):
    """Fit ``method`` at D' = k: ``(entry, (lu, lv) in-sample, (hlu, hlv) held out or None, (su, sv) the
    pairs the in-sample figures are scored against)``."""
    n, d = run.u.shape
    zu, zv = run.z[:n], run.z[n:]
    zhu, zhv = (None, None) if run.zh is None else (run.zh[:run.hu.shape[0]], run.zh[run.hu.shape[0]:])
    if method in ("isometric", "isotonic"):
        return _fit_neural(method, k, run)
    if method in ("pca", "random"):
        if method == "pca":
            w, b = pca_map(run.z, k)
        else:
            w, b = np.random.default_rng(run.seed).standard_normal((d, k)) / np.sqrt(k), 0.0
        held = None if zhu is None else (zhu @ w + b, zhv @ w + b)
        return {}, (zu @ w + b, zv @ w + b), held, (run.u, run.v)
    return _fit_sklearn(method, k, run)


def _fit_neural(method: str, k: int, run: _Run):
    model = NeuralMDS(k, method=method, seed=run.seed, **run.mds_options).fit(run.u, run.v, progress=run.progress)
    low = (np.asarray(model.transform(run.u)), np.asarray(model.transform(run.v)))
    held = None if run.hu is None else (np.asarray(model.transform(run.hu)), np.asarray(model.transform(run.hv)))
    entry: dict = {"best_epoch": model.best_epoch, "initial_metrics": model.initial_metrics._asdict(),
                   "initial_validation_top1": model.initial_validation_top1,
                   "validation_pairs": model.validation_pairs, "matched_fraction": model.config.matched_fraction,
                   "history": [h._asdict() for h in model.history],
                   "seconds_per_epoch": float(np.median([h.seconds for h in model.history]))}
    if run.save_dir:
        os.makedirs(run.save_dir, exist_ok=True)
        path = os.path.join(run.save_dir, f"{method}_{k}.safetensors")
        model.save(path)
        entry["model"] = os.path.abspath(path)
    return entry, low, held, (run.u, run.v)


def _fit_sklearn(method: str, k: int, run: _Run):
    from sklearn.manifold import MDS

    n = run.u.shape[0]
    idx = run.sk_idx
    zs = np.concatenate([run.z[:n][idx], run.z[n:][idx]])
    mds = MDS(n_components=k, metric_mds=method == "sklearn-metric", init="classical_mds",
              max_iter=run.sklearn_max_iter, random_state=run.seed, metric="euclidean")
    y = mds.fit_transform(zs)
    m = idx.size
    entry = {"pairs": int(m), "sklearn_stress": float(mds.stress_),
             "sklearn_iterations": int(getattr(mds, "n_iter_", -1))}
    return entry, (y[:m], y[m:]), None, (run.u[idx], run.v[idx])


def _log_line(method: str, k: int, entry: dict) -> str:
    ho = entry.get("holdout")
    return (f"{method:>17} D'={k:<4} top-1 i->t {entry['top1_image_to_text']:.4f}  t->i "
            f"{entry['top1_text_to_image']:.4f}  stress1 {entry['stress1']:.3f}  quads "
            f"{entry['quad_fraction']:.4f}  rho {entry['spearman']:.3f}  ({entry['fit_seconds']:.1f} s)"
            + (f"  held-out top-1 i->t {ho['top1_image_to_text']:.4f} t->i {ho['top1_text_to_image']:.4f}"
               if ho else ""))
