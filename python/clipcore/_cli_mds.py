"""`clipcore mds`: top-1 retrieval vs D' for neural MDS and its baselines (issue 6).

Every method maps the same paired set to D' dimensions and is scored the same
way: image→text / text→image recall@k of the reduced embeddings
(:func:`clipcore.retrieval`) and Stress-1, satisfied-quad fraction and
Spearman ρ on one seeded sample of pairs and quads
(:func:`clipcore.models.mds_metrics`).  Neural MDS, PCA and random projection
are fitted on all pairs; scikit-learn's MDS (no out-of-sample transform) is
fitted on images and captions together, on at most ``--sklearn-max`` pairs.
With ``--holdout F`` a seeded fraction F of the pairs is set aside: every
method is fitted on the rest, scored there (in-sample) and on the held-out
pairs through its map (scikit-learn's MDS has no map and gets no held-out
figure).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Sequence

import numpy as np

__all__ = ["add_commands", "run_mds", "METHODS"]

#: Methods `clipcore mds --method` accepts ("sklearn" = both scikit-learn variants).
METHODS = ("isometric", "isotonic", "pca", "random", "sklearn-metric", "sklearn-nonmetric")
DEFAULT_DIMS = (8, 16, 32, 64, 128, 256)


def _parse_ints(text: str, name: str) -> list[int]:
    out = []
    for tok in str(text).split(","):
        tok = tok.strip()
        if not tok:
            continue
        try:
            v = int(tok)
        except ValueError:
            raise ValueError(f"{name}: expected comma-separated positive integers, got {text!r}") from None
        if v <= 0:
            raise ValueError(f"{name}: expected positive integers, got {v}")
        out.append(v)
    if not out:
        raise ValueError(f"{name}: expected at least one value, got {text!r}")
    return out


def _parse_methods(text: str) -> list[str]:
    out: list[str] = []
    for tok in str(text).split(","):
        tok = tok.strip().lower()
        if not tok:
            continue
        names = {"all": list(METHODS), "sklearn": ["sklearn-metric", "sklearn-nonmetric"]}.get(tok, [tok])
        for m in names:
            if m not in METHODS:
                raise ValueError(f"method: unknown method {m!r}; choose from {', '.join(METHODS)}, sklearn or all")
            if m not in out:
                out.append(m)
    if not out:
        raise ValueError(f"method: expected at least one method, got {text!r}")
    return out


def _l2n(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _score(u, v, lu, lv, *, ks, metric, seed, cross, matched, size) -> dict:
    from .models import mds_metrics
    from .retrieval import retrieval

    r = retrieval(lu, lv, ks, metric=metric, progress=False)
    m = mds_metrics(u, v, lu, lv, seed=seed, cross_modal_fraction=cross, matched_fraction=matched, size=size)
    return {"retrieval": r.summary(), "top1_image_to_text": r.image_to_text_top1,
            "top1_text_to_image": r.text_to_image_top1, "stress1": m.stress1,
            "quad_fraction": m.quad_fraction, "spearman": m.spearman}


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
    log=None,
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
      seed: seeds neural MDS, the random projection, the subsample, the
        held-out split and the evaluation sample.
      holdout: fraction of the pairs (0 ≤ F < 1) set aside by a seeded
        permutation; every method is fitted on the others and also scored
        on these through its map (``results[m][D']["holdout"]``).
      metrics_size: pairs and quads in the seeded sample behind Stress-1,
        the satisfied-quad fraction and Spearman ρ.
      save_dir: write each neural model as ``<method>_<D'>.safetensors`` here.
      progress: tqdm bars (``False``: silent).
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
    from .models import NeuralMDS
    from .models.mds import pca_map
    from .retrieval import retrieval

    u = np.asarray(images)
    v = np.asarray(texts)
    if u.shape != v.shape:
        raise ValueError(f"texts: shape {v.shape} but images has {u.shape}; pairs need equal n and D")
    n, d = u.shape
    holdout = float(holdout)
    if not (0.0 <= holdout < 1.0):
        raise ValueError(f"holdout: expected a fraction in [0, 1), got {holdout}")
    n_test = int(round(holdout * n))
    if holdout > 0 and (n_test < 2 or n - n_test < 2):
        raise ValueError(f"holdout: {holdout} of {n} pairs leaves {n_test} held out and {n - n_test} to fit; "
                         f"both need at least 2")
    for k in dims:
        if k >= d:
            raise ValueError(f"dims: D'={k} must be smaller than the input dimension D={d} (images {u.shape})")
    cross = mds_options.get("cross_modal_fraction", 0.5)
    matched = mds_options.get("matched_fraction", 0.25)
    score_kw = dict(ks=tuple(ks), metric=metric, seed=seed, cross=cross, matched=matched, size=metrics_size)
    say = log or (lambda line: None)

    hu = hv = None
    if n_test > 0:
        perm = np.random.default_rng(seed).permutation(n)
        test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
        hu, hv = u[test_idx], v[test_idx]
        u, v = u[train_idx], v[train_idx]
        n = u.shape[0]

    t0 = time.perf_counter()
    full = retrieval(u, v, ks, metric="cosine", progress=progress)
    payload: dict = {"n": n, "d": d, "dims": list(dims), "methods": list(methods), "metric": metric,
                     "full": {"retrieval": full.summary(), "top1_image_to_text": full.image_to_text_top1,
                              "top1_text_to_image": full.text_to_image_top1,
                              "seconds": time.perf_counter() - t0},
                     "results": {}}
    say(f"full D={d}: top-1 image->text {full.image_to_text_top1:.4f}, text->image {full.text_to_image_top1:.4f}"
        + (f" ({n} fitted pairs)" if hu is not None else ""))
    if hu is not None:
        hfull = retrieval(hu, hv, ks, metric="cosine", progress=False)
        payload["holdout"] = {"fraction": holdout, "seed": seed, "pairs": int(hu.shape[0]), "fit_pairs": n,
                              "indices": test_idx.tolist(),
                              "full": {"retrieval": hfull.summary(), "top1_image_to_text": hfull.image_to_text_top1,
                                       "top1_text_to_image": hfull.text_to_image_top1}}
        say(f"full D={d} on {hu.shape[0]} held-out pairs: top-1 image->text {hfull.image_to_text_top1:.4f}, "
            f"text->image {hfull.text_to_image_top1:.4f}")
        zh = _l2n(np.concatenate([hu, hv]).astype(np.float64))
        zhu, zhv = zh[:hu.shape[0]], zh[hu.shape[0]:]
    z = _l2n(np.concatenate([u, v]).astype(np.float64))
    zu, zv = z[:n], z[n:]

    sk_idx = None
    if any(m.startswith("sklearn") for m in methods) and sklearn_max > 0:
        rng = np.random.default_rng(seed)
        sk_idx = np.sort(rng.choice(n, size=min(n, sklearn_max), replace=False))
        sub = retrieval(u[sk_idx], v[sk_idx], ks, metric="cosine", progress=False)
        payload["sklearn_subsample"] = {"pairs": int(sk_idx.size), "seed": seed,
                                        "full": {"retrieval": sub.summary(),
                                                 "top1_image_to_text": sub.image_to_text_top1,
                                                 "top1_text_to_image": sub.text_to_image_top1}}

    for method in methods:
        res: dict = {}
        payload["results"][method] = res
        if method.startswith("sklearn") and sk_idx is None:
            res["skipped"] = "sklearn_max is 0"
            continue
        for k in dims:
            t = time.perf_counter()
            entry: dict = {}
            if method in ("isometric", "isotonic"):
                model = NeuralMDS(k, method=method, seed=seed, **mds_options).fit(u, v, progress=progress)
                lu, lv = np.asarray(model.transform(u)), np.asarray(model.transform(v))
                if hu is not None:
                    hlu, hlv = np.asarray(model.transform(hu)), np.asarray(model.transform(hv))
                entry["best_epoch"] = model.best_epoch
                entry["initial_metrics"] = model.initial_metrics._asdict()
                entry["history"] = [h._asdict() for h in model.history]
                entry["seconds_per_epoch"] = float(np.median([h.seconds for h in model.history]))
                if save_dir:
                    os.makedirs(save_dir, exist_ok=True)
                    path = os.path.join(save_dir, f"{method}_{k}.safetensors")
                    model.save(path)
                    entry["model"] = os.path.abspath(path)
                su, sv = u, v
            elif method == "pca":
                w, b = pca_map(z, k)
                lu, lv = zu @ w + b, zv @ w + b
                if hu is not None:
                    hlu, hlv = zhu @ w + b, zhv @ w + b
                su, sv = u, v
            elif method == "random":
                r = np.random.default_rng(seed).standard_normal((d, k)) / np.sqrt(k)
                lu, lv = zu @ r, zv @ r
                if hu is not None:
                    hlu, hlv = zhu @ r, zhv @ r
                su, sv = u, v
            else:
                from sklearn.manifold import MDS

                zs = np.concatenate([zu[sk_idx], zv[sk_idx]])
                mds = MDS(n_components=k, metric_mds=method == "sklearn-metric", init="classical_mds",
                          max_iter=sklearn_max_iter, random_state=seed, metric="euclidean")
                y = mds.fit_transform(zs)
                m = sk_idx.size
                lu, lv = y[:m], y[m:]
                su, sv = u[sk_idx], v[sk_idx]
                entry["pairs"] = int(m)
                entry["sklearn_stress"] = float(mds.stress_)
                entry["sklearn_iterations"] = int(getattr(mds, "n_iter_", -1))
                hlu = hlv = None
            entry["fit_seconds"] = time.perf_counter() - t
            entry.update(_score(su, sv, lu, lv, **score_kw))
            if hu is not None:
                entry["holdout"] = None if hlu is None else _score(hu, hv, hlu, hlv, **score_kw)
            res[str(k)] = entry
            ho = entry.get("holdout")
            say(f"{method:>17} D'={k:<4} top-1 i->t {entry['top1_image_to_text']:.4f}  t->i "
                f"{entry['top1_text_to_image']:.4f}  stress1 {entry['stress1']:.3f}  quads "
                f"{entry['quad_fraction']:.4f}  rho {entry['spearman']:.3f}  ({entry['fit_seconds']:.1f} s)"
                + (f"  held-out top-1 i->t {ho['top1_image_to_text']:.4f} t->i {ho['top1_text_to_image']:.4f}"
                   if ho else ""))
    return payload


def _plot(payload: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, res in payload["results"].items():
        ks = sorted(int(k) for k in res if k.isdigit())
        if not ks:
            continue
        ys = [res[str(k)]["top1_image_to_text"] for k in ks]
        style = "--" if method.startswith("sklearn") else "-"
        ax.plot(ks, ys, style, marker="o", label=method)
    full = payload["full"]["top1_image_to_text"]
    ax.axhline(full, color="k", lw=1, label=f"full D={payload['d']} ({full:.3f})")
    if "sklearn_subsample" in payload:
        s = payload["sklearn_subsample"]
        ax.axhline(s["full"]["top1_image_to_text"], color="grey", lw=1, ls=":",
                   label=f"full D, sklearn subsample ({s['pairs']} pairs)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("D' (output dimension)")
    ax.set_ylabel("image→text top-1")
    ax.set_title(f"retrieval vs D' (n={payload['n']} pairs, {payload['metric']} in D')")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cmd_mds(args: argparse.Namespace) -> int:
    from .cli import _environment, _inputs_provenance, _table, _write_json
    from .io import load_embeddings

    dims = _parse_ints(args.dims, "dims")
    methods = _parse_methods(args.method)
    ks = _parse_ints(args.k, "k")
    hidden = tuple(_parse_ints(args.hidden, "hidden"))
    images = np.asarray(load_embeddings(args.images, key=args.images_key, name="images"))
    texts = np.asarray(load_embeddings(args.texts, key=args.texts_key, name="texts"))
    from .models.mds import _check_paired
    from ._validate import as_embeddings

    _check_paired(as_embeddings(images, "images", nonzero_rows=True), as_embeddings(texts, "texts", nonzero_rows=True))
    opts = dict(architecture=args.architecture, hidden=hidden, epochs=args.epochs,
                steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
                learning_rate=args.learning_rate, margin=args.margin,
                cross_modal_fraction=args.cross_modal_fraction, matched_fraction=args.matched_fraction,
                init=args.init)
    log = None if args.quiet else print
    payload = run_mds(images, texts, dims, methods, ks=ks, metric=args.metric, sklearn_max=args.sklearn_max,
                      sklearn_max_iter=args.sklearn_max_iter, seed=args.seed, holdout=args.holdout,
                      save_dir=args.save_dir,
                      progress=False if args.quiet else None, log=log, **opts)
    payload.update(command="mds", options={**opts, "hidden": list(hidden), "holdout": args.holdout}, seed=args.seed,
                   inputs=_inputs_provenance(args), environment=_environment())
    if not args.quiet:
        rows = [("full D", payload["d"], payload["full"]["top1_image_to_text"],
                 payload["full"]["top1_text_to_image"], None, None, None, None)]
        for method, res in payload["results"].items():
            for k in dims:
                e = res.get(str(k))
                if e is None:
                    continue
                rows.append((method, k, e["top1_image_to_text"], e["top1_text_to_image"], e["stress1"],
                             e["quad_fraction"], e["spearman"], e["fit_seconds"]))
        print()
        print(_table(rows, ("method", "D'", "top-1 i→t", "top-1 t→i", "stress-1", "quads kept", "spearman",
                            "seconds")))
        if "holdout" in payload:
            h = payload["holdout"]
            hrows = [("full D", payload["d"], h["full"]["top1_image_to_text"], h["full"]["top1_text_to_image"])]
            for method, res in payload["results"].items():
                for k in dims:
                    e = res.get(str(k))
                    if e is not None and e.get("holdout"):
                        hrows.append((method, k, e["holdout"]["top1_image_to_text"],
                                      e["holdout"]["top1_text_to_image"]))
            print(f"\nheld out: {h['pairs']} of {h['pairs'] + h['fit_pairs']} pairs (seed {h['seed']}); the "
                  f"figures above are on the {h['fit_pairs']} fitted pairs")
            print(_table(hrows, ("method", "D'", "held-out top-1 i→t", "held-out top-1 t→i")))
        if "sklearn_subsample" in payload:
            s = payload["sklearn_subsample"]
            print(f"\nsklearn MDS ran on {s['pairs']} of {payload['n']} pairs (full-D top-1 there: "
                  f"{s['full']['top1_image_to_text']:.4f}); the other methods on all pairs")
    _write_json(args.json, payload)
    if not args.no_plot:
        plot = args.plot or os.path.splitext(args.json)[0] + ".png"
        _plot(payload, plot)
        payload["plot"] = os.path.abspath(plot)
        _write_json(args.json, payload)
    if not args.quiet:
        print(f"wrote {args.json}" + ("" if args.no_plot else f" and {payload['plot']}"))
    return 0


def add_commands(sub) -> None:
    """Register `clipcore mds`."""
    p = sub.add_parser(
        "mds", help="compress embeddings to D' < D (neural MDS, PCA, random, scikit-learn MDS) and compare retrieval",
        description="Reduce paired image/caption embeddings to each D' with neural MDS (isometric: raw stress over "
                    "pairs; isotonic: SOE hinge over quads), PCA, a random projection and scikit-learn's MDS, and "
                    "report image→text / text→image top-1 (and recall@k), Stress-1, the fraction of quads whose "
                    "order is kept and Spearman ρ. Writes JSON and a PNG of top-1 vs D'.")
    g = p.add_argument_group("inputs")
    g.add_argument("--images", required=True, metavar="X.npy", help="image embeddings [n, D] (.npy or .npz)")
    g.add_argument("--texts", required=True, metavar="T.npy", help="caption embeddings [n, D], row i ↔ image i")
    g.add_argument("--images-key", default=None, help="array name inside an .npz of images")
    g.add_argument("--texts-key", default=None, help="array name inside an .npz of texts")
    p.add_argument("--dims", default=",".join(map(str, DEFAULT_DIMS)), help="D' values (default 8,16,32,64,128,256)")
    p.add_argument("--method", default="isometric,isotonic,pca,random,sklearn",
                   help="comma list of isometric, isotonic, pca, random, sklearn-metric, sklearn-nonmetric, "
                        "sklearn (both) or all (default: all)")
    p.add_argument("--k", default="1,5,10", help="recall@k cut-offs (default 1,5,10)")
    p.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean",
                   help="retrieval in D': nearest by distance (default; what MDS preserves) or cosine")
    t = p.add_argument_group("neural MDS")
    t.add_argument("--architecture", choices=("mlp", "linear"), default="mlp")
    t.add_argument("--hidden", default="512", help="MLP hidden widths (default 512)")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--steps-per-epoch", type=int, default=100)
    t.add_argument("--batch-size", type=int, default=1024, help="pairs / quads per step (default 1024)")
    t.add_argument("--learning-rate", type=float, default=None,
                   help="Adam step size (default 1e-3 isometric, 1e-4 isotonic)")
    t.add_argument("--margin", type=float, default=0.01, help="SOE margin (isotonic)")
    t.add_argument("--cross-modal-fraction", type=float, default=0.5)
    t.add_argument("--matched-fraction", type=float, default=0.25)
    t.add_argument("--init", choices=("pca", "random"), default="pca")
    t.add_argument("--save-dir", default=None, metavar="DIR", help="save each neural model (safetensors) here")
    s = p.add_argument_group("scikit-learn MDS")
    s.add_argument("--sklearn-max", type=int, default=1000,
                   help="run it on a seeded subsample of at most this many pairs (default 1000; 0: skip)")
    s.add_argument("--sklearn-max-iter", type=int, default=300)
    p.add_argument("--holdout", type=float, default=0.0, metavar="FRACTION",
                   help="set aside this fraction of the pairs (seeded split): fit on the rest, report top-1 on "
                        "both (default 0: in-sample only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="clipcore_mds.json", metavar="OUT.json", help="(default clipcore_mds.json)")
    p.add_argument("--plot", default=None, metavar="OUT.png", help="(default: the JSON path with .png)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--quiet", action="store_true", help="print nothing, no progress bars")
    p.set_defaults(func=cmd_mds)
