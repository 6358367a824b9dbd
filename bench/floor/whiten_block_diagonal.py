"""Nyström Gram accuracy with block-diagonal (block Cholesky) whitening before a float32 accumulation, then the
remaining whitening in float64, against the float64 kernel form. See README.md. Usage: python whiten_block_diagonal.py 20000
"""
import os
import numpy as np, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_nystrom import make_data
import scipy.linalg as sl
n, m = int(sys.argv[1]), 2000
path = "/tmp/clipcore_bench_nystrom_f32.npy"
sigma = make_data(path, 20000, 512)
X = np.load(path)[:n]
for sig_mult in (1.0, 0.5, 2.0):
    s = sigma*sig_mult; gamma = 1/(2*s*s)
    L = X[np.sort(np.random.default_rng(1).choice(n, m, replace=False))]
    ln = (L.astype(np.float64)**2).sum(1)
    def tile(B):
        bn = (B.astype(np.float64)**2).sum(1)
        sq = np.maximum(bn[:, None] + ln[None] - 2*(B @ L.T).astype(np.float64), 0)
        return np.exp(-gamma*sq).astype(np.float32)
    L64 = L.astype(np.float64)
    K = np.exp(-gamma*np.maximum(ln[:, None]+ln[None]-2*L64@L64.T, 0))
    lam, U = np.linalg.eigh(K)
    W = U/np.sqrt(lam)
    tiles = [tile(X[i:i+2048]) for i in range(0, n, 2048)]
    M64 = sum(A.astype(np.float64).T @ A.astype(np.float64) for A in tiles)
    def ent(e):
        e = np.clip(e, 0, None); p = e[e > 1e-10]; return e.sum(), -(p*np.log(p)).sum(), -np.log((e**2).sum())
    ref = ent(np.linalg.eigvalsh(W.T@M64@W/n))
    print(f"sigma x{sig_mult}: cond(K)={lam[-1]/lam[0]:.3g}  ref vN {ref[1]:.8f}")
    for b in (1, 100, 250, 500, 1000, 2000):
        P = np.zeros((m, m))
        for i in range(0, m, b):
            Lb = np.linalg.cholesky(K[i:i+b, i:i+b]); P[i:i+b, i:i+b] = sl.solve_triangular(Lb, np.eye(len(Lb)), lower=True).T
        Kp = P.T@K@P; cp = np.linalg.cond(Kp)
        P32 = P.astype(np.float32)
        G = np.zeros((m, m))
        for A in tiles:
            Q = A @ P32 if b > 1 else A*P32.diagonal()[None]
            G += (Q.T@Q).astype(np.float64)
        # finish: eigenvalues of K^{-1/2} M K^{-1/2} = eig of Kp^{-1} G (P^T M P = G) -> Cholesky of Kp
        Lp = np.linalg.cholesky(Kp); Li = sl.solve_triangular(Lp, np.eye(m), lower=True)
        e = ent(np.linalg.eigvalsh(Li@G@Li.T/n))
        print(f"  block {b:5d}: cond(PᵀKP) {cp:9.3g}  vN rel err {(e[1]-ref[1])/ref[1]:+.2e}  R2 {(e[2]-ref[2])/ref[2]:+.2e} tr {(e[0]-ref[0])/ref[0]:+.2e}")
