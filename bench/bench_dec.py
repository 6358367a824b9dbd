"""DEC against its baselines on real images, in one run (issue 7).

For each data set, in the same process and with the same seed:

1. k-means (scikit-learn, ``n_init=20``) on the pixels;
2. AE + k-means: k-means (``n_init=20``) on the pretrained autoencoder's
   10-d embedding (the centres DEC starts from);
3. DEC (clipcore.models.DEC): the KL(P‖Q) stage started from (2).

Metrics: ACC (Hungarian), ARI, AMI, NMI, FMI (clipcore.cluster_metrics), with
wall times.  Inputs: Fashion-MNIST pixels / 255 (70 000 images, 784-d) and
scikit-learn's digits pixels / 16 (1797, 64-d); DEC then multiplies them by
one global factor so that (1/d)‖x‖² ≈ 1 on average (the paper's scaling; it
changes nothing for k-means, which is scale invariant).

The published schedule (50 000 layer-wise + 100 000 fine-tuning pretraining
steps, up to 20 000 clustering steps) takes many hours on 2 CPU cores; the
schedule here is set by the flags and printed with the table.

Usage: python bench/bench_dec.py [--data fashion-mnist,digits] [--pretrain-steps 5000]
         [--max-steps 5000] [--digits-pretrain-steps 2000] [--seed 0] [--json OUT.json]
         [--pretrain layerwise --layerwise-steps N]   (the paper's greedy stage, shortened)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

PUBLISHED = {
    "fashion-mnist": "published DEC on Fashion-MNIST pixels: ACC ≈ 0.52–0.65, NMI ≈ 0.55–0.61; "
                     "k-means ACC ≈ 0.47, NMI ≈ 0.51",
    "digits": "no published DEC figure for scikit-learn digits",
}


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    import clipcore

    if name == "fashion-mnist":
        d = clipcore.fashion_mnist("all")
        return d.images.reshape(len(d.images), -1).astype(np.float32) / 255.0, d.labels
    if name == "digits":
        d = clipcore.digits()
        return (d.images.reshape(len(d.images), -1) / 16.0).astype(np.float32), d.labels
    raise SystemExit(f"unknown data set {name!r}")


def run(name: str, pretrain_steps: int, max_steps: int, seed: int, quiet: bool, pretrain: str = "end-to-end",
        layerwise_steps: int = 0) -> dict:
    from sklearn.cluster import KMeans

    import clipcore
    from clipcore.models import DEC

    x, y = load(name)
    n, d = x.shape
    out: dict = {"data": name, "n": n, "d": d, "seed": seed}

    t0 = time.perf_counter()
    km = KMeans(10, n_init=20, random_state=seed).fit(x.astype(np.float64))
    t_km = time.perf_counter() - t0

    t0 = time.perf_counter()
    dec = DEC(10, pretrain=pretrain, pretrain_steps=pretrain_steps, layerwise_steps=layerwise_steps,
              max_steps=max_steps, seed=seed, progress=not quiet).fit(x)
    t_dec = time.perf_counter() - t0
    h = dec.history
    rows = {
        "k-means": (clipcore.cluster_metrics(y, km.labels_), t_km),
        "AE + k-means": (clipcore.cluster_metrics(y, h.init_labels), h.pretrain_seconds + h.kmeans_seconds),
        "DEC": (clipcore.cluster_metrics(y, dec.labels_), t_dec),
    }
    out["schedule"] = {
        "pretrain": (f"end-to-end, {pretrain_steps} Adam steps (lr {dec.config.pretrain_lr}, batch "
                     f"{dec.config.batch_size}) = {pretrain_steps * dec.config.batch_size / n:.1f} epochs"
                     if pretrain == "end-to-end" else
                     f"layer-wise denoising (dropout {dec.config.layerwise_dropout}), {layerwise_steps} SGD steps per "
                     f"layer, then {pretrain_steps} fine-tuning steps; SGD lr {dec.config.sgd_lr} /10 every "
                     f"{dec.config.sgd_lr_drop_every}, batch {dec.config.batch_size}"),
        "cluster": f"SGD lr {dec.config.lr} momentum {dec.config.momentum}, batch {dec.config.batch_size}, "
                   f"update_interval {dec.config.update_interval}, tol {dec.config.tol}, max_steps {max_steps}",
        "clustering_steps_taken": h.steps, "converged": h.converged,
        "input_scale": dec.scale,
    }
    out["seconds"] = {"kmeans_pixels": t_km, "pretrain": h.pretrain_seconds, "kmeans_embedding": h.kmeans_seconds,
                      "dec_cluster": h.cluster_seconds, "dec_total": t_dec}
    out["metrics"] = {k: {**m._asdict(), "seconds": t} for k, (m, t) in rows.items()}
    beats = {f: getattr(rows["DEC"][0], f) > getattr(rows["k-means"][0], f)
             for f in ("acc", "ari", "ami", "nmi", "fmi")}
    out["dec_beats_kmeans"] = beats
    return out


def show(res: dict) -> None:
    print(f"\n== {res['data']}: n={res['n']}, d={res['d']}, seed={res['seed']}")
    print(f"   {res['schedule']['pretrain']}")
    print(f"   {res['schedule']['cluster']}; took {res['schedule']['clustering_steps_taken']} steps, "
          f"converged={res['schedule']['converged']}")
    hdr = f"{'method':<14}{'ACC':>8}{'ARI':>8}{'AMI':>8}{'NMI':>8}{'FMI':>8}{'seconds':>10}"
    print(hdr)
    print("-" * len(hdr))
    for k, m in res["metrics"].items():
        print(f"{k:<14}{m['acc']:>8.4f}{m['ari']:>8.4f}{m['ami']:>8.4f}{m['nmi']:>8.4f}{m['fmi']:>8.4f}"
              f"{m['seconds']:>10.1f}")
    s = res["seconds"]
    print(f"DEC time: pretrain {s['pretrain']:.1f} s + k-means on z {s['kmeans_embedding']:.1f} s + "
          f"KL stage {s['dec_cluster']:.1f} s = {s['dec_total']:.1f} s")
    b = res["dec_beats_kmeans"]
    print("DEC > k-means on " + ", ".join(f"{k.upper()}: {'yes' if v else 'NO'}" for k, v in b.items()))
    print(PUBLISHED[res["data"]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="fashion-mnist,digits")
    ap.add_argument("--pretrain-steps", type=int, default=5000, help="Fashion-MNIST pretraining steps")
    ap.add_argument("--max-steps", type=int, default=5000, help="Fashion-MNIST clustering steps (upper bound)")
    ap.add_argument("--digits-pretrain-steps", type=int, default=2000)
    ap.add_argument("--digits-max-steps", type=int, default=5000)
    ap.add_argument("--pretrain", choices=("end-to-end", "layerwise"), default="end-to-end")
    ap.add_argument("--layerwise-steps", type=int, default=0, help="steps per layer with --pretrain layerwise")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()

    import jax

    print(f"python {platform.python_version()}, jax {jax.__version__}, {os.cpu_count()} CPUs, {jax.devices()[0]}")
    results = []
    for name in a.data.split(","):
        name = name.strip()
        if name == "digits":
            res = run(name, a.digits_pretrain_steps, a.digits_max_steps, a.seed, a.quiet, a.pretrain,
                      a.layerwise_steps)
        else:
            res = run(name, a.pretrain_steps, a.max_steps, a.seed, a.quiet, a.pretrain, a.layerwise_steps)
        show(res)
        sys.stdout.flush()
        results.append(res)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2, default=float)


if __name__ == "__main__":
    main()
