"""Why the Nyström sum M = Σ k(B, L)ᵀ k(B, L) is accumulated in float64 (SPEC.md, "Large n").

Same data as bench/bench_nystrom.py (seeded clusters, σ = median distance), m uniformly chosen landmarks,
the kernel tiles k(B, L) computed in float32 as the compiled core does. M is accumulated four ways:

  float64          float64 products and sums (what clipcore does)
  f32 chunks b     float32 products over chunks of b rows (one sgemm each), chunk sums added in float64
  f32 throughout   float32 products and sums

then C = Wᵀ M W / n (W = K_mm^{-1/2}, cut at eps(float32)·λ_max like clipcore's map) and its trace and von
Neumann entropy. The whitening multiplies errors in M by up to 1/λ_min(K_mm), so errors that float32 makes
invisible in M become percent-level in the entropy: this is the measurement behind the float64 syrk (and so
behind the FLOP floor reported by bench_nystrom.py).

    python bench/nystrom_f32_accumulation.py            # n = 20000, m = 2000 (about 2 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_nystrom import make_data  # noqa: E402


def landmark_problem(X: np.ndarray, m: int, sigma: float):
    """(L, K, tile): m landmarks drawn from the rows of X (seed 1), K = k(L, L) in float64 and
    tile(B) = k(B, L) as the compiled core forms it in float32 (float32 GEMM for the dots, exponent in
    float64, rounded to float32). Shared with bench/floor/whiten_f32.py."""
    L = X[np.sort(np.random.default_rng(1).choice(len(X), m, replace=False))]
    ln = (L.astype(np.float64) ** 2).sum(1)
    gamma = 1.0 / (2 * sigma * sigma)

    def tile(B):
        bn = (B.astype(np.float64) ** 2).sum(1)
        sq = np.maximum(bn[:, None] + ln[None] - 2 * (B @ L.T).astype(np.float64), 0)
        return np.exp(-gamma * sq).astype(np.float32)

    L64 = L.astype(np.float64)
    K = np.exp(-gamma * np.maximum(ln[:, None] + ln[None] - 2 * L64 @ L64.T, 0))
    return L, K, tile


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--m", type=int, default=2000)
    ap.add_argument("--data", default="/tmp/clipcore_bench_nystrom_f32.npy")
    args = ap.parse_args()
    n, m = args.n, args.m
    sigma = make_data(args.data, n, 512)
    X = np.load(args.data)
    L, K, tile = landmark_problem(X, m, sigma)
    lam, U = np.linalg.eigh(K)
    keep = lam > np.finfo(np.float32).eps * lam[-1]
    W = U[:, keep] / np.sqrt(lam[keep])

    def scores(M):
        e = np.clip(np.linalg.eigvalsh(W.T @ M @ W / n), 0, None)
        p = e[e > 1e-10]
        return e.sum(), -(p * np.log(p)).sum()

    M64 = np.zeros((m, m))
    chunked = {b: np.zeros((m, m)) for b in (128, 512, 2048)}
    M32 = np.zeros((m, m), np.float32)
    for i in range(0, n, 2048):
        A = tile(X[i:i + 2048])
        A64 = A.astype(np.float64)
        M64 += A64.T @ A64
        M32 += A.T @ A
        for b, M in chunked.items():
            for j in range(0, len(A), b):
                a = A[j:j + b]
                M += (a.T @ a).astype(np.float64)
    t0, h0 = scores(M64)
    print(f"# n = {n}, m = {m}, sigma = {sigma:.4f} (median), rank {int(keep.sum())}, "
          f"lambda_min kept {lam[keep].min():.3g}, lambda_max {lam[-1]:.4g}")
    print("| accumulation | trace | von Neumann entropy | relative error of the entropy |")
    print("|---|---|---|---|")
    print(f"| float64 | {t0:.6f} | {h0:.6f} | – |")
    for b, M in chunked.items():
        t, h = scores(M)
        print(f"| float32 products over {b}-row chunks, float64 sums | {t:.6f} | {h:.6f} | {(h - h0) / h0:+.2%} |")
    t, h = scores(M32.astype(np.float64))
    print(f"| float32 throughout | {t:.6f} | {h:.6f} | {(h - h0) / h0:+.2%} |")


if __name__ == "__main__":
    main()
