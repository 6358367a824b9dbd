"""Offline data loaders: Fashion-MNIST IDX files, scikit-learn digits."""

import gzip
import os

import numpy as np
import pytest

import clipcore
from clipcore import datasets

HAVE_FMNIST = os.path.isdir(datasets.FASHION_MNIST_DIR)


@pytest.mark.skipif(not HAVE_FMNIST, reason="Debian dataset-fashion-mnist not installed")
def test_fashion_mnist_matches_published_facts():
    train = clipcore.fashion_mnist("train")
    test = clipcore.fashion_mnist("test")
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28)
    # Published: 6000 training and 1000 test images per class.
    assert np.all(np.bincount(train.labels) == 6000)
    assert np.all(np.bincount(test.labels) == 1000)
    # The first training labels of the published files (zalandoresearch/fashion-mnist).
    assert train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    both = clipcore.fashion_mnist()
    assert both.images.shape == (70000, 28, 28)
    np.testing.assert_array_equal(both.images[60000:], test.images)
    assert both.classes[9] == "Ankle boot"


def _write_idx(path, array, code=0x08):
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_any_idx_directory(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 28, 28))
    y = np.array([3, 1, 4, 1, 5])
    for part in ("train", "t10k"):
        _write_idx(tmp_path / f"{part}-images-idx3-ubyte.gz", x)
        _write_idx(tmp_path / f"{part}-labels-idx1-ubyte.gz", y)
    got = clipcore.fashion_mnist("train", root=str(tmp_path))
    np.testing.assert_array_equal(got.images, x)
    np.testing.assert_array_equal(got.labels, y)
    assert clipcore.fashion_mnist(root=str(tmp_path)).images.shape == (10, 28, 28)


def test_fashion_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        clipcore.fashion_mnist(root=str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="train-images"):
        clipcore.fashion_mnist(root=str(tmp_path))
    with pytest.raises(ValueError, match="split"):
        clipcore.fashion_mnist("validation")
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\x01\x02\x03\x04")
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3))
    with pytest.raises(ValueError, match="not an IDX file"):
        clipcore.fashion_mnist("train", root=str(tmp_path))
    # Mismatched image / label counts.
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((4, 28, 28)))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        clipcore.fashion_mnist("train", root=str(tmp_path))


def test_digits_is_sklearns():
    from sklearn.datasets import load_digits

    d = clipcore.digits()
    ref = load_digits()
    np.testing.assert_array_equal(d.images, ref.images)
    np.testing.assert_array_equal(d.labels, ref.target)
    assert d.images.shape == (1797, 8, 8)
