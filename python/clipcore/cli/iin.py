"""`clipcore iin`: train and evaluate an invertible interpretation network.

Esser, Rombach & Ommer 2020 (SPEC_MODELS.md, IIN). Embeddings and an
attribute CSV (or a built-in data set) are split into train and test; the IIN
is fitted on the train part and judged on the test part: reconstruction
error, per-factor probe accuracies and the edit success rate. Prints a table,
writes JSON (``--json``) and a PNG of the probe accuracies (``--plot``).
Flax is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from ._common import environment, file_provenance, quiet_progress, table, write_json

__all__ = ["add_commands", "cmd_iin"]


def add_commands(sub) -> None:
    """Register ``clipcore iin`` on the CLI's subparsers."""
    p = sub.add_parser(
        "iin", help="invertible interpretation network: disentangle attributes, edit one",
        description="Fit an IIN (Esser, Rombach & Ommer 2020) on embeddings with attribute labels and report "
                    "reconstruction error, per-factor probe accuracy (logistic regression on each factor) and the "
                    "edit success rate (factor F set to the other class's mean: the z-probe of F flips, the "
                    "others keep their prediction) on a held-out split.")
    g = p.add_argument_group("inputs")
    g.add_argument("--embeddings", default=None, metavar="Z.npy", help="embeddings [n, D] (.npy or .npz), D even")
    g.add_argument("--embeddings-key", default=None, help="array name inside an .npz")
    g.add_argument("--attributes", default=None, metavar="A.csv",
                   help="CSV: a header of K attribute names, then one row per embedding (values: numbers or words)")
    g.add_argument("--data", choices=("synthetic", "fashion-mnist"), default=None,
                   help="instead of files: the seeded synthetic attribute set or Fashion-MNIST PCA features "
                        "(footwear, light)")
    g.add_argument("--n", type=int, default=None, help="--data: number of embeddings (default 4000 / 6000)")
    g.add_argument("--dim", type=int, default=None, help="--data: dimension (default 512 / 64)")
    m = p.add_argument_group("model")
    m.add_argument("--blocks", type=int, default=12, help="ActNorm/coupling/permutation blocks (default 12)")
    m.add_argument("--hidden", type=int, default=512, help="width of the coupling MLPs (default 512)")
    m.add_argument("--hidden-layers", type=int, default=3, help="hidden layers per coupling MLP (default 3)")
    m.add_argument("--factor-sizes", default="equal",
                   help="'equal' (default), 'estimate' (from pair statistics) or K+1 comma-separated sizes")
    m.add_argument("--residual-size", type=int, default=None,
                   help="with --factor-sizes equal: the residual's size, the attribute factors share the rest "
                        "(default: an equal chunk). A small residual (e.g. 8 at D = 512) keeps attributes that are "
                        "spread over every input coordinate out of it; see IINConfig.residual_size")
    m.add_argument("--objective", choices=("pairs", "flow"), default="pairs",
                   help="pair loss on attribute pairs (default) or the unsupervised flow likelihood")
    m.add_argument("--rho", type=float, default=0.975, help="shared-factor correlation (default 0.975)")
    m.add_argument("--steps", type=int, default=2000, help="Adam steps (default 2000)")
    m.add_argument("--batch-size", type=int, default=256)
    m.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4, betas 0.5, 0.9)")
    m.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    m.add_argument("--seed", type=int, default=0, help="initialisation, pairs, split and --data seed")
    m.add_argument("--load", default=None, metavar="MODEL.npz", help="evaluate a saved model instead of fitting")
    o = p.add_argument_group("outputs")
    o.add_argument("--test-fraction", type=float, default=0.25, help="held-out fraction (default 0.25)")
    o.add_argument("--save", default=None, metavar="MODEL.npz", help="save the fitted model")
    o.add_argument("--json", default=None, metavar="OUT.json", help="write the figures and provenance")
    o.add_argument("--plot", default=None, metavar="OUT.png", help="PNG of probe accuracies and edit rates")
    o.add_argument("--quiet", action="store_true", help="print nothing, no progress bar")
    p.set_defaults(func=cmd_iin)


def _factor_sizes(text: str):
    if text in ("equal", "estimate"):
        return text
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"factor_sizes: expected 'equal', 'estimate' or comma-separated integers, got {text!r}") from None


def _inputs(args: argparse.Namespace):
    from ..models.iin_data import read_attributes

    if args.data is not None:
        if args.embeddings or args.attributes:
            raise ValueError("data: give either --data or --embeddings with --attributes, not both")
        from ..models.iin_data import fashion_mnist_attributes, synthetic_attributes

        if args.data == "synthetic":
            ds = synthetic_attributes(args.n or 4000, args.dim or 512, seed=args.seed)
        else:
            ds = fashion_mnist_attributes(args.n or 6000, args.dim or 64, seed=args.seed)
        prov = {"data": args.data, "n": int(ds.embeddings.shape[0]), "dim": int(ds.embeddings.shape[1]),
                "seed": args.seed}
        classes = [["0", "1"] for _ in ds.names]
        return ds.embeddings, ds.attributes, ds.names, classes, prov
    if args.embeddings is None or args.attributes is None:
        raise ValueError("embeddings: clipcore iin needs --embeddings Z.npy and --attributes A.csv (or --data)")
    from ..io import load_embeddings

    z = np.asarray(load_embeddings(args.embeddings, key=args.embeddings_key, name="embeddings"))
    a, names, classes = read_attributes(args.attributes)
    if a.shape[0] != z.shape[0]:
        raise ValueError(f"attributes: {a.shape[0]} rows in {args.attributes} but embeddings has {z.shape[0]}")
    prov = {"embeddings": file_provenance(args.embeddings, "embeddings"),
            "attributes": {"path": os.path.abspath(args.attributes), "names": list(names), "classes": classes}}
    return z, a, names, classes, prov


def _plot(path: str, ev) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(ev.names)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(4 + 2.2 * k, 3.8))
    im = ax1.imshow(ev.probe_accuracy, vmin=0.5, vmax=1.0, cmap="viridis")
    ax1.set_xticks(range(k), ev.names, rotation=30)
    ax1.set_yticks(range(k + 1), [f"z̄[{n}] ({s})" for n, s in zip(ev.names, ev.factor_sizes)]
                   + [f"residual ({ev.factor_sizes[-1]})"])
    for i in range(k + 1):
        for j in range(k):
            v = ev.probe_accuracy[i, j]
            ax1.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.8 else "k")
    ax1.set_xlabel("attribute predicted")
    ax1.set_title("probe accuracy per factor")
    fig.colorbar(im, ax=ax1, fraction=0.046)
    x = np.arange(k)
    w = 0.27
    ax2.bar(x - w, ev.flip_rate, w, label="F flipped")
    ax2.bar(x, ev.collateral_rate, w, label="collateral")
    ax2.bar(x + w, ev.success_rate, w, label="success")
    ax2.set_xticks(x, ev.names, rotation=30)
    ax2.set_ylim(0, 1.05)
    ax2.set_title(f"edits (success {ev.edit_success:.1%})")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cmd_iin(args: argparse.Namespace) -> int:
    """Run ``clipcore iin`` (see ``add_commands``): fit (or load) on the train split,
    :func:`clipcore.models.evaluate_iin` on the test split, a table, a PNG and JSON."""
    from ..models.iin import IIN, IINConfig
    from ..models.iin_eval import evaluate_iin

    if not 0.0 < args.test_fraction < 1.0:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {args.test_fraction}")
    z, a, names, classes, prov = _inputs(args)
    n = z.shape[0]
    perm = np.random.default_rng(args.seed).permutation(n)
    n_test = int(round(args.test_fraction * n))
    if n_test < 2 or n - n_test < 2:
        raise ValueError(f"test_fraction: {args.test_fraction} of n={n} leaves too few rows for train or test")
    tr, te = np.sort(perm[n_test:]), np.sort(perm[:n_test])
    t0 = time.perf_counter()
    if args.load:
        model = IIN.load(args.load)
        if tuple(model.names) != tuple(names):
            raise ValueError(f"attributes: the model at {args.load} was fitted on {list(model.names)}, "
                             f"these are {list(names)}")
    else:
        cfg = IINConfig(num_blocks=args.blocks, hidden=args.hidden, hidden_layers=args.hidden_layers,
                        factor_sizes=_factor_sizes(args.factor_sizes), residual_size=args.residual_size,
                        objective=args.objective, rho=args.rho,
                        learning_rate=args.lr, batch_size=args.batch_size, steps=args.steps, seed=args.seed,
                        dtype=args.dtype)
        model = IIN(cfg).fit(z[tr], a[tr], names=names, progress=quiet_progress(args))
    fit_s = time.perf_counter() - t0
    if args.save:
        model.save(args.save)
    ev = evaluate_iin(model, z[tr], a[tr], z[te], a[te], seed=args.seed)
    if not args.quiet:
        _print_results(model, ev, names, len(tr), len(te), fit_s)
    if args.plot:
        _plot(args.plot, ev)
    if args.json:
        result = {"names": list(names), "classes": classes, "factor_sizes": list(model.factor_sizes),
                  "reconstruction_error": ev.reconstruction_error,
                  "reconstruction_relative": ev.reconstruction_relative,
                  "probe_accuracy": ev.probe_accuracy, "probe_rows": list(names) + ["residual"],
                  "chance": ev.chance, "raw_probe_accuracy": ev.raw_probe_accuracy,
                  "flip_rate": ev.flip_rate, "collateral_rate": ev.collateral_rate,
                  "success_rate": ev.success_rate, "edit_success": ev.edit_success,
                  "train_rows": int(len(tr)), "test_rows": int(len(te)), "fit_seconds": fit_s,
                  "final_loss": float(model.losses[-1]) if model.losses.size else None}
        config = {**{f: getattr(model.config, f) for f in model.config.__dataclass_fields__},
                  "loaded_from": os.path.abspath(args.load) if args.load else None}
        write_json(args.json, {"command": "iin", "result": result, "config": config, "inputs": prov,
                               "environment": environment()})
    return 0


def _print_results(model, ev, names, n_train: int, n_test: int, fit_s: float) -> None:
    k = len(names)
    print(f"IIN  D={model.dim}  factors {list(model.factor_sizes)} (last = residual)  "
          f"train {n_train}  test {n_test}  fit {fit_s:.1f} s")
    print(f"reconstruction  max ‖T⁻¹(T(z)) − z‖ = {ev.reconstruction_error:.3e}  "
          f"(relative {ev.reconstruction_relative:.3e})")
    rows = []
    for f in range(k):
        others = [ev.probe_accuracy[g, f] for g in range(k) if g != f]
        rows.append([names[f], model.factor_sizes[f], float(ev.probe_accuracy[f, f]),
                     float(max(others)) if others else None, float(ev.probe_accuracy[k, f]),
                     float(ev.chance[f]), float(ev.raw_probe_accuracy[f]), float(ev.flip_rate[f]),
                     float(ev.collateral_rate[f]), float(ev.success_rate[f])])
    print(table(rows, ["attribute", "size", "own factor", "best other", "residual", "chance", "z probe",
                       "flip", "collateral", "success"]))
    print(f"edit success rate {ev.edit_success:.1%}")
