"""Managed synthesis judged on images: IIN edits of a VAE's latent, decoded and read by probes on pixels.

The deck's third task: z = E(x) (:class:`~clipcore.models.vae.VAE`), an IIN
on z edits one attribute factor of z̄ = T(z), and the decoder shows the image
(x* = D(T⁻¹(z̄*))). :func:`evaluate_decoded_edits` judges those images the
way a viewer would — with logistic-regression probes trained on *real*
images' pixels — and :func:`edit_grid` lays them out as the deck's figure:
rows of samples, columns sweeping one factor along its attribute's axis
(−3 … +3 in the prior's units) and the attribute swap.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from .iin_data import check_attributes
from .iin_select import probe
from .vae import check_images

__all__ = ["DecodedEdits", "evaluate_decoded_edits", "edit_grid", "factor_axis", "SWEEP"]

#: The default sweep of :func:`edit_grid` (the factor's coordinate along its attribute axis).
SWEEP = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)


class DecodedEdits(NamedTuple):
    """Attribute edits of held-out images, decoded and judged by probes on real pixels.

    Attributes:
      names: the K attribute names.
      probe_accuracy: ``[K]`` the pixel probes' accuracy on real held-out images.
      decoded_accuracy: ``[K]`` their accuracy on the unedited reconstructions D(E(x)).
      flip_rate: ``[K]`` share of edits of F (z̄_F ← the target class's mean) whose decoded image F's
        probe reads as the target class.
      collateral_rate: ``[K]`` share of (edit of F, other attribute) whose probe reading changed from
        the unedited reconstruction's.
      reconstruction_error: the VAE's mean squared error per pixel on the held-out images.
    """

    names: tuple[str, ...]
    probe_accuracy: np.ndarray
    decoded_accuracy: np.ndarray
    flip_rate: np.ndarray
    collateral_rate: np.ndarray
    reconstruction_error: float

    def as_dict(self) -> dict:
        """JSON-ready."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else (list(v) if isinstance(v, tuple) else v))
                for k, v in self._asdict().items()}


def _flat(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, np.float64).reshape(len(images), -1)


def evaluate_decoded_edits(vae: Any, iin: Any, images_train: Any, a_train: Any, images_test: Any, a_test: Any,
                           *, seed: int = 0) -> DecodedEdits:
    """Edit every held-out image once per attribute, decode, and read it with probes on real pixels.

    Args:
      vae: a fitted :class:`~clipcore.models.VAE`.
      iin: a :class:`~clipcore.models.IIN` fitted on ``vae.encode(images_train)`` with ``a_train``.
      images_train, a_train: ``[n, H, W]`` real images in [0, 1] and their ``[n, K]`` classes (the probes').
      images_test, a_test: ``[m, H, W]``, ``[m, K]`` held-out images to edit.
      seed: the probes' seed.
    """
    xtr, xte = check_images(images_train, "images_train")[..., 0], check_images(images_test, "images_test")[..., 0]
    atr, ate = check_attributes(a_train, len(xtr)), check_attributes(a_test, len(xte))
    k = atr.shape[1]
    if len(iin.class_means) != k:
        raise ValueError(f"iin: {len(iin.class_means)} attribute factors with class means, the data has {k}")
    probes = [probe(seed).fit(_flat(xtr), atr[:, f]) for f in range(k)]
    z = vae.encode(xte)
    recon = vae.decode(z)
    read = np.stack([p.predict(_flat(recon)) for p in probes], axis=1)
    acc = np.array([p.score(_flat(xte), ate[:, f]) for f, p in enumerate(probes)])
    flip, coll = np.zeros(k), np.zeros(k)
    for f in range(k):
        means = np.asarray(iin.class_means[f])
        target = (ate[:, f] + 1) % means.shape[0]
        edited = vae.decode(np.asarray(iin.edit(z, f, value=means[target]), np.float32))
        after = np.stack([p.predict(_flat(edited)) for p in probes], axis=1)
        flip[f] = np.mean(after[:, f] == target)
        others = [g for g in range(k) if g != f]
        coll[f] = np.mean(after[:, others] != read[:, others]) if others else 0.0
    return DecodedEdits(tuple(iin.names), acc, (read == ate).mean(axis=0), flip, coll,
                        float(np.mean((recon - xte) ** 2)))


def factor_axis(iin: Any, factor: int) -> np.ndarray:
    """The unit direction from class 0's mean to class 1's mean of factor ``factor`` (``[size_F]``)."""
    means = np.asarray(iin.class_means[factor], np.float64)
    axis = means[1] - means[0]
    norm = np.linalg.norm(axis)
    if not norm > 0:
        raise ValueError(f"factor: the class means of factor {factor} coincide; no attribute axis")
    return axis / norm


def edit_grid(vae: Any, iin: Any, images: Any, factor: int | str, *, values: Sequence[float] = SWEEP,
              classes: Any = None) -> tuple[np.ndarray, list[str]]:
    """The deck's figure as an array: one row per image, columns of decoded edits.

    Columns: the original image, its reconstruction D(E(x)), then z̄_F's
    coordinate along its attribute axis (:func:`factor_axis`) set to each of
    ``values`` (the rest of z̄ kept), then the attribute swap (z̄_F ← the
    other class's mean; needs ``classes``, the images' classes of F).

    Args:
      vae, iin: as :func:`evaluate_decoded_edits`.
      images: ``[r, H, W]`` in [0, 1].
      factor: the attribute (name or index).
      values: the sweep.
      classes: ``[r]`` the images' classes of the attribute (None: no swap column).

    Returns:
      ``(grid [r, c, H, W], column labels [c])``.
    """
    x = check_images(images)[..., 0]
    f = iin.names.index(factor) if isinstance(factor, str) else int(factor)
    z = vae.encode(x)
    zbar = np.asarray(iin.encode(z), np.float64)
    lo = int(sum(iin.factor_sizes[:f]))
    hi = lo + int(iin.factor_sizes[f])
    e = factor_axis(iin, f)
    cols, labels = [x, vae.decode(z)], ["original", "reconstruction"]
    for t in values:
        part = zbar[:, lo:hi]
        edited = zbar.copy()
        edited[:, lo:hi] = part + (float(t) - part @ e)[:, None] * e[None, :]
        cols.append(vae.decode(np.asarray(iin.decode(edited), np.float32)))
        labels.append(f"{iin.names[f]} {float(t):+g}")
    if classes is not None:
        c = np.asarray(classes).reshape(-1)
        means = np.asarray(iin.class_means[f])
        target = (c + 1) % means.shape[0]
        cols.append(vae.decode(np.asarray(iin.edit(z, f, value=means[target]), np.float32)))
        labels.append(f"{iin.names[f]} swapped")
    return np.stack(cols, axis=1), labels
