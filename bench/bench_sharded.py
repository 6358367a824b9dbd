"""Row-sharded accumulation (clipcore.sharding) on 1 / 2 / 4 forced CPU devices vs one device.

Issue 4, "bench/bench_sharded.py": the cosine joint covariance (the packed
compiled ``joint_gram_accumulate`` per shard) and the Nyström joint Gram
(``nystrom_accumulate`` per shard, kernel strategy), each run

* unsharded (``clipcore.covariance.joint_covariances`` /
  ``clipcore.nystrom.nystrom_joint_gram``: the one-device path, the peer), and
* sharded over a k-device mesh (``clipcore.sharding``) for k = 1, 2, 4,

every k in its own Python started with
``XLA_FLAGS=--xla_force_host_platform_device_count=k`` (the device count is
fixed when JAX starts). Timed: the whole call from host arrays to the
replicated D×D result (padding, device_put, per-shard accumulation, psum),
best of ``--repeats`` after one warm-up (compile) call. The ratio is
sharded / unsharded in the same process: on a 2-core CPU the devices share
the same cores, so the point is the overhead (goal ≤ 10 %), not a speed-up.
With a GPU (``jax.default_backend() == "gpu"``) the same script times the
real devices (no forcing).

Usage: python bench/bench_sharded.py [--n 200000] [--d 512] [--nys-n 40000] [--m 500] [--devices 1,2,4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_CHILD = r"""
import json, sys, time
import numpy as np
import jax, jax.numpy as jnp
n, d, nys_n, m, repeats = (int(a) for a in sys.argv[1:6])
k = int(sys.argv[6])
from clipcore import covariance as C, nystrom as N, sharding as S
from clipcore.kernels import FeatureMap
assert jax.device_count() >= k, (jax.device_count(), k)
rng = np.random.default_rng(0)
t = rng.standard_normal((n, d), dtype=np.float32)
x = (rng.standard_normal((n, d), dtype=np.float32) + 0.3 * t).astype(np.float32)
mesh = S.resolve_mesh(k)
fm = FeatureMap("cosine")

def best(fn):
    jax.block_until_ready(fn())
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); jax.block_until_ready(fn()); ts.append(time.perf_counter() - t0)
    return min(ts)

out = {"k": k, "backend": jax.default_backend(), "devices": jax.device_count()}
with jax.enable_x64(True):
    out["cos_unsharded"] = best(lambda: C.joint_covariances(t, x, fm, backend="ffi"))
    out["cos_sharded"] = best(lambda: S.joint_covariances(t, x, fm, mesh=mesh, backend="ffi"))
    ref = C.joint_covariances(t, x, fm, backend="ffi"); got = S.joint_covariances(t, x, fm, mesh=mesh, backend="ffi")
    out["cos_maxdiff"] = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(ref, got))
    tn, xn = t[:nys_n] / 8.0, x[:nys_n] / 8.0
    nmap = N.nystrom_map(xn[:m].astype(np.float64), 1.0)
    out["nys_unsharded"] = best(lambda: N.nystrom_joint_gram(tn, xn, nmap, backend="ffi"))
    out["nys_sharded"] = best(lambda: S.nystrom_gram(tn, nmap, mesh=mesh, images=xn, backend="ffi")[0])
    g1 = N.nystrom_joint_gram(tn, xn, nmap, backend="ffi"); g2 = S.nystrom_gram(tn, nmap, mesh=mesh, images=xn, backend="ffi")[0]
    out["nys_reldiff"] = float(jnp.max(jnp.abs(g1 - g2)) / jnp.max(jnp.abs(g1)))
print(json.dumps(out))
"""


def run_child(k: int, args) -> dict:
    env = dict(os.environ)
    if not args.no_force:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={k}").strip()
        env.setdefault("JAX_PLATFORMS", "cpu")
    cmd = [sys.executable, "-c", _CHILD, str(args.n), str(args.d), str(args.nys_n), str(args.m), str(args.repeats),
           str(k)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"child k={k} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000, help="rows of the cosine run")
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--nys-n", type=int, default=40_000, help="rows of the Nyström run")
    ap.add_argument("--m", type=int, default=500, help="Nyström landmarks")
    ap.add_argument("--devices", default="1,2,4")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-force", action="store_true", help="use the real devices (GPU) instead of forced CPU ones")
    args = ap.parse_args()
    rows = [run_child(int(k), args) for k in args.devices.split(",")]
    print(f"cosine joint covariance n={args.n} d={args.d} (float32 rows, float64 sums); "
          f"Nyström joint Gram n={args.nys_n} d={args.d} m={args.m}; best of {args.repeats}; "
          f"backend {rows[0]['backend']}")
    print(f"| devices | cosine 1-device (s) | cosine sharded (s) | ratio | Nyström 1-device (s) | "
          f"Nyström sharded (s) | ratio | max diff cos / rel Nyström |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['k']} | {r['cos_unsharded']:.3f} | {r['cos_sharded']:.3f} | "
              f"{r['cos_sharded'] / r['cos_unsharded']:.3f} | {r['nys_unsharded']:.3f} | {r['nys_sharded']:.3f} | "
              f"{r['nys_sharded'] / r['nys_unsharded']:.3f} | {r['cos_maxdiff']:.1e} / {r['nys_reldiff']:.1e} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
