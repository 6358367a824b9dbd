"""The floor of the exact Gaussian SCE's structure when K_T keeps many directions (issue 18, goal 1).

When the kept rank k of K_T is past the subspace iteration's reach (clip_like data at the median σ:
k = 480 of 6000, a slowly decaying spectrum at the cut), the kept eigenvectors need one tridiagonalisation
of K_T with vectors at hand (LAPACK's one-stage ?sytrd: the two-stage reduction has no back-transformation
in LAPACK), and SCE plus the image score need the whole spectra of S and K_X (the compiled two-stage
eigvalsh, both in one batched call). This script times those three reductions alone, in one run beside the
goal's floor (one numpy.linalg.eigvalsh of n×n), and clipcore's whole call:

    python bench/floor/exact_structure.py [n]
"""
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.linalg.lapack as lapack  # noqa: E402

import bench_paper as bp  # noqa: E402
import clipcore  # noqa: E402
from clipcore import _ffi  # noqa: E402

jax.config.update("jax_enable_x64", True)
warnings.simplefilter("ignore")
n = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
x, t = bp.clip_like(n)
floor = bp.eigvalsh_floor(n)
sec, r = bp.timed(lambda: clipcore.sce(x, t, kernel="gaussian", progress=False))
sig = r.sigma
g = lambda a: np.exp(-np.maximum(np.sum(a * a, 1)[:, None] + np.sum(a * a, 1)[None, :] - 2 * a @ a.T, 0)  # noqa: E731
                     / (2 * sig ** 2)) / n
k_t, k_x = g(t), g(x)
a = np.array(k_t, order="F")
t0 = time.perf_counter()
c, d, e, tau, info = lapack.dsytrd(a, lower=1, lwork=32 * n, overwrite_a=1)
lapack.dsterf(d, e)
tri = time.perf_counter() - t0
pair = jnp.stack([jnp.asarray(k_x), jnp.asarray(k_x)])
pair.block_until_ready()
t0 = time.perf_counter()
np.asarray(_ffi.eigvalsh(pair))
two = time.perf_counter() - t0
print(f"n = {n}, median σ = {sig:.4f}, kept rank {r.rank_kept}")
print(f"{'numpy.linalg.eigvalsh (the goal floor)':52s} {floor:7.2f} s")
print(f"{'one-stage ?sytrd + ?sterf of K_T':52s} {tri:7.2f} s  {tri / floor:5.2f}×")
print(f"{'batched two-stage eigvalsh of two n×n (S, K_X)':52s} {two:7.2f} s  {two / floor:5.2f}×")
print(f"{'the three reductions (structure floor)':52s} {tri + two:7.2f} s  {(tri + two) / floor:5.2f}×")
print(f"{'clipcore.sce (default, exact dual)':52s} {sec:7.2f} s  {sec / floor:5.2f}×")
