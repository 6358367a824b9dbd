"""clipcore._pipeline.passes: the streamed pass (stream_sums: equal to the in-memory sums; its host fast path,
the compiled core on host blocks, equal to the device path), the streamed and in-memory primal covariances
(against float64 NumPy, tests/reference/sce_numpy.py) and the n×n dual forms."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pytest

from clipcore import _ffi
from clipcore._options import resolve_execution, resolve_precision
from clipcore._pipeline import inputs as PI
from clipcore._pipeline import passes as P
from clipcore.covariance import dual_gram, joint_sums, single_sums
from clipcore.kernels import FeatureMap
from clipcore.schur import schur_dual
from reference import sce_numpy as R

needs_ext = pytest.mark.skipif(not _ffi.available(), reason=f"compiled core: {_ffi.unavailable_reason()}")
BACKENDS = [pytest.param("ffi", marks=needs_ext), "jax"]
F64 = jnp.dtype(jnp.float64)


class Block(NamedTuple):
    images: np.ndarray
    texts: np.ndarray | None


class Counter:
    def __init__(self):
        self.rows = []

    def update(self, b):
        self.rows.append(b)


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((1037, 10))
    x = 0.6 * t + rng.standard_normal((1037, 10))
    return x, t


def _blocks(x, t, size):
    return [Block(x[i:i + size], None if t is None else t[i:i + size]) for i in range(0, len(x), size)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["cosine", "identity", "rff"])
def test_stream_sums_equal_the_in_memory_sums(pairs, backend, kind):
    x, t = pairs
    fm = FeatureMap(kind, 7 if kind == "rff" else None)
    om = jnp.asarray(np.random.default_rng(1).standard_normal((10, 7)) / 2) if kind == "rff" else None
    tt = t
    counter = Counter()
    (g_tt, g_tx, g_xx), n = P.stream_sums(_blocks(x, tt, 300), fm, om, backend=backend, progress=counter)
    assert n == 1037 and counter.rows == [300, 300, 300, 137]
    want = joint_sums(jnp.asarray(tt), jnp.asarray(x), om, fmap=fm, block=1037, feature_dtype=F64, acc_dtype=F64,
                      backend="jax")
    for got, w in zip((g_tt, g_tx, g_xx), want):
        np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-10)
    g, n1 = P.stream_sums(_blocks(x, None, 250), fm, om, paired=False, backend=backend)
    assert n1 == 1037
    np.testing.assert_allclose(g, single_sums(jnp.asarray(x), om, fmap=fm, block=1037, feature_dtype=F64,
                                              acc_dtype=F64, backend="jax"), rtol=1e-12, atol=1e-10)


@needs_ext
@pytest.mark.parametrize("kind", ["cosine", "identity"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_host_fast_path_equals_the_device_path(pairs, kind, dtype):
    """Cosine / identity sums of host blocks straight through the compiled core (no device copy) equal the
    same blocks through the XLA targets (backend="ffi", float32 accumulators: the device path) and the
    float64 NumPy sums."""
    x, t = pairs
    fm = FeatureMap(kind)
    host, n = P.stream_sums(_blocks(x, t, 400), fm, feature_dtype=dtype, acc_dtype=jnp.float64, backend="ffi")
    assert isinstance(host[0], type(jnp.zeros(1))) and host[0].dtype == jnp.float64
    dev, _ = P.stream_sums(_blocks(x, t, 400), fm, feature_dtype=dtype, acc_dtype=jnp.float64, backend="jax")
    pt = R.cosine_features(t) if kind == "cosine" else t
    px = R.cosine_features(x) if kind == "cosine" else x
    tol = 1e-12 if dtype == np.float64 else 2e-6
    for h, d, w in zip(host, dev, (pt.T @ pt, pt.T @ px, px.T @ px)):
        np.testing.assert_allclose(h, d, rtol=tol, atol=tol * np.abs(w).max())
        np.testing.assert_allclose(h, w, rtol=tol, atol=tol * np.abs(w).max())


def test_stream_sums_refuse_an_empty_stream():
    for backend in ["jax"] + (["ffi"] if _ffi.available() else []):
        with pytest.raises(ValueError, match="^images: no rows to accumulate$"):
            P.stream_sums([], FeatureMap("cosine"), backend=backend)


def _setup(kernel="cosine", convention="paper", **kw):
    opts = PI.resolve_kernel_options(kernel=kernel, **kw)
    return PI.resolve_kernel(opts, normalize=False, convention=convention, sample=None, dim=10)


@pytest.mark.parametrize("convention", ["paper", "clip-dissection"])
def test_streamed_covariances_equal_the_in_memory_ones(pairs, convention, monkeypatch):
    x, t = pairs
    monkeypatch.setattr(PI, "IN_MEMORY_ROWS", 100)
    inp = PI.paired_inputs(x, t, nonzero=True, same_dim=False)
    assert inp.streamed
    setup = _setup(convention=convention)
    prec, ex = resolve_precision(None), resolve_execution(block_size=333, progress=False)
    cov, n = P.streamed_covariances(inp.src, setup, prec, convention, ex, nonzero=True, desc="test")
    mem = P.primal_covariances(setup, prec, convention, ex, jnp.asarray(t), jnp.asarray(x))
    want = (R.clip_dissection_covariances(t, x) if convention == "clip-dissection"
            else R.covariances(R.cosine_features(t), R.cosine_features(x)))
    assert n == 1037
    for a, b, w in zip(cov, mem, want):
        np.testing.assert_allclose(a, w, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(b, w, rtol=1e-12, atol=1e-14)
    one = PI.single_inputs(x, nonzero=True)
    c, n1 = P.streamed_covariance(one.src, setup, prec, ex, nonzero=True, desc="test")
    px = R.cosine_features(x) if convention == "paper" else x  # one set: the map as is (identity: raw rows)
    np.testing.assert_allclose(c, px.T @ px / 1037, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(P.primal_covariance(setup, prec, ex, jnp.asarray(x)), c, rtol=1e-12, atol=1e-14)


def test_streamed_clip_dissection_refuses_a_zero_column(pairs, monkeypatch):
    x, t = pairs
    x = x.copy()
    x[:, 3] = 0.0
    monkeypatch.setattr(PI, "IN_MEMORY_ROWS", 100)
    inp = PI.paired_inputs(x, t, nonzero=True, same_dim=False)
    with pytest.raises(ValueError, match="^images: column 3 has zero norm; the clip-dissection convention"):
        P.streamed_covariances(inp.src, _setup(convention="clip-dissection"), resolve_precision(None),
                               "clip-dissection", resolve_execution(progress=False), nonzero=True, desc="test")


@pytest.mark.parametrize("case", ["cosine", "exact", "rff"])
def test_dual_forms_equal_schur_dual_of_the_grams(pairs, case):
    x, t = pairs
    x, t = x[:200], t[:200]
    if case == "cosine":
        setup = _setup()
    elif case == "exact":
        setup = _setup("gaussian", sigma=3.0)
    else:
        setup = _setup("gaussian", sigma=3.0, rff_features=150, key=2)
    static = P.dual_static(setup, resolve_precision(None), "paper", "jax")
    assert static["kind"] == {"cosine": "features", "exact": "exact", "rff": "features"}[case]
    sp = P.dual_spectra(jnp.asarray(t), jnp.asarray(x), setup.omega, setup.sigma, 1e-6, 0.0, mode="pinv",
                        pad_to=None, **static)
    kt = dual_gram(t, setup.fmap, setup.omega, sigma=setup.sigma)
    kx = dual_gram(x, setup.fmap, setup.omega, sigma=setup.sigma)
    want = schur_dual(kt, kx, 1e-6)
    for a, b in zip(sp[:3], want[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    if case == "exact":
        k = R.gaussian_kernel(x, x, 3.0) / 200
        np.testing.assert_allclose(kx, k, rtol=1e-12, atol=1e-15)
    eigs = P.dual_image_eigs(jnp.asarray(x), setup.omega, setup.sigma, pad_to=250, **static)
    assert eigs.shape == (250,)
    np.testing.assert_allclose(eigs[:200], np.maximum(R.eigvals_desc(kx), 0), atol=1e-12)
    np.testing.assert_array_equal(np.asarray(eigs[200:]), 0.0)
    c = jnp.asarray(R.covariances(R.cosine_features(x), R.cosine_features(x))[2])
    np.testing.assert_allclose(P.image_eigs(c, 12), np.concatenate([np.maximum(R.eigvals_desc(c), 0), [0, 0]]),
                               atol=1e-12)
