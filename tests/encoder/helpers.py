"""Helpers shared by the encoder tests."""

import numpy as np


def close(ours, ref, tol):
    """max |ours - ref| <= tol * max(1, max |ref|), in float64."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape
    err = np.abs(ours - ref).max()
    assert err <= tol * max(1.0, np.abs(ref).max()), f"max abs error {err:.3g}"


def pixels(b, s=32, seed=1):
    """``[b, 3, s, s]`` float32 normal pixel values."""
    return np.random.default_rng(seed).normal(size=(b, 3, s, s)).astype(np.float32)
