"""CUDA handlers (csrc/cuda) against float64 NumPy, where a GPU and a CUDA build exist.

Skipped on CPU-only machines (CI): build with
``pip install . -Ccmake.define.CLIPCORE_ENABLE_CUDA=ON`` and a CUDA jaxlib.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clipcore import _ffi
from reference import nystrom_numpy as nref

pytestmark = pytest.mark.gpu


def _gpu():
    try:
        return jax.devices("gpu")[0]
    except RuntimeError:
        return None


needs_cuda = pytest.mark.skipif(
    _gpu() is None or not _ffi.cuda_available(), reason="needs an NVIDIA GPU and a CLIPCORE_ENABLE_CUDA build"
)


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_accumulate_on_gpu(dtype):
    rng = np.random.default_rng(0)
    phi = rng.standard_normal((10_000, 96)).astype(dtype)
    G = rng.standard_normal((96, 96))
    dev = _gpu()
    got = jax.jit(_ffi.gram_accumulate)(jax.device_put(G, dev), jax.device_put(phi, dev))
    want = G + phi.astype(np.float64).T @ phi.astype(np.float64)
    tol = 2e-6 if dtype == np.float32 else 1e-12
    assert np.max(np.abs(np.asarray(got) - want)) <= tol * np.max(np.abs(want))


@needs_cuda
@pytest.mark.parametrize("whiten", [True, False])
@pytest.mark.parametrize("paired", [True, False])
def test_nystrom_accumulate_on_gpu(whiten, paired):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3000, 16))
    x2 = rng.standard_normal((3000, 16))
    L = x[:200]
    sigma = 3.0
    W, _ = nref.whitening(L, sigma, 1.2e-7)
    dev = _gpu()
    m, r = L.shape[0], W.shape[1]
    R = (2 if paired else 1) * (r if whiten else m)
    G = np.zeros((R, R))
    got = _ffi.nystrom_accumulate(jax.device_put(G, dev), jax.device_put(x, dev), jax.device_put(L, dev),
                                  jax.device_put(W, dev) if whiten else None, sigma,
                                  B2=jax.device_put(x2, dev) if paired else None)
    f = (lambda a: nref.gaussian(a, L, sigma) @ W) if whiten else (lambda a: nref.gaussian(a, L, sigma))
    Z = np.concatenate([f(x), f(x2)], axis=1) if paired else f(x)
    want = Z.T @ Z
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-9 * np.max(np.abs(want)))
