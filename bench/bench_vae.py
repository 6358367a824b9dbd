"""Managed synthesis: the convolutional VAE's held-out reconstruction, and IIN edits of its latent judged on
the decoded images.

For Fashion-MNIST (Debian's dataset-fashion-mnist; Bags excluded) and scikit-learn's 8 × 8 digits: a
``clipcore.models.VAE`` is fitted on a seeded 80 % of the images and its mean squared reconstruction error
per pixel is measured on the other 20 % (beside the mean image's). On Fashion-MNIST an IIN (4 blocks,
hidden 128, lr 1e-3) is then fitted on the latent codes of 4500 of 6000 images with the attributes
footwear (Sandal / Sneaker / Ankle boot vs clothing) and light (mean intensity above the median), and
every held-out image is edited once per attribute (z̄_F ← the other class's mean), decoded, and read by
logistic-regression probes trained on real images' pixels: the flip rate (the probe reads the target
class; goal ≥ 0.90) and the collateral rate (the other attribute's reading changed from the unedited
reconstruction's).

    python3 bench/bench_vae.py [--fashion-n 20000] [--steps 3000] [--latent-dim 16] [--iin-steps 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def _fit_vae(name: str, x: np.ndarray, args) -> tuple:
    from clipcore.models import VAE

    perm = np.random.default_rng(args.seed).permutation(len(x))
    n_test = len(x) // 5
    tr, te = np.sort(perm[n_test:]), np.sort(perm[:n_test])
    t0 = time.perf_counter()
    vae = VAE(args.latent_dim, steps=args.steps, seed=args.seed).fit(x[tr], progress=False)
    fit_s = time.perf_counter() - t0
    err = vae.reconstruction_error(x[te])
    base = float(np.mean((x[te] - x[tr].mean(axis=0)) ** 2))
    print(f"| {name} | {x.shape[1]}×{x.shape[2]} | {len(tr)} / {len(te)} | {err:.4f} | {base:.4f} | "
          f"{err / base:.2f} | {fit_s:.0f} s |", flush=True)
    return vae


def _edits(vae, args) -> None:
    from clipcore.models import IIN, IINConfig, evaluate_decoded_edits, fashion_mnist_images

    x, a, _ = fashion_mnist_images(6000, seed=args.seed + 1)
    tr, te = slice(0, 4500), slice(4500, 6000)
    t0 = time.perf_counter()
    iin = IIN(IINConfig(num_blocks=4, hidden=128, learning_rate=1e-3, steps=args.iin_steps, seed=args.seed))
    iin.fit(vae.encode(x[tr]), a[tr], names=("footwear", "light"), progress=False)
    ev = evaluate_decoded_edits(vae, iin, x[tr], a[tr], x[te], a[te], seed=args.seed)
    print(f"\nIIN on the latent ({iin.factor_sizes} factor sizes, checkpoint of step {iin.best_step}, "
          f"{time.perf_counter() - t0:.0f} s), 1500 held-out images edited per attribute, decoded; probes on real "
          f"pixels (held-out VAE reconstruction MSE {ev.reconstruction_error:.4f}):\n")
    print("| attribute | probe on real images | on reconstructions | edit flips to target | collateral |")
    print("|---|---|---|---|---|")
    for f, name in enumerate(ev.names):
        print(f"| {name} | {ev.probe_accuracy[f]:.3f} | {ev.decoded_accuracy[f]:.3f} | {ev.flip_rate[f]:.3f} | "
              f"{ev.collateral_rate[f]:.3f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fashion-n", type=int, default=20000, help="Fashion-MNIST images for the VAE")
    ap.add_argument("--steps", type=int, default=3000, help="VAE Adam steps")
    ap.add_argument("--latent-dim", type=int, default=16)
    ap.add_argument("--iin-steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-digits", action="store_true")
    args = ap.parse_args(argv)
    import jax

    import clipcore
    from clipcore.models import fashion_mnist_images

    print(f"bench_vae: latent {args.latent_dim}, {args.steps} Adam steps of 128 images; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, jax {jax.__version__}\n")
    print("| data | size | fit / held out | held-out MSE per pixel | mean image's | ratio | fit time |")
    print("|---|---|---|---|---|---|---|")
    fashion = None
    try:
        x, _, _ = fashion_mnist_images(args.fashion_n, seed=args.seed)
        fashion = _fit_vae("Fashion-MNIST", x, args)
    except FileNotFoundError:
        print("| Fashion-MNIST | not installed (apt-get install dataset-fashion-mnist) | | | | | |")
    if not args.skip_digits:
        _fit_vae("digits", (clipcore.digits().images / 16.0).astype(np.float32), args)
    if fashion is not None:
        _edits(fashion, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
