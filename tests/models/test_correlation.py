"""clipcore.models.correlation against NumPy's corrcoef / SVD and scikit-learn's linear regression."""

from __future__ import annotations

import numpy as np
import pytest

from clipcore.models.correlation import (correlation_matrix, factor_correlation, principal_components,
                                         prompt_similarities, semantic_correlation)


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    feats = np.stack([rng.integers(0, 2, n), rng.standard_normal(n), rng.integers(0, 3, n)], axis=1).astype(float)
    comps = rng.standard_normal((n, 5)) + feats[:, [0]] * np.array([1.0, 0.0, -0.5, 0.0, 2.0])
    return feats, comps


def test_correlation_matrix_equals_numpy_corrcoef():
    f, c = _data()
    got = correlation_matrix(f, c)
    full = np.corrcoef(np.concatenate([f, c], axis=1), rowvar=False)
    np.testing.assert_allclose(got, full[:3, 3:], rtol=1e-12, atol=1e-12)
    assert got.shape == (3, 5) and got[0, 4] > 0.5 and got[0, 2] < -0.1
    # one-dimensional inputs, and a constant column gives NaN (corrcoef's answer without its warning)
    assert correlation_matrix(f[:, 1], c[:, 0])[0, 0] == pytest.approx(np.corrcoef(f[:, 1], c[:, 0])[0, 1])
    const = correlation_matrix(np.ones(300), c)
    assert np.isnan(const).all()


def test_prompt_similarities_and_principal_components():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((50, 6)) @ np.diag([5, 3, 2, 1, 0.5, 0.1])
    p = rng.standard_normal((4, 6))
    expected = np.array([[a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in p] for a in z])
    np.testing.assert_allclose(prompt_similarities(z, p), expected, rtol=1e-12)
    pcs = principal_components(z, 3)
    zc = z - z.mean(0)
    evals, evecs = np.linalg.eigh(zc.T @ zc)
    ref = zc @ evecs[:, ::-1][:, :3]
    np.testing.assert_allclose(np.abs(pcs), np.abs(ref), rtol=1e-9, atol=1e-9)  # up to a sign per axis
    with pytest.raises(ValueError, match="prompt_embeddings: expected"):
        prompt_similarities(z, p[:, :5])
    with pytest.raises(ValueError, match="k: expected an integer"):
        principal_components(z, 0)


def test_factor_correlation_is_the_multiple_correlation():
    from sklearn.linear_model import LinearRegression

    f, c = _data(seed=2)
    sizes = (2, 1, 2)
    got = factor_correlation(f, c, sizes)
    parts = np.split(c, [2, 3], axis=1)
    for i in range(f.shape[1]):
        for j, part in enumerate(parts):
            r2 = LinearRegression().fit(part, f[:, i]).score(part, f[:, i])
            assert got[i, j] == pytest.approx(np.sqrt(r2), rel=1e-9, abs=1e-9)
    # a one-dimensional factor: |Pearson r|
    assert got[0, 1] == pytest.approx(abs(np.corrcoef(f[:, 0], c[:, 2])[0, 1]), rel=1e-9)


def test_semantic_correlation_panels():
    f, c = _data(seed=3)
    pca = semantic_correlation(f, ["a", "b", "c"], embeddings=c, k=4)
    assert pca.kind == "pca" and pca.matrix.shape == (3, 4) and pca.component_names[0] == "PC1"
    np.testing.assert_allclose(pca.matrix, correlation_matrix(f, principal_components(c, 4)))
    fac = semantic_correlation(f, ["a", "b", "c"], zbar=c, factor_sizes=(2, 3))
    assert fac.component_names == ("factor0", "residual") and fac.matrix.shape == (3, 2)
    d = fac.as_dict()
    assert d["features"] == ["a", "b", "c"] and len(d["matrix"]) == 3
    with pytest.raises(ValueError, match="exactly one"):
        semantic_correlation(f, ["a", "b", "c"])
    with pytest.raises(ValueError, match="feature_names: 2 names"):
        semantic_correlation(f, ["a", "b"], embeddings=c)
