"""Nyström SCE against the exact dual on CLIP-like pairs, landmark by landmark: the error of every named
estimate and the ± the result carries with the default ("projected") estimate (issue 16: does the ±
bracket the error, is it tight, and does it stay under the warning's 10 %?).

Data: ``clipcore.synthetic_pairs(n, 512, num_prompts=300, num_modes=16, gap=0.8, seed)`` at the median σ
(float32 rows, as CLIP gives them). Relative errors in % of the exact score.

    python bench/nystrom_error_sweep.py --n 2000 --seeds 0,1 --landmarks 125,250,500
    python bench/nystrom_error_sweep.py --n 3000 --seeds 2 --landmarks 125,250,500,1000
"""

from __future__ import annotations

import argparse
import time
import warnings

import clipcore

SCORES = ("sce", "text_score", "image_score")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--landmarks", default="125,250,500")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    print("| n | seed | m | score | exact | projected error % | ± % | covered | residual error % | "
          "missing-mass error % | renormalised error % | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in map(int, args.seeds.split(",")):
        p = clipcore.synthetic_pairs(args.n, 512, num_prompts=300, num_modes=16, gap=0.8, seed=seed)
        x, t = p.images, p.texts
        sigma = clipcore.median_sigma(x)
        t0 = time.perf_counter()
        exact = clipcore.sce(x, t, kernel="gaussian", sigma=sigma, method="dual", dtype="float64", progress=False)
        print(f"<!-- exact dual: {time.perf_counter() - t0:.1f} s, σ = {sigma:.4f} -->")
        for m in map(int, args.landmarks.split(",")):
            t0 = time.perf_counter()
            r = clipcore.sce(x, t, kernel="gaussian", sigma=sigma, landmarks=m, progress=False)
            sec = time.perf_counter() - t0
            est = r.nystrom.estimates
            for i, s in enumerate(SCORES):
                want = getattr(exact, s)
                rel = {k: 100 * (getattr(e, s) - want) / want for k, e in est.items()}
                err = 100 * r.error[i] / want
                print(f"| {args.n} | {seed} | {m} | {s} | {want:.4f} | {rel['projected']:+.2f} | {err:.2f} | "
                      f"{'yes' if abs(rel['projected']) <= err else '**no**'} | {rel['residual']:+.1f} | "
                      f"{rel['missing-mass']:+.1f} | {rel['renormalised']:+.1f} | {sec:.1f} |", flush=True)


if __name__ == "__main__":
    main()
