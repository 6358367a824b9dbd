"""The floor of the reference code's RFF setting's structure (issue 18, goal 2: clip-dissection, D = 2500,
n = 6000, float64 products since float32 ones move SCE by 3e-5 there; README, "Conventions and precision").

Three pieces no route avoids: the float64 covariances C_TT and C_XX of the 2D = 5000 features of each side
(C_TX is not needed: B = U_kᵀ C_TX comes from the features, 2·n·D·k flops; the joint Gram that also forms
C_TX, which the path took before, is timed beside them), the kept directions of C_TT (k = 600 past the
subspace iteration's reach: LAPACK's two-stage reduction of C_TT to a band and its spectrum, from which the
compiled core takes the kept vectors; the one-stage tridiagonalisation the path took before is timed beside
it), and the spectra of S and C_XX (the compiled two-stage eigvalsh, batched). The ± that clipcore adds (four
frequency groups' scores) has pieces of its own, timed as a fourth row. This script times them alone, in one
run beside the goal's floor (one numpy.linalg.eigvalsh of 5000×5000) and clipcore's whole call:

    python bench/floor/rff_structure.py
"""
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402
import scipy.linalg.lapack as lapack  # noqa: E402

import bench_paper as bp  # noqa: E402
import clipcore  # noqa: E402
from clipcore import _ffi  # noqa: E402
from clipcore.covariance import feature_covariance, joint_covariances  # noqa: E402
from clipcore.kernels import FeatureMap  # noqa: E402

jax.config.update("jax_enable_x64", True)
warnings.simplefilter("ignore")
n, D = 6000, 2500
x, t = bp.clip_like(n)
omega = np.random.default_rng(2).standard_normal((x.shape[1], D)).astype(np.float32) / 0.5
floor = bp.eigvalsh_floor(2 * D)
sec, r = bp.timed(lambda: clipcore.sce(x.astype(np.float32), t.astype(np.float32), kernel="gaussian", omega=omega,
                                       convention="clip-dissection", progress=False))
gram = lambda: jax.block_until_ready(joint_covariances(  # noqa: E731
    jnp.asarray(t, jnp.float32), jnp.asarray(x, jnp.float32), FeatureMap("rff", D, False),
    jnp.asarray(omega, jnp.float64), feature_dtype=jnp.float64, acc_dtype=jnp.float64, backend="ffi"))
gram()
joint_s, cov = bp.timed(gram)
fm = FeatureMap("rff", D, False)
singles = lambda: jax.block_until_ready([feature_covariance(  # noqa: E731
    jnp.asarray(a, jnp.float32), fm, jnp.asarray(omega, jnp.float64), feature_dtype=jnp.float64,
    acc_dtype=jnp.float64, backend="ffi") for a in (t, x)])
singles()
g_s, _ = bp.timed(singles)
a = np.array(cov.tt, order="F")
t0 = time.perf_counter()
c, d, e, tau, info = lapack.dsytrd(a, lower=1, lwork=32 * 2 * D, overwrite_a=1)
lapack.dsterf(d, e)
tri = time.perf_counter() - t0
a = np.array(cov.tt, order="F")
t0 = time.perf_counter()
_ffi.band_reduce(a, 32)
band = time.perf_counter() - t0
# the ± (clipcore._pipeline.errors): four groups of D/4 frequencies, each group's scores from its blocks; at
# σ = 0.5 each group keeps ~96 % of its 1250 directions, so its dense pieces: the group's block of C_TX from
# the features (one GEMM), C_TT^g's eigenpairs (?syevd) and the spectra of R_g, S_g, C_XX^g (batched)
feats = [np.asarray(jax.block_until_ready(jnp.concatenate(
    [f(jnp.asarray(a, jnp.float64) @ jnp.asarray(omega, jnp.float64)) for f in (jnp.cos, jnp.sin)], 1)))
    / np.sqrt(D) for a in (t, x)]
groups = [np.concatenate([f, D + f]) for f in np.array_split(np.arange(D), 4)]
tt, xx = np.asarray(cov.tt), np.asarray(cov.xx)
t0 = time.perf_counter()
for idx in groups:
    block = feats[0][:, idx].T @ feats[1][:, idx] / n
    w_g, v_g = scipy.linalg.eigh(tt[np.ix_(idx, idx)], driver="evd")
    np.asarray(_ffi.eigvalsh(jnp.stack([jnp.asarray(xx[np.ix_(idx, idx)])] * 3)))
group_s = time.perf_counter() - t0
del feats
pair = jnp.stack([cov.xx, cov.xx])
pair.block_until_ready()
t0 = time.perf_counter()
np.asarray(_ffi.eigvalsh(pair))
two = time.perf_counter() - t0
print(f"n = {n}, D = {D}, kept rank {r.rank_kept}")
rows = [("numpy.linalg.eigvalsh of 5000×5000 (the goal floor)", floor),
        ("float64 Grams C_TT, C_XX (5000 features each)", g_s),
        ("  (the joint Gram that also forms C_TX)", joint_s),
        ("two-stage reduction of C_TT to a band + its spectrum", band),
        ("  (one-stage ?sytrd + ?sterf of C_TT, as before)", tri),
        ("batched two-stage eigvalsh of two 5000×5000 (S, C_XX)", two),
        ("the three pieces (structure floor)", g_s + band + two),
        ("the ± groups' dense pieces (4 × C_TX^g, eigh, 3 spectra)", group_s),
        ("the structure floor with the ±", g_s + band + two + group_s),
        ("clipcore.sce (clip-dissection, given ω)", sec)]
for name, s in rows:
    print(f"{name:56s} {s:7.2f} s  {s / floor:5.2f}×")
