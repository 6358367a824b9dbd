"""`clipcore iin`: train and evaluate an invertible interpretation network.

Esser, Rombach & Ommer 2020 (SPEC_MODELS.md, IIN). Embeddings and an
attribute CSV (or a built-in data set) are split into train and test; the IIN
is fitted on the train part and judged on the test part: reconstruction
error, per-factor probe accuracies and the edit success rate. Prints a table,
writes JSON (``--json``) and a PNG of the probe accuracies (``--plot``).

With ``--vae VAE`` (a :class:`clipcore.models.VAE` file) the inputs are
images: the IIN runs on the VAE's latent codes, its edits are decoded and
read by probes trained on real images, and ``--grid edits.png`` draws the
deck's figure (rows of samples; columns: the original, its reconstruction, one
factor swept from −3 to +3, the attribute swapped). ``--correlation corr.png``
draws the correlation of the semantic features (the attribute labels, or the
similarities to ``--prompts`` embeddings) with the IIN factors and with the
principal components, and writes them as JSON beside the PNG.
Flax is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from ._common import environment, file_provenance, quiet_progress, table, write_json
from .figures import correlation_heatmaps, image_grid, probe_plot

__all__ = ["add_commands", "cmd_iin"]


def add_commands(sub) -> None:
    """Register ``clipcore iin`` on the CLI's subparsers."""
    p = sub.add_parser(
        "iin", help="invertible interpretation network: disentangle attributes, edit one",
        description="Fit an IIN (Esser, Rombach & Ommer 2020) on embeddings with attribute labels and report "
                    "reconstruction error, per-factor probe accuracy (logistic regression on each factor) and the "
                    "edit success rate (factor F set to the other class's mean: the z-probe of F flips, the "
                    "others keep their prediction) on a held-out split. With --vae, on a VAE's latent codes of "
                    "images, judged on the decoded images.")
    g = p.add_argument_group("inputs")
    g.add_argument("--embeddings", default=None, metavar="Z.npy", help="embeddings [n, D] (.npy or .npz), D even")
    g.add_argument("--embeddings-key", default=None, help="array name inside an .npz")
    g.add_argument("--images", default=None, metavar="X.npy",
                   help="with --vae: images [n, H, W] (pixels in [0, 1], or uint8) instead of --embeddings")
    g.add_argument("--attributes", default=None, metavar="A.csv",
                   help="CSV: a header of K attribute names, then one row per embedding (values: numbers or words)")
    g.add_argument("--data", choices=("synthetic", "mixed", "fashion-mnist"), default=None,
                   help="instead of files: the seeded synthetic attribute set, the seeded mixed set (tanh of a "
                        "rotation plus a linear term, 64-d) or Fashion-MNIST (footwear, light: PCA features, or "
                        "images with --vae)")
    g.add_argument("--n", type=int, default=None, help="--data: number of embeddings (default 4000 / 6000 / 6000)")
    g.add_argument("--dim", type=int, default=None, help="--data: dimension (default 512 / 64 / 64)")
    g.add_argument("--vae", default=None, metavar="VAE.safetensors",
                   help="a VAE (clipcore vae --save): fit the IIN on its latent codes of the images")
    _add_model_options(p)
    o = p.add_argument_group("outputs")
    o.add_argument("--test-fraction", type=float, default=0.25, help="held-out fraction (default 0.25)")
    o.add_argument("--save", default=None, metavar="MODEL.npz", help="save the fitted model")
    o.add_argument("--json", default=None, metavar="OUT.json", help="write the figures and provenance")
    o.add_argument("--plot", default=None, metavar="OUT.png", help="PNG of probe accuracies and edit rates")
    o.add_argument("--grid", default=None, metavar="EDITS.png",
                   help="with --vae: the edit grid (held-out samples; original, reconstruction, the factor swept "
                        "-3 … +3, the attribute swapped)")
    o.add_argument("--grid-factor", default=None, help="the attribute the grid sweeps (default: the first)")
    o.add_argument("--grid-rows", type=int, default=6, help="samples in the grid (default 6)")
    o.add_argument("--correlation", default=None, metavar="CORR.png",
                   help="heat maps of the semantic features against the IIN factors and the principal components "
                        "(held-out rows), and their JSON beside the PNG")
    o.add_argument("--prompts", default=None, metavar="P.npy",
                   help="with --correlation: text embeddings [P, D] of attribute prompts; the features are then "
                        "each sample's cosine similarity to them (instead of the attribute labels)")
    o.add_argument("--prompt-names", default=None, help="comma-separated names of the --prompts rows")
    o.add_argument("--quiet", action="store_true", help="print nothing, no progress bar")
    p.set_defaults(func=cmd_iin)


def _add_model_options(p) -> None:
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
    m.add_argument("--input-noise", type=float, default=0.1,
                   help="jitter of the pair members, in units of each coordinate's standard deviation (default 0.1)")
    m.add_argument("--validation-fraction", type=float, default=0.1,
                   help="training rows kept out to pick the checkpoint with the best edit success (default 0.1)")
    m.add_argument("--eval-every", type=int, default=250, help="steps between checkpoints (default 250)")
    m.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    m.add_argument("--seed", type=int, default=0, help="initialisation, pairs, split and --data seed")
    m.add_argument("--load", default=None, metavar="MODEL.npz", help="evaluate a saved model instead of fitting")


def _factor_sizes(text: str):
    if text in ("equal", "estimate"):
        return text
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"factor_sizes: expected 'equal', 'estimate' or comma-separated integers, got {text!r}") from None


class _Inputs:
    """What ``clipcore iin`` runs on: the IIN's input ``z``, attributes, names, class names, provenance,
    and with ``--vae`` the images and the VAE."""

    def __init__(self, z, a, names, classes, prov, images=None, vae=None):
        self.z, self.a, self.names, self.classes, self.prov = z, a, tuple(names), classes, prov
        self.images, self.vae = images, vae


def _builtin(args: argparse.Namespace):
    from ..models.iin_data import fashion_mnist_attributes, fashion_mnist_images, mixed_attributes
    from ..models.iin_data import synthetic_attributes

    if args.embeddings or args.attributes or args.images:
        raise ValueError("data: give either --data or --embeddings / --images with --attributes, not both")
    prov = {"data": args.data, "seed": args.seed}
    if args.vae:
        if args.data != "fashion-mnist":
            raise ValueError("vae: --vae needs images with attributes: --data fashion-mnist, or --images with "
                             "--attributes")
        images, a, _ = fashion_mnist_images(args.n or 6000, seed=args.seed)
        return None, a, ("footwear", "light"), images, {**prov, "n": len(images)}
    if args.data == "synthetic":
        ds = synthetic_attributes(args.n or 4000, args.dim or 512, seed=args.seed)
    elif args.data == "mixed":
        ds = mixed_attributes(args.n or 6000, args.dim or 64, seed=args.seed)
    else:
        ds = fashion_mnist_attributes(args.n or 6000, args.dim or 64, seed=args.seed)
    prov.update(n=int(ds.embeddings.shape[0]), dim=int(ds.embeddings.shape[1]))
    return ds.embeddings, ds.attributes, ds.names, None, prov


def _files(args: argparse.Namespace):
    from ..io import load_embeddings
    from ..models.iin_data import read_attributes

    source = args.images if args.vae else args.embeddings
    if source is None or args.attributes is None:
        raise ValueError("embeddings: clipcore iin needs --embeddings Z.npy and --attributes A.csv (or --data; "
                         "with --vae: --images X.npy and --attributes A.csv)")
    if args.vae:
        images = np.load(source)
        images = images / 255.0 if images.dtype == np.uint8 else images
        z, prov = None, {"images": file_provenance(source, "images")}
    else:
        images = None
        z = np.asarray(load_embeddings(source, key=args.embeddings_key, name="embeddings"))
        prov = {"embeddings": file_provenance(source, "embeddings")}
    a, names, classes = read_attributes(args.attributes)
    rows = len(images) if images is not None else z.shape[0]
    if a.shape[0] != rows:
        raise ValueError(f"attributes: {a.shape[0]} rows in {args.attributes} but "
                         f"{'images' if args.vae else 'embeddings'} has {rows}")
    prov["attributes"] = {"path": os.path.abspath(args.attributes), "names": list(names), "classes": classes}
    return z, a, names, images, prov, classes


def _inputs(args: argparse.Namespace) -> _Inputs:
    if args.data is not None:
        z, a, names, images, prov = _builtin(args)
        classes = [["0", "1"] for _ in names]
    else:
        z, a, names, images, prov, classes = _files(args)
    vae = None
    if args.vae:
        from ..models.vae import VAE

        vae = VAE.load(args.vae)
        z = vae.encode(images)
        prov["vae"] = file_provenance(args.vae, "vae")
    return _Inputs(z, a, names, classes, prov, images, vae)


def _fit(args: argparse.Namespace, inp: _Inputs, tr: np.ndarray):
    from ..models.iin import IIN, IINConfig

    if args.load:
        model = IIN.load(args.load)
        if tuple(model.names) != inp.names:
            raise ValueError(f"attributes: the model at {args.load} was fitted on {list(model.names)}, "
                             f"these are {list(inp.names)}")
        return model
    cfg = IINConfig(num_blocks=args.blocks, hidden=args.hidden, hidden_layers=args.hidden_layers,
                    factor_sizes=_factor_sizes(args.factor_sizes), residual_size=args.residual_size,
                    objective=args.objective, rho=args.rho, learning_rate=args.lr, batch_size=args.batch_size,
                    steps=args.steps, seed=args.seed, dtype=args.dtype, input_noise=args.input_noise,
                    validation_fraction=args.validation_fraction, eval_every=args.eval_every)
    return IIN(cfg).fit(inp.z[tr], inp.a[tr], names=inp.names, progress=quiet_progress(args))


def _split(args: argparse.Namespace, n: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 < args.test_fraction < 1.0:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {args.test_fraction}")
    perm = np.random.default_rng(args.seed).permutation(n)
    n_test = int(round(args.test_fraction * n))
    if n_test < 2 or n - n_test < 2:
        raise ValueError(f"test_fraction: {args.test_fraction} of n={n} leaves too few rows for train or test")
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def cmd_iin(args: argparse.Namespace) -> int:
    """Run ``clipcore iin`` (see ``add_commands``): fit (or load) on the train split,
    :func:`clipcore.models.evaluate_iin` on the test split, a table, PNGs and JSON."""
    from ..models.iin_eval import evaluate_iin

    if (args.grid or args.images) and not args.vae:
        raise ValueError("vae: --grid and --images need --vae VAE (a model written by clipcore vae --save)")
    inp = _inputs(args)
    tr, te = _split(args, inp.z.shape[0])
    t0 = time.perf_counter()
    model = _fit(args, inp, tr)
    fit_s = time.perf_counter() - t0
    if args.save:
        model.save(args.save)
    ev = evaluate_iin(model, inp.z[tr], inp.a[tr], inp.z[te], inp.a[te], seed=args.seed)
    decoded = None
    if inp.vae is not None:
        from ..models.vae_eval import evaluate_decoded_edits

        decoded = evaluate_decoded_edits(inp.vae, model, inp.images[tr], inp.a[tr], inp.images[te], inp.a[te],
                                         seed=args.seed)
    if not args.quiet:
        _print_results(model, ev, inp.names, len(tr), len(te), fit_s, decoded)
    if args.plot:
        probe_plot(args.plot, ev)
    if args.grid:
        _grid(args, inp, model, te)
    corr = _correlation(args, inp, model, te) if args.correlation else None
    if args.json:
        _write(args, inp, model, ev, decoded, corr, len(tr), len(te), fit_s)
    return 0


def _grid(args: argparse.Namespace, inp: _Inputs, model, te: np.ndarray) -> None:
    from ..models.vae_eval import edit_grid

    factor = args.grid_factor or inp.names[0]
    if factor not in inp.names:
        raise ValueError(f"grid_factor: unknown attribute {factor!r}; the model has {list(inp.names)}")
    rows = te[:max(1, args.grid_rows)]
    f = inp.names.index(factor)
    grid, labels = edit_grid(inp.vae, model, inp.images[rows], f, classes=inp.a[rows, f])
    image_grid(args.grid, grid, labels, title=f"IIN edits of '{factor}' on the VAE latent (held-out samples)")


def _correlation(args: argparse.Namespace, inp: _Inputs, model, te: np.ndarray) -> list:
    from ..models.correlation import prompt_similarities, semantic_correlation

    z = np.asarray(inp.z[te], np.float64)
    if args.prompts:
        prompts = np.load(args.prompts)
        feats = prompt_similarities(z, prompts)
        names = (args.prompt_names.split(",") if args.prompt_names
                 else [f"prompt{i}" for i in range(feats.shape[1])])
    else:
        feats, names = inp.a[te].astype(np.float64), list(inp.names)
    zbar = np.asarray(model.encode(z), np.float64)
    panels = [semantic_correlation(feats, names, zbar=zbar, factor_sizes=model.factor_sizes,
                                   factor_names=list(model.names) + ["residual"]),
              semantic_correlation(feats, names, embeddings=z, k=min(8, z.shape[1]))]
    correlation_heatmaps(args.correlation, panels)
    write_json(os.path.splitext(args.correlation)[0] + ".json",
               {"command": "iin", "correlation": [p.as_dict() for p in panels], "rows": int(len(te))})
    return panels


def _write(args, inp: _Inputs, model, ev, decoded, corr, n_train: int, n_test: int, fit_s: float) -> None:
    result = {"names": list(inp.names), "classes": inp.classes, "factor_sizes": list(model.factor_sizes),
              "reconstruction_error": ev.reconstruction_error,
              "reconstruction_relative": ev.reconstruction_relative,
              "probe_accuracy": ev.probe_accuracy, "probe_rows": list(inp.names) + ["residual"],
              "chance": ev.chance, "raw_probe_accuracy": ev.raw_probe_accuracy,
              "flip_rate": ev.flip_rate, "collateral_rate": ev.collateral_rate,
              "success_rate": ev.success_rate, "edit_success": ev.edit_success,
              "train_rows": int(n_train), "test_rows": int(n_test), "fit_seconds": fit_s,
              "final_loss": float(model.losses[-1]) if model.losses.size else None,
              "best_step": model.best_step, "validation_history": model.validation_history}
    if decoded is not None:
        result["decoded_edits"] = decoded.as_dict()
    if corr is not None:
        result["correlation"] = [p.as_dict() for p in corr]
    config = {**{f: getattr(model.config, f) for f in model.config.__dataclass_fields__},
              "loaded_from": os.path.abspath(args.load) if args.load else None}
    write_json(args.json, {"command": "iin", "result": result, "config": config, "inputs": inp.prov,
                           "environment": environment()})


def _print_results(model, ev, names, n_train: int, n_test: int, fit_s: float, decoded=None) -> None:
    k = len(names)
    print(f"IIN  D={model.dim}  factors {list(model.factor_sizes)} (last = residual)  "
          f"train {n_train}  test {n_test}  fit {fit_s:.1f} s"
          + (f"  (checkpoint of step {model.best_step})" if model.best_step else ""))
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
    if decoded is not None:
        print(f"\ndecoded edits (probes on real images), VAE held-out reconstruction MSE "
              f"{decoded.reconstruction_error:.4f} per pixel")
        print(table([[names[f], float(decoded.probe_accuracy[f]), float(decoded.decoded_accuracy[f]),
                      float(decoded.flip_rate[f]), float(decoded.collateral_rate[f])] for f in range(k)],
                    ["attribute", "probe on real", "on reconstructions", "flipped to target", "collateral"]))
