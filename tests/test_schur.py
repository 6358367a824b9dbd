"""clipcore.schur: the Schur decomposition R = C_TXᵀ (C_TT + εI)⁺ C_TX, S = C_XX − R (primal and dual), its
spectral filter (with xp = numpy and xp = jax.numpy), the regression coefficient A*, jitted and eager, against
the float64 NumPy reference of tests/reference/sce_numpy.py (written from SPEC.md)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import clipcore
from clipcore import schur as SC
from reference import fixtures as F
from reference import sce_numpy as R


@pytest.fixture(scope="module")
def covs():
    """Covariances of RFF features with a rank-deficient C_TT (the texts span 6 of 10 directions)."""
    rng = np.random.default_rng(2)
    n, d = 400, 10
    t = rng.standard_normal((n, 6)) @ rng.standard_normal((6, d))
    x = 0.7 * t + rng.standard_normal((n, d))
    pt, px = R.cosine_features(t), R.cosine_features(x)
    return R.covariances(pt, px), (pt, px)


def _inverse(w, v, g):
    return (v * g[None, :]) @ v.T


@pytest.mark.parametrize("xp", [np, jnp], ids=["numpy", "jax"])
@pytest.mark.parametrize("rtol", [1e-6, 1e-2])
def test_spectral_filter_pinv_is_the_cut_pseudo_inverse(covs, xp, rtol):
    c_tt = covs[0][0]
    w, v = np.linalg.eigh(c_tt)
    g, keep = SC.spectral_filter(xp.asarray(w), rtol, SC.EPSILON, 0.0, mode="pinv", xp=xp)
    want, rank = R.pinv_psd(c_tt + SC.EPSILON * np.eye(10), rtol, return_rank=True)
    np.testing.assert_allclose(_inverse(w, v, np.asarray(g)), want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
    assert int(np.sum(np.asarray(keep))) == rank
    assert rank == (6 if rtol == 1e-6 else int(np.sum(np.abs(w) > rtol * np.abs(w).max())))


@pytest.mark.parametrize("xp", [np, jnp], ids=["numpy", "jax"])
def test_spectral_filter_ridge(covs, xp):
    c_tt = covs[0][0]
    w, v = np.linalg.eigh(c_tt)
    g, keep = SC.spectral_filter(xp.asarray(w), 0.0, SC.EPSILON, 1e-3, mode="ridge", xp=xp)
    np.testing.assert_allclose(_inverse(w, v, np.asarray(g)), np.linalg.inv(c_tt + 1e-3 * np.eye(10)), rtol=1e-8)
    assert bool(np.all(np.asarray(keep)))
    # an empty spectrum (no text direction) keeps nothing, in either module
    g0, k0 = SC.spectral_filter(xp.zeros((0,)), 1e-6, SC.EPSILON, 0.0, mode="pinv", xp=xp)
    assert np.asarray(g0).shape == (0,) and np.asarray(k0).shape == (0,)


@pytest.mark.parametrize("ridge", [None, 1e-3])
def test_schur_matrices_and_primal_match_reference(covs, ridge):
    (c_tt, c_tx, c_xx), _ = covs
    rtol = 10 * R.EPS32
    mode = "pinv" if ridge is None else "ridge"
    r, s, rank = SC.schur_matrices(c_tt, c_tx, c_xx, rtol, SC.EPSILON, ridge or 0.0, mode=mode)
    if ridge is None:
        s_ref, r_ref, rank_ref = R.schur(c_tt, c_tx, c_xx, rtol=rtol)
    else:
        r_ref = c_tx.T @ np.linalg.inv(c_tt + ridge * np.eye(10)) @ c_tx
        s_ref, rank_ref = c_xx - r_ref, 10
    np.testing.assert_allclose(r, r_ref, atol=1e-10)
    np.testing.assert_allclose(s, s_ref, atol=1e-10)
    assert int(rank) == rank_ref
    sp = SC.schur_primal(c_tt, c_tx, c_xx, rtol, SC.EPSILON, ridge or 0.0, mode=mode)
    for got, m in ((sp.text, r_ref), (sp.complement, s_ref), (sp.image, c_xx)):
        want = np.clip(R.eigvals_desc(m), 0, None)
        np.testing.assert_allclose(got, want, atol=1e-12)
    assert float(np.sum(sp.text) + np.sum(sp.complement)) == pytest.approx(float(np.trace(c_xx)), rel=1e-10)


def test_schur_dual_matches_reference_and_primal(covs):
    """n = 400 rows of 10 features: the dual's 400 eigenvalues cut to the primal 10 are the primal's."""
    (c_tt, c_tx, c_xx), (pt, px) = covs
    n = pt.shape[0]
    rtol = 10 * R.EPS32
    sp = SC.schur_dual(pt @ pt.T / n, px @ px.T / n, rtol, SC.EPSILON, pad_to=10)
    want = R.sce_dual(pt, px, rtol=rtol, size=10, ridge=R.RIDGE)
    for got, w in ((sp.text, want.text), (sp.complement, want.complement), (sp.image, want.image)):
        assert got.shape == (10,)
        np.testing.assert_allclose(got, np.clip(w, 0, None), atol=1e-12)
    assert int(sp.rank) == want.rank
    primal = SC.schur_primal(c_tt, c_tx, c_xx, rtol)
    np.testing.assert_allclose(sp.complement, primal.complement, atol=1e-12)
    # fewer rows than features: zero-padded up to the primal dimension
    small = SC.schur_dual(pt[:6] @ pt[:6].T / 6, px[:6] @ px[:6].T / 6, rtol, pad_to=10)
    assert small.image.shape == (10,) and np.all(np.asarray(small.image[6:]) == 0)
    assert SC.schur_dual(pt[:6] @ pt[:6].T / 6, px[:6] @ px[:6].T / 6, rtol).image.shape == (6,)


def test_pad_and_desc_eigvalsh():
    e = jnp.array([3.0, 2.0, 1.0])
    assert SC.pad(e, None) is e
    np.testing.assert_array_equal(SC.pad(e, 5), [3, 2, 1, 0, 0])
    np.testing.assert_array_equal(SC.pad(e, 2), [3, 2])
    a = np.random.default_rng(0).standard_normal((3, 7, 7))
    a = a @ np.swapaxes(a, 1, 2)
    a[2] -= 2 * np.eye(7) * np.linalg.eigvalsh(a[2]).min()  # one matrix with negative eigenvalues
    a[2] = -a[2]
    got = np.asarray(SC.desc_eigvalsh(jnp.asarray(a)))
    for k in range(3):
        np.testing.assert_allclose(got[k], np.maximum(np.linalg.eigvalsh(a[k])[::-1], 0), atol=1e-10)
    assert np.all(np.diff(got, axis=1) <= 0) and got.min() >= 0


@pytest.mark.parametrize("ridge", [None, 1e-4])
def test_regression_coefficient_is_least_squares(covs, ridge):
    (c_tt, c_tx, _), (pt, px) = covs
    a = SC.regression_coefficient(c_tt, c_tx, 10 * R.EPS32, SC.EPSILON, ridge or 0.0,
                                  mode="pinv" if ridge is None else "ridge")
    if ridge is None:
        np.testing.assert_allclose(a, R.fit_edit_coefficients(c_tt, c_tx, c_tx.T @ c_tx, rtol=10 * R.EPS32).t2i,
                                   atol=1e-8)
        # the minimum-norm least-squares map from text features to image features
        np.testing.assert_allclose(a, np.linalg.lstsq(pt, px, rcond=1e-6)[0], atol=1e-6)
    else:
        np.testing.assert_allclose(a, np.linalg.solve(c_tt + ridge * np.eye(10), c_tx), rtol=1e-9, atol=1e-12)


def test_jit_equals_eager_and_no_recompile(covs):
    (c_tt, c_tx, c_xx), (pt, px) = covs
    n = pt.shape[0]
    jitted = SC.schur_primal(c_tt, c_tx, c_xx, 1e-6)
    with jax.disable_jit():
        eager = SC.schur_primal(*[jnp.asarray(a) for a in (c_tt, c_tx, c_xx)], 1e-6)
    for a, b in zip(jitted[:3], eager[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-13)
    jd = SC.schur_dual(pt @ pt.T / n, px @ px.T / n, 1e-6, pad_to=16)
    with jax.disable_jit():
        ed = SC.schur_dual(jnp.asarray(pt @ pt.T / n), jnp.asarray(px @ px.T / n), 1e-6, pad_to=16)
    for a, b in zip(jd[:3], ed[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
    # a second call with new values of the same shapes (and a new cutoff: a traced argument) compiles nothing
    before = SC.schur_primal._cache_size(), SC.schur_dual._cache_size()
    SC.schur_primal(2 * c_tt, c_tx, c_xx, 1e-5)
    SC.schur_dual(pt @ pt.T / n, 2 * px @ px.T / n, 1e-5, pad_to=16)
    assert (SC.schur_primal._cache_size(), SC.schur_dual._cache_size()) == before


def test_grad_through_the_complement(covs):
    """S's trace is tr C_XX − tr R: differentiable in C_XX with gradient I."""
    (c_tt, c_tx, c_xx), _ = covs
    g = jax.grad(lambda cxx: jnp.trace(SC.schur_matrices(c_tt, c_tx, cxx, 1e-6)[1]))(jnp.asarray(c_xx))
    np.testing.assert_allclose(g, np.eye(10), atol=1e-12)


def test_schur_primal_jit_vs_eager_vs_reference(ref_dir):
    """On the shared fixture's clip-dissection covariances (moved from test_scores.py)."""
    covs = R.clip_dissection_covariances(F.texts(ref_dir), F.images(ref_dir))
    c = [jax.numpy.asarray(m) for m in covs]
    rtol = 64 * R.EPS32
    eager = clipcore.schur_primal(*c, rtol)
    jitted = jax.jit(lambda a, b, d: clipcore.schur_primal(a, b, d, rtol))(*c)
    spec = R.sce_primal(covs=covs)
    for got in (eager, jitted):
        np.testing.assert_allclose(np.asarray(got.complement), np.clip(spec.complement, 0, None), atol=1e-12)
        np.testing.assert_allclose(np.asarray(got.text), np.clip(spec.text, 0, None), atol=1e-12)
        assert int(got.rank) == spec.rank
