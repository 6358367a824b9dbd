"""Helpers shared by the tests of clipcore.sources."""

import numpy as np
import pytest


def save_uneven_shards(directory, name, a, sizes):
    """``a`` split into ``.npy`` files of the given row counts; their paths, in order."""
    paths, start = [], 0
    for k, s in enumerate(sizes):
        p = directory / f"{name}-{k:03d}.npy"
        np.save(p, a[start:start + s])
        paths.append(str(p))
        start += s
    assert start == a.shape[0]
    return paths


def agree(a, b, rtol=1e-10):
    """Two SCE results give the same numbers."""
    assert a.sce == pytest.approx(b.sce, rel=rtol)
    assert a.text_score == pytest.approx(b.text_score, rel=rtol)
    assert a.image_score == pytest.approx(b.image_score, rel=rtol)
    np.testing.assert_allclose(a.complement_eigenvalues, b.complement_eigenvalues, rtol=0,
                               atol=rtol * b.complement_eigenvalues.max())
