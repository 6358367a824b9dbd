"""clipcore.kernels: the one Gaussian tile (``gaussian_tile``, its NumPy twin ``gaussian_tile_host``) against a
float64 NumPy reference of exp(−γ‖a − b‖²) computed from explicit differences (tests/reference/nystrom_numpy.py),
its rounding-floor rule (duplicates give exactly 1, σ → 0 / σ → ∞ give 0 / 1, never NaN) and its float32 gate;
``gaussian_kernel``, ``median_sigma``, and the feature maps (cosine, RFF)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.distance import pdist

from clipcore import kernels as K
from reference import nystrom_numpy as nref
from reference import sce_numpy as R


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((70, 12)) * 2.0
    b = np.concatenate([rng.standard_normal((40, 12)) * 2.0, a[:5]])  # b shares 5 rows with a
    return a, b


def _ref(a, b, gamma):
    return np.exp(-gamma * nref.sq_dists(a, b))


@pytest.mark.parametrize("gamma", [1e-3, 0.05, 0.5, 3.0])
def test_tile_matches_the_float64_reference(rows, gamma):
    a, b = rows
    want = _ref(a, b, gamma)
    dev = np.asarray(K.gaussian_tile(jnp.asarray(a), jnp.asarray(b), gamma))
    host = K.gaussian_tile_host(a, b, gamma)
    assert dev.shape == host.shape == (70, 45) and dev.dtype == host.dtype == np.float64
    np.testing.assert_allclose(dev, want, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(host, want, rtol=1e-12, atol=1e-300)
    # float32 rows: the tile in float32 at float32 accuracy of the exponent
    d32 = np.asarray(K.gaussian_tile(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), gamma))
    assert d32.dtype == np.float32
    np.testing.assert_allclose(d32, _ref(a.astype(np.float32), b.astype(np.float32), gamma), rtol=2e-5 * max(1, gamma * 100),
                               atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [1e-8, 1.0, 1e8])
def test_duplicates_give_exactly_one(rows, dtype, gamma):
    a, b = rows
    a, b = a.astype(dtype), b.astype(dtype)
    dev = np.asarray(K.gaussian_tile(jnp.asarray(a), jnp.asarray(b), gamma))
    host = K.gaussian_tile_host(a.astype(np.float64), b.astype(np.float64), gamma)
    for k in (dev, host):
        np.testing.assert_array_equal(k[np.arange(5), np.arange(40, 45)], 1.0)
    np.testing.assert_array_equal(np.diag(np.asarray(K.gaussian_tile(jnp.asarray(a), jnp.asarray(a), gamma))), 1.0)
    np.testing.assert_array_equal(np.diag(K.gaussian_tile_host(a, a, gamma)), 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigma_to_zero_and_to_infinity_give_zero_one_not_nan(rows, dtype):
    """γ = ∞ (σ → 0): 1 on coinciding points, 0 elsewhere; γ = 0 (σ → ∞): all ones. Never NaN (∞ · 0)."""
    a, b = rows
    a, b = a.astype(dtype), b.astype(dtype)
    dup = np.zeros((70, 45))
    dup[np.arange(5), np.arange(40, 45)] = 1.0
    for gamma, want in ((np.inf, dup), (0.0, np.ones((70, 45)))):
        dev = np.asarray(K.gaussian_tile(jnp.asarray(a), jnp.asarray(b), gamma))
        host = K.gaussian_tile_host(a, b, gamma)
        np.testing.assert_array_equal(dev, want)
        np.testing.assert_array_equal(host, want)
    with np.errstate(over="ignore"):
        tiny = np.asarray(K.gaussian_kernel(jnp.asarray(a), jnp.asarray(b), 1e-300))  # γ overflows to ∞
        huge = np.asarray(K.gaussian_kernel(jnp.asarray(a), jnp.asarray(b), 1e300))  # γ underflows to 0
    np.testing.assert_array_equal(tiny, dup)
    np.testing.assert_array_equal(huge, 1.0)


def test_float32_gate_forms_near_pairs_in_float64():
    """float32 rows whose bandwidth makes the GEMM form's rounding matter (γ·floor·(max‖a‖² + max‖b‖²) > 1e-3)
    are formed in float64: a pair 1e-3 apart in each of 3 coordinates at σ = 0.01 keeps k ≈ e^-0.015 instead
    of the float32 form's
    rounding (which is off by more than 1e-3 here); at an ordinary σ the float32 tile is used."""
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((6, 3)) * 3.0).astype(np.float32)
    b = np.concatenate([a[:2] + np.float32(1e-3), rng.standard_normal((3, 3)).astype(np.float32)])
    sigma = 0.01
    gamma = 1.0 / (2 * sigma * sigma)
    floor = float(np.finfo(np.float32).eps) * (4 + 2 * np.sqrt(3))
    top = float((a.astype(np.float64) ** 2).sum(1).max() + (b.astype(np.float64) ** 2).sum(1).max())
    assert gamma * floor * top > 1e-3  # the gate is open
    want = _ref(a.astype(np.float64), b.astype(np.float64), gamma)
    got = np.asarray(K.gaussian_tile(jnp.asarray(a), jnp.asarray(b), gamma))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=1e-6, atol=1e-38)
    assert 0.98 < got[0, 0] < 0.99
    # positive control: the float32 GEMM form on its own is not that accurate for these pairs
    a32, b32 = a, b
    sq32 = (a32 * a32).sum(1)[:, None] + (b32 * b32).sum(1)[None, :] - np.float32(2) * (a32 @ b32.T)
    naive = np.exp(-np.float32(gamma) * np.maximum(sq32, np.float32(0)))
    assert np.max(np.abs(naive[:2, :2].diagonal() - want[:2, :2].diagonal())) > 1e-3
    # the gate also runs with a traced γ
    jitted = jax.jit(K.gaussian_tile)(jnp.asarray(a), jnp.asarray(b), jnp.float64(gamma))
    np.testing.assert_allclose(np.asarray(jitted), got, rtol=1e-7)


def test_gaussian_kernel_sigma_may_be_traced_and_differentiated(rows):
    a, b = rows
    want = R.gaussian_kernel(a, b, 1.7)
    np.testing.assert_allclose(K.gaussian_kernel(jnp.asarray(a), jnp.asarray(b), 1.7), want, rtol=1e-12)
    f = jax.jit(lambda s: K.gaussian_kernel(jnp.asarray(a), jnp.asarray(b), s))
    np.testing.assert_allclose(f(jnp.float64(1.7)), want, rtol=1e-12)
    # d/dσ Σ k = Σ k · sq / σ³
    g = jax.grad(lambda s: jnp.sum(K.gaussian_kernel(jnp.asarray(a), jnp.asarray(b), s)))(jnp.float64(1.7))
    sq = nref.sq_dists(a, b)
    assert float(g) == pytest.approx(float(np.sum(want * sq / 1.7**3)), rel=1e-9)
    assert K.gamma_of(2.0) == 0.125


def test_median_sigma():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 7))
    # the median of the squared distances, then its root (for an even count of pairs the mean of the two
    # middle squared distances; the median of pdist would average the distances instead)
    assert K.median_sigma(x) == pytest.approx(float(np.sqrt(np.median(pdist(x, "sqeuclidean")))), rel=1e-12)
    assert K.median_sigma(x) == pytest.approx(float(np.median(pdist(x))), rel=1e-8)
    big = rng.standard_normal((2500, 4))
    idx = np.sort(np.random.default_rng(0).choice(2500, size=2000, replace=False))
    assert K.median_sigma(big) == pytest.approx(float(np.sqrt(np.median(pdist(big[idx], "sqeuclidean")))),
                                                rel=1e-12)
    assert K.median_sigma(big, max_samples=100, seed=3) == K.median_sigma(big, max_samples=100, seed=3)
    assert K.median_sigma(jnp.asarray(x)) == pytest.approx(K.median_sigma(x), rel=1e-14)
    with pytest.raises(ValueError, match="sigma: the median heuristic needs at least two embeddings"):
        K.median_sigma(x[:1])
    with pytest.raises(ValueError, match=r"sigma: the median pairwise distance is 0 \(identical embeddings\)"):
        K.median_sigma(np.ones((5, 3)))


def test_feature_maps_match_reference(rows):
    a, _ = rows
    om = np.random.default_rng(6).standard_normal((12, 30)) / 1.5
    np.testing.assert_allclose(K.cosine_features(jnp.asarray(a)), R.cosine_features(a), rtol=1e-14)
    np.testing.assert_allclose(K.rff_features(jnp.asarray(a), jnp.asarray(om)), R.rff_features(a, om), rtol=1e-12,
                               atol=1e-14)
    phi = np.asarray(K.features(jnp.asarray(a), K.FeatureMap("rff", 30), jnp.asarray(om)))
    np.testing.assert_allclose(np.sum(phi**2, 1), 1.0, rtol=1e-12)  # unit rows: tr C = 1
    np.testing.assert_allclose(
        K.features(jnp.asarray(a), K.FeatureMap("rff", 30, normalize=True), jnp.asarray(om)),
        R.rff_features(R.l2_normalize_rows(a), om), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(K.features(jnp.asarray(a), K.FeatureMap("identity")), a)
    np.testing.assert_allclose(K.features(jnp.asarray(a), K.FeatureMap("cosine")), R.cosine_features(a), rtol=1e-14)
    assert K.FeatureMap("rff", 30).dim(12) == 60 and K.FeatureMap("cosine").dim(12) == 12
    assert hash(K.FeatureMap("rff", 30)) == hash(K.FeatureMap("rff", 30))  # a jit static argument


def test_draw_omega_is_seeded_with_variance_one_over_sigma_squared():
    om = np.asarray(K.draw_omega(jax.random.key(0), 16, 4000, 2.0))
    assert om.shape == (16, 4000) and om.dtype == np.float32
    assert om.std() == pytest.approx(0.5, rel=0.02) and abs(om.mean()) < 0.01
    np.testing.assert_array_equal(om, np.asarray(K.draw_omega(jax.random.key(0), 16, 4000, 2.0)))
    assert not np.array_equal(om, np.asarray(K.draw_omega(jax.random.key(1), 16, 4000, 2.0)))
    # RFF with these frequencies approximate the Gaussian kernel (Monte Carlo, D = 4000)
    x = np.random.default_rng(7).standard_normal((20, 16)) * 0.3
    phi = np.asarray(K.rff_features(jnp.asarray(x), jnp.asarray(om, jnp.float64)))
    np.testing.assert_allclose(phi @ phi.T, R.gaussian_kernel(x, x, 2.0), atol=0.05)
