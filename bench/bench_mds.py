"""Neural MDS against its peers, side by side in one run (issue 6).

n = 5000 seeded synthetic pairs (clipcore.synthetic_pairs with a CLIP-like
modality gap), d = 512.  For each D': neural MDS (isometric, isotonic) time
per epoch and final top-1, PCA and a random projection (instant), and
scikit-learn's MDS (metric and non-metric SMACOF) on a seeded subsample of
pairs where it finishes in reasonable time: it needs the full (2m)² distance
matrix and has no out-of-sample transform, so it is fitted on images and
captions together.  All top-1 figures are in-sample (every method sees the
pairs it is scored on); sklearn's are on its subsample, beside the full-D
top-1 of that same subsample.

``--intrinsic K`` lifts a K-dimensional synthetic set into d dimensions by a
random orthonormal map (a set whose distances a D' ≥ K map can keep).

Usage: python bench/bench_mds.py [--n 5000] [--d 512] [--dims 16,64,256] [--sklearn-max 500] [--holdout F] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np

import clipcore
from clipcore.models.mds_eval import run_mds

HERE = pathlib.Path(__file__).resolve().parent


def data(n: int, d: int, intrinsic: int, seed: int):
    if intrinsic <= 0:
        p = clipcore.synthetic_pairs(n=n, d=d, gap=0.8, seed=seed)
        return p.images, p.texts
    p = clipcore.synthetic_pairs(n=n, d=intrinsic, gap=0.8, seed=seed, text_noise=0.5, noise=0.25, mode_strength=0.25)
    q, _ = np.linalg.qr(np.random.default_rng(seed + 100).standard_normal((d, intrinsic)))
    return (p.images @ q.T).astype(np.float32), (p.texts @ q.T).astype(np.float32)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--intrinsic", type=int, default=0, help="lift a K-dim set into d dims (0: plain synthetic_pairs)")
    ap.add_argument("--dims", default="16,64,256")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--steps-per-epoch", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--sklearn-max", type=int, default=500, help="pairs given to scikit-learn MDS (0: skip)")
    ap.add_argument("--sklearn-max-iter", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--holdout", type=float, default=0.0, help="fraction of pairs held out (fit on the rest)")
    ap.add_argument("--metrics-size", type=int, default=65536, help="quads / pairs behind the quad fraction")
    ap.add_argument("--quick", action="store_true", help="n=1000, dims 16,64, 2 epochs (a smoke run)")
    ap.add_argument("--json", default=None, help="also write all figures here")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.dims, args.epochs = 1000, "16,64", 2
    dims = [int(x) for x in args.dims.split(",")]
    images, texts = data(args.n, args.d, args.intrinsic, args.seed)
    import jax
    import sklearn

    print(f"bench_mds: n={args.n} pairs, d={args.d}, intrinsic={args.intrinsic or 'full'}, dims={dims}, "
          f"epochs={args.epochs} x {args.steps_per_epoch} steps x batch {args.batch_size}, hidden={args.hidden}; "
          f"sklearn on {args.sklearn_max} pairs; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cpus, jax {jax.__version__}, sklearn {sklearn.__version__}", flush=True)
    methods = ["isometric", "isotonic", "pca", "random"] + (["sklearn-metric", "sklearn-nonmetric"]
                                                            if args.sklearn_max > 0 else [])
    t0 = time.perf_counter()
    payload = run_mds(images, texts, dims, methods, sklearn_max=args.sklearn_max,
                      sklearn_max_iter=args.sklearn_max_iter, seed=args.seed, progress=False,
                      holdout=args.holdout, metrics_size=args.metrics_size,
                      log=lambda s: print("  " + s, flush=True), epochs=args.epochs,
                      steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size, hidden=(args.hidden,))
    total = time.perf_counter() - t0

    full = payload["full"]["top1_image_to_text"]
    sub = payload.get("sklearn_subsample")
    print(f"\nfull D={args.d}: image->text top-1 {full:.4f} (all {payload['n']} fitted pairs)"
          + (f"; {sub['full']['top1_image_to_text']:.4f} on the sklearn subsample of {sub['pairs']} pairs" if sub else ""))
    ho = "holdout" in payload
    print(f"\nquads kept: fraction of {args.metrics_size} seeded evaluation quads (seed {args.seed}) whose order "
          f"is kept; best epoch: the epoch whose parameters the neural model keeps (0 = its PCA start)")
    if ho:
        h = payload["holdout"]
        print(f"held out: {h['pairs']} pairs (seed {h['seed']}), full-D top-1 there {h['full']['top1_image_to_text']:.4f}; "
              f"the other figures are on the {h['fit_pairs']} fitted pairs")
    print("\n| method | D' | top-1 i→t | / full D | top-1 t→i | quads kept | Spearman ρ | fit time | s / epoch | best epoch |"
          + (" held-out top-1 i→t |" if ho else ""))
    print("|---|---|---|---|---|---|---|---|---|---|" + ("---|" if ho else ""))
    for method in methods:
        for k in dims:
            e = payload["results"][method].get(str(k))
            if e is None:
                continue
            ref = sub["full"]["top1_image_to_text"] if method.startswith("sklearn") else full
            per_epoch = "-"
            if "history" in e and len(e["history"]) > 1:
                per_epoch = f"{np.median([h['seconds'] for h in e['history'][1:]]):.2f} s"
            print(f"| {method}{' (' + str(e['pairs']) + ' pairs)' if 'pairs' in e else ''} | {k} | "
                  f"{e['top1_image_to_text']:.4f} | {e['top1_image_to_text'] / ref:.2f} | "
                  f"{e['top1_text_to_image']:.4f} | {e['quad_fraction']:.4f} | {e['spearman']:.3f} | "
                  f"{e['fit_seconds']:.1f} s | {per_epoch} | {e.get('best_epoch', '-')} |"
                  + (f" {e['holdout']['top1_image_to_text']:.4f} |" if ho and e.get("holdout") else
                     (" - |" if ho else "")))
    if sub:
        print("\nfit time, neural MDS (all pairs) / scikit-learn MDS (subsample):")
        for k in dims:
            sk = payload["results"]["sklearn-metric"].get(str(k))
            for m in ("isometric", "isotonic"):
                e = payload["results"][m].get(str(k))
                if sk and e:
                    print(f"  D'={k}: {m} {e['fit_seconds']:.1f} s ({args.n} pairs) vs sklearn metric "
                          f"{sk['fit_seconds']:.1f} s ({sk['pairs']} pairs): ratio {e['fit_seconds'] / sk['fit_seconds']:.2f}")
    print(f"\ntotal {total:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
