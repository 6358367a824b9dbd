"""Nyström Gram accuracy with float32 whitening by the inverse Cholesky factor (and by K^{-1/2}) before a float32
accumulation, against the float64 kernel form. See README.md. Usage: python whiten_triangular_f32.py 20000
"""
import os
import numpy as np, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_nystrom import make_data
import scipy.linalg as sl
n, m = int(sys.argv[1]), 2000
path = "/tmp/clipcore_bench_nystrom_f32.npy"
sigma = make_data(path, 20000, 512)
X = np.load(path)[:n]
for sig_mult in (1.0, 0.5):
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
    keep = lam > np.finfo(np.float32).eps*lam[-1]
    W = U[:, keep]/np.sqrt(lam[keep])
    Lc = np.linalg.cholesky(K)
    Tinv = sl.solve_triangular(Lc, np.eye(m), lower=True)  # L^{-1}
    T32 = Tinv.T.astype(np.float32)  # Phi = Knm L^{-T}
    W32 = W.astype(np.float32)
    M64 = np.zeros((m, m)); Gt = np.zeros((m, m)); Gw = np.zeros((W.shape[1],)*2); Gt64 = np.zeros((m,m))
    for i in range(0, n, 2048):
        A = tile(X[i:i+2048]); A64 = A.astype(np.float64)
        M64 += A64.T @ A64
        P = A @ T32; Gt += (P.T @ P).astype(np.float64)
        P64 = A64 @ Tinv.T; Gt64 += P64.T@P64
        Q = A @ W32; Gw += (Q.T @ Q).astype(np.float64)
    def ent(e):
        e = np.clip(e, 0, None); p = e[e > 1e-10]; return e.sum(), -(p*np.log(p)).sum(), -np.log((e**2).sum())
    ref = ent(np.linalg.eigvalsh(W.T@M64@W/n))
    print(f"sigma x{sig_mult}: cond(K)={lam[-1]/lam[0]:.3g} lam_min={lam[0]:.3g} rank {keep.sum()}")
    print("  ref (kernel f64)   tr %.6f vN %.6f R2 %.6f" % ref)
    for name, G in (("tri whiten f32", Gt), ("tri whiten f64", Gt64), ("eig whiten f32", Gw)):
        e = ent(np.linalg.eigvalsh(G/n)); print(f"  {name:18s} tr {e[0]:.6f} vN {e[1]:.6f} ({(e[1]-ref[1])/ref[1]:+.3e}) R2 {e[2]:.6f} ({(e[2]-ref[2])/ref[2]:+.2e})")
