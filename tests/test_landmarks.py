"""clipcore.landmarks: seeded landmark selection (uniform, k-means++, pivoted Cholesky) against dense
float64 NumPy references (tests/reference/nystrom_numpy.py: a textbook pivoted Cholesky on the dense kernel),
the seeded pool, and the refusals naming the option."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from clipcore import _ffi
from clipcore import landmarks as LM
from clipcore import nystrom as ny
from reference import nystrom_numpy as ref

needs_ext = pytest.mark.skipif(not _ffi.available(), reason=f"compiled core: {_ffi.unavailable_reason()}")
BACKENDS = [pytest.param("ffi", marks=needs_ext), "jax"]


def test_uniform_landmarks_are_seeded_sorted_distinct():
    x = ref.clustered(500, 8, seed=5)
    a = LM.select_landmarks(x, 50, key=7)
    b = LM.select_landmarks(x, 50, key=7)
    c = LM.select_landmarks(x, 50, key=8)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices)
    assert np.all(np.diff(a.indices) > 0) and len(a.indices) == 50
    np.testing.assert_array_equal(np.asarray(a.points), x[a.indices])
    assert LM.select_landmarks(x, 10_000).indices.shape == (500,)


def test_kmeanspp_is_seeded_and_spreads_over_clusters():
    rng = np.random.default_rng(0)
    centres = np.eye(4, 6) * 50.0
    x = (centres[rng.integers(0, 4, 2000)] + 0.1 * rng.standard_normal((2000, 6))).astype(np.float32)
    a = LM.select_landmarks(x, 4, sigma=1.0, method="kmeans++", key=1)
    b = LM.select_landmarks(x, 4, sigma=1.0, method="kmeans++", key=1)
    np.testing.assert_array_equal(a.indices, b.indices)
    # kernel distance 2 − 2k: one landmark per far-apart cluster
    cluster = np.argmax(x[a.indices] @ centres.T, axis=1)
    assert sorted(cluster) == [0, 1, 2, 3]
    more = LM.select_landmarks(x, 40, sigma=1.0, method="kmeans++", key=2)
    assert len(np.unique(more.indices)) == len(more.indices) == 40


def test_kmeanspp_stops_when_every_row_is_a_landmark():
    x = np.repeat(np.eye(3, 5), 10, axis=0)  # 3 distinct rows
    lm = LM.select_landmarks(x, 8, sigma=1.0, method="kmeans++", key=0)
    assert len(lm.indices) == 3
    assert len({tuple(r) for r in np.asarray(lm.points)}) == 3


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_pivoted_cholesky_landmarks_match_dense_reference(backend, dtype):
    x = ref.clustered(600, 10, clusters=6, noise=0.5, seed=6, dtype=dtype)
    sigma = 2.5
    piv, L, traces = ref.pivoted_cholesky(ref.gaussian(x, x, sigma), 120)
    lm = LM.select_landmarks(x, 120, sigma=sigma, method="pivoted-cholesky", backend=backend)
    np.testing.assert_array_equal(lm.indices, piv)
    np.testing.assert_allclose(lm.residual_trace, traces, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(lm.captured, 1 - traces / 600, atol=1e-11)
    assert lm.pool_size == 600 and np.all(np.diff(lm.captured) > 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pivoted_cholesky_tolerance(backend):
    x = ref.clustered(500, 6, clusters=4, noise=0.3, seed=8, dtype=np.float64)
    sigma = 3.0
    piv, _, traces = ref.pivoted_cholesky(ref.gaussian(x, x, sigma), 400, trace_tol=0.02 * 500)
    lm = LM.select_landmarks(x, 400, sigma=sigma, method="pivoted-cholesky", tol=0.02, backend=backend)
    np.testing.assert_array_equal(lm.indices, piv)
    assert len(piv) < 400 and traces[-1] <= 0.02 * 500 < traces[-2]
    assert lm.captured[-1] >= 0.98


def test_pivoted_cholesky_nystrom_trace_equals_captured():
    """tr C of the Nyström map on the pivots = the captured fraction of tr K (same approximation)."""
    x = ref.clustered(1500, 12, seed=10, dtype=np.float64)
    lm = LM.select_landmarks(x, 100, sigma=3.0, method="pivoted-cholesky")
    nm = ny.nystrom_map(lm, 3.0, rtol=0.0)
    tr, _ = ny.captured_trace(ny.nystrom_covariance(x, nm, backend="jax"))
    assert abs(tr - lm.captured[-1]) < 1e-8


def test_pool_subsample_is_seeded():
    x = ref.clustered(3000, 8, seed=11)
    a = LM.select_landmarks(x, 20, sigma=3.0, method="pivoted-cholesky", pool=500, key=1)
    b = LM.select_landmarks(x, 20, sigma=3.0, method="pivoted-cholesky", pool=500, key=1)
    c = LM.select_landmarks(x, 20, sigma=3.0, method="pivoted-cholesky", pool=500, key=2)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices) and a.pool_size == 500
    np.testing.assert_array_equal(np.asarray(a.points), x[a.indices])
    assert LM.default_pool(10_000, 100) == 10_000
    assert LM.default_pool(10**7, 2000) == (1 << 24) // 2000 == 8388


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(m=0), "m: expected an integer >= 1"),
        (dict(m=5, method="random"), "method: expected one of"),
        (dict(m=5, method="kmeans++"), "sigma: method='kmeans\\+\\+' needs"),
        (dict(m=5, method="pivoted-cholesky", sigma=-1.0), "sigma: the Gaussian bandwidth must be a finite positive number"),
        (dict(m=5, method="pivoted-cholesky", sigma=1.0, tol=-0.1), "tol: expected a finite number"),
        (dict(m=5, method="pivoted-cholesky", sigma=1.0, pool=0), "pool: expected an integer"),
        (dict(m=5, backend="cuda", method="pivoted-cholesky", sigma=1.0), "backend: expected one of"),
    ],
)
def test_select_landmarks_rejects_bad_options(kwargs, match):
    x = ref.clustered(50, 4, seed=0)
    with pytest.raises(ValueError, match=match):
        LM.select_landmarks(x, **kwargs)


def test_pool_indices_are_sorted_distinct_and_seeded():
    a = LM.pool_indices(1000, 100, np.random.default_rng(4))
    b = LM.pool_indices(1000, 100, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int64 and a.shape == (100,) and np.all(np.diff(a) > 0) and a.max() < 1000
    assert not np.array_equal(a, LM.pool_indices(1000, 100, np.random.default_rng(5)))
    np.testing.assert_array_equal(LM.pool_indices(50, 50, np.random.default_rng(0)), np.arange(50))
    np.testing.assert_array_equal(LM.pool_indices(50, 80, np.random.default_rng(0)), np.arange(50))


@pytest.mark.parametrize("method", ["uniform", "kmeans++", "pivoted-cholesky"])
def test_a_jax_key_and_its_raw_data_choose_the_same_landmarks(method):
    """The one key rule: a typed ``jax.random`` key and its raw ``uint32[2]`` data are the same randomness;
    a key is as deterministic as an int seed."""
    x = ref.clustered(800, 6, clusters=5, seed=14)
    key = jax.random.key(11)
    kw = dict(sigma=2.0, method=method, pool=300)
    a = LM.select_landmarks(x, 12, key=key, **kw)
    b = LM.select_landmarks(x, 12, key=jax.random.key_data(key), **kw)
    c = LM.select_landmarks(x, 12, key=key, **kw)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.indices, c.indices)
    assert a.method == method and len(a.indices) == 12
    if method != "pivoted-cholesky":  # pivoted Cholesky is deterministic on a given pool; the pool is seeded
        assert not np.array_equal(a.indices, LM.select_landmarks(x, 12, key=jax.random.key(12), **kw).indices)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pivoted_cholesky_on_device_rows_matches_host_rows(backend):
    """Device rows (a jax.Array: the XLA target or its JAX twin) and host rows (the core's host entry on CPU)
    choose the same pivots as the dense reference."""
    x = ref.clustered(400, 8, clusters=5, noise=0.5, seed=15, dtype=np.float64)
    piv, _, traces = ref.pivoted_cholesky(ref.gaussian(x, x, 2.0), 60)
    host = LM.select_landmarks(x, 60, sigma=2.0, method="pivoted-cholesky", backend=backend)
    dev = LM.select_landmarks(jax.numpy.asarray(x), 60, sigma=2.0, method="pivoted-cholesky", backend=backend)
    np.testing.assert_array_equal(host.indices, piv)
    np.testing.assert_array_equal(dev.indices, piv)
    np.testing.assert_allclose(dev.residual_trace, traces, rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(np.asarray(dev.points), x[piv])


def test_check_float_rows_names_the_argument():
    LM.check_float_rows(np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"x: expected a \[n, d\] array, got shape \[3\]"):
        LM.check_float_rows(np.ones(3))
    with pytest.raises(ValueError, match="block: dtype must be float32 or float64, got int64"):
        LM.check_float_rows(np.ones((3, 2), np.int64), "block")
    with pytest.raises(ValueError, match="x: no rows to choose landmarks from"):
        LM.select_landmarks(np.ones((0, 3)), 2)
    with pytest.raises(ValueError, match="m: expected an integer >= 1"):
        LM.select_landmarks(np.ones((4, 3)), True)
