"""Accuracy of the large-n Gaussian-kernel methods against the exact kernel.

Issue 3, "Accuracy, measured and published": n = 10⁴ paired embeddings,
d = 512, 20 prompt clusters on the sphere (``clipcore.synthetic_pairs``:
texts around 20 centres, images = signal + 4 prompt-independent modes +
noise), σ = the median pairwise image distance and ½·median. Exact: the dual
(n×n) spectra. Compared: Nyström (m landmarks × each landmark method, every
named entropy estimate) and RFF (D frequencies), relative error of the von
Neumann entropy (log Vendi-1 of C_XX), the Rényi-2 entropy (log RKE), log SCE
and the log text score, mean ± spread (max − min)/2 over seeds of the
approximation (same data).

    python bench/accuracy.py                       # the published table (long)
    python bench/accuracy.py --n 3000 --seeds 1    # a quick look

Prints a Markdown table for bench/RESULTS.md and writes JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np

import clipcore


def rel(a: float, b: float) -> float:
    return (a - b) / abs(b)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--landmarks", default="500,1000,2000,4000")
    ap.add_argument("--methods", default="pivoted-cholesky,kmeans++,uniform")
    ap.add_argument("--rff", default="2000,4000")
    ap.add_argument("--sigmas", default="1,0.5", help="multiples of the median distance")
    ap.add_argument("--json", default=None)
    ap.add_argument("--cache", default=None, help="directory caching the exact spectra's scores")
    ap.add_argument("--exact-only", action="store_true", help="compute (and cache) the exact scores only")
    args = ap.parse_args()
    warnings.simplefilter("ignore", clipcore.DegenerateWarning)

    data = clipcore.synthetic_pairs(args.n, args.d, num_prompts=20, num_modes=4, seed=0)
    X, T = data.images, data.texts
    med = float(clipcore.median_sigma(X))
    print(f"# accuracy: n={args.n}, d={args.d}, median sigma={med:.4f}, {platform.processor() or platform.machine()}, "
          f"clipcore {clipcore.__version__}, {time.strftime('%Y-%m-%d')}")
    rows, out = [], {"n": args.n, "d": args.d, "median_sigma": med, "runs": []}
    for mult in [float(v) for v in args.sigmas.split(",")]:
        sig = med * mult
        cache = f"{args.cache}/exact_n{args.n}_d{args.d}_s{mult}.json" if args.cache else None
        if cache and os.path.exists(cache):
            with open(cache) as f:
                truth, t_exact = json.load(f)
        else:
            t0 = time.perf_counter()
            ex = clipcore.sce(X, T, kernel="gaussian", sigma=sig)
            r2 = clipcore.rke(X, kernel="gaussian", sigma=sig, method="frobenius")
            t_exact = time.perf_counter() - t0
            truth = {"vN": ex.log_image_score, "R2": r2.log_score, "SCE": ex.log_sce, "text": ex.log_text_score}
            if cache:
                with open(cache, "w") as f:
                    json.dump([truth, t_exact], f)
        if args.exact_only:
            print(f"exact sigma={mult}: {truth} ({t_exact:.0f} s)", flush=True)
            continue
        print(f"\n## sigma = {mult} x median = {sig:.4f}; exact (dual + Frobenius) {t_exact:.1f} s; "
              + ", ".join(f"{k} {v:.4f}" for k, v in truth.items()))
        configs = []
        for m in [int(v) for v in args.landmarks.split(",") if v]:
            for meth in [v for v in args.methods.split(",") if v]:
                configs.append(("nystrom", m, meth))
        for D in [int(v) for v in args.rff.split(",") if v]:
            configs.append(("rff", D, None))
        for kind, size, meth in configs:
            errs: dict[str, list[float]] = {}
            secs = []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                if kind == "nystrom":
                    r = clipcore.sce(X, T, kernel="gaussian", sigma=sig, landmarks=size, landmark_method=meth,
                                     key=seed, dtype="float32")
                    v2 = clipcore.vendi(X, kernel="gaussian", sigma=sig, order=2, landmarks=size,
                                        landmark_method=meth, key=seed, dtype="float32")
                    for est, e in r.nystrom["estimates"].items():
                        for name, got in (("vN", e["log_image_score"]), ("SCE", e["log_sce"]),
                                          ("text", e["log_text_score"]),
                                          ("R2", v2.nystrom["estimates"][est]["log_score"])):
                            errs.setdefault(f"{est}/{name}", []).append(rel(got, truth[name]))
                else:
                    r = clipcore.sce(X, T, kernel="gaussian", sigma=sig, rff_features=size, key=seed,
                                     dtype="float32")
                    v2 = clipcore.vendi(X, kernel="gaussian", sigma=sig, order=2, rff_features=size, key=seed,
                                        dtype="float32")
                    for name, got in (("vN", r.log_image_score), ("SCE", r.log_sce), ("text", r.log_text_score),
                                      ("R2", v2.log_score)):
                        errs.setdefault(f"-/{name}", []).append(rel(got, truth[name]))
                secs.append(time.perf_counter() - t0)
            ests = sorted({k.split("/")[0] for k in errs})
            for est in ests:
                cells = []
                for name in ("vN", "R2", "SCE", "text"):
                    e = np.array(errs[f"{est}/{name}"])
                    cells.append(f"{100 * e.mean():+.1f} ± {50 * (e.max() - e.min()):.1f}%")
                label = f"Nyström m={size} {meth}" if kind == "nystrom" else f"RFF D={size}"
                row = f"| {mult}·med | {label} | {est} | " + " | ".join(cells) + f" | {np.mean(secs):.1f} |"
                print(row, flush=True)
                rows.append(row)
            out["runs"].append({"sigma_mult": mult, "kind": kind, "size": size, "method": meth,
                                "errors": errs, "seconds": secs, "truth": truth})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
