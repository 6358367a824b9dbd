"""Conditional / Information Vendi (issue 19): speed against the authors' approach, scale, accuracy.

Jalali, Ospanov, Gohari & Farnia, "Conditional Vendi Score" (arXiv 2411.02817); the authors' code
(mjalali/conditional-vendi) forms the n×n kernels in torch and eigendecomposes them.

Parts (each method in a fresh process: time and peak RSS, ``VmHWM``):

  speed     n = 10⁴, d = 512 in memory: the authors' approach (torch float32 on this CPU: dense K_X,
            K_T, K_X ∘ K_T, three ``eigvalsh``; order 2 through ‖ρ‖_F²) against clipcore's paths, as a
            ratio in one run
  scale     n = 10⁶ from ``.npy`` files: the approximate orders (Nyström, RFF with the first of ``--rff``,
            random product features) and the exact order 2 (panels of the compiled ‖K‖_F² tiles) at
            ``--n-exact`` rows
  accuracy  every approximation against the exact dual at ``--n-accuracy`` rows (Gaussian at σ = the
            median heuristic per modality, and cosine), relative error of H(X|T), I(X;T), H(X,T), mean ±
            spread over seeds, like bench/accuracy.py

Data: synthetic CLIP-like pairs (``clipcore.synthetic_pairs``' model, drawn by chunks so 10⁶ rows fit:
20 prompt centres, 4 image modes, unit rows, float32).

    python bench/bench_conditional.py --part speed
    python bench/bench_conditional.py --part scale --n 1000000 --n-exact 100000
    python bench/bench_conditional.py --part accuracy --n-accuracy 10000 --seeds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

DATA = "/tmp/clipcore_bench_conditional"


# ------------------------------------------------------------------ data
def _l2n(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def make_data(directory: str, n: int, d: int, *, prompts: int = 20, modes: int = 4, seed: int = 0,
              chunk: int = 1 << 16) -> tuple[str, str]:
    """x.npy, t.npy of n pairs (float32) in ``directory`` (reused when present), drawn by chunks with the
    model of :func:`clipcore.synthetic_pairs` (signal 0.7, text noise 0.35, mode strength 0.5, noise 0.5)."""
    os.makedirs(directory, exist_ok=True)
    px, pt = (os.path.join(directory, f"{k}_n{n}_d{d}.npy") for k in ("x", "t"))
    if os.path.exists(px) and os.path.exists(pt):
        return px, pt
    rng = np.random.default_rng(seed)
    centres, mode_dirs = _l2n(rng.standard_normal((prompts, d))), _l2n(rng.standard_normal((modes, d)))
    X = np.lib.format.open_memmap(px + ".tmp", mode="w+", dtype=np.float32, shape=(n, d))
    T = np.lib.format.open_memmap(pt + ".tmp", mode="w+", dtype=np.float32, shape=(n, d))
    for k, a in enumerate(range(0, n, chunk)):
        b = min(n, a + chunk)
        r = np.random.default_rng([seed, k + 1])
        t = _l2n(centres[r.integers(0, prompts, b - a)] + 0.35 * r.standard_normal((b - a, d)) / np.sqrt(d))
        x = 0.7 * t + 0.5 * r.standard_normal((b - a, d)) / np.sqrt(d) + 0.5 * mode_dirs[r.integers(0, modes, b - a)]
        X[a:b], T[a:b] = x, t
    X.flush(), T.flush()
    del X, T
    os.replace(px + ".tmp", px)
    os.replace(pt + ".tmp", pt)
    return px, pt


# ------------------------------------------------------------------ the authors' approach (torch)
def peer(x: np.ndarray, t: np.ndarray, sx: float, st: float, order: float, dtype: str = "float32") -> dict:
    """The authors' computation (``ConditionalEvaluation.conditional_entropy``, algorithm 'kernel') in torch
    float32 on the CPU: dense n×n kernels, ρ_XT = K_X∘K_T / tr, three ``eigvalsh`` (order 2: ‖ρ‖_F²),
    entropies over p > 0. The kernels by one GEMM each (faster than their row loop)."""
    import torch

    torch.set_grad_enabled(False)
    X, T = (torch.from_numpy(np.ascontiguousarray(a, dtype)) for a in (x, t))

    def gauss(a, s):
        sq = (a * a).sum(1)
        return torch.exp(-(sq[:, None] + sq[None, :] - 2.0 * a @ a.T).clamp_min_(0) / (2.0 * s * s))

    def entropy(r):
        if order == 2:
            return float(-torch.log(torch.linalg.norm(r, "fro") ** 2))
        p = torch.linalg.eigvalsh(r)
        if np.isinf(order):
            return float(-torch.log(p.max()))
        p = p[p > 0]
        if order == 1:
            return float(-(p * torch.log(p)).sum())
        return float(torch.log((p ** order).sum()) / (1 - order))

    n = X.shape[0]
    kx, kt = gauss(X, sx), gauss(T, st)
    h = kx * kt
    hj = entropy(h / torch.trace(h))
    del h
    hx, ht = entropy(kx / n), entropy(kt / n)
    return {"conditional_entropy": hj - ht, "mutual_information": hx + ht - hj, "joint_entropy": hj}


# ------------------------------------------------------------------ one method, in its own process
def worker(spec: dict) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    import clipcore  # noqa: F401
    from clipcore.conditional import conditional_vendi

    px, pt = spec["x"], spec["t"]
    if spec.get("in_memory"):
        px, pt = np.load(px), np.load(pt)
    t0 = time.perf_counter()
    if spec["method"] == "peer":
        dt = spec.get("peer_dtype", "float32")
        out = peer(px, pt, spec["sigma"][0], spec["sigma"][1], spec["order"], dt)
        method = f"torch {dt} dense"
    else:
        r = conditional_vendi(px, pt, order=spec["order"], progress=False, **spec["kwargs"])
        out = {"conditional_entropy": r.conditional_entropy, "mutual_information": r.mutual_information,
               "joint_entropy": r.joint_entropy}
        method = f"{r.method} ({r.methods['joint']})"
    dt = time.perf_counter() - t0
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
    return {**out, "seconds": dt, "rss_gib": int(hwm) / 2**20, "path": method}


def run(spec: dict) -> dict | None:
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"FAILED {spec}\n{proc.stderr[-3000:]}", flush=True)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def sigmas(px: str, pt: str) -> tuple[float, float]:
    import clipcore

    return clipcore.median_sigma(np.load(px, mmap_mode="r")), clipcore.median_sigma(np.load(pt, mmap_mode="r"))


def header(title: str, n: int, d: int, sig) -> None:
    import clipcore

    print(f"\n## {title}\n\n{time.strftime('%Y-%m-%d %H:%M')}, n = {n}, d = {d}, σ = ({sig[0]:.4f}, {sig[1]:.4f}) "
          f"(median per modality), clipcore {clipcore.__version__}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at start\n", flush=True)


# ------------------------------------------------------------------ parts
def _speed_rows(order: float, g: dict) -> list[tuple[str, dict]]:
    """(label, worker spec) of the speed part's rows at one order; order 2 takes the exact ‖K‖_F² tiles and
    the authors' approach in float64 instead of Nyström."""
    def peer(dtype):
        return {"method": "peer", "kwargs": {}, "peer_dtype": dtype}

    def mine(**kw):
        return {"method": "clipcore", "kwargs": {**g, **kw}}

    rows = [("authors' approach: torch float32, dense n×n, eigvalsh", peer("float32")),
            ("clipcore default (auto: Nyström above 7168 rows, order 2 by ‖K‖_F² tiles)", mine()),
            ("clipcore exact dual (method='dual'), float64", mine(method="dual", dtype="float64")),
            ("clipcore exact dual (method='dual'), dtype='float32'", mine(method="dual", dtype="float32"))]
    if order == 2.0:
        return rows + [("authors' approach in float64 (torch)", peer("float64")),
                       ("clipcore exact ‖K‖_F² tiles, dtype='float32'", mine(dtype="float32", method="frobenius"))]
    return rows + [("clipcore Nyström m=2000, dtype='float32'", mine(landmarks=2000, dtype="float32"))]


def part_speed(args) -> None:
    px, pt = make_data(args.data, args.n_speed, args.d)
    sig = sigmas(px, pt)
    header("Conditional Vendi against the authors' approach (speed)", args.n_speed, args.d, sig)
    base = {"x": px, "t": pt, "in_memory": True, "sigma": list(sig)}
    print("| order | method | path | time s | vs authors | peak RSS GiB | H(X|T) | I(X;T) |\n|---|---|---|---|---|---|---|---|")
    for order in args.orders:
        ref = None
        for label, spec in _speed_rows(order, {"sigma": list(sig)}):
            r = run({**base, "order": order, **spec})
            if r is None:
                continue
            ref = ref or r
            print(f"| {order:g} | {label} | {r['path']} | {r['seconds']:.1f} | {ref['seconds'] / r['seconds']:.2f}× | "
                  f"{r['rss_gib']:.2f} | {r['conditional_entropy']:.6f} | {r['mutual_information']:.6f} |", flush=True)


def part_scale(args) -> None:
    px, pt = make_data(args.data, args.n, args.d)
    sig = sigmas(px, pt)
    header("Conditional Vendi at scale from files", args.n, args.d, sig)
    g = {"sigma": list(sig), "dtype": "float32"}
    rows = [(1.0, {**g}), (float("inf"), {**g}), (2.0, {**g}), (1.0, {**g, "rff_features": args.rff[0]}),
            (1.0, {"kernel": "cosine", "dtype": "float32"})]
    print("| n | order | options | path | time s | peak RSS GiB | H(X|T) | I(X;T) |\n|---|---|---|---|---|---|---|---|")
    jobs = [(args.n, px, pt, o, kw) for o, kw in rows]
    ex, et = make_data(args.data, args.n_exact, args.d)
    se = sigmas(ex, et)
    jobs += [(args.n_exact, ex, et, 2.0, {"sigma": list(se), "dtype": "float32", "method": "frobenius"}),
             (args.n_exact, ex, et, 2.0, {"kernel": "cosine", "dtype": "float32", "method": "frobenius"}),
             (args.n_exact, ex, et, 2.0, {"sigma": list(se), "dtype": "float32"})]
    for n, a, b, order, kw in jobs:
        r = run({"x": a, "t": b, "method": "clipcore", "order": order, "kwargs": kw})
        if r is not None:
            opts = ", ".join(f"{k}={v}" for k, v in kw.items() if k != "sigma")
            print(f"| {n} | {order:g} | {opts} | {r['path']} | {r['seconds']:.1f} | {r['rss_gib']:.2f} | "
                  f"{r['conditional_entropy']:.6f} | {r['mutual_information']:.6f} |", flush=True)


def _exact(x, t, kernel, sig, orders):
    """The exact dual entropies at every order from one set of spectra (clipcore's n×n path, float64)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from clipcore import product_kernel as PK
    from clipcore.entropy import Spectrum

    kw = dict(sigma_x=sig[0], sigma_t=sig[1]) if kernel == "gaussian" else {}
    spectra = [np.asarray(e, np.float64) for e in PK.dual_spectra(x, t, kernel=kernel, **kw)]
    out = {}
    for order in orders:
        hj, hx, ht = (PK.spectrum_entropy_host(Spectrum(e), order, top_k=None, n=x.shape[0]) for e in spectra)
        out[order] = {"conditional_entropy": hj - ht, "mutual_information": hx + ht - hj, "joint_entropy": hj}
    return out


def _configs(args):
    for m in args.landmarks:
        yield "gaussian", f"Nyström m={m}", {"landmarks": m}
    for D in args.rff:
        yield "gaussian", f"RFF D={D}", {"rff_features": D}
    for D in args.product:
        yield "cosine", f"product features D={D}", {"rff_features": D}


def part_accuracy(args) -> None:
    import warnings

    warnings.simplefilter("ignore")
    from clipcore.conditional import conditional_vendi

    px, pt = make_data(args.data, args.n_accuracy, args.d)
    x, t = np.load(px).astype(np.float64), np.load(pt).astype(np.float64)
    sig = sigmas(px, pt)
    header("Conditional Vendi: accuracy of the approximations against the exact dual", args.n_accuracy, args.d, sig)
    t0 = time.perf_counter()
    exact = {k: _exact(x, t, k, sig, args.orders) for k in ("gaussian", "cosine")}
    print(f"exact dual (both kernels, {len(args.orders)} orders from one set of spectra each): "
          f"{time.perf_counter() - t0:.0f} s\n")
    for k, v in exact.items():
        print(f"- {k}: " + "; ".join(f"order {o:g}: H(X|T) {e['conditional_entropy']:.4f}, I {e['mutual_information']:.4f}"
                                     for o, e in v.items()))
    print("\n| kernel | method | estimate | order | H(X|T) | I(X;T) | H(X,T) | s/call |\n|---|---|---|---|---|---|---|---|")
    for kernel, label, kw in _configs(args):
        for order in args.orders:
            errs: dict = {}
            secs = []
            for seed in range(args.seeds):
                c0 = time.perf_counter()
                r = conditional_vendi(x, t, kernel=kernel, sigma=sig if kernel == "gaussian" else None, order=order,
                                      key=seed, dtype="float32", progress=False, **kw)
                secs.append(time.perf_counter() - c0)
                ests = r.estimates or {"–": r._asdict()}
                for est, e in ests.items():
                    for name in ("conditional_entropy", "mutual_information", "joint_entropy"):
                        truth = exact[kernel][order][name]
                        errs.setdefault(est, {}).setdefault(name, []).append((e[name] - truth) / abs(truth))
            for est, by in errs.items():
                cells = [f"{100 * np.mean(v):+.2f} ± {50 * (max(v) - min(v)):.2f} %" for v in by.values()]
                print(f"| {kernel} | {label} | {est} | {order:g} | " + " | ".join(cells) + f" | {np.mean(secs):.1f} |",
                      flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=("speed", "scale", "accuracy"), default="speed")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--n-speed", type=int, default=10_000)
    ap.add_argument("--n-exact", type=int, default=100_000)
    ap.add_argument("--n-accuracy", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--orders", default="1,2,inf")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--landmarks", default="500,1000,2000")
    ap.add_argument("--rff", default="2000,4000")
    ap.add_argument("--product", default="2048,4096,8192")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    args.orders = [float(v) for v in args.orders.split(",")]
    args.landmarks = [int(v) for v in args.landmarks.split(",") if v]
    args.rff = [int(v) for v in args.rff.split(",") if v]
    args.product = [int(v) for v in args.product.split(",") if v]
    {"speed": part_speed, "scale": part_scale, "accuracy": part_accuracy}[args.part](args)


if __name__ == "__main__":
    main()
