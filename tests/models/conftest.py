"""Fixtures of the model tests."""

from __future__ import annotations

import pytest

from clipcore.models.iin import IIN, IINConfig
from clipcore.models.iin_data import synthetic_attributes

from .helpers import IIN_SMALL as SMALL


@pytest.fixture(scope="session")
def synthetic_fit():
    """An IIN fitted on 1600 rows of the 8-d synthetic set (2 attributes); the rest is held out."""
    ds = synthetic_attributes(2400, 8, num_attributes=2, residual_dim=4, seed=0)
    ntr = 1600
    m = IIN(IINConfig(steps=600, learning_rate=1e-3, batch_size=128, **SMALL))
    m.fit(ds.embeddings[:ntr], ds.attributes[:ntr], progress=False)
    return m, ds, ntr
