"""clipcore.models.iin_data: the attribute sets (ground truth, scikit-learn's PCA), the CSV reader and the
pair sampler."""

from __future__ import annotations

import numpy as np
import pytest

from clipcore.models.iin_data import PairSampler, fashion_mnist_attributes, read_attributes, synthetic_attributes


def test_pair_sampler_pairs_share_the_factor():
    a = np.random.default_rng(0).integers(0, 3, size=(500, 2))
    i, j, f = PairSampler(a, np.random.default_rng(1)).sample((40, 25))
    assert np.all(a[i, f] == a[j, f])
    assert 0.4 < np.mean(f == 0) < 0.6
    assert np.mean(a[i, 1 - f] == a[j, 1 - f]) < 0.5  # the other attribute is not shared


def test_read_attributes(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("glasses,smile\nyes,1\nno,0\nyes,0.0\n")
    a, names, classes = read_attributes(str(p))
    assert names == ("glasses", "smile")
    assert a.tolist() == [[1, 1], [0, 0], [1, 0]]
    assert classes == [["no", "yes"], ["0", "1"]]
    p.write_text("g,s\n1\n")
    with pytest.raises(ValueError, match="row 1 has 1 fields"):
        read_attributes(str(p))


def test_synthetic_attributes_ground_truth():
    ds = synthetic_attributes(3000, 32, num_attributes=3, seed=5)
    again = synthetic_attributes(3000, 32, num_attributes=3, seed=5)
    assert np.array_equal(ds.embeddings, again.embeddings)
    assert ds.embeddings.shape == (3000, 32) and ds.attributes.shape == (3000, 3)
    np.testing.assert_allclose(np.linalg.norm(ds.embeddings, axis=1), 1.0, rtol=1e-6)
    c = np.corrcoef(ds.attributes.T)
    assert np.abs(c[np.triu_indices(3, 1)]).max() < 0.06  # independent attributes
    # the attribute is the sign of its latent coordinate's class offset
    assert np.mean((ds.latent[:, :3] > 0) == ds.attributes) > 0.99


@pytest.mark.parametrize("n", [300, 1000])  # the n×n Gram path and the 784×784 scatter path
def test_fashion_mnist_attributes_against_sklearn_pca(n):
    from sklearn.decomposition import PCA

    from clipcore import fashion_mnist

    try:
        ds = fashion_mnist_attributes(n, 8, split="test", seed=1)
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST IDX files not installed")
    full = fashion_mnist("test")
    labels = ds.latent[:, 0].astype(int)
    assert not np.isin(labels, [8]).any()
    assert np.array_equal(ds.attributes[:, 0], np.isin(labels, [5, 7, 9]))
    assert ds.attributes[:, 1].mean() == pytest.approx(0.5, abs=0.01)
    # rebuild the same sample and compare with scikit-learn's PCA (up to sign)
    keep = np.flatnonzero(full.labels != 8)
    idx = np.sort(np.random.default_rng(1).choice(keep, size=n, replace=False))
    assert np.array_equal(full.labels[idx], labels)
    pix = full.images[idx].reshape(n, -1) / 255.0
    pca = PCA(8, svd_solver="arpack", tol=1e-12, random_state=0).fit(pix)
    want = pca.transform(pix) / np.sqrt(pca.explained_variance_[0])
    signs = np.sign(np.sum(want * ds.embeddings, axis=0))
    np.testing.assert_allclose(ds.embeddings, want * signs, atol=2e-5)
    light = pix.mean(1) > np.median(pix.mean(1))
    assert np.array_equal(ds.attributes[:, 1], light)
