"""Nyström Gram of the Gaussian kernel at n = 10⁵, d = 512, m = 2000: clipcore vs scikit-learn.

Issue 3, "Speed": clipcore's streamed Nyström covariance + eigenvalues
against scikit-learn's ``Nystroem(...).fit_transform`` followed by the
covariance ΦᵀΦ/n and ``scipy.linalg.eigvalsh`` (the peer a user would
write), on the same float32 data and the same m uniformly chosen landmarks.
Each method runs in its own process so its peak RSS (``VmHWM``) is its
own; the data (a seeded clustered float32 set written once to a .npy file
and memory-mapped, 0.2 GB) is counted in every process alike.

    python bench/bench_nystrom.py                  # n=1e5, d=512, m=2000
    python bench/bench_nystrom.py --n 20000        # quicker

Methods:
  sklearn      Nystroem(kernel="rbf", gamma=1/(2σ²), n_components=m).fit_transform(X) (float64 [n, m]),
               C = ΦᵀΦ/n, scipy eigvalsh
  ffi-kernel   clipcore compiled core, strategy "kernel": Σ k(B,L)ᵀk(B,L) in float64, then WᵀMW
  ffi-whiten   compiled core, strategy "whiten": Φ_B = k(B,L)W in float32, ΦᵀΦ summed in float64
  jax          the pure-JAX twin (whiten, float32 tiles, float64 sums)
  api          clipcore.vendi(X, kernel="gaussian", landmarks=m, landmark_method="uniform",
               dtype="float32"): the whole user call (landmarks, map, pass, eigenvalues, tail estimate)
               on the array in memory
  api-file     the same call on the .npy path: streamed from disk in blocks (the bounded-memory path;
               its peak RSS is what the call itself needs, the data are never whole in memory)
  api-file-pc  the same streamed call with the default landmarks (greedy pivoted Cholesky on a seeded pool)
  sce-file     clipcore.sce(images.npy, texts.npy, kernel="gaussian", landmarks=m, uniform, float32),
               streamed: the paired pass ([2m, 2m] Gram) with the Schur solve; texts are a second seeded
               file (each image's cluster centre plus its own noise) written beside the data

The float64-exact FLOP floor: the kernel tile 2·n·m·d at the float32 GEMM rate plus the float64 syrk
n·m² at the float64 rate (accumulating k(B,L)ᵀk(B,L) in float32 is wrong, see
bench/nystrom_f32_accumulation.py; whitening first costs 2·n·m·r more). The table prints it and the
largest speed-up over scikit-learn it allows.

FLOPs counted per method: kernel tile 2·n·m·d (GEMM) + n·m exp; whitening
2·n·m·r; accumulation n·r² (syrk, float32 for whiten) or n·m² (float64 syrk
for kernel). The machine's GEMM rate is measured in the same run with
NumPy's float32 and float64 GEMM (4096², best of 3) and each method's
achieved rate is reported against it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def texts_path(path: str) -> str:
    return path[:-4] + ".texts.npy" if path.endswith(".npy") else path + ".texts.npy"


def make_data(path: str, n: int, d: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    t = np.lib.format.open_memmap(texts_path(path), mode="w+", dtype=np.float32, shape=(n, d))
    rng_t = np.random.default_rng(seed + 1)  # texts: their own stream, so the images are as before
    for i in range(0, n, 10_000):
        b = min(10_000, n - i)
        c = centres[rng.integers(0, 20, b)]
        for out, noise, g in ((x, 0.6, rng), (t, 0.3, rng_t)):  # a text: its image's centre plus its own noise
            blk = c + noise * g.standard_normal((b, d), dtype=np.float32) / np.sqrt(d)
            blk /= np.linalg.norm(blk, axis=1, keepdims=True)
            out[i : i + b] = blk
    x.flush()
    t.flush()
    sample = np.asarray(x[:2000], np.float64)
    sq = (sample * sample).sum(1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * sample @ sample.T, 0))
    return float(np.median(dist[np.triu_indices(2000, 1)]))


def peak_rss_gib() -> float:
    """This process's peak resident set (``VmHWM``), in GiB.

    Not ``ru_maxrss``: Linux carries the parent's resident set at fork into
    the child's ``ru_maxrss`` across exec, so a child started by a parent
    holding 0.5 GB (this script after its GEMM-rate probe) reported at least
    that much whatever it used itself. ``VmHWM`` belongs to the exec'd
    process's own memory map.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20  # kB → GiB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB (not Linux)


def gemm_rate(dtype) -> float:
    a = np.random.default_rng(0).standard_normal((4096, 4096)).astype(dtype)
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t0)
    return 2 * 4096**3 / best


def run_one(method: str, path: str, m: int, sigma: float, repeats: int) -> dict:
    x = np.load(path, mmap_mode="r")
    n, d = x.shape
    idx = np.sort(np.random.default_rng(1).choice(n, m, replace=False))
    # the api methods choose their own landmarks: reading these rows from the memmap would put file pages
    # (the kernel's fault-around reads ahead) into that process's RSS
    api = method in ("api", "api-file", "api-file-pc", "sce-file")
    L = None if api else np.asarray(x[idx])
    gamma = 1.0 / (2 * sigma * sigma)
    times = []
    if method == "sklearn":
        import scipy.linalg
        from sklearn.kernel_approximation import Nystroem

        X = np.asarray(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            # basis_index fixed to the same landmarks: Nystroem samples its own with random_state;
            # fitting on X[idx] with n_components=m takes exactly those rows.
            ny = Nystroem(kernel="rbf", gamma=gamma, n_components=m, random_state=0).fit(L)
            phi = ny.transform(X)
            c = phi.T @ phi / n
            eigs = scipy.linalg.eigvalsh(c)
            times.append(time.perf_counter() - t0)
        r = phi.shape[1]
        trace = float(eigs.sum())
        flops = 2 * n * m * d + 2 * n * m * r + n * r * r
    else:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        import clipcore
        from clipcore import nystrom as N
        from clipcore._ffi import eigvalsh

        if method == "api":
            X_host = np.asarray(x)
        elif not api:
            X = jnp.asarray(np.asarray(x))
        if api:
            del x  # the call reads the data itself (the -file methods: by blocks from disk)
        else:
            nmap = N.nystrom_map(L, sigma)
        for rep in range(repeats + 1):
            t0 = time.perf_counter()
            if method == "sce-file":
                res = clipcore.sce(path, texts_path(path), kernel="gaussian", sigma=sigma, landmarks=m,
                                   landmark_method="uniform", dtype="float32", progress=False)
                trace = res.nystrom["captured_trace"]
                r = res.nystrom["rank"]
            elif api:
                res = clipcore.vendi(X_host if method == "api" else path, kernel="gaussian", sigma=sigma,
                                     landmarks=m, landmark_method="pivoted-cholesky" if method == "api-file-pc"
                                     else "uniform", dtype="float32", progress=False)
                trace = res.nystrom["captured_trace"]
                r = res.nystrom["rank"]
            else:
                backend, strategy = {"ffi-kernel": ("ffi", "kernel"), "ffi-whiten": ("ffi", "whiten"),
                                     "jax": ("jax", "whiten")}[method]
                r = nmap.rank
                c = N.nystrom_covariance(X, nmap, backend=backend, strategy=strategy)
                eigs = np.asarray(eigvalsh(c))
                trace = float(eigs.sum())
            if rep > 0:  # first call compiles
                times.append(time.perf_counter() - t0)
        if method == "sce-file":
            flops = 2 * (2 * n * m * d) + n * (2 * m) ** 2
        elif method in ("ffi-kernel", "api", "api-file", "api-file-pc"):
            flops = 2 * n * m * d + n * m * m
        else:
            flops = 2 * n * m * d + 2 * n * m * r + n * r * r
    rss = peak_rss_gib()
    return {"method": method, "seconds": min(times), "median": float(np.median(times)), "rss_gib": rss,
            "trace": trace, "flops": flops, "rank": int(r)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--m", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--methods", default="sklearn,ffi-kernel,ffi-whiten,jax,api,api-file,api-file-pc,sce-file")
    ap.add_argument("--data", default="/tmp/clipcore_bench_nystrom.npy")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sigma", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.data, args.m, args.sigma, args.repeats)))
        return
    sigma = make_data(args.data, args.n, args.d)
    r32, r64 = gemm_rate(np.float32), gemm_rate(np.float64)
    print(f"# Nyström Gram: n={args.n}, d={args.d}, m={args.m}, sigma={sigma:.4f} (median), "
          f"{time.strftime('%Y-%m-%d')}, load {os.getloadavg()[0]:.2f}")
    print(f"# GEMM rate (NumPy 4096², best of 3): float32 {r32 / 1e9:.1f} GFLOP/s, float64 {r64 / 1e9:.1f} GFLOP/s")
    rows = []
    for meth in args.methods.split(","):
        out = subprocess.run([sys.executable, __file__, "--one", meth, "--data", args.data, "--m", str(args.m),
                              "--sigma", repr(sigma), "--repeats", str(args.repeats)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{meth}: failed\n{out.stderr[-2000:]}")
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = next((r for r in rows if r["method"] == "sklearn"), None)
    n, d, m = args.n, args.d, args.m
    floor = 2 * n * m * d / r32 + n * m * m / r64
    print(f"# float64-exact FLOP floor (tile 2nmd at the float32 rate + syrk nm² at the float64 rate): "
          f"{floor:.2f} s" + (f"; the largest speed-up over sklearn it allows: {base['seconds'] / floor:.2f}×"
                              if base else ""))
    print("\n| method | best s | median s | vs sklearn | peak RSS GiB | GFLOP/s | % of GEMM rate | rank | trace |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rate = r["flops"] / r["seconds"]
        ref = r64 if r["method"] in ("sklearn", "ffi-kernel", "api", "api-file", "api-file-pc", "sce-file") else r32
        speed = f"{base['seconds'] / r['seconds']:.2f}×" if base else "-"
        print(f"| {r['method']} | {r['seconds']:.2f} | {r['median']:.2f} | {speed} | {r['rss_gib']:.2f} | "
              f"{rate / 1e9:.1f} | {100 * rate / ref:.0f}% | {r['rank']} | {r['trace']:.6f} |")


if __name__ == "__main__":
    main()
