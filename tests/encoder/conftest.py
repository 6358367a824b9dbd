"""Fixtures of the encoder tests: a tiny random CLIP checkpoint written by the NumPy reference."""

import pytest

from clipcore.encoder import load_clip
from reference import clip_numpy as R


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tinyclip"))
    cfg, W = R.make_tiny_checkpoint(d, seed=0)
    return d, cfg, W


@pytest.fixture(scope="module")
def enc(tiny):
    return load_clip(tiny[0])
