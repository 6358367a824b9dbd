"""Exact Gaussian SCE against its floor in interleaved pairs (issue 18, goal 1): the VM's speed drifts within
minutes, so each clipcore call is timed right after its own floor (one ``numpy.linalg.eigvalsh`` of n×n) and the
median of the pairs' ratios is reported beside every pair.

    python bench/bench_interleaved.py --data clip_like --pairs 3        # default settings, median σ
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import clipcore
from bench_paper import DATA, floor_matrix


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=tuple(DATA), default="clip_like")
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--sigma", type=float, default=None, help="default: the median σ (clipcore's default)")
    ap.add_argument("--pairs", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    x, t = DATA[args.data](args.n)
    a = floor_matrix(args.n)
    clipcore.sce(x[:700], t[:700], kernel="gaussian", progress=False)  # compile outside the timings
    ratios = []
    for i in range(args.pairs):
        t0 = time.perf_counter()
        np.linalg.eigvalsh(a)
        floor = time.perf_counter() - t0
        t0 = time.perf_counter()
        r = clipcore.sce(x, t, kernel="gaussian", sigma=args.sigma, progress=False)
        sec = time.perf_counter() - t0
        ratios.append(sec / floor)
        print(f"pair {i}: floor {floor:6.2f} s  clipcore {sec:6.2f} s  ratio {sec / floor:5.2f}  "
              f"({r.method}, kept {r.rank_kept})", flush=True)
    print(f"{args.data} n={args.n}: median ratio {np.median(ratios):.2f} (min {min(ratios):.2f}, "
          f"max {max(ratios):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
