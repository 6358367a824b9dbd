"""Paired retrieval accuracy: image→text and text→image recall@k, in blocks.

The yardstick for dimensionality reduction (SPEC_MODELS.md, "Retrieval
accuracy"): row i of ``images`` and row i of ``texts`` are a pair; for every
image the captions are ranked by similarity and recall@k is the fraction of
images whose own caption is among the first k (likewise text→image).  This is
the protocol of Radford et al. 2021 ("Learning Transferable Visual Models From
Natural Language Supervision", zero-shot retrieval on COCO / Flickr30k), with
one caption per image.

Only a ``[b, n]`` block of similarities is held at a time (``b`` chosen from a
memory budget), never the ``n × n`` matrix.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._pipeline.inputs import paired_arrays, resolve_source_options
from ._validate import as_embeddings, check_choice, check_positive_int

__all__ = ["RetrievalResult", "retrieval"]

METRICS = ("cosine", "euclidean")

#: Default budget of similarity entries held at once (b · n).
BLOCK_ELEMENTS = 1 << 22


class RetrievalResult(NamedTuple):
    """Recall@k in both directions, and each query's rank.

    Attributes:
      ks: the k of each recall, ascending.
      image_to_text: ``[len(ks)]`` recall@k of the caption given the image.
      text_to_image: ``[len(ks)]`` recall@k of the image given the caption.
      image_to_text_rank: ``[n]`` 0-based rank of image i's own caption
        (0 = top-1 hit).
      text_to_image_rank: ``[n]`` 0-based rank of caption i's own image.
      metric: ``"cosine"`` or ``"euclidean"``.
      n: number of pairs.
      pairing: how shards paired by number were matched (:meth:`clipcore.sources.PairingReport.to_dict`),
        or None for arrays and plain files.
    """

    ks: tuple[int, ...]
    image_to_text: np.ndarray
    text_to_image: np.ndarray
    image_to_text_rank: np.ndarray
    text_to_image_rank: np.ndarray
    metric: str
    n: int
    pairing: dict | None = None

    @property
    def image_to_text_top1(self) -> float:
        """Fraction of images whose own caption is the nearest one."""
        return float(np.mean(self.image_to_text_rank == 0))

    @property
    def text_to_image_top1(self) -> float:
        """Fraction of captions whose own image is the nearest one."""
        return float(np.mean(self.text_to_image_rank == 0))

    def summary(self) -> dict:
        """Recall@k in both directions as a JSON-ready dict."""
        return {
            "n": self.n,
            "metric": self.metric,
            "image_to_text": {f"R@{k}": float(r) for k, r in zip(self.ks, self.image_to_text)},
            "text_to_image": {f"R@{k}": float(r) for k, r in zip(self.ks, self.text_to_image)},
            "image_to_text_top1": self.image_to_text_top1,
            "text_to_image_top1": self.text_to_image_top1,
            **({"pairing": self.pairing} if self.pairing is not None else {}),
        }


@partial(jax.jit, static_argnames=("metric",))
def _block_ranks(queries: jax.Array, keys: jax.Array, key_sq: jax.Array, start: jax.Array,
                 metric: str) -> jax.Array:
    """Rank of key ``start + r`` among all keys for query row r of the block.

    Args:
      queries: ``[b, d]`` (rows past the end of the set are padding).
      keys: ``[n, d]``.
      key_sq: ``[n]`` squared key norms (used by the Euclidean metric).
      start: index of the block's first query.

    Returns:
      ``[b]`` int: #{j : s_rj > s_r,own} + #{j < own : s_rj = s_r,own}, i.e.
      the position of the own key when ties go to the lower index (the
      first maximum, like ``argmax``).
    """
    n = keys.shape[0]
    b = queries.shape[0]
    s = queries @ keys.T
    if metric == "euclidean":
        # −‖q − k‖² + ‖q‖²: the same order within a row
        s = 2.0 * s - key_sq[None, :]
    own_idx = start + jnp.arange(b)
    own = jnp.take_along_axis(s, jnp.minimum(own_idx, n - 1)[:, None], axis=1)
    cols = jnp.arange(n)[None, :]
    better = (s > own) | ((s == own) & (cols < own_idx[:, None]))
    return jnp.sum(better, axis=1, dtype=jnp.int32)


def _ranks(queries: jax.Array, keys: jax.Array, metric: str, block: int, bar) -> np.ndarray:
    n, d = queries.shape
    key_sq = jnp.sum(keys * keys, axis=1)
    out = np.empty(n, dtype=np.int64)
    for start in range(0, n, block):
        q = queries[start:start + block]
        rows = q.shape[0]
        if rows < block:  # one compiled shape: pad the last block
            q = jnp.concatenate([q, jnp.zeros((block - rows, d), q.dtype)])
        r = _block_ranks(q, keys, key_sq, jnp.asarray(start), metric)
        out[start:start + rows] = np.asarray(r)[:rows]
        if bar is not None:
            bar.update(rows)
    return out


def _check_ks(k: Any) -> tuple[int, ...]:
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
        k = (k,)
    try:
        ks = [check_positive_int(v, "k") for v in k]
    except TypeError:
        raise ValueError(f"k: expected a positive integer or a sequence of them, got {k!r}") from None
    if not ks:
        raise ValueError("k: expected at least one value")
    return tuple(sorted(set(ks)))


def retrieval(
    images: Any,
    texts: Any = None,
    k: int | Sequence[int] = (1, 5, 10),
    *,
    metric: str = "cosine",
    block_size: int | None = None,
    progress: bool | None = None,
    images_key: str | None = None,
    texts_key: str | None = None,
    skip_incomplete: bool = False,
) -> RetrievalResult:
    """Image→text and text→image recall@k of paired embeddings.

    For image i, its caption's rank is the number of captions j more similar
    to it than caption i (ties go to the lower index, as ``argmax`` does);
    recall@k = (1/n) · #{i : rank_i < k}.  Top-1 is recall@1
    (SPEC_MODELS.md; Radford et al. 2021).  Text→image swaps the roles.

    Args:
      images: ``[n, d]`` image embeddings (any float dtype; computed in it), or any path form
        :func:`clipcore.sce` reads (a folder of any layout holding both columns, then ``texts=None``),
        read whole (half precision widened to float32).
      texts: ``[n, d]`` caption embeddings, row i the caption of image i.
      k: the cut-offs, e.g. ``(1, 5, 10)``.
      metric: ``"cosine"`` (rows L2-normalised, default) or ``"euclidean"``
        (nearest neighbour by ‖u − v‖, e.g. for MDS outputs).
      block_size: query rows per block (default: about 4·10⁶ similarities
        held at once, so ``[block_size, n]`` stays small for any n).
      progress: tqdm bar over the query blocks (``None``: shown after 2 s).
      images_key, texts_key, skip_incomplete: as in :func:`clipcore.sce` (the arrays inside ``.npz``
        shards or the Parquet columns; only the complete shard pairs, reported in ``result.pairing``).

    Returns:
      RetrievalResult with recall@k in both directions and every rank.

    Raises:
      ValueError: NaN/Inf, empty sets, non-2-D input, different n or d,
        zero rows under the cosine metric, or a bad k / metric.
    """
    metric = check_choice(metric, "metric", METRICS)
    ks = _check_ks(k)
    files = resolve_source_options(images_key=images_key, texts_key=texts_key, skip_incomplete=skip_incomplete)
    images, texts, pairing = paired_arrays(images, texts, nonzero=metric == "cosine", files=files)
    if texts is None:
        raise ValueError("texts: missing; pass the captions' embeddings [n, d]")
    u = as_embeddings(images, "images", nonzero_rows=metric == "cosine")
    v = as_embeddings(texts, "texts", nonzero_rows=metric == "cosine")
    if u.shape[0] != v.shape[0]:
        raise ValueError(
            f"texts: {v.shape[0]} rows but images has {u.shape[0]} (shapes {tuple(v.shape)} and "
            f"{tuple(u.shape)}); row i of texts must be the caption of row i of images"
        )
    if u.shape[1] != v.shape[1]:
        raise ValueError(
            f"texts: dimension {v.shape[1]} differs from images' {u.shape[1]} (shapes {tuple(v.shape)} "
            f"and {tuple(u.shape)}); retrieval compares them in one space"
        )
    n = int(u.shape[0])
    block = check_positive_int(block_size, "block_size")
    if block is None:
        block = max(1, BLOCK_ELEMENTS // n)
    block = min(block, n)
    if metric == "cosine":
        u = u / jnp.linalg.norm(u, axis=1, keepdims=True)
        v = v / jnp.linalg.norm(v, axis=1, keepdims=True)

    from tqdm.auto import tqdm

    with tqdm(total=2 * n, desc="retrieval", unit="queries", unit_scale=True, disable=progress is False,
              delay=0 if progress else 2.0, leave=False) as bar:
        i2t = _ranks(u, v, metric, block, bar)
        t2i = _ranks(v, u, metric, block, bar)
    rec_i2t = np.array([np.mean(i2t < kk) for kk in ks])
    rec_t2i = np.array([np.mean(t2i < kk) for kk in ks])
    return RetrievalResult(ks, rec_i2t, rec_t2i, i2t, t2i, metric, n, pairing)
