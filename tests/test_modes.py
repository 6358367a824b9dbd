"""Modes of S and R against a dense float64 NumPy reference; planted modes are found."""

from __future__ import annotations

import numpy as np
import pytest

import clipcore
from reference import clip_numpy as R
from reference import sce_numpy as S


@pytest.mark.parametrize("part", ["complement", "text", "image"])
def test_cosine_modes_match_reference(part):
    d = clipcore.synthetic_pairs(n=600, d=16, num_modes=3, seed=5)
    res = clipcore.modes(d.images, d.texts, part=part, k=4, per_mode=7, progress=False)
    w, v, idx, sc = R.schur_modes(S.cosine_features(d.texts), S.cosine_features(d.images), part, 4, 7)
    np.testing.assert_allclose(res.eigenvalues, w, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(res.eigenvectors, v, atol=1e-8)
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.scores, sc, atol=1e-9)
    assert res.indices.shape == (4, 7) and res.n == 600 and res.kernel == "cosine"


def test_complement_eigenvalues_are_sces():
    d = clipcore.synthetic_pairs(n=500, d=12, seed=2)
    res = clipcore.modes(d.images, d.texts, k=5, progress=False)
    sce = clipcore.sce(d.images, d.texts, method="primal", dtype="float64")  # modes computes in float64
    np.testing.assert_allclose(res.eigenvalues, sce.complement_eigenvalues[:5], rtol=1e-9, atol=1e-14)
    assert res.trace == pytest.approx(sce.trace_complement, rel=1e-9)


def test_rff_modes_match_reference_with_the_same_omega():
    d = clipcore.synthetic_pairs(n=400, d=8, seed=7)
    omega = np.random.default_rng(0).standard_normal((8, 30)) / 0.7
    res = clipcore.modes(d.images, d.texts, part="text", k=3, per_mode=5, kernel="gaussian", omega=omega,
                         sigma=0.7, progress=False)
    w, v, idx, sc = R.schur_modes(S.rff_features(d.texts, omega), S.rff_features(d.images, omega), "text", 3, 5)
    np.testing.assert_allclose(res.eigenvalues, w, rtol=1e-8, atol=1e-13)
    np.testing.assert_array_equal(res.indices, idx)
    assert res.rff_features == 30 and res.num_features == 60


def test_planted_prompt_independent_modes_are_recovered():
    # images = signal(prompt) + one of 3 prompt-independent modes + noise: each leading
    # S-mode's top images share one planted mode, a different one per eigenvector.
    d = clipcore.synthetic_pairs(n=1500, d=32, num_modes=3, mode_strength=0.8, seed=0)
    res = clipcore.modes(d.images, d.texts, k=2, per_mode=20, progress=False)
    found = []
    for row in res.indices:
        labels = d.mode_labels[row]
        top = np.bincount(labels).argmax()
        assert np.mean(labels == top) >= 0.9
        found.append(top)
    assert len(set(found)) == 2


def test_streamed_shard_directory_equals_arrays(tmp_path):
    d = clipcore.synthetic_pairs(n=300, d=8, seed=4)
    clipcore.write_shards(tmp_path, d.images, d.texts, shard_rows=70)
    a = clipcore.modes(d.images, d.texts, k=2, per_mode=4, progress=False)
    b = clipcore.modes(str(tmp_path), k=2, per_mode=4, block_size=50, progress=False)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(part="prompt"), "part: expected one of"),
    (dict(k=0), "k: expected a positive integer"),
    (dict(k=20), "k: asks for 20 modes but the feature space has dimension 8"),
    (dict(kernel="gaussian"), "rff_features: modes of the Gaussian kernel"),
    (dict(texts=None), "texts: missing"),
    (dict(texts="bad"), "texts: file not found"),
])
def test_modes_errors(kwargs, message):
    d = clipcore.synthetic_pairs(n=30, d=8, seed=1)
    kw = dict(texts=d.texts)
    kw.update(kwargs)
    texts = kw.pop("texts")
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        clipcore.modes(d.images, texts, progress=False, **kw)
