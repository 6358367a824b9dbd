"""clipcore.entropy: spectra → entropies and scores (SPEC.md, "Scores from a spectrum"), jitted and eager, and the
float64 twins for spectra with a flat tail (``Spectrum``, ``*_tail``), against float64 NumPy references
(tests/reference/sce_numpy.py: the reference code's score and the Rényi entropies, written from SPEC.md)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import clipcore
from clipcore import entropy as E
from reference import fixtures as F
from reference import sce_numpy as R

ORDERS = [1.0, 2.0, float("inf"), 0.5]
CLAMPS = [1e-10, None]


@pytest.fixture(scope="module")
def spectrum():
    """A trace-one spectrum with a long tail, exact zeros and a rounding negative."""
    lam = np.random.default_rng(0).exponential(1.0, 60) ** 3
    lam = np.concatenate([lam / lam.sum() * (1 - 1e-12), [0.0, 0.0, 1e-12, -3e-17]])
    return lam


def test_hand_computed_values():
    """Trace-one uniform spectrum of k: every entropy is log k; a two-point spectrum by hand."""
    u = jnp.full(8, 1 / 8)
    for order in ORDERS:
        assert float(E.renyi_entropy(u, order, None)) == pytest.approx(np.log(8), rel=1e-14)
        assert float(E.renyi_score(u, order, None)) == pytest.approx(8.0, rel=1e-14)
    assert float(E.matrix_entropy(u, None)) == pytest.approx(np.log(8), rel=1e-14)
    p = jnp.array([0.75, 0.25])
    h1 = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    assert float(E.renyi_entropy(p, 1.0, None)) == pytest.approx(h1, rel=1e-14)
    assert float(E.renyi_entropy(p, 2.0, None)) == pytest.approx(-np.log(0.75**2 + 0.25**2), rel=1e-14)
    assert float(E.renyi_entropy(p, float("inf"), None)) == pytest.approx(-np.log(0.75), rel=1e-14)
    assert float(E.renyi_entropy(p, 0.5, None)) == pytest.approx(2 * np.log(np.sqrt(0.75) + np.sqrt(0.25)), rel=1e-14)
    # the SCE entropy is trace-weighted: s · H(λ/s) (a part holding little of the trace scores low)
    assert float(E.matrix_entropy(0.1 * p, None)) == pytest.approx(0.1 * h1, rel=1e-14)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("clamp", CLAMPS)
def test_renyi_entropy_matches_reference_jitted_and_eager(spectrum, order, clamp):
    want = R.log_renyi(spectrum, order, clamp)
    lam = jnp.asarray(spectrum)
    got = float(E.renyi_entropy(lam, order, clamp))
    with jax.disable_jit():
        eager = float(E.renyi_entropy(lam, order, clamp))
    assert got == pytest.approx(want, rel=1e-12)
    assert eager == pytest.approx(got, rel=1e-13)
    assert float(E.renyi_score(lam, order, clamp)) == pytest.approx(np.exp(want), rel=1e-12)


@pytest.mark.parametrize("clamp", CLAMPS)
def test_matrix_entropy_matches_reference_jitted_and_eager(spectrum, clamp):
    lam = jnp.asarray(0.37 * spectrum)  # not trace one: the trace weight matters
    if clamp is None:
        pos = spectrum[spectrum > 0] * 0.37
        want = float(-np.sum(pos * np.log(pos / pos.sum())))
    else:
        want = R.log_code_score(0.37 * spectrum, clamp)
    got = float(E.matrix_entropy(lam, clamp))
    with jax.disable_jit():
        eager = float(E.matrix_entropy(lam, clamp))
    assert got == pytest.approx(want, rel=1e-12) and eager == pytest.approx(got, rel=1e-13)
    assert float(E.matrix_entropy_score(lam, clamp)) == pytest.approx(np.exp(want), rel=1e-12)


def test_clamp_counts_zeros_and_none_drops_them():
    """clamp=1e-10: each zero adds ≈ 1e-10·(log(1/1e-10)) ≈ 2.3e-9 (the reference code); clamp=None: zeros do not
    count (the vendi-score package)."""
    lam = jnp.array([0.5, 0.5])
    padded = jnp.concatenate([lam, jnp.zeros(10)])
    assert float(E.renyi_entropy(padded, 1.0, None)) == float(E.renyi_entropy(lam, 1.0, None))
    extra = float(E.renyi_entropy(padded, 1.0)) - float(E.renyi_entropy(lam, 1.0))
    assert extra == pytest.approx(10 * -1e-10 * np.log(1e-10), rel=1e-6)


def test_entropies_are_differentiable(spectrum):
    """d/dλ of −Σ λ log λ is −(log λ + 1) (no clamp active on the positive entries)."""
    lam = jnp.asarray(spectrum[:10])
    g = jax.grad(lambda e: E.renyi_entropy(e, 1.0, None))(lam)
    np.testing.assert_allclose(g, -(np.log(spectrum[:10]) + 1.0), rtol=1e-12)


def test_entropy_functions_jit_vs_eager_vs_reference(ref_dir):
    """On the shared fixture's eigenvalues (float32 torch eigh, with negatives) (moved from test_scores.py)."""
    lam = F.eigs(ref_dir, "gauss_s0.5_D200", "complement")
    lam_j = jax.numpy.asarray(lam)
    eager = clipcore.matrix_entropy(lam_j)
    jitted = jax.jit(lambda e: clipcore.matrix_entropy(e))(lam_j)
    assert abs(float(eager) - float(jitted)) < 1e-12
    assert abs(float(eager) - R.log_code_score(lam)) < 1e-10
    assert abs(float(clipcore.matrix_entropy_score(lam_j)) / R.code_score(lam) - 1) < 1e-9
    pos = np.clip(lam, 0, None)
    for order in (0.5, 1.0, 2.0, float("inf")):
        for clamp in (1e-10, None):
            e = clipcore.renyi_entropy(jax.numpy.asarray(pos / pos.sum()), order, clamp)
            j = jax.jit(lambda a, o=order, c=clamp: clipcore.renyi_entropy(a, o, c))(jax.numpy.asarray(pos / pos.sum()))
            assert abs(float(e) - float(j)) < 1e-12
            assert abs(float(e) - R.log_renyi(pos / pos.sum(), order, clamp)) < 1e-10


# ------------------------------------------------------------- spectra with a flat tail
@pytest.mark.parametrize("order", [1.0, 2.0, 0.5, np.inf])
@pytest.mark.parametrize("clamp", [1e-10, None])
def test_entropy_with_flat_tail_equals_materialised(order, clamp):
    rng = np.random.default_rng(0)
    explicit = np.concatenate([rng.uniform(0, 0.1, 30), [0.0, 0.0]])
    count, value = 500, 1e-4
    full = np.concatenate([explicit, np.full(count, value)])
    sp = E.Spectrum(explicit, float(count), value)
    assert E.renyi_entropy_tail(sp, order, clamp) == pytest.approx(R.log_renyi(full, order, clamp), rel=1e-12)
    if order == 1.0 and clamp is not None:
        assert E.matrix_entropy_tail(sp, clamp) == pytest.approx(R.log_code_score(full, clamp), rel=1e-12)
    assert sp.total() == pytest.approx(full.sum(), rel=1e-14)


@pytest.mark.parametrize("clamp", CLAMPS)
def test_tail_twins_equal_the_jitted_functions_without_a_tail(spectrum, clamp):
    sp = E.Spectrum(spectrum)
    assert sp.total() == pytest.approx(spectrum.sum(), rel=1e-15)
    for order in ORDERS:
        assert E.renyi_entropy_tail(sp, order, clamp) == pytest.approx(
            float(E.renyi_entropy(jnp.asarray(spectrum), order, clamp)), rel=1e-12)
    if clamp is not None:
        assert E.matrix_entropy_tail(sp, clamp) == pytest.approx(float(E.matrix_entropy(jnp.asarray(spectrum), clamp)),
                                                                 rel=1e-12)
    # a tail of value 0 (nothing missed) adds nothing, whatever its count
    empty = E.Spectrum(spectrum, 1e6, 0.0)
    assert E.renyi_entropy_tail(empty, 1.0, None) == E.renyi_entropy_tail(sp, 1.0, None)
    assert E.matrix_entropy_tail(empty, None) == E.matrix_entropy_tail(sp, None)


def test_tail_of_one_value_at_infinite_order():
    """α = ∞ looks at the largest eigenvalue, which may be the tail's (no explicit eigenvalues at all)."""
    assert E.renyi_entropy_tail(E.Spectrum(np.zeros(0), 4.0, 0.25), np.inf, None) == pytest.approx(np.log(4))
    assert E.renyi_entropy_tail(E.Spectrum(np.array([0.1]), 3.0, 0.3), np.inf, None) == pytest.approx(-np.log(0.3))
