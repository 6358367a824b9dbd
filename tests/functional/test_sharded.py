"""clipcore.functional with rows sharded over a device mesh, under jit: the sharded result (and gradient)
equals the unsharded one and the float64 NumPy reference, and the compiled program (value and gradient)
holds no all-gather of the [n, d] rows, only the all-reduce of the D×D sums.

The main pytest process has one CPU device, so the sharded runs happen in a subprocess started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``; it prints its results as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

try:
    from reference import sce_numpy as R
except ImportError:  # tests/ collected as a package
    from tests.reference import sce_numpy as R

N, D, FREQ, SIGMA = 1000, 12, 9, 3.0

_SCRIPT = r"""
import json
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
import clipcore.functional as F

N, D, FREQ, SIGMA = {consts}
rng = np.random.default_rng(0)
t = rng.normal(size=(N, D)); x = 0.5 * t + rng.normal(size=(N, D))
omega = rng.normal(size=(D, FREQ)) / SIGMA
assert jax.device_count() == 4
meshes = {{"auto": jax.make_mesh((4,), ("rows",), axis_types=(AxisType.Auto,)),
           "explicit": jax.make_mesh((4,), ("rows",), axis_types=(AxisType.Explicit,)),
           "2d": jax.make_mesh((2, 2), ("hosts", "devs"), axis_types=(AxisType.Auto,) * 2)}}
calls = {{
    "sce_ffi": lambda m: lambda a, b: F.sce(a, b, mesh=m, backend="ffi").sce,
    "sce_jax": lambda m: lambda a, b: F.sce(a, b, mesh=m, backend="jax", block_size=50).sce,
    "sce_rff": lambda m: lambda a, b: F.sce(a, b, kernel="gaussian", omega=omega, mesh=m).sce,
    "vendi": lambda m: lambda a, b: F.vendi(a, order=2.0, mesh=m).score,
    "moments": lambda m: lambda a, b: F.moments(a, b, mesh=m).tx[0, 0],
}}

def run(f, a, b):
    value = jax.jit(f)
    grad = jax.jit(jax.grad(f))
    texts = [fn.lower(a, b).compile().as_text() for fn in (value, grad)]
    return dict(value=float(value(a, b)), grad=np.asarray(grad(a, b)).tolist(),
                all_gather=any("all-gather" in h for h in texts),
                all_reduce=min(h.count("all-reduce") for h in texts))

out = {{"none": {{k: run(c(None), jnp.asarray(x), jnp.asarray(t)) for k, c in calls.items()}}}}
for name, mesh in meshes.items():
    spec = NamedSharding(mesh, P(tuple(mesh.axis_names) if name == "2d" else "rows", None))
    xs, ts = jax.device_put(x, spec), jax.device_put(t, spec)
    out[name] = {{k: run(c(mesh), xs, ts) for k, c in calls.items()}}
    if name == "explicit":  # the row sharding read from the inputs' type, no mesh=
        out["inferred"] = run(lambda a, b: F.sce(a, b).sce, xs, ts)
# positive control: a program that does gather the sharded rows
mesh = meshes["auto"]
xs = jax.device_put(x, NamedSharding(mesh, P("rows", None)))
gather = jax.jit(lambda a: 2.0 * a, out_shardings=NamedSharding(mesh, P()))
out["control"] = "all-gather" in gather.lower(xs).compile().as_text()
errors = {{}}
for label, call in (("uneven", lambda: F.sce(x[:998], t[:998], mesh=mesh)),
                    ("dual", lambda: F.sce(x[:8], t[:8], mesh=mesh))):
    try:
        call()
        errors[label] = None
    except ValueError as exc:
        errors[label] = str(exc)
out["errors"] = errors
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def runs():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    code = textwrap.dedent(_SCRIPT.format(consts=repr((N, D, FREQ, SIGMA))))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def data():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(N, D))
    x = 0.5 * t + rng.normal(size=(N, D))
    return x, t, rng.normal(size=(D, FREQ)) / SIGMA


CALLS = ("sce_ffi", "sce_jax", "sce_rff", "vendi", "moments")


@pytest.mark.parametrize("mesh", ["auto", "explicit", "2d"])
@pytest.mark.parametrize("call", CALLS)
def test_sharded_equals_unsharded_and_never_gathers_rows(runs, mesh, call):
    got, want = runs[mesh][call], runs["none"][call]
    np.testing.assert_allclose(got["value"], want["value"], rtol=1e-12)
    np.testing.assert_allclose(got["grad"], want["grad"], rtol=1e-9, atol=1e-14)
    assert not got["all_gather"], "the sharded rows must not be gathered (value or gradient program)"
    assert got["all_reduce"] >= 1, "the D×D sums are added with an all-reduce (psum)"
    assert want["all_reduce"] == 0


def test_explicit_row_sharding_is_read_from_the_inputs(runs):
    got = runs["inferred"]
    np.testing.assert_allclose(got["value"], runs["none"]["sce_ffi"]["value"], rtol=1e-12)
    assert not got["all_gather"] and got["all_reduce"] >= 1


def test_unsharded_values_are_the_reference(runs):
    x, t, omega = data()
    np.testing.assert_allclose(runs["none"]["sce_ffi"]["value"],
                               R.sce_primal(R.cosine_features(t), R.cosine_features(x)).sce, rtol=1e-9)
    np.testing.assert_allclose(runs["none"]["sce_rff"]["value"],
                               R.sce_primal(R.rff_features(t, omega), R.rff_features(x, omega)).sce, rtol=1e-9)
    np.testing.assert_allclose(runs["none"]["vendi"]["value"], R.vendi_of_features(R.cosine_features(x), 2.0),
                               rtol=1e-9)


def test_the_gather_check_sees_a_gather(runs):
    assert runs["control"]


def test_refusals(runs):
    assert runs["errors"]["uneven"].startswith("images: 998 rows do not split evenly over the 4 devices")
    assert runs["errors"]["dual"].startswith("mesh: sharded rows take the primal")
