"""Streaming covariances against float64 NumPy, independent of the block size."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clipcore.covariance import column_cosine, feature_covariance, joint_covariances, joint_sums, single_sums
from clipcore.kernels import FeatureMap


def _np_features(a, kind, omega=None):
    a = np.asarray(a, np.float64)
    if kind == "cosine":
        return a / np.linalg.norm(a, axis=1, keepdims=True)
    if kind == "rff":
        p = a @ np.asarray(omega, np.float64)
        return np.concatenate([np.cos(p), np.sin(p)], 1) / np.sqrt(omega.shape[1])
    return a


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((1037, 24)).astype(np.float32)
    x = (0.6 * t + rng.standard_normal((1037, 24))).astype(np.float32)
    omega = (rng.standard_normal((24, 40)) / 2.0).astype(np.float32)
    return t, x, omega


@pytest.mark.parametrize("kind", ["cosine", "rff", "identity"])
@pytest.mark.parametrize("block", [1, 100, 1037, 4096])
def test_joint_covariances_match_numpy_any_block(data, kind, block):
    t, x, omega = data
    fm = FeatureMap(kind, 40 if kind == "rff" else None)
    om = omega if kind == "rff" else None
    cov = joint_covariances(t, x, fm, om, block_size=block, feature_dtype=jnp.float64, acc_dtype=jnp.float64)
    pt, px = _np_features(t, kind, omega), _np_features(x, kind, omega)
    n = t.shape[0]
    np.testing.assert_allclose(cov.tt, pt.T @ pt / n, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cov.tx, pt.T @ px / n, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cov.xx, px.T @ px / n, rtol=1e-12, atol=1e-14)
    c = feature_covariance(x, fm, om, block_size=block, feature_dtype=jnp.float64, acc_dtype=jnp.float64)
    np.testing.assert_allclose(c, px.T @ px / n, rtol=1e-12, atol=1e-14)


def test_float32_products_float64_accumulation(data):
    t, x, omega = data
    fm = FeatureMap("rff", 40)
    pt, px = _np_features(t, "rff", omega), _np_features(x, "rff", omega)
    ref = px.T @ px / t.shape[0]
    c = feature_covariance(x, fm, omega, block_size=128, feature_dtype=jnp.float32, acc_dtype=jnp.float64)
    assert c.dtype == jnp.float64
    # error of a float32 product over one block, not over n rows
    np.testing.assert_allclose(c, ref, rtol=0, atol=2e-6)


def test_kahan_float32_accumulator_beats_naive():
    # 2^18 rows of a constant feature: naive float32 running sums drift, compensated do not.
    n, d = 1 << 18, 4
    rng = np.random.default_rng(1)
    x = (1.0 + 1e-3 * rng.standard_normal((n, d))).astype(np.float32)
    fm = FeatureMap("identity")
    ref = x.astype(np.float64).T @ x.astype(np.float64) / n
    comp = feature_covariance(x, fm, block_size=256, feature_dtype=jnp.float32, acc_dtype=jnp.float32)
    naive = np.zeros((d, d), np.float32)
    for i in range(0, n, 256):
        b = x[i : i + 256]
        naive += b.T @ b
    naive = naive / np.float32(n)
    err_comp = np.abs(np.asarray(comp, np.float64) - ref).max()
    err_naive = np.abs(naive.astype(np.float64) - ref).max()
    assert err_comp < 1e-6
    assert err_comp < err_naive / 10


def test_column_cosine_matches_definition(data):
    t, x, _ = data
    T, X = t.astype(np.float64), x.astype(np.float64)
    Th, Xh = T / np.linalg.norm(T, axis=0), X / np.linalg.norm(X, axis=0)
    d = T.shape[1]
    ctt, ctx, cxx = column_cosine(T.T @ T, T.T @ X, X.T @ X)
    np.testing.assert_allclose(ctt, Th.T @ Th / d, rtol=1e-12)
    np.testing.assert_allclose(ctx, Th.T @ Xh / d, rtol=1e-12)
    np.testing.assert_allclose(cxx, Xh.T @ Xh / d, rtol=1e-12)


def test_jit_cache_no_recompile(data):
    t, x, omega = data
    fm = FeatureMap("cosine")
    joint_covariances(t, x, fm, block_size=100, feature_dtype=jnp.float64)
    before = joint_sums._cache_size()
    joint_covariances(t * 2, x * 3, fm, block_size=100, feature_dtype=jnp.float64)
    assert joint_sums._cache_size() == before
    feature_covariance(x, fm, block_size=100, feature_dtype=jnp.float64)
    single = single_sums._cache_size()
    feature_covariance(x * 5, fm, block_size=100, feature_dtype=jnp.float64)
    assert single_sums._cache_size() == single


def test_jit_vs_eager(data):
    t, x, omega = data
    fm = FeatureMap("rff", 40)
    jitted = joint_covariances(t, x, fm, omega, block_size=256, feature_dtype=jnp.float64)
    with jax.disable_jit():
        eager = joint_covariances(t, x, fm, omega, block_size=256, feature_dtype=jnp.float64)
    for a, b in zip(jitted, eager):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
