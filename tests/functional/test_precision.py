"""clipcore.functional's precision: with x64 off (JAX's default) float32 features, compensated float32 sums
and float32 linear algebra agree with float64 (the host API, and the NumPy reference) to the documented
rel 1e-4 (measured: ~1e-6 here); a float64 request that cannot be honoured warns once per process.

conftest.py enables x64 for the session; the x64-off computations run inside ``jax.enable_x64(False)``,
the warning count in a fresh subprocess (the warning is once per process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import clipcore
import clipcore.functional as F

try:
    from reference import sce_numpy as R
except ImportError:  # tests/ collected as a package
    from tests.reference import sce_numpy as R

AGREEMENT = 1e-4  # the documented float32-vs-float64 agreement (clipcore.functional's docstring)


def clip_like(n=2000, d=32, seed=0):
    d_ = clipcore.synthetic_pairs(n=n, d=d, num_prompts=10, num_modes=4, gap=0.5, seed=seed)
    return np.asarray(d_.images, np.float64), np.asarray(d_.texts, np.float64)


def rel(a, b):
    return abs(float(a) / float(b) - 1.0)


@pytest.mark.parametrize("backend", ["ffi", "jax"])
@pytest.mark.parametrize("kernel", ["cosine", "rff"])
def test_float32_without_x64_agrees_with_float64(kernel, backend):
    x, t = clip_like()
    om = np.random.default_rng(1).normal(size=(32, 64)) / 0.8
    kw = {} if kernel == "cosine" else dict(kernel="gaussian", omega=om)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the host's notes on RFF's approximation of the exact kernel
        want = clipcore.sce(x, t, progress=False, **kw)
        want_v = clipcore.vendi(x, order=2.0, progress=False, **kw)
    x32, t32 = x.astype(np.float32), t.astype(np.float32)
    kw32 = {} if kernel == "cosine" else dict(kernel="gaussian", omega=om.astype(np.float32))
    with jax.enable_x64(False):
        # block_size=256: the float32 sums add 8 blocks (Kahan-compensated) on the XLA backend
        got = jax.jit(lambda a, b: F.sce(a, b, backend=backend, block_size=256, **kw32))(x32, t32)
        got_v = jax.jit(lambda a: F.vendi(a, order=2.0, backend=backend, **kw32))(x32)
        assert got.sce.dtype == jnp.float32 and got.complement.dtype == jnp.float32
    for g, w in ((got.sce, want.sce), (got.text_score, want.text_score), (got.image_score, want.image_score),
                 (got_v.score, want_v.score)):
        assert rel(g, w) < AGREEMENT


def test_compensated_float32_sums_do_not_grow_with_the_number_of_blocks():
    """50 000 rows in 196 blocks of 256, float32 accumulators: the Kahan-compensated sums stay within a few
    float32 roundings of the float64 sums (a plain float32 running sum drifts ~√blocks·eps·sum)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50_000, 16)) + 0.5
    phi = R.cosine_features(x)
    want = phi.T @ phi
    with jax.enable_x64(False):
        got = F.moments(x.astype(np.float32), backend="jax", block_size=256).xx
    err = np.max(np.abs(np.asarray(got, np.float64) - want)) / np.max(np.abs(want))
    assert err < 4 * np.finfo(np.float32).eps


_SCRIPT = r"""
import json, warnings
import numpy as np
import clipcore.functional as F
rng = np.random.default_rng(0)
x = rng.normal(size=(50, 6)); t = rng.normal(size=(50, 6))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    F.sce(x.astype(np.float32), t.astype(np.float32))      # float32 asked: nothing to say
    quiet = len(caught)
    F.sce(x, t)                                            # NumPy float64 with x64 off: warns
    F.sce(x, t)                                            # ... once per process
    F.vendi(x.astype(np.float32), dtype="float64")        # the same downgrade: not again
    dtype = str(F.sce(x, t).sce.dtype)
print(json.dumps(dict(quiet=quiet, n=len(caught), category=[c.category.__name__ for c in caught],
                      message=[str(c.message) for c in caught], dtype=dtype)))
"""


def test_a_float64_request_without_x64_warns_once_per_process():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAX_ENABLE_X64", None)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(_SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["quiet"] == 0
    assert out["n"] == 1 and out["category"] == ["PrecisionWarning"]
    assert "x64 mode is off, so float32 is used" in out["message"][0]
    assert out["dtype"] == "float32"


def test_no_warning_when_float64_is_honoured():
    x = np.random.default_rng(0).normal(size=(50, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = F.sce(x, x + 0.1, dtype="float64")
    assert out.sce.dtype == jnp.float64
