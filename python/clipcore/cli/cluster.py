"""`clipcore cluster`: k-means, AE + k-means and DEC on embeddings; the clusterings are
:func:`clipcore.models.dec_eval.evaluate_dec`, this module loads, prints, plots and writes JSON.

Prints ACC / ARI / AMI / NMI / FMI for the three methods (when true labels
are given), writes them as JSON and saves t-SNE pictures (scikit-learn) of the
DEC embedding coloured by cluster and by true label.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from ._common import environment, quiet_progress, table, write_json

__all__ = ["add_commands", "cmd_cluster"]


def _load_labels(path: str, n: int) -> np.ndarray:
    if not os.path.exists(path):
        raise FileNotFoundError(f"labels: file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npy":
            y = np.load(path, allow_pickle=False)
        elif ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if len(z.files) != 1:
                    raise ValueError(f"labels: {path} holds {len(z.files)} arrays {z.files}; expected one")
                y = z[z.files[0]]
        else:  # text: one label per line
            with open(path) as f:
                y = np.array([line.strip() for line in f if line.strip()])
            try:
                y = y.astype(np.int64)
            except ValueError:
                pass
    except OSError as exc:
        raise ValueError(f"labels: cannot read {path} ({exc})") from exc
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels: {path} holds an array of shape {y.shape}; expected [n]")
    if y.shape[0] != n:
        raise ValueError(f"labels: {y.shape[0]} labels but embeddings has {n} rows; row i of the labels "
                         "must label row i of the embeddings")
    return y


def _parse_hidden(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"hidden: expected comma-separated widths such as 500,500,2000, got {text!r}") from None


def _tsne_plots(z: np.ndarray, colourings: dict, prefix: str, samples: int, seed: int) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..models.dec_eval import tsne_embedding

    n = z.shape[0]
    idx, emb = tsne_embedding(z, samples, seed)
    paths = []
    for what, labels in colourings.items():
        lab = np.asarray(labels)[idx]
        values, codes = np.unique(lab, return_inverse=True)
        fig, ax = plt.subplots(figsize=(6.4, 6.0), dpi=120)
        sc = ax.scatter(emb[:, 0], emb[:, 1], c=codes, cmap="tab10" if values.size <= 10 else "tab20", s=3,
                        linewidths=0)
        if values.size <= 20:
            handles = [plt.Line2D([], [], marker="o", linestyle="", color=sc.cmap(sc.norm(i)), label=str(v))
                       for i, v in enumerate(values)]
            ax.legend(handles=handles, fontsize=7, markerscale=1.2, loc="best", title=what)
        ax.set_title(f"t-SNE of the DEC embedding ({idx.size} of {n} points), coloured by {what}")
        ax.set_xticks([])
        ax.set_yticks([])
        path = f"{prefix}_{'clusters' if what == 'cluster' else 'labels'}.png"
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def cmd_cluster(args: argparse.Namespace) -> int:
    """Run ``clipcore cluster`` (see :func:`add_commands`): :func:`clipcore.models.dec_eval.evaluate_dec`,
    a table, t-SNE pictures, the model and JSON."""
    from ..io import load_embeddings
    from ..models.dec_eval import evaluate_dec

    x = np.asarray(load_embeddings(args.embeddings, key=args.embeddings_key, name="embeddings"))
    n = x.shape[0]
    y = _load_labels(args.labels, n) if args.labels else None
    if args.k > n:
        raise ValueError(f"k: {args.k} clusters but embeddings has only {n} rows (shape {tuple(x.shape)})")
    if args.tsne_samples < 0:
        raise ValueError(f"tsne_samples: expected an integer ≥ 0, got {args.tsne_samples}")
    ev = evaluate_dec(x, y, k=args.k, n_init=args.n_init, seed=args.seed, pretrain=args.pretrain,
                      layerwise_steps=args.layerwise_steps, pretrain_steps=args.pretrain_steps,
                      max_steps=args.max_steps, update_interval=args.update_interval, batch_size=args.batch_size,
                      hidden=_parse_hidden(args.hidden), embed_dim=args.embed_dim, progress=quiet_progress(args))
    dec = ev.dec
    plots: list[str] = []
    if args.tsne_samples > 0 and args.plot_prefix:
        colourings = {"cluster": dec.labels_}
        if y is not None:
            colourings["true label"] = y
        plots = _tsne_plots(dec.transform(x), colourings, args.plot_prefix, min(args.tsne_samples, n), args.seed)
    if not args.quiet:
        _print_results(args, ev, x.shape, plots)
    if args.save_model:
        dec.save(args.save_model)
        if not args.quiet:
            print(f"wrote {args.save_model}")
    if args.json:
        write_json(args.json, _payload(args, ev, x.shape, plots))
        if not args.quiet:
            print(f"wrote {args.json}")
    return 0


def _print_results(args: argparse.Namespace, ev, shape: tuple, plots: list[str]) -> None:
    h = ev.dec.history
    lw = f"{args.layerwise_steps} steps per layer + " if args.pretrain == "layerwise" else ""
    print(f"clipcore cluster: n={shape[0]}, d={shape[1]}, k={args.k}, seed={args.seed}; DEC pretrain "
          f"({args.pretrain}) {lw}{args.pretrain_steps} steps, {h.steps} clustering steps "
          f"(converged={h.converged}), input scale {ev.dec.scale:.4g}\n")
    rows = []
    for name in ev.labels:
        m = ev.metrics[name] if ev.metrics is not None else None
        rows.append((name, *((m.acc, m.ari, m.ami, m.nmi, m.fmi) if m else (None,) * 5), ev.seconds[name]))
    print(table(rows, ("method", "ACC", "ARI", "AMI", "NMI", "FMI", "seconds")))
    if ev.metrics is None:
        print("\n(no --labels: metrics skipped)")
    for p in plots:
        print(f"wrote {p}")


def _payload(args: argparse.Namespace, ev, shape: tuple, plots: list[str]) -> dict:
    from ..io import file_digest

    dec, h = ev.dec, ev.dec.history
    inputs = {"embeddings": {"path": os.path.abspath(args.embeddings), "shape": list(shape),
                             "sha256": file_digest(args.embeddings)}}
    if args.labels:
        inputs["labels"] = {"path": os.path.abspath(args.labels), "sha256": file_digest(args.labels)}
    return {
        "command": "cluster", "k": args.k, "seed": args.seed, "results": ev.results(),
        "dec": {"config": dict(dec.config.__dict__), "scale": dec.scale,
                "steps": h.steps, "converged": h.converged, "label_change": h.label_change,
                "pretrain_seconds": h.pretrain_seconds, "kmeans_seconds": h.kmeans_seconds,
                "cluster_seconds": h.cluster_seconds},
        "plots": [os.path.abspath(p) for p in plots],
        "inputs": inputs, "environment": environment(),
    }


def add_commands(sub) -> None:
    """Register ``clipcore cluster``."""
    c = sub.add_parser(
        "cluster", help="k-means, AE + k-means and DEC on embeddings, with ACC/ARI/AMI/NMI/FMI and t-SNE plots",
        description="Cluster embeddings with k-means (n_init=20), an autoencoder + k-means and DEC (Xie, "
                    "Girshick & Farhadi 2016); with --labels print ACC, ARI, AMI, NMI and FMI for each. "
                    "Saves t-SNE pictures of the DEC embedding coloured by cluster and by true label.")
    c.add_argument("--embeddings", required=True, metavar="X.npy", help="embeddings [n, d] (.npy or .npz)")
    c.add_argument("--embeddings-key", default=None, help="array name inside an .npz")
    c.add_argument("--labels", default=None, metavar="Y.npy",
                   help="true labels [n] (.npy, .npz or a text file with one label per line)")
    c.add_argument("--k", type=int, default=10, help="number of clusters (default 10)")
    c.add_argument("--pretrain", choices=("end-to-end", "layerwise"), default="end-to-end",
                   help="end-to-end Adam pretraining (default) or the paper's greedy layer-wise denoising one")
    c.add_argument("--layerwise-steps", type=int, default=50_000,
                   help="steps per layer with --pretrain layerwise (default 50000, the paper's)")
    c.add_argument("--pretrain-steps", type=int, default=100_000,
                   help="end-to-end / fine-tuning steps (default 100000, the paper's fine-tuning count)")
    c.add_argument("--max-steps", type=int, default=20_000, help="upper bound on DEC steps (default 20000)")
    c.add_argument("--update-interval", type=int, default=140, help="steps between target updates (default 140)")
    c.add_argument("--batch-size", type=int, default=256)
    c.add_argument("--hidden", default="500,500,2000", help="encoder hidden widths (default 500,500,2000)")
    c.add_argument("--embed-dim", type=int, default=10, help="embedding size (default 10)")
    c.add_argument("--n-init", type=int, default=20, help="k-means restarts (default 20)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--plot-prefix", default="clipcore_cluster", metavar="PREFIX",
                   help="write PREFIX_clusters.png and PREFIX_labels.png (default clipcore_cluster)")
    c.add_argument("--tsne-samples", type=int, default=5000,
                   help="points shown in the t-SNE (seeded subsample; 0 = no plots; default 5000)")
    c.add_argument("--save-model", default=None, metavar="DEC.npz", help="save the fitted DEC here")
    c.add_argument("--json", default=None, metavar="OUT.json", help="write metrics and provenance here")
    c.add_argument("--quiet", action="store_true", help="print nothing, no progress bars")
    c.set_defaults(func=cmd_cluster)
