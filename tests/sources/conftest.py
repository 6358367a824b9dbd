"""Fixtures of the clipcore.sources tests."""

import pytest

import clipcore
from clipcore._pipeline import inputs as inputs_mod


@pytest.fixture
def stream_all(monkeypatch):
    """Force the streamed path even for small test files."""
    monkeypatch.setattr(inputs_mod, "IN_MEMORY_ROWS", 0)


@pytest.fixture(scope="module")
def pairs():
    d = clipcore.synthetic_pairs(n=1500, d=24, num_modes=4, seed=3)
    return d.images, d.texts
