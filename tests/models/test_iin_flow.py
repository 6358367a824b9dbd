"""clipcore.models.iin_flow (the IIN's pair / flow losses and factor sizes) against the float64 NumPy
reference of tests/reference/iin_numpy.py (the loss, CompVis/iin's dimension estimator)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from clipcore.models.iin import IIN, IINConfig
from clipcore.models.iin_data import PairSampler, synthetic_attributes
from clipcore.models.iin_flow import equal_factor_sizes, estimate_factor_sizes, flow_loss, pair_loss
from reference import iin_numpy as ref

from .helpers import IIN_SMALL as SMALL


def test_pair_loss_matches_numpy_reference():
    rng = np.random.default_rng(0)
    sizes = (3, 5, 2, 4)
    b, d = 9, sum(sizes)
    za, zb = rng.standard_normal((2, b, d))
    lda, ldb = rng.standard_normal((2, b))
    f = rng.integers(0, 3, size=b)
    for rho in (0.975, 0.5, 0.0):
        got = float(pair_loss(jnp.asarray(za), jnp.asarray(lda), jnp.asarray(zb), jnp.asarray(ldb),
                              jnp.asarray(f), sizes, rho))
        assert got == pytest.approx(ref.pair_loss(za, lda, zb, ldb, f, sizes, rho), rel=1e-12)
    assert float(flow_loss(jnp.asarray(za), jnp.asarray(lda))) == pytest.approx(ref.flow_loss(za, lda), rel=1e-12)


def test_estimate_factor_sizes_matches_reference_estimator():
    ds = synthetic_attributes(600, 24, num_attributes=2, seed=4)
    i, j, f = PairSampler(ds.attributes, np.random.default_rng(0)).sample((2000,))
    x = ds.embeddings.astype(np.float64)
    got = estimate_factor_sizes(x[i], x[j], f, 2)
    want = ref.estimate_factor_sizes(x[i], x[j], f, 2)
    assert min(want) >= 1 and got == want and sum(got) == 24
    assert equal_factor_sizes(10, 2) == (4, 3, 3)


def test_equal_factor_sizes_with_a_small_residual():
    assert equal_factor_sizes(512, 3, 8) == (168, 168, 168, 8)
    assert equal_factor_sizes(12, 2, 3) == (5, 4, 3)  # 9 = 5 + 4, the first larger
    assert equal_factor_sizes(8, 2, None) == equal_factor_sizes(8, 2) == (3, 3, 2)
    m = IIN(IINConfig(residual_size=2, **SMALL)).build(8, 2)
    assert m.factor_sizes == (3, 3, 2)
    with pytest.raises(ValueError, match="residual_size: 7 leaves fewer than one dimension per attribute"):
        IIN(IINConfig(residual_size=7, **SMALL)).build(8, 2)
    with pytest.raises(ValueError, match="residual_size: expected a positive integer"):
        IINConfig(residual_size=0).validated()
    with pytest.raises(ValueError, match="residual_size: applies to factor_sizes='equal' only"):
        IINConfig(residual_size=4, factor_sizes="estimate").validated()
    with pytest.raises(ValueError, match="residual_size: applies to factor_sizes='equal' only"):
        IINConfig(residual_size=4, factor_sizes=(2, 2, 4)).validated()
