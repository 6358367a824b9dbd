"""Seeded synthetic paired embeddings (no network, no files).

The generator mimics what SCE is built to see (SPEC.md; the shared
reference's ``make_inputs.py`` is the special case ``num_modes=0``,
``gap=0``): prompts form clusters; an image carries its prompt's signal plus a
prompt-independent *mode* (e.g. a style the generator picks regardless of the
prompt) plus noise; a constant offset per modality gives CLIP's modality gap.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["PairedEmbeddings", "synthetic_pairs", "LabelledImages", "fashion_mnist", "digits",
           "FASHION_MNIST_DIR", "FASHION_MNIST_CLASSES"]


class PairedEmbeddings(NamedTuple):
    """Paired embeddings with their generating labels.

    Attributes:
      images: ``[n, d]`` float32, unit rows.
      texts: ``[n, d]`` float32, unit rows.
      prompt_labels: ``[n]`` prompt cluster of each pair.
      mode_labels: ``[n]`` prompt-independent image mode (−1 when none).
    """

    images: np.ndarray
    texts: np.ndarray
    prompt_labels: np.ndarray
    mode_labels: np.ndarray


def _l2n(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def synthetic_pairs(
    n: int = 2000,
    d: int = 64,
    *,
    num_prompts: int = 10,
    num_modes: int = 4,
    text_noise: float = 0.35,
    signal: float = 0.7,
    mode_strength: float = 0.5,
    noise: float = 0.5,
    gap: float = 0.0,
    seed: int = 0,
) -> PairedEmbeddings:
    """Draw ``n`` seeded (image, text) pairs in ``d`` dimensions.

    text  = L2(c[label] + text_noise · N(0, I)/√d + gap · g_T)
    image = L2(signal · text + mode_strength · m[mode] + noise · N(0, I)/√d + gap · g_X)

    with c (prompt centres), m (image modes), g_T, g_X unit vectors drawn once.
    More modes (or a larger ``mode_strength``) means more prompt-independent
    diversity: a higher SCE at a similar text score.

    Args:
      n: number of pairs; d: dimension.
      num_prompts: prompt clusters; num_modes: image modes (0: none).
      gap: size of the modality offset (0: none; CLIP-like ≈ 0.5–1).
      seed: ``numpy.random.default_rng`` seed.
    """
    if n <= 0 or d <= 0 or num_prompts <= 0 or num_modes < 0:
        raise ValueError(
            f"synthetic_pairs: need n > 0, d > 0, num_prompts > 0, num_modes ≥ 0 "
            f"(got n={n}, d={d}, num_prompts={num_prompts}, num_modes={num_modes})"
        )
    rng = np.random.default_rng(seed)
    centers = _l2n(rng.standard_normal((num_prompts, d)))
    labels = rng.integers(0, num_prompts, size=n)
    g_t, g_x = _l2n(rng.standard_normal((2, d)))
    text = _l2n(centers[labels] + text_noise * rng.standard_normal((n, d)) / np.sqrt(d) + gap * g_t)
    image = signal * text + noise * rng.standard_normal((n, d)) / np.sqrt(d) + gap * g_x
    if num_modes > 0:
        modes = _l2n(rng.standard_normal((num_modes, d)))
        mode_labels = rng.integers(0, num_modes, size=n)
        image = image + mode_strength * modes[mode_labels]
    else:
        mode_labels = np.full(n, -1)
    return PairedEmbeddings(
        _l2n(image).astype(np.float32), text.astype(np.float32), labels, mode_labels
    )


# ------------------------------------------------------------ real data, offline
#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

#: Fashion-MNIST class names, in label order.
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


class LabelledImages(NamedTuple):
    """Images with integer class labels.

    Attributes:
      images: ``[n, h, w]`` uint8 (Fashion-MNIST) or float64 (digits) pixels.
      labels: ``[n]`` int64 class labels.
      classes: class names in label order.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]


def _read_idx(path: str) -> np.ndarray:
    """Read one (optionally gzipped) IDX file (LeCun's MNIST format)."""
    import gzip
    import os

    if not os.path.exists(path):
        raise FileNotFoundError(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic {data[:4]!r})")
    dtype_code, ndim = data[2], data[3]
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if dtype_code not in dtypes:
        raise ValueError(f"{path}: unknown IDX element type 0x{dtype_code:02x}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=dtypes[dtype_code], offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {body.size} elements")
    return body.reshape(shape)


def fashion_mnist(split: str = "all", *, root: str | None = None) -> LabelledImages:
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from local IDX files.

    Nothing is downloaded: the files come from Debian's ``dataset-fashion-mnist``
    package (``apt-get install dataset-fashion-mnist`` puts them in
    ``/usr/share/datasets/fashion-mnist``) or any directory holding the four
    ``*-idx?-ubyte[.gz]`` files.

    Args:
      split: ``"train"`` (60 000), ``"test"`` (10 000) or ``"all"`` (70 000, train first).
      root: directory of the IDX files (default ``FASHION_MNIST_DIR``).

    Returns:
      LabelledImages with ``images: [n, 28, 28]`` uint8 and ``labels: [n]``.
    """
    import os

    if split not in ("train", "test", "all"):
        raise ValueError(f"fashion_mnist: split must be 'train', 'test' or 'all', got {split!r}")
    root = FASHION_MNIST_DIR if root is None else root
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"fashion_mnist: no directory {root!r}; install Debian's dataset-fashion-mnist "
            "(apt-get install dataset-fashion-mnist) or pass root= a directory with the IDX files"
        )

    def find(stem: str) -> str:
        for name in (stem + ".gz", stem):
            if os.path.exists(os.path.join(root, name)):
                return os.path.join(root, name)
        raise FileNotFoundError(f"fashion_mnist: {stem}[.gz] not found in {root!r}")

    parts = ("train", "t10k") if split == "all" else (("train",) if split == "train" else ("t10k",))
    images, labels = [], []
    for part in parts:
        x = _read_idx(find(f"{part}-images-idx3-ubyte"))
        y = _read_idx(find(f"{part}-labels-idx1-ubyte"))
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"fashion_mnist: {part} has {x.shape[0]} images but {y.shape[0]} labels")
        images.append(x)
        labels.append(y.astype(np.int64))
    return LabelledImages(np.concatenate(images), np.concatenate(labels), FASHION_MNIST_CLASSES)


def digits() -> LabelledImages:
    """scikit-learn's bundled 8×8 digits (1797 images, 10 classes, pixels 0–16)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return LabelledImages(d.images.astype(np.float64), d.target.astype(np.int64),
                          tuple(str(i) for i in range(10)))
