"""Nyström Gram accuracy when the accumulation runs in float32 after a (partial) whitening, against the
float64 kernel form (bench/nystrom_f32_accumulation.py's problem: m uniform landmarks, σ = median · scale).

  triangular      Φ = k(B, L) L⁻ᵀ in float32 (L the Cholesky factor of K_mm), ΦᵀΦ in float32 per 2048-row
                  block: as accurate as float64, but 2·n·m² float32 FLOPs cost what n·m² float64 FLOPs do
  eigen           Φ = k(B, L) K_mm^{-1/2} in float32, same accumulation (for comparison)
  block b         block-diagonal whitening (Cholesky of K_mm's diagonal blocks of b rows) before the float32
                  accumulation, the rest of the whitening in float64 afterwards: cheaper, but cond(PᵀKP)
                  stays large and the entropy goes wrong

    python bench/floor/whiten_f32.py 20000        # n (≤ 20000), about 3 minutes on 2 cores
"""

import os
import sys

import numpy as np
import scipy.linalg as sl

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_nystrom import make_data  # noqa: E402
from nystrom_f32_accumulation import landmark_problem  # noqa: E402


def entropies(e):
    """(trace, von Neumann entropy, Rényi-2 entropy) of eigenvalues e."""
    e = np.clip(e, 0, None)
    p = e[e > 1e-10]
    return e.sum(), -(p * np.log(p)).sum(), -np.log((e**2).sum())


def main() -> None:
    n, m = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000, 2000
    path = "/tmp/clipcore_bench_nystrom_f32.npy"
    sigma = make_data(path, 20000, 512)
    X = np.load(path)[:n]
    for scale in (1.0, 0.5, 2.0):
        L, K, tile = landmark_problem(X, m, sigma * scale)
        lam, U = np.linalg.eigh(K)
        tiles = [tile(X[i:i + 2048]) for i in range(0, n, 2048)]
        M64 = sum(A.astype(np.float64).T @ A.astype(np.float64) for A in tiles)
        W = U / np.sqrt(lam)
        ref = entropies(np.linalg.eigvalsh(W.T @ M64 @ W / n))
        print(f"sigma x{scale}: cond(K) = {lam[-1] / lam[0]:.3g}, reference vN {ref[1]:.8f}")

        def report(name, eigs):
            e = entropies(eigs)
            print(f"  {name:16s} vN rel err {(e[1] - ref[1]) / ref[1]:+.2e}  R2 {(e[2] - ref[2]) / ref[2]:+.2e}  "
                  f"trace {(e[0] - ref[0]) / ref[0]:+.2e}")

        T32 = sl.solve_triangular(np.linalg.cholesky(K), np.eye(m), lower=True).T.astype(np.float32)  # L⁻ᵀ
        W32 = W.astype(np.float32)
        for name, P32 in (("triangular", T32), ("eigen", W32)):
            G = np.zeros((m, m))
            for A in tiles:
                Q = A @ P32
                G += (Q.T @ Q).astype(np.float64)
            report(name, np.linalg.eigvalsh(G / n))
        for b in (100, 250, 500, 1000):
            P = np.zeros((m, m))
            for i in range(0, m, b):
                Lb = np.linalg.cholesky(K[i:i + b, i:i + b])
                P[i:i + b, i:i + b] = sl.solve_triangular(Lb, np.eye(len(Lb)), lower=True).T
            Kp = P.T @ K @ P
            P32 = P.astype(np.float32)
            G = np.zeros((m, m))
            for A in tiles:
                Q = A @ P32
                G += (Q.T @ Q).astype(np.float64)
            Li = sl.solve_triangular(np.linalg.cholesky(Kp), np.eye(m), lower=True)  # eig(Kp⁻¹ G) = eig(Li G Liᵀ)
            report(f"block {b} (cond {np.linalg.cond(Kp):.2g})", np.linalg.eigvalsh(Li @ G @ Li.T / n))


if __name__ == "__main__":
    main()
