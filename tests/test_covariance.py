"""clipcore.covariance: the block kernels (joint_sums / single_sums on the compiled core and on XLA dots),
the covariances and the n×n dual Gram matrices against float64 NumPy, independent of the block size; jit vs
eager and no recompilation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clipcore import _ffi
from clipcore.covariance import (column_cosine, dual_gram, dual_gram_jit, feature_covariance, joint_covariances,
                                 joint_sums, single_sums)
from clipcore.kernels import FeatureMap
from reference import sce_numpy as R

needs_ext = pytest.mark.skipif(not _ffi.available(), reason=f"compiled core: {_ffi.unavailable_reason()}")
BACKENDS = [pytest.param("ffi", marks=needs_ext), "jax"]


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


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["cosine", "rff", "identity"])
@pytest.mark.parametrize("acc", [jnp.float64, jnp.float32], ids=["acc64", "acc32"])
def test_block_kernels_are_unnormalised_sums(data, backend, kind, acc):
    """joint_sums / single_sums on either backend (the compiled core's packed syrk or XLA dots), float64 or
    Kahan-compensated float32 accumulators, over ragged blocks: Σ φ(t)ᵀφ(t), Σ φ(t)ᵀφ(x), Σ φ(x)ᵀφ(x)."""
    t, x, omega = data
    fm = FeatureMap(kind, 40 if kind == "rff" else None)
    om = jnp.asarray(omega) if kind == "rff" else None
    opts = dict(fmap=fm, block=300, feature_dtype=jnp.dtype(jnp.float64), acc_dtype=jnp.dtype(acc), backend=backend)
    sums = joint_sums(jnp.asarray(t), jnp.asarray(x), om, **opts)
    pt, px = _np_features(t, kind, omega), _np_features(x, kind, omega)
    tol = 1e-12 if acc == jnp.float64 else 1e-6
    for got, want in zip(sums, (pt.T @ pt, pt.T @ px, px.T @ px)):
        assert got.dtype == acc
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    g = single_sums(jnp.asarray(x), om, **opts)
    np.testing.assert_allclose(g, px.T @ px, rtol=tol, atol=tol * np.abs(px.T @ px).max())


@pytest.mark.parametrize("backend", BACKENDS)
def test_dual_gram_matches_numpy(data, backend):
    """K = Φ Φᵀ / n for the feature maps, k(x_i, x_j) / n for the exact kernel (rows normalised on request), and
    the clip-dissection Φ whose Φᵀ Φ / n is the column-cosine covariance."""
    t, x, omega = data
    x = x[:300].astype(np.float64)
    n = x.shape[0]
    for fm, om, kind in ((FeatureMap("cosine"), None, "cosine"), (FeatureMap("rff", 40), omega, "rff")):
        p = _np_features(x, kind, omega)
        k = dual_gram(x, fm, om, backend=backend)
        assert k.shape == (n, n) and k.dtype == jnp.float64
        np.testing.assert_allclose(k, p @ p.T / n, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dual_gram(x, None, sigma=3.0, backend=backend), R.gaussian_kernel(x, x, 3.0) / n,
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dual_gram(x, None, sigma=0.5, normalize=True, backend=backend),
                               R.gaussian_kernel(R.l2_normalize_rows(x), R.l2_normalize_rows(x), 0.5) / n,
                               rtol=1e-12, atol=1e-15)
    kc = np.asarray(dual_gram(x, FeatureMap("identity"), column_cosine=True, backend=backend))
    xh = x / np.linalg.norm(x, axis=0)
    np.testing.assert_allclose(kc, xh @ xh.T / x.shape[1], rtol=1e-12, atol=1e-15)
    # its non-zero spectrum is the column-cosine C_XX's (the primal)
    c_xx = R.clip_dissection_covariances(x, x)[2]
    np.testing.assert_allclose(np.linalg.eigvalsh(kc)[::-1][:24], R.eigvals_desc(c_xx), atol=1e-12)
    # float32 features, float64 Gram
    k32 = dual_gram(x, FeatureMap("cosine"), feature_dtype=jnp.float32, backend=backend)
    assert k32.dtype == jnp.float64
    np.testing.assert_allclose(k32, _np_features(x, "cosine") @ _np_features(x, "cosine").T / n, atol=1e-7)


def test_dual_gram_jit_composes_under_jit_with_a_traced_sigma(data):
    _, x, _ = data
    x = jnp.asarray(x[:100], jnp.float64)
    static = dict(kind="exact", fmap=None, normalize=False, feature_dtype=jnp.dtype(jnp.float64),
                  acc_dtype=jnp.dtype(jnp.float64), backend="jax")
    f = jax.jit(lambda a, s: jnp.trace(dual_gram_jit(a, None, s, **static) @ dual_gram_jit(a, None, s, **static)))
    want = float(np.sum((R.gaussian_kernel(np.asarray(x), np.asarray(x), 2.0) / 100) ** 2))
    assert float(f(x, jnp.float64(2.0))) == pytest.approx(want, rel=1e-12)
    assert float(jax.grad(f, argnums=1)(x, jnp.float64(2.0))) > 0  # wider kernel, larger Σ k²
