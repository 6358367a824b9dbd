"""Data sets with attribute labels for the IIN (offline, seeded), and the attribute checks, CSV
reader and pair sampler the IIN trains with.

Two sources, both returned as :class:`AttributeSet`:

* :func:`synthetic_attributes` — independent binary attributes, each carried
  by one latent coordinate, mixed *nonlinearly* (a random linear map plus a
  ``tanh`` term, isotropic noise, then unit rows like CLIP) into ``dim``
  dimensions (default 512). The attributes are independent by construction,
  so a disentangling model can be checked against the ground truth.
* :func:`fashion_mnist_attributes` — real images: PCA of Fashion-MNIST pixels
  (Xiao, Rasul & Vollgraf 2017) to an even ``dim``, with two attribute groups,
  ``footwear`` (Sandal, Sneaker, Ankle boot = 1; T-shirt/top, Trouser,
  Pullover, Dress, Coat, Shirt = 0; Bags are dropped as neither) and ``light``
  (mean pixel intensity above the sample's median = 1, else 0).
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

__all__ = ["AttributeSet", "synthetic_attributes", "mixed_attributes", "fashion_mnist_attributes",
           "fashion_mnist_images", "mixing_rotation", "check_attributes", "read_attributes", "PairSampler"]


class AttributeSet(NamedTuple):
    """Embeddings with integer attribute labels.

    Attributes:
      embeddings: ``[n, d]`` float32.
      attributes: ``[n, K]`` int64 class of each attribute (0/1 for binary).
      names: the K attribute names.
      latent: ``[n, L]`` float64 generating latent (synthetic set) or the
        original class labels ``[n, 1]`` (Fashion-MNIST).
    """

    embeddings: np.ndarray
    attributes: np.ndarray
    names: tuple[str, ...]
    latent: np.ndarray


def synthetic_attributes(
    n: int = 4000,
    dim: int = 512,
    *,
    num_attributes: int = 3,
    residual_dim: int = 8,
    separation: float = 3.0,
    spread: float = 0.5,
    nonlinearity: float = 0.5,
    noise: float = 0.05,
    normalize: bool = True,
    seed: int = 0,
) -> AttributeSet:
    """Seeded embeddings with ``num_attributes`` independent binary attributes.

    Latent u = [u_1 … u_K, r]: u_k = (a_k − ½)·separation + spread·N(0, 1) with
    a_k ~ Bernoulli(½) independent, r ~ N(0, I_residual_dim). The embedding is

        x = u A + nonlinearity · tanh(u B) + noise · N(0, I_dim),   A, B ~ N(0, 1/L)

    (L = K + residual_dim), then ``x / ‖x‖`` when ``normalize``. The noise
    makes the density full-rank in ``dim`` dimensions (a flow needs that).

    Args:
      n: number of embeddings; dim: their dimension (≥ 1).
      num_attributes: K binary attributes (≥ 1).
      residual_dim: latent dimensions carrying no attribute.
      separation: distance between the two class centres of each u_k.
      spread: within-class standard deviation of each u_k.
      nonlinearity: weight of the ``tanh`` term.
      noise: isotropic noise standard deviation.
      normalize: unit rows (CLIP-like).
      seed: ``numpy.random.default_rng`` seed.

    Returns:
      AttributeSet with ``embeddings [n, dim]``, ``attributes [n, K]`` in {0, 1},
      names ``("attr0", …)`` and ``latent [n, L]``.
    """
    for name, v in (("n", n), ("dim", dim), ("num_attributes", num_attributes)):
        if int(v) != v or v <= 0:
            raise ValueError(f"synthetic_attributes: {name} must be a positive integer, got {v!r}")
    if residual_dim < 0:
        raise ValueError(f"synthetic_attributes: residual_dim must be ≥ 0, got {residual_dim}")
    rng = np.random.default_rng(seed)
    k, latent_dim = int(num_attributes), int(num_attributes) + int(residual_dim)
    attrs = rng.integers(0, 2, size=(n, k))
    u = np.empty((n, latent_dim))
    u[:, :k] = (attrs - 0.5) * separation + spread * rng.standard_normal((n, k))
    u[:, k:] = rng.standard_normal((n, latent_dim - k))
    a = rng.standard_normal((latent_dim, dim)) / np.sqrt(latent_dim)
    b = rng.standard_normal((latent_dim, dim)) / np.sqrt(latent_dim)
    x = u @ a + nonlinearity * np.tanh(u @ b) + noise * rng.standard_normal((n, dim))
    if normalize:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return AttributeSet(x.astype(np.float32), attrs.astype(np.int64),
                        tuple(f"attr{i}" for i in range(k)), u)


def mixed_attributes(n: int = 6000, dim: int = 64, *, num_attributes: int = 3, separation: float = 3.0,
                     spread: float = 0.5, linear: float = 0.5, seed: int = 0) -> AttributeSet:
    """Seeded embeddings with independent binary attributes mixed by tanh of a rotation plus a linear term.

    Latent u ∈ R^dim: u_k = (a_k − ½)·separation + spread·N(0, 1) for the K
    attributes a_k ~ Bernoulli(½), the other dim − K coordinates N(0, 1).
    With R, L random rotations (``[dim, dim]``, Haar),

        x = tanh(u R) + linear · u L,

    an invertible, nonlinear mixing (no noise): flipping a_k in u and mixing
    again is the ideal edit, against which a model's edits can be measured.

    Args:
      n: rows; dim: dimension (even for an IIN; > K).
      num_attributes: K; separation, spread: the attribute coordinates' class
        distance and within-class standard deviation.
      linear: weight of the linear term.
      seed: ``numpy.random.default_rng`` seed.

    Returns:
      AttributeSet with ``embeddings [n, dim]`` float32, ``attributes [n, K]``,
      names ``("attr0", …)`` and ``latent`` the ``[n, dim]`` u.
    """
    for name, v in (("n", n), ("dim", dim), ("num_attributes", num_attributes)):
        if isinstance(v, bool) or int(v) != v or v <= 0:
            raise ValueError(f"mixed_attributes: {name} must be a positive integer, got {v!r}")
    if num_attributes >= dim:
        raise ValueError(f"mixed_attributes: num_attributes={num_attributes} must be smaller than dim={dim}")
    rng = np.random.default_rng(seed)
    attrs = rng.integers(0, 2, (n, num_attributes))
    u = rng.standard_normal((n, dim))
    u[:, :num_attributes] = (attrs - 0.5) * separation + spread * rng.standard_normal((n, num_attributes))
    rot, lin = (mixing_rotation(rng, dim) for _ in range(2))
    x = np.tanh(u @ rot) + linear * (u @ lin)
    return AttributeSet(x.astype(np.float32), attrs.astype(np.int64),
                        tuple(f"attr{i}" for i in range(num_attributes)), u)


def mixing_rotation(rng: np.random.Generator, dim: int) -> np.ndarray:
    """A Haar-random rotation ``[dim, dim]`` (QR of a Gaussian matrix, signs fixed by R's diagonal)."""
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


#: Fashion-MNIST labels counted as footwear (Sandal, Sneaker, Ankle boot).
FOOTWEAR = (5, 7, 9)
#: Fashion-MNIST labels counted as clothing (T-shirt/top, Trouser, Pullover, Dress, Coat, Shirt).
CLOTHING = (0, 1, 2, 3, 4, 6)


def fashion_mnist_attributes(
    n: int = 6000,
    dim: int = 64,
    *,
    split: str = "train",
    seed: int = 0,
    root: str | None = None,
) -> AttributeSet:
    """Fashion-MNIST PCA features with footwear/clothing and light/dark attributes.

    ``n`` images (Bags excluded) are drawn without replacement (seeded) from
    ``split``; pixels scaled to [0, 1] are centred and projected on their top
    ``dim`` principal axes (float64 eigendecomposition of this sample's covariance), and the scores are
    divided by the square root of the first eigenvalue so that the features
    are O(1) (the first feature has unit variance). Attributes, per image:

    * ``footwear``: 1 for Sandal, Sneaker, Ankle boot; 0 for T-shirt/top,
      Trouser, Pullover, Dress, Coat, Shirt.
    * ``light``: 1 when the mean pixel intensity is above the median over the
      ``n`` images, else 0 (balanced by construction).

    The two are not independent (footwear images are darker on average),
    unlike the synthetic set.

    Args:
      n: number of images (≤ available non-bag images of ``split``).
      dim: PCA dimension (even, for the IIN's coupling halves).
      split: ``"train"``, ``"test"`` or ``"all"`` (``clipcore.fashion_mnist``).
      seed: sampling seed.
      root: directory of the IDX files (default: Debian's dataset-fashion-mnist).

    Returns:
      AttributeSet with ``embeddings [n, dim]`` float32, ``attributes [n, 2]``,
      names ``("footwear", "light")`` and ``latent [n, 1]`` the class labels.
    """
    if int(dim) != dim or dim <= 0 or dim % 2:
        raise ValueError(f"fashion_mnist_attributes: dim must be a positive even integer, got {dim!r}")
    if dim > min(n, 784):
        raise ValueError(f"fashion_mnist_attributes: dim={dim} exceeds min(n, 784) = {min(n, 784)}")
    images, attrs, labels = fashion_mnist_images(n, split=split, seed=seed, root=root, dtype=np.float64)
    idx = np.arange(len(labels))
    pix = images.reshape(len(idx), -1)
    centred = pix - pix.mean(axis=0)
    # principal axes from the smaller of the 784×784 scatter and the n×n Gram matrix (no n×784 SVD)
    from scipy.linalg import eigh

    if len(idx) < pix.shape[1]:  # n < 784: the n×n Gram matrix has the same nonzero spectrum
        gram = centred @ centred.T
        evals, u = eigh(gram, subset_by_index=[len(idx) - dim, len(idx) - 1])
        evals, u = evals[::-1], u[:, ::-1]
        scores = u * np.sqrt(np.maximum(evals, 0))  # = centred @ v, v the principal axes
    else:
        cov = centred.T @ centred
        evals, evecs = eigh(cov, subset_by_index=[cov.shape[0] - dim, cov.shape[0] - 1])
        evals, evecs = evals[::-1], evecs[:, ::-1]
        scores = centred @ evecs
    scores /= np.sqrt(evals[0] / (len(idx) - 1))  # first feature: unit sample variance
    return AttributeSet(scores.astype(np.float32), attrs, ("footwear", "light"),
                        labels[:, None].astype(np.float64))


def fashion_mnist_images(n: int = 6000, *, split: str = "train", seed: int = 0, root: str | None = None,
                         dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST images with the ``footwear`` and ``light`` attributes of :func:`fashion_mnist_attributes`.

    ``n`` images (Bags excluded) drawn without replacement (seeded) from
    ``split``, in index order; ``light`` is 1 when an image's mean pixel
    intensity is above the median over these ``n`` images.

    Returns:
      ``(images [n, 28, 28] in [0, 1] of ``dtype``, attributes [n, 2] int64 (footwear, light), labels [n])``.
    """
    from ..datasets import fashion_mnist

    data = fashion_mnist(split, root=root)
    keep = np.flatnonzero(np.isin(data.labels, FOOTWEAR + CLOTHING))
    if int(n) != n or not 0 < n <= keep.size:
        raise ValueError(f"fashion_mnist_attributes: n must be in 1..{keep.size}, got {n!r}")
    idx = np.sort(np.random.default_rng(seed).choice(keep, size=int(n), replace=False))
    pix = data.images[idx].astype(np.float64) / 255.0
    labels = np.asarray(data.labels[idx])
    intensity = pix.reshape(len(idx), -1).mean(axis=1)
    attrs = np.stack([np.isin(labels, FOOTWEAR), intensity > np.median(intensity)], axis=1).astype(np.int64)
    return pix.astype(dtype), attrs, labels


# -------------------------------------------------------------- attributes
def check_attributes(attributes: Any, n: int) -> np.ndarray:
    """``attributes`` as ``[n, K]`` int64 classes 0..C_k−1 (each present), or a ``ValueError`` naming it.

    Args:
      attributes: ``[n, K]`` (or ``[n]``) integer (bool, integer-valued float) labels.
      n: the number of embeddings they label.
    """
    a = np.asarray(attributes)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"attributes: expected [n, K] integer labels, got shape {a.shape}")
    if a.shape[0] != n:
        raise ValueError(f"attributes: {a.shape[0]} rows but z has {n}; row i labels embedding i")
    if a.shape[1] == 0:
        raise ValueError(f"attributes: no attribute columns (shape {a.shape})")
    if a.dtype == np.bool_:
        a = a.astype(np.int64)
    if not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise ValueError(f"attributes: expected integer class labels, got dtype {a.dtype}")
    if (a < 0).any():
        raise ValueError("attributes: class labels must be ≥ 0 (0, 1, … per attribute)")
    for k in range(a.shape[1]):
        values = np.unique(a[:, k])
        if values.size < 2:
            raise ValueError(f"attributes: column {k} has a single value; an attribute needs two classes")
        if values[-1] != values.size - 1:
            raise ValueError(f"attributes: column {k} has classes {values.tolist()[:10]}; expected 0..C-1, "
                             "each present (relabel, e.g. with numpy.unique(..., return_inverse=True))")
    return a.astype(np.int64)


def read_attributes(path: str) -> tuple[np.ndarray, tuple[str, ...], list[list[str]]]:
    """Read a CSV of attributes: a header of K names, then one row per embedding.

    Each column's distinct values (numbers or words) become classes 0, 1, …
    in sorted order.

    Returns:
      ``(attributes [n, K] int64, names, classes)`` with ``classes[k]`` the
      original values of attribute k in class order.
    """
    import csv

    if not os.path.exists(path):
        raise FileNotFoundError(f"attributes: file not found: {path}")
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if len(rows) < 2:
        raise ValueError(f"attributes: {path} needs a header row and at least one data row")
    names = tuple(c.strip() for c in rows[0])
    body = rows[1:]
    for i, r in enumerate(body):
        if len(r) != len(names):
            raise ValueError(f"attributes: {path} row {i + 1} has {len(r)} fields, the header has {len(names)}")
    out = np.empty((len(body), len(names)), np.int64)
    classes = []
    for k in range(len(names)):
        col = [r[k].strip() for r in body]
        try:
            nums = [float(c) for c in col]
            uniq = sorted(set(nums))
            out[:, k] = np.searchsorted(np.asarray(uniq), np.asarray(nums))
            classes.append([f"{u:g}" for u in uniq])
        except ValueError:
            uniq = sorted(set(col))
            lookup = {u: i for i, u in enumerate(uniq)}
            out[:, k] = [lookup[c] for c in col]
            classes.append(uniq)
    return out, names, classes


class PairSampler:
    """Seeded pairs: anchor i uniform, factor F uniform, partner j uniform among
    the samples with attribute F equal to i's (CompVis/iin's CelebA sampler)."""

    def __init__(self, attributes: np.ndarray, rng: np.random.Generator):
        self.a = attributes
        self.rng = rng
        self.order, self.start, self.count = [], [], []
        for k in range(attributes.shape[1]):
            col = attributes[:, k]
            order = np.argsort(col, kind="stable")
            counts = np.bincount(col)
            self.order.append(order)
            self.start.append(np.concatenate([[0], np.cumsum(counts)[:-1]]))
            self.count.append(counts)

    def sample(self, shape: tuple[int, ...]):
        """``(i, j, f)``, each of ``shape``: anchors, partners sharing attribute ``f`` with them, factors."""
        n, k = self.a.shape
        i = self.rng.integers(0, n, size=shape)
        f = self.rng.integers(0, k, size=shape)
        j = np.empty(shape, np.int64)
        u = self.rng.random(size=shape)
        for kk in range(k):
            sel = f == kk
            c = self.a[i[sel], kk]
            pos = self.start[kk][c] + np.floor(u[sel] * self.count[kk][c]).astype(np.int64)
            j[sel] = self.order[kk][pos]
        return i, j, f
