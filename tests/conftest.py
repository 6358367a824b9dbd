"""Shared test configuration: float64 references, the shared fixtures."""

from __future__ import annotations

import os
import pathlib

import jax
import pytest

# Reference comparisons need float64 JAX arrays.
jax.config.update("jax_enable_x64", True)

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _reference_dir() -> pathlib.Path | None:
    env = os.environ.get("CLIPCORE_REFERENCE_DIR")
    candidates = [pathlib.Path(env)] if env else []
    candidates += [_REPO / "tests" / "data" / "reference", _REPO.parent / "shared" / "reference"]
    for c in candidates:
        if (c / "reference_scores.json").is_file():
            return c
    return None


@pytest.fixture(scope="session")
def ref_dir() -> pathlib.Path:
    """The paper code's inputs and outputs (a copy of ../shared/reference lives in tests/data)."""
    d = _reference_dir()
    if d is None:
        pytest.skip("shared reference fixtures not found (set CLIPCORE_REFERENCE_DIR)")
    return d
