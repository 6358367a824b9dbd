"""`clipcore vae`: train the small convolutional VAE of managed synthesis on images and report its held-out
reconstruction error; the saved model is what ``clipcore iin --vae`` edits on.

Images come from Fashion-MNIST (Debian's ``dataset-fashion-mnist``; Bags
excluded, as for the IIN's footwear / light attributes), scikit-learn's 8 × 8
digits, or a ``.npy`` file ``[n, H, W]`` (pixels in [0, 1], or uint8). A seeded
``--test-fraction`` is held out. Flax is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from ._common import environment, file_provenance, quiet_progress, table, write_json
from .figures import image_grid

__all__ = ["add_commands", "cmd_vae"]


def add_commands(sub) -> None:
    """Register ``clipcore vae``."""
    p = sub.add_parser(
        "vae", help="train a small convolutional VAE on images (the latent space clipcore iin --vae edits)",
        description="Fit a convolutional VAE (Flax NNX + optax; Bernoulli pixels, KL to N(0, I)) on images, report "
                    "the mean squared reconstruction error per pixel on held-out images (beside the mean image's), "
                    "save it, and draw held-out images above their reconstructions.")
    g = p.add_argument_group("inputs")
    g.add_argument("--data", choices=("fashion-mnist", "digits"), default=None,
                   help="Fashion-MNIST (28 × 28, no Bags) or scikit-learn digits (8 × 8)")
    g.add_argument("--images", default=None, metavar="X.npy", help="instead: images [n, H, W], H and W multiples of 4")
    g.add_argument("--n", type=int, default=None, help="--data fashion-mnist: images drawn (default 20000)")
    m = p.add_argument_group("model")
    m.add_argument("--latent-dim", type=int, default=16, help="size of z, even (default 16)")
    m.add_argument("--steps", type=int, default=3000, help="Adam steps (default 3000)")
    m.add_argument("--batch-size", type=int, default=128)
    m.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    m.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (default 1)")
    m.add_argument("--seed", type=int, default=0, help="initialisation, batches, the split and --data's draw")
    o = p.add_argument_group("outputs")
    o.add_argument("--test-fraction", type=float, default=0.2, help="held-out fraction (default 0.2)")
    o.add_argument("--save", default=None, metavar="VAE.safetensors", help="save the fitted model")
    o.add_argument("--json", default=None, metavar="OUT.json", help="write the figures and provenance")
    o.add_argument("--plot", default=None, metavar="OUT.png", help="held-out images and their reconstructions")
    o.add_argument("--quiet", action="store_true", help="print nothing, no progress bar")
    p.set_defaults(func=cmd_vae)


def _images(args: argparse.Namespace) -> tuple[np.ndarray, dict]:
    if (args.data is None) == (args.images is None):
        raise ValueError("data: give one of --data fashion-mnist / digits and --images X.npy")
    if args.images:
        x = np.load(args.images)
        return (x / 255.0 if x.dtype == np.uint8 else x), {"images": file_provenance(args.images, "images")}
    if args.data == "digits":
        from ..datasets import digits

        return digits().images / 16.0, {"data": "digits"}
    from ..models.iin_data import fashion_mnist_images

    x, _, _ = fashion_mnist_images(args.n or 20000, seed=args.seed)
    return x, {"data": "fashion-mnist", "n": int(len(x)), "seed": args.seed}


def cmd_vae(args: argparse.Namespace) -> int:
    """Run ``clipcore vae`` (see :func:`add_commands`)."""
    from ..models.vae import VAE, check_images

    x, prov = _images(args)
    x = check_images(x)[..., 0]
    n = len(x)
    n_test = int(round(args.test_fraction * n))
    if not 0.0 < args.test_fraction < 1.0 or n_test < 1 or n - n_test < 2:
        raise ValueError(f"test_fraction: {args.test_fraction} of n={n} leaves too few images to fit or test")
    perm = np.random.default_rng(args.seed).permutation(n)
    tr, te = np.sort(perm[n_test:]), np.sort(perm[:n_test])
    t0 = time.perf_counter()
    vae = VAE(args.latent_dim, steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
              beta=args.beta, seed=args.seed).fit(x[tr], progress=quiet_progress(args))
    fit_s = time.perf_counter() - t0
    err = vae.reconstruction_error(x[te])
    baseline = float(np.mean((x[te] - x[tr].mean(axis=0)) ** 2))
    if args.save:
        vae.save(args.save)
    if not args.quiet:
        print(f"VAE  {x.shape[1]}×{x.shape[2]} images, latent {args.latent_dim}, {args.steps} steps, fit {fit_s:.1f} s")
        print(table([["held-out reconstruction (MSE per pixel)", err], ["mean image (MSE per pixel)", baseline],
                     ["final negative ELBO per image", float(vae.history.loss[-1])]], ["", "value"]))
    if args.plot:
        show = te[:10]
        grid = np.stack([x[show], vae.decode(vae.encode(x[show]))], axis=0)
        image_grid(args.plot, grid, [f"#{i}" for i in show], title="held-out images (top) and reconstructions")
    if args.json:
        write_json(args.json, {"command": "vae", "result": {
            "reconstruction_mse": err, "mean_image_mse": baseline, "train_images": int(len(tr)),
            "test_images": int(len(te)), "fit_seconds": fit_s, "loss": vae.history.loss,
            "model": os.path.abspath(args.save) if args.save else None},
            "config": {**vae.config.__dict__}, "inputs": prov, "environment": environment()})
    if args.save and not args.quiet:
        print(f"wrote {args.save}")
    return 0
