"""clipcore.models.dec_objectives (DEC's soft assignment, target, KL, input scale) against independent
float64 NumPy references (tests/reference/dec_numpy.py), finite differences and the paper's gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clipcore.models.dec_objectives import input_scale, kl_divergence, soft_assignment, target_distribution
from reference import dec_numpy as ref


@pytest.mark.parametrize("alpha", [1.0, 0.5, 3.0])
def test_soft_assignment_and_target_match_reference(alpha):
    rng = np.random.default_rng(1)
    z, mu = rng.standard_normal((30, 5)) * 2, rng.standard_normal((4, 5))
    q = np.asarray(soft_assignment(jnp.asarray(z), jnp.asarray(mu), alpha))
    q_ref = ref.soft_assignment(z, mu, alpha)
    np.testing.assert_allclose(q, q_ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(np.asarray(target_distribution(jnp.asarray(q))), ref.target_distribution(q_ref),
                               rtol=1e-12, atol=0)
    p = ref.target_distribution(q_ref)
    assert float(kl_divergence(jnp.asarray(p), jnp.asarray(q))) == pytest.approx(ref.kl(p, q_ref) / 30, rel=1e-12)


def test_target_sharpens_and_reweights():
    q = jnp.array([[0.6, 0.4], [0.6, 0.4], [0.5, 0.5]])
    p = np.asarray(target_distribution(q))
    assert (p[:2, 0] > 0.6).all()  # confident points get more confident
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-14)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_kl_gradient_finite_differences_and_closed_form(alpha):
    rng = np.random.default_rng(2)
    z, mu = rng.standard_normal((6, 3)), rng.standard_normal((3, 3))
    p = ref.target_distribution(ref.soft_assignment(z + 0.3 * rng.standard_normal(z.shape), mu, alpha))

    def loss(z_, mu_):  # the summed KL (eq. 2)
        return kl_divergence(jnp.asarray(p), soft_assignment(z_, mu_, alpha)) * z_.shape[0]

    gz, gmu = jax.grad(loss, argnums=(0, 1))(jnp.asarray(z), jnp.asarray(mu))
    # central finite differences of the float64 NumPy loss
    h = 1e-6
    fz, fmu = np.zeros_like(z), np.zeros_like(mu)
    for arr, out in ((z, fz), (mu, fmu)):
        for idx in np.ndindex(arr.shape):
            a, b = arr.copy(), arr.copy()
            a[idx] += h
            b[idx] -= h
            za, mua = (a, mu) if arr is z else (z, a)
            zb, mub = (b, mu) if arr is z else (z, b)
            out[idx] = (ref.kl(p, ref.soft_assignment(za, mua, alpha))
                        - ref.kl(p, ref.soft_assignment(zb, mub, alpha))) / (2 * h)
    np.testing.assert_allclose(np.asarray(gz), fz, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.asarray(gmu), fmu, rtol=1e-6, atol=1e-9)
    cz, cmu = ref.kl_gradients(z, mu, p, alpha)  # the paper's eqs. 4–5
    np.testing.assert_allclose(np.asarray(gz), cz, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(np.asarray(gmu), cmu, rtol=1e-10, atol=1e-13)


def test_input_scale():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((50, 12)) * 3
    s = input_scale(x)
    assert np.mean(np.sum((s * x) ** 2, axis=1)) / 12 == pytest.approx(1.0, rel=1e-12)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert input_scale(unit) == pytest.approx(np.sqrt(12), rel=1e-12)  # unit CLIP vectors × √d
