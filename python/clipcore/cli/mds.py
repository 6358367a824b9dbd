"""`clipcore mds`: top-1 retrieval vs D' for neural MDS and its baselines; the runs are
:func:`clipcore.models.mds_eval.run_mds`, this module parses, prints, writes JSON and plots.

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

import numpy as np

from ._common import (add_source_options, environment, inputs_provenance, quiet_progress, read_pair, table,
                      write_json)

__all__ = ["add_commands", "cmd_mds", "DEFAULT_DIMS"]

#: ``--dims``' default: :data:`clipcore.models.mds_eval.DEFAULT_DIMS` (spelled out so that building the parser
#: does not import Flax).
DEFAULT_DIMS = "8,16,32,64,128,256"


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
    from ..models.mds_eval import METHODS

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


def _plot(payload: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ho = payload.get("holdout")
    for i, (method, res) in enumerate(payload["results"].items()):
        ks = sorted(int(k) for k in res if k.isdigit() and "top1_image_to_text" in res[k])
        if not ks:
            continue
        style, color = ("--" if method.startswith("sklearn") else "-"), f"C{i}"
        if ho and all(res[str(k)].get("holdout") for k in ks):
            ax.plot(ks, [res[str(k)]["holdout"]["top1_image_to_text"] for k in ks], style, marker="o", color=color,
                    label=f"{method} (held out)")
            ax.plot(ks, [res[str(k)]["top1_image_to_text"] for k in ks], ":", color=color, lw=1, alpha=0.7,
                    label=f"{method} (in-sample)")
        else:
            ax.plot(ks, [res[str(k)]["top1_image_to_text"] for k in ks], style, marker="o", color=color, label=method)
    full = (ho or payload)["full"]["top1_image_to_text"]
    ax.axhline(full, color="k", lw=1, label=f"full D={payload['d']}{' (held out)' if ho else ''} ({full:.3f})")
    if "sklearn_subsample" in payload:
        s = payload["sklearn_subsample"]
        ax.axhline(s["full"]["top1_image_to_text"], color="grey", lw=1, ls=":",
                   label=f"full D, sklearn subsample ({s['pairs']} pairs)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("D' (output dimension)")
    ax.set_ylabel("image→text top-1")
    ax.set_title(f"retrieval vs D' (fitted on {payload['n']} pairs"
                 + (f", {ho['pairs']} held out" if ho else "") + f"; {payload['metric']} in D')")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cmd_mds(args: argparse.Namespace) -> int:
    """Run ``clipcore mds`` (see :func:`add_commands`): :func:`clipcore.models.mds_eval.run_mds`, a table,
    JSON and a PNG."""
    from .._validate import as_embeddings
    from ..models.mds import check_paired
    from ..models.mds_eval import run_mds

    dims = _parse_ints(args.dims, "dims")
    methods = _parse_methods(args.method)
    ks = _parse_ints(args.k, "k")
    hidden = tuple(_parse_ints(args.hidden, "hidden"))
    images, texts, pairing = read_pair(args.images, args.texts, args)
    check_paired(as_embeddings(images, "images", nonzero_rows=True), as_embeddings(texts, "texts", nonzero_rows=True))
    opts = dict(architecture=args.architecture, hidden=hidden, epochs=args.epochs,
                steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
                learning_rate=args.learning_rate, margin=args.margin,
                cross_modal_fraction=args.cross_modal_fraction, matched_fraction=args.matched_fraction,
                init=args.init, validation_fraction=args.validation_fraction)
    log = None if args.quiet else print
    payload = run_mds(images, texts, dims, methods, ks=ks, metric=args.metric, sklearn_max=args.sklearn_max,
                      sklearn_max_iter=args.sklearn_max_iter, seed=args.seed, holdout=args.holdout,
                      save_dir=args.save_dir, progress=quiet_progress(args), log=log, **opts)
    payload.update(command="mds", options={**opts, "hidden": list(hidden), "holdout": args.holdout}, seed=args.seed,
                   inputs=inputs_provenance(args), environment=environment(),
                   **({"pairing": pairing} if pairing is not None else {}))
    if not args.quiet:
        _print_results(payload, dims)
    write_json(args.json, payload)
    if not args.no_plot:
        plot = args.plot or os.path.splitext(args.json)[0] + ".png"
        _plot(payload, plot)
        payload["plot"] = os.path.abspath(plot)
        write_json(args.json, payload)
    if not args.quiet:
        print(f"wrote {args.json}" + ("" if args.no_plot else f" and {payload['plot']}"))
    return 0


def _print_results(payload: dict, dims: list[int]) -> None:
    """One table: top-1 on the fitted pairs (in-sample) and, with a hold-out, on the held-out pairs beside
    it; then the scikit-learn subsample line."""
    ho = payload.get("holdout")
    head = ["method", "D'", "top-1 i→t", "top-1 t→i"]
    if ho:
        head = ["method", "D'", "in-sample top-1 i→t", "in-sample top-1 t→i", "held-out top-1 i→t",
                "held-out top-1 t→i"]
    head += ["stress-1", "quads kept", "spearman", "best epoch", "seconds"]
    full = [payload["full"]["top1_image_to_text"], payload["full"]["top1_text_to_image"]]
    if ho:
        full += [ho["full"]["top1_image_to_text"], ho["full"]["top1_text_to_image"]]
    rows = [("full D", payload["d"], *full, None, None, None, None, None)]
    for method, res in payload["results"].items():
        for k in dims:
            e = res.get(str(k))
            if e is None or "top1_image_to_text" not in e:
                continue
            tops = [e["top1_image_to_text"], e["top1_text_to_image"]]
            if ho:
                h = e.get("holdout")
                tops += [h["top1_image_to_text"], h["top1_text_to_image"]] if h else [None, None]
            rows.append((method, k, *tops, e["stress1"], e["quad_fraction"], e["spearman"], e.get("best_epoch"),
                         e["fit_seconds"]))
    print()
    if ho:
        print(f"held out: {ho['pairs']} of {ho['pairs'] + ho['fit_pairs']} pairs (seed {ho['seed']}); in-sample: "
              f"the {ho['fit_pairs']} fitted pairs")
    print(table(rows, head))
    if "sklearn_subsample" in payload:
        s = payload["sklearn_subsample"]
        print(f"\nsklearn MDS ran on {s['pairs']} of {payload['n']} pairs (full-D top-1 there: "
              f"{s['full']['top1_image_to_text']:.4f}); the other methods on all pairs")


def add_commands(sub) -> None:
    """Register `clipcore mds`."""
    p = sub.add_parser(
        "mds", help="compress embeddings to D' < D (neural MDS, PCA, random, scikit-learn MDS) and compare retrieval",
        description="Reduce paired image/caption embeddings to each D' with neural MDS (isometric: raw stress over "
                    "pairs; isotonic: SOE hinge over quads), PCA, a random projection and scikit-learn's MDS, and "
                    "report image→text / text→image top-1 (and recall@k), Stress-1, the fraction of quads whose "
                    "order is kept and Spearman ρ. Writes JSON and a PNG of top-1 vs D'.")
    g = p.add_argument_group("inputs")
    g.add_argument("--images", required=True, metavar="X.npy",
                   help="image embeddings [n, D]: .npy, .npz, shards, or a folder of a known layout holding both "
                        "columns (then --texts may be omitted); read whole")
    g.add_argument("--texts", default=None, metavar="T.npy", help="caption embeddings [n, D], row i ↔ image i")
    add_source_options(g)
    p.add_argument("--dims", default=DEFAULT_DIMS, help=f"D' values (default {DEFAULT_DIMS})")
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
                   help="Adam step size (default 1e-3 isometric, 1e-5 isotonic)")
    t.add_argument("--margin", type=float, default=0.01, help="SOE margin (isotonic)")
    t.add_argument("--cross-modal-fraction", type=float, default=0.5)
    t.add_argument("--matched-fraction", type=float, default=None,
                   help="share of matched (image, own caption) pairs among the cross-modal ones (default 0 for "
                        "isometric: the stress takes them at their natural rate; 0.25 for isotonic's quads)")
    t.add_argument("--validation-fraction", type=float, default=0.1,
                   help="pairs kept out of training to select the epoch by top-1 retrieval (default 0.1)")
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
