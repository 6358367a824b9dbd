"""Data sets with attribute labels for the IIN (offline, seeded).

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

from typing import NamedTuple

import numpy as np

__all__ = ["AttributeSet", "synthetic_attributes", "fashion_mnist_attributes"]


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
    from ..datasets import fashion_mnist

    if int(dim) != dim or dim <= 0 or dim % 2:
        raise ValueError(f"fashion_mnist_attributes: dim must be a positive even integer, got {dim!r}")
    data = fashion_mnist(split, root=root)
    keep = np.flatnonzero(np.isin(data.labels, FOOTWEAR + CLOTHING))
    if int(n) != n or not 0 < n <= keep.size:
        raise ValueError(f"fashion_mnist_attributes: n must be in 1..{keep.size}, got {n!r}")
    if dim > min(n, 784):
        raise ValueError(f"fashion_mnist_attributes: dim={dim} exceeds min(n, 784) = {min(n, 784)}")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(keep, size=int(n), replace=False))
    pix = data.images[idx].reshape(len(idx), -1).astype(np.float64) / 255.0
    labels = data.labels[idx]
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
    intensity = pix.mean(axis=1)
    attrs = np.stack([np.isin(labels, FOOTWEAR), intensity > np.median(intensity)], axis=1)
    return AttributeSet(scores.astype(np.float32), attrs.astype(np.int64), ("footwear", "light"),
                        labels[:, None].astype(np.float64))
