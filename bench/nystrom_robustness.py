"""The default Nyström estimate ("projected") against the exact dual on data of kinds it was not built on:
σ away from the median, other CLIP-like generators, low-dimensional pairs, a small residual sample, many
prompts. Prints the relative error and the ± of SCE, the text and the image score, and whether the ±
brackets the exact value (issue 16).

    python bench/nystrom_robustness.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np

import clipcore
from bench_paper import clip_like

SCORES = ("sce", "text_score", "image_score")


def row(name: str, x, t, sigma, m: int, sample: int = 2000) -> None:
    exact = clipcore.sce(x, t, kernel="gaussian", sigma=sigma, method="dual", dtype="float64", progress=False)
    t0 = time.perf_counter()
    r = clipcore.sce(x, t, kernel="gaussian", sigma=exact.sigma, landmarks=m, residual_sample=sample,
                     progress=False)
    sec = time.perf_counter() - t0
    cells = []
    for s, e in zip(SCORES, r.error):
        got, want = getattr(r, s), getattr(exact, s)
        cells.append(f"{100 * (got / want - 1):+.2f} % ± {100 * e / got:.2f} %{'' if abs(got - want) <= e else ' (miss)'}")
    print(f"| {name} | {m} | " + " | ".join(cells) + f" | {sec:.1f} |", flush=True)


def main() -> None:
    warnings.simplefilter("ignore")
    print("| data | m | SCE error ± | text error ± | image error ± | seconds |")
    print("|---|---|---|---|---|---|")
    p = clipcore.synthetic_pairs(3000, 512, num_prompts=300, num_modes=16, gap=0.8, seed=5)
    x, t = p.images.astype(np.float64), p.texts.astype(np.float64)
    med = clipcore.median_sigma(x)
    for f in (0.5, 0.75, 1.5, 3.0):
        row(f"CLIP-like, σ = {f} × median", x, t, f * med, 1000)
    xb, tb = clip_like(3000, d=64, seed=3)
    for m in (500, 1000):
        row("bench_paper clip_like, d = 64, median σ", xb, tb, None, m)
    row("bench_paper clip_like, d = 64, σ = 3.5", xb, tb, 3.5, 500)
    p = clipcore.synthetic_pairs(2000, 16, num_prompts=20, num_modes=4, seed=6)
    for m in (100, 300):
        row("synthetic_pairs(2000, 16, 20 prompts, 4 modes)", p.images.astype(np.float64),
            p.texts.astype(np.float64), None, m)
    row("CLIP-like, residual sample 500", x, t, None, 1000, sample=500)
    p = clipcore.synthetic_pairs(3000, 512, num_prompts=1000, num_modes=32, gap=0.5, seed=7)
    row("CLIP-like, 1000 prompts, 32 modes, gap 0.5", p.images.astype(np.float64), p.texts.astype(np.float64),
        None, 1000)


if __name__ == "__main__":
    main()
