"""clipcore.models.mds_objectives (neural MDS distances, losses, samplers) against float64 NumPy
references (tests/reference/mds_numpy.py) and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clipcore.models import mds_objectives as M
from reference import mds_numpy as ref


# ------------------------------------------------------------------ losses
def test_losses_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 9, 5))
    b[3] = a[3]  # a coincident pair
    delta = rng.uniform(0.0, 2.0, 9)
    w = rng.uniform(0.0, 1.0, 9)
    eps = 1e-6
    d = np.asarray(M.embedded_distance(jnp.asarray(a), jnp.asarray(b), eps))
    np.testing.assert_allclose(d, ref.embedded_distance(a, b, eps), rtol=1e-14)
    assert d[3] == pytest.approx(np.sqrt(eps))
    np.testing.assert_allclose(float(M.raw_stress(delta, d)), ref.raw_stress(delta, d), rtol=1e-13)
    np.testing.assert_allclose(float(M.raw_stress(delta, d, w)), ref.raw_stress(delta, d, w), rtol=1e-13)
    np.testing.assert_allclose(float(M.kruskal_stress1(delta, d)), ref.kruskal_stress1(delta, d), rtol=1e-13)
    far = d + rng.uniform(-0.3, 0.3, 9)
    for margin in (0.0, 0.1):
        np.testing.assert_allclose(float(M.quad_loss(d, far, margin)), ref.quad_loss(d, far, margin), rtol=1e-13)
        np.testing.assert_allclose(float(M.quad_loss(d, far, margin, w)), ref.quad_loss(d, far, margin, w),
                                   rtol=1e-13)
    # the hinge is active on some quads and not on others, so both branches were compared
    assert 0 < np.sum(d + 0.1 > far) < 9


def test_gradients_finite_at_coincident_points_and_match_finite_differences():
    a = jnp.asarray(np.random.default_rng(2).standard_normal((4, 3)))
    stress = lambda x, y: M.raw_stress(jnp.full(4, 0.5), M.embedded_distance(x, y))  # noqa: E731
    quads = lambda x, y: M.quad_loss(M.embedded_distance(x, y), M.embedded_distance(x, y[::-1]), 0.2)  # noqa: E731
    for f in (stress, quads):
        g = jax.grad(f)(a, a)  # every pair coincident
        assert np.isfinite(np.asarray(g)).all()
    # generic point: central differences in float64
    b = a + jnp.asarray(np.random.default_rng(3).standard_normal((4, 3)))
    for f in (stress, quads):
        g = np.asarray(jax.grad(f)(a, b))
        h = 1e-6
        fd = np.zeros_like(g)
        for idx in np.ndindex(*g.shape):
            e = np.zeros(g.shape)
            e[idx] = h
            fd[idx] = (float(f(a + e, b)) - float(f(a - e, b))) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
        assert np.abs(g).max() > 1e-3


def test_sampling_oversamples_cross_modal_and_matched_pairs():
    n, size = 100, 20000
    a, b = map(np.asarray, M.sample_pairs(jax.random.key(0), n, size, 0.5, 0.25))
    cross = (a < n) != (b < n)
    # uniform pairs are cross-modal half the time: 0.5 + 0.5 · 0.5
    assert cross.mean() == pytest.approx(0.75, abs=0.015)
    matched = cross & (a % n == b % n)
    assert matched.mean() == pytest.approx(0.5 * 0.25, abs=0.01)
    qa, qb, qc, qe = map(np.asarray, M.sample_quads(jax.random.key(1), n, size, 0.6, 0.3))
    anchored = (qa == qc) & ((qa < n) != (qb < n)) & ((qa < n) != (qe < n))
    assert anchored.mean() == pytest.approx(0.6, abs=0.015)
