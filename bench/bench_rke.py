"""Exact RKE of the Gaussian kernel at large n: n² / ‖K‖_F² without an n×n matrix.

Three ways to the same number, each in a fresh process (time and peak RSS, ``VmHWM``):

  file     clipcore.rke("x.npy", kernel="gaussian", method="frobenius"): the rows streamed
           from the file panel against panel (two panels in memory), a progress bar of pairs
  memory   clipcore.rke(x) on the array in memory: the same panels, read from the array
  single   clipcore.nystrom.kernel_sq_frobenius(x): one call of the compiled core (no progress)

The data are bench_nystrom.py's (seeded clusters, float32), σ = the median heuristic.

    python bench/bench_rke.py                 # n = 10⁵, d = 512 (about 2 minutes on 2 cores)
    python bench/bench_rke.py --n 30000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))


def one(method: str, path: str, sigma: float) -> dict:
    import numpy as np

    import clipcore
    from clipcore.nystrom import kernel_sq_frobenius

    t0 = time.perf_counter()
    if method == "file":
        r = clipcore.rke(path, kernel="gaussian", sigma=sigma, method="frobenius", dtype="float32", progress=False)
        score, n = r.score, r.n
    else:
        x = np.load(path)
        t0 = time.perf_counter()
        if method == "memory":
            r = clipcore.rke(x, kernel="gaussian", sigma=sigma, dtype="float32", progress=False)
            score, n = r.score, r.n
            assert r.method == "frobenius/exact", r.method
        else:
            n = x.shape[0]
            score = n * n / kernel_sq_frobenius(x, sigma=sigma)
    dt = time.perf_counter() - t0
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
    return {"method": method, "seconds": dt, "rss_gib": int(hwm) / 2**20, "score": score, "n": n}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--data", default="/tmp/clipcore_bench_nystrom.npy")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sigma", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.data, args.sigma)))
        return
    from bench_nystrom import make_data

    sigma = make_data(args.data, args.n, args.d)
    print(f"# exact RKE, n={args.n}, d={args.d}, sigma={sigma:.4f} (median), {time.strftime('%Y-%m-%d')}, "
          f"load {os.getloadavg()[0]:.2f}")
    print("\n| method | seconds | peak RSS GiB | score |\n|---|---|---|---|")
    for method in ("file", "memory", "single"):
        out = subprocess.run([sys.executable, __file__, "--one", method, "--data", args.data, "--sigma", repr(sigma)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{method}: failed\n{out.stderr[-2000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {method} | {r['seconds']:.1f} | {r['rss_gib']:.2f} | {r['score']:.9f} |")


if __name__ == "__main__":
    main()
