"""CLIPScore and prompt × image cosine tables.

CLIPScore — Hessel, Holtzman, Forbes, Le Bras & Choi (2021), "CLIPScore: A
Reference-free Evaluation Metric for Image Captioning", EMNLP (Eq. 1):
CLIP-S(c, v) = w · max(cos(E_c, E_v), 0) with w = 2.5, clipped per pair and
then averaged.  torchmetrics' ``CLIPScore`` (``functional.multimodal.clip_score``)
instead averages 100 · cos over the pairs and clamps the mean at 0.  Both are
offered, named by ``variant``; they differ when some pairs have cos < 0.

The similarity table is the text × image cosine matrix (rows prompts, columns
images) printed in the deck; it is printed aligned, written as CSV and drawn
as a heat map.
"""

from __future__ import annotations

import csv
import functools
import os
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import _validate as V
from ._pipeline.inputs import SourceOptions, column_array, paired_arrays, resolve_source_options

__all__ = ["clip_score", "ClipScoreResult", "similarity_table", "SimilarityTable", "pair_cosines",
           "cosine_matrix", "CLIP_SCORE_VARIANTS"]

#: ``variant`` → its weight w.
CLIP_SCORE_VARIANTS = {"hessel": 2.5, "torchmetrics": 100.0}


@jax.jit
def pair_cosines(x: jax.Array, t: jax.Array) -> jax.Array:
    """Row-wise cosine of paired rows: ``x, t: [n, d]`` → ``[n]``."""
    xn = x / jnp.linalg.norm(x, axis=1, keepdims=True)
    tn = t / jnp.linalg.norm(t, axis=1, keepdims=True)
    return jnp.sum(xn * tn, axis=1)


@jax.jit
def cosine_matrix(a: jax.Array, b: jax.Array) -> jax.Array:
    """All cosines between rows: ``a: [m, d]``, ``b: [k, d]`` → ``[m, k]``."""
    an = a / jnp.linalg.norm(a, axis=1, keepdims=True)
    bn = b / jnp.linalg.norm(b, axis=1, keepdims=True)
    return jnp.dot(an, bn.T, precision=jax.lax.Precision.HIGHEST)


class ClipScoreResult(NamedTuple):
    """CLIPScore of paired image/text embeddings.

    Attributes:
      score: the corpus score (``hessel``: mean of w·max(cos, 0);
        ``torchmetrics``: max(mean of w·cos, 0)).
      variant: ``"hessel"`` or ``"torchmetrics"``.
      weight: w (2.5 or 100 by default).
      per_sample: ``[n]`` per-pair values (hessel: w·max(cos, 0);
        torchmetrics: w·cos, unclamped, as its per-sample scores).
      cosines: ``[n]`` the raw cosines.
      n: number of pairs.
      pairing: how shards paired by number were matched (:meth:`clipcore.sources.PairingReport.to_dict`:
        complete pairs read, shards skipped with ``skip_incomplete``), or None for arrays and plain files.
    """

    score: float
    variant: str
    weight: float
    per_sample: np.ndarray
    cosines: np.ndarray
    n: int
    pairing: dict | None = None

    def __float__(self) -> float:
        return float(self.score)


def _paired_arrays(images: Any, texts: Any, files: SourceOptions) -> tuple[np.ndarray, np.ndarray, dict | None]:
    """Host arrays from arrays, files or a folder of any layout (validated), and the shards' pairing."""
    images, texts, pairing = paired_arrays(images, texts, nonzero=True, files=files)
    if texts is None:
        raise ValueError("texts: missing; pass the prompts' embeddings [n, d]")
    x = V.as_embeddings(images, "images", nonzero_rows=True)
    t = V.as_embeddings(texts, "texts", nonzero_rows=True)
    V.check_pair(x, t, same_dim=True, why="CLIPScore compares each image with its prompt in one embedding space "
                 "(embeddings of one CLIP model)")
    return x, t, pairing


def clip_score(images: Any, texts: Any = None, *, variant: str = "hessel", weight: float | None = None,
               images_key: str | None = None, texts_key: str | None = None,
               skip_incomplete: bool = False) -> ClipScoreResult:
    """CLIPScore of images and their captions, in one of two named conventions.

    ``variant="hessel"`` (Hessel et al. 2021, Eq. 1): mean over pairs of
    w · max(cos(x_i, t_i), 0), w = 2.5.  ``variant="torchmetrics"``
    (torchmetrics' ``CLIPScore``): max(mean over pairs of w · cos, 0),
    w = 100 — the clamp comes after the mean.

    Args:
      images: ``[n, d]`` image embeddings: an array, a ``.npy`` / ``.npz`` path, a glob or list of shards,
        or a folder of any layout :func:`clipcore.sce` reads (clipcore shards, clip-retrieval / LAION,
        DataComp, Parquet) holding both columns, then ``texts=None``; files are read whole.
      texts: ``[n, d]`` caption embeddings; row i describes image i.
      variant: ``"hessel"`` or ``"torchmetrics"``.
      weight: override w.
      images_key, texts_key, skip_incomplete: as in :func:`clipcore.sce` (the arrays inside ``.npz``
        shards or the Parquet columns; score only the complete shard pairs, reported in
        ``result.pairing``).

    Returns:
      :class:`ClipScoreResult`.
    """
    V.check_choice(variant, "variant", tuple(CLIP_SCORE_VARIANTS))
    w = V.check_number(weight, "weight", positive=True, default=CLIP_SCORE_VARIANTS[variant])
    files = resolve_source_options(images_key=images_key, texts_key=texts_key, skip_incomplete=skip_incomplete)
    x, t, pairing = _paired_arrays(images, texts, files)
    cos = np.asarray(pair_cosines(x, t), np.float64)
    if variant == "hessel":
        per = w * np.maximum(cos, 0.0)
        score = float(per.mean())
    else:
        per = w * cos
        score = float(max(per.mean(), 0.0))
    return ClipScoreResult(score, variant, w, per, cos, int(cos.shape[0]), pairing)


class SimilarityTable(NamedTuple):
    """Prompt × image cosine table.

    Attributes:
      values: ``[m, k]`` cos(text_i, image_j) (float64).
      text_labels: ``m`` row labels; image_labels: ``k`` column labels.
      pairing: when both sides came from one folder of shards paired by number, how they were paired
        (:meth:`clipcore.sources.PairingReport.to_dict`); else None.
    """

    values: np.ndarray
    text_labels: list
    image_labels: list
    pairing: dict | None = None

    def format(self, digits: int = 3, max_label: int = 40) -> str:
        """The table as aligned text (labels cut to ``max_label`` characters)."""
        cut = lambda s: s if len(s) <= max_label else s[: max_label - 1] + "…"  # noqa: E731
        rows = [[""] + [cut(str(c)) for c in self.image_labels]]
        rows += [[cut(str(r))] + [f"{v:.{digits}f}" for v in vals] for r, vals in zip(self.text_labels, self.values)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                         for r in rows)

    def to_csv(self, path: str | os.PathLike) -> str:
        """Write ``text \\ image`` header, one row per prompt; returns the path."""
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["text \\ image"] + [str(c) for c in self.image_labels])
            for r, vals in zip(self.text_labels, self.values):
                wr.writerow([str(r)] + [repr(float(v)) for v in vals])
        return path

    def plot(self, path: str | os.PathLike, *, title: str | None = None, annotate: bool | None = None) -> str:
        """Save the table as a PNG heat map (matplotlib, Agg); returns the path."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        m, k = self.values.shape
        fig, ax = plt.subplots(figsize=(min(2 + 0.6 * k, 30), min(1.5 + 0.45 * m, 30)))
        im = ax.imshow(self.values, cmap="viridis", aspect="auto")
        ax.set_xticks(range(k), [str(c)[:30] for c in self.image_labels], rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(m), [str(r)[:40] for r in self.text_labels], fontsize=8)
        if annotate if annotate is not None else m * k <= 400:
            lo, hi = float(self.values.min()), float(self.values.max())
            for i in range(m):
                for j in range(k):
                    v = self.values[i, j]
                    bright = (v - lo) / (hi - lo) > 0.5 if hi > lo else True  # viridis is light at the top
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="black" if bright else "white")
        fig.colorbar(im, ax=ax, label="cosine")
        ax.set_title(title or "text × image cosine similarity")
        fig.tight_layout()
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def _labels(labels: Sequence | None, n: int, name: str, prefix: str) -> list:
    if labels is None:
        return [f"{prefix}{i}" for i in range(n)]
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"{name}: {len(labels)} labels for {n} embeddings")
    return labels


def _table_inputs(texts: Any, images: Any, files: SourceOptions) -> tuple[Any, Any, dict | None]:
    """The two sides of a table: one folder given for both reads its two columns paired (the shards'
    pairing rules and ``skip_incomplete``); otherwise each side is read on its own."""
    same = isinstance(texts, (str, os.PathLike)) and isinstance(images, (str, os.PathLike)) and \
        os.path.abspath(os.fspath(texts)) == os.path.abspath(os.fspath(images))
    if same:
        x, t, pairing = paired_arrays(images, None, nonzero=True, files=files)
        return t, x, pairing
    return (column_array(texts, "text_embeddings", role="texts", nonzero=True, files=files),
            column_array(images, "image_embeddings", role="images", nonzero=True, files=files), None)


def similarity_table(text_embeddings: Any, image_embeddings: Any, text_labels: Sequence | None = None,
                     image_labels: Sequence | None = None, *, images_key: str | None = None,
                     texts_key: str | None = None, skip_incomplete: bool = False) -> SimilarityTable:
    """The prompt × image cosine table of the deck.

    Args:
      text_embeddings: ``[m, d]`` prompt embeddings (rows of the table): an array, or any path form
        :func:`clipcore.sce` reads (a folder holding both columns gives its texts column), read whole.
      image_embeddings: ``[k, d]`` image embeddings (columns), likewise (a folder gives its images column).
      text_labels, image_labels: ``m`` / ``k`` labels (default ``t0…``, ``i0…``).
      images_key, texts_key: the arrays inside ``.npz`` shards or the Parquet columns of each side.
      skip_incomplete: when both sides are one folder of shards paired by number: read only the complete
        pairs (reported in ``table.pairing``).

    Returns:
      :class:`SimilarityTable` with ``values[i, j] = cos(t_i, x_j)``.
    """
    files = resolve_source_options(images_key=images_key, texts_key=texts_key, skip_incomplete=skip_incomplete)
    text_embeddings, image_embeddings, pairing = _table_inputs(text_embeddings, image_embeddings, files)
    t = V.as_embeddings(text_embeddings, "text_embeddings", nonzero_rows=True)
    x = V.as_embeddings(image_embeddings, "image_embeddings", nonzero_rows=True)
    if t.shape[1] != x.shape[1]:
        raise ValueError(
            f"image_embeddings: dimension {x.shape[1]} differs from text_embeddings' {t.shape[1]}; "
            "cosines need one embedding space"
        )
    vals = np.asarray(cosine_matrix(t, x), np.float64)
    return SimilarityTable(vals, _labels(text_labels, t.shape[0], "text_labels", "t"),
                           _labels(image_labels, x.shape[0], "image_labels", "i"), pairing)
