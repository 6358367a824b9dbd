# dense jitted Schur (sce_from_covariances) vs the kept-subspace host path, same covariances, quiet machine
import time, numpy as np, jax, jax.numpy as jnp, clipcore
jax.config.update("jax_enable_x64", True)
from clipcore import functional as F
from clipcore.covariance import joint_covariances
from clipcore.kernels import FeatureMap
from clipcore.dual_lowrank import schur_primal_lowrank
def best(f, r=3):
    ts=[]
    for _ in range(r):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return min(ts)
d = clipcore.synthetic_pairs(n=20000, d=512, seed=0, num_prompts=50, num_modes=16)
T, X = jnp.asarray(d.texts, jnp.float64), jnp.asarray(d.images, jnp.float64)
cases = [("cosine D=512", joint_covariances(T, X, FeatureMap("cosine", 0, False), None))]
for D in (512, 1024, 2500):
    om = jax.random.normal(jax.random.PRNGKey(0), (512, D), jnp.float64) / 0.8
    cases.append((f"rff 2D={2*D}", joint_covariances(T, X, FeatureMap("rff", D, False), om)))
for name, c in cases:
    Dt = c.tt.shape[0]; r = Dt * float(np.finfo(np.float32).eps)
    a = lambda: jax.block_until_ready(F.sce_from_covariances(c, rtol=r, ridge=0.0, clamp=1e-10))
    b = lambda: schur_primal_lowrank(*(np.asarray(x, np.float64) for x in c), r)
    a(); b()
    print(f"{name:14s} dense jit {best(a):7.3f} s   kept-subspace {best(b):7.3f} s   kept rank {int(a().rank)}", flush=True)
