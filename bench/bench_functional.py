"""clipcore.functional: forward vs value_and_grad, host API vs functional, bank ∪ batch vs recomputing.

1. Forward and ``jax.value_and_grad`` (in the images) of log SCE and log Vendi, cosine and Gaussian RFF,
   n = 10⁴, d = 512, jitted, in float32 with x64 off (JAX's default: float32 everything, compensated sums)
   and in float64 (x64 on). Goal: the gradient step ≤ 3× the forward.
2. The host API (``clipcore.sce`` / ``clipcore.vendi``: float64 by default, the compiled core) against the
   jitted functional forward doing the same float64 computation. Goal: within 10 %.
3. Bank ∪ batch: the score of a 10⁴-row bank united with a 256-row batch and its gradient in the batch,
   from the bank's precomputed moments (O(b·D² + D³)) vs recomputing from the 10⁴ + 256 rows.

Each timing is the best of ``--repeats`` calls after a warm-up call (compilation excluded), the
candidates of one table interleaved so the shared machine's load hits them alike; medians are printed too.

Usage: python bench/bench_functional.py [--n 10000] [--d 512] [--rff 512] [--batch 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import clipcore
import clipcore.functional as F


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, load {load:.1f}, jax {jax.__version__} ({jax.default_backend()}), "
            f"numpy {np.__version__}, python {platform.python_version()}")


def timed(fns: dict, repeats: int) -> dict:
    """Best and median seconds of each ``fn()`` (after one warm-up call each), calls interleaved."""
    for fn in fns.values():
        jax.block_until_ready(fn())
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            times[k].append(time.perf_counter() - t0)
    return {k: dict(best=min(v), median=float(np.median(v))) for k, v in times.items()}


def data(n: int, d: int, rff: int):
    pairs = clipcore.synthetic_pairs(n=n, d=d, num_prompts=50, num_modes=16, gap=0.5, seed=0)
    omega = np.random.default_rng(1).normal(size=(d, rff)) / 0.8  # rows are unit vectors: σ = 0.8
    return np.asarray(pairs.images, np.float32), np.asarray(pairs.texts, np.float32), omega


def scores(kernel: str, omega):
    kw = {} if kernel == "cosine" else dict(kernel="gaussian", omega=omega)
    return {"SCE": lambda x, t: F.sce(x, t, **kw).log_sce, "Vendi": lambda x, t: F.vendi(x, **kw).log_score}


def forward_vs_gradient(x, t, omega, repeats: int, x64: bool) -> list[dict]:
    rows = []
    with jax.enable_x64(x64):
        dt = jnp.float64 if x64 else jnp.float32
        xa, ta, om = jnp.asarray(x, dt), jnp.asarray(t, dt), jnp.asarray(omega, dt)
        for kernel in ("cosine", "rff"):
            for name, f in scores(kernel, om).items():
                fwd, vg = jax.jit(f), jax.jit(jax.value_and_grad(f))
                r = timed({"fwd": lambda: fwd(xa, ta), "vg": lambda: vg(xa, ta)}, repeats)
                rows.append(dict(precision="float64" if x64 else "float32 (x64 off)", score=name, kernel=kernel,
                                 forward=r["fwd"], value_and_grad=r["vg"],
                                 ratio=r["vg"]["best"] / r["fwd"]["best"]))
    return rows


def host_vs_functional(x, t, omega, repeats: int) -> list[dict]:
    rows = []
    with jax.enable_x64(True):
        xa, ta, om = jnp.asarray(x, jnp.float64), jnp.asarray(t, jnp.float64), jnp.asarray(omega)
        for kernel in ("cosine", "rff"):
            kw = {} if kernel == "cosine" else dict(kernel="gaussian", omega=omega)
            fkw = {} if kernel == "cosine" else dict(kernel="gaussian", omega=om)
            f_sce, f_vendi = jax.jit(lambda a, b: F.sce(a, b, **fkw)), jax.jit(lambda a: F.vendi(a, **fkw))
            r = timed({"host sce": lambda: clipcore.sce(xa, ta, progress=False, **kw).sce,
                       "functional sce": lambda: f_sce(xa, ta).sce,
                       "host vendi": lambda: clipcore.vendi(xa, progress=False, **kw).score,
                       "functional vendi": lambda: f_vendi(xa).score}, repeats)
            agree = abs(float(f_sce(xa, ta).sce) / clipcore.sce(xa, ta, progress=False, **kw).sce - 1)
            for name in ("sce", "vendi"):
                h, f = r[f"host {name}"], r[f"functional {name}"]
                rows.append(dict(score=name, kernel=kernel, host=h, functional=f, ratio=f["best"] / h["best"],
                                 sce_rel_diff=agree))
    return rows


def bank_and_batch(x, t, batch: int, repeats: int) -> list[dict]:
    rows = []
    for x64 in (False, True):
        with jax.enable_x64(x64):
            dt = jnp.float64 if x64 else jnp.float32
            bank_x, bank_t = jnp.asarray(x[:-batch], dt), jnp.asarray(t[:-batch], dt)
            bx, bt = jnp.asarray(x[-batch:], dt), jnp.asarray(t[-batch:], dt)
            bank = jax.block_until_ready(F.moments(bank_x, bank_t))
            update = jax.jit(jax.value_and_grad(lambda b: F.sce_from_moments(bank + F.moments(b, bt)).log_sce))
            redo = jax.jit(jax.value_and_grad(lambda b: F.sce(jnp.concatenate([bank_x, b]),
                                                               jnp.concatenate([bank_t, bt])).log_sce))
            bank_time = timed({"bank": lambda: F.moments(bank_x, bank_t)}, repeats)["bank"]
            r = timed({"update": lambda: update(bx), "recompute": lambda: redo(bx)}, repeats)
            diff = abs(float(update(bx)[0]) - float(redo(bx)[0]))
            rows.append(dict(precision="float64" if x64 else "float32 (x64 off)", bank_moments=bank_time,
                             update=r["update"], recompute=r["recompute"],
                             speedup=r["recompute"]["best"] / r["update"]["best"], log_sce_abs_diff=diff))
    return rows


def ms(t: dict) -> str:
    return f"{t['best'] * 1e3:8.1f} ({t['median'] * 1e3:8.1f})"


def report(args, fg, hf, bb) -> None:
    print(f"# bench_functional  {time.strftime('%Y-%m-%d %H:%M')}  {machine()}")
    print(f"n = {args.n}, d = {args.d}, RFF: {args.rff} frequencies ({2 * args.rff} features); ms: best (median) "
          f"of {args.repeats}\n")
    print("## 1. forward vs value_and_grad in the images (jit); goal: ratio ≤ 3\n")
    print("| precision | score | kernel | forward ms | value_and_grad ms | ratio |\n|---|---|---|---|---|---|")
    for r in fg:
        print(f"| {r['precision']} | {r['score']} | {r['kernel']} | {ms(r['forward'])} | {ms(r['value_and_grad'])} "
              f"| {r['ratio']:.2f} |")
    print("\n## 2. host API vs jitted functional forward, float64; goal: within 10 %\n")
    print("| score | kernel | host ms | functional ms | functional / host | SCE rel. diff |\n|---|---|---|---|---|---|")
    for r in hf:
        print(f"| {r['score']} | {r['kernel']} | {ms(r['host'])} | {ms(r['functional'])} | {r['ratio']:.2f} "
              f"| {r['sce_rel_diff']:.1e} |")
    print(f"\n## 3. bank ({args.n - args.batch} rows) ∪ batch ({args.batch} rows), cosine: value_and_grad in the "
          "batch\n")
    print("| precision | bank moments ms (once) | update from moments ms | recompute ms | speed-up | "
          "|Δ log SCE| |\n|---|---|---|---|---|---|")
    for r in bb:
        print(f"| {r['precision']} | {ms(r['bank_moments'])} | {ms(r['update'])} | {ms(r['recompute'])} | "
              f"{r['speedup']:.1f}× | {r['log_sce_abs_diff']:.1e} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--rff", type=int, default=512, help="RFF frequencies D (2D features)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    warnings.simplefilter("ignore", UserWarning)  # the host's notes on how far RFF is from the exact kernel
    x, t, omega = data(args.n, args.d, args.rff)
    fg = forward_vs_gradient(x, t, omega, args.repeats, False) + forward_vs_gradient(x, t, omega, args.repeats, True)
    hf = host_vs_functional(x, t, omega, args.repeats)
    bb = bank_and_batch(x, t, args.batch, args.repeats)
    report(args, fg, hf, bb)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=machine(), date=time.strftime("%Y-%m-%d"), args=vars(args), forward_vs_grad=fg,
                           host_vs_functional=hf, bank_and_batch=bb), f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
