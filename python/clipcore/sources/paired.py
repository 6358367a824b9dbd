"""Paired sources: images and texts walked together in validated blocks of rows.

Row i of the images belongs to row i of the texts, whatever the shard
boundaries of either.  A paired source is built from two row sources
(:mod:`clipcore.sources.rows`), a clipcore shard directory (both columns from
its manifest), or an iterator of ``(images_block, texts_block)`` pairs; with
``single=True`` it walks one set (:func:`clipcore.vendi`, :func:`clipcore.rke`),
from a row source or an iterator of ``[b, d]`` blocks.  Every block is checked
(NaN / Inf / zero rows, with the shard and row named) by the one row checker,
and read ahead by a reader thread (:mod:`clipcore.sources.prefetch`).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import numpy as np

from .._validate import check_flag, check_rows, is_floating, widen_half
from .metadata import image_paths, metadata_at, metadata_column, prompt_groups
from .pairing import PairingReport, ShardTable, shard_table
from .prefetch import prefetched
from .rows import RowSource, row_source

__all__ = ["Block", "check_block", "as_block", "PairedSource", "paired_source", "prompt_ids"]


class Block(NamedTuple):
    """One validated block of rows: ``images [b, d_x]``, ``texts [b, d_t]`` (texts
    ``None`` for a single set), and the global index of its first row."""

    images: np.ndarray
    texts: np.ndarray | None
    start: int


def check_block(x: np.ndarray, name: str, start: int, locate: Callable[[int], str] | None, *, nonzero: bool) -> None:
    """NaN / Inf (and, with ``nonzero``, zero-norm) rows of a block ``[b, d]`` whose first row is global row
    ``start``, named by global row and by ``locate(row)`` (the shard): :func:`clipcore._validate.check_rows`."""
    check_rows(x, name, nonzero=nonzero, row_offset=start, locate=locate)


def as_block(a: Any, name: str, k: int) -> np.ndarray:
    """Iterator block ``k`` as a 2-D floating host array ``[b, d]`` (half precision widened to float32)."""
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name}: block {k} has shape {a.shape}; expected [b, d]")
    if not is_floating(a.dtype):
        raise ValueError(f"{name}: block {k} has dtype {a.dtype}; expected float32 or float64")
    return widen_half(a)


class PairedSource:
    """Images and texts walked together in blocks (texts may be absent).

    Attributes:
      images, texts: the :class:`~clipcore.sources.RowSource` of each column (``None`` for an iterator;
        texts ``None`` for a single set).
      iterator: the block iterator, or ``None``.
      n: total rows, or ``None`` for an iterator (unknown until consumed).
      d_images, d_texts: dimensions (known after the first block for iterators).
      layout: the recognised layout of a folder / files paired by shard (``"clip-retrieval"``, ...), or None.
      pairing: the :class:`~clipcore.sources.PairingReport` of shards paired by number (None otherwise):
        ``pairing.to_dict()`` is what a result's JSON records.
      shards: the paired :class:`~clipcore.sources.Shard` list (None otherwise).
    """

    def __init__(self, images: RowSource | None, texts: RowSource | None, iterator: Iterable | None = None,
                 *, single: bool = False, name: str = "images", table: ShardTable | None = None):
        self.images, self.texts, self.iterator = images, texts, iterator
        self.shards = None if table is None else table.shards
        self.pairing: PairingReport | None = None if table is None else table.pairing
        self.layout = None if table is None else table.layout
        # single: the iterator yields [b, d] blocks of one set (vendi, rke), named `name` in errors
        self.single, self.name = single, name
        if images is not None:
            self.n = images.n
            self.d_images = images.d
            self.d_texts = None if texts is None else texts.d
            if texts is not None and texts.n != images.n:
                raise ValueError(
                    f"texts: {texts.n} rows but images has {images.n}; row i of texts must be the prompt of row i of images"
                )
        else:
            self.n = None
            self.d_images = self.d_texts = None
        self._peeked: list = []

    @classmethod
    def from_table(cls, table: ShardTable, *, single: bool = False, name: str = "images") -> "PairedSource":
        """The source of paired shards (:func:`clipcore.sources.shard_table`)."""
        images = RowSource([s.images for s in table.shards], name if single else "images")
        texts = None if single else RowSource([s.texts for s in table.shards], "texts")
        return cls(images, texts, single=single, name=name, table=table)

    @property
    def in_memory(self) -> bool:
        """True when every row is already in memory (arrays, no files and no iterator)."""
        return self.iterator is None and self.images.in_memory and (self.texts is None or self.texts.in_memory)

    # -- metadata of paired shards (clip-retrieval / LAION metadata_N.parquet, DataComp {shard}.parquet, ...)
    def _need_shards(self, what: str) -> list:
        if not self.shards:
            raise ValueError(f"{self.name}: {what} needs a folder with per-row metadata (clip-retrieval / LAION "
                             "metadata_N.parquet, DataComp {shard}.parquet, Parquet caption columns)")
        return self.shards

    def groups(self) -> np.ndarray:
        """``[n]`` int64 prompt id of each row (rows with the same caption share one; ids in order of first
        appearance): the metadata's caption column (``caption``, else ``text`` / ``prompt``). Names:
        :meth:`prompts`."""
        return prompt_groups(self._need_shards("groups()"), self.name)[0]

    def prompts(self) -> list:
        """The distinct captions, ``prompts()[g]`` being prompt id ``g`` of :meth:`groups`."""
        return prompt_groups(self._need_shards("prompts()"), self.name)[1]

    def image_paths(self) -> np.ndarray:
        """``[n]`` object array of each row's ``image_path`` from the metadata."""
        return image_paths(self._need_shards("image_paths()"), self.name)

    def metadata(self, column: str, rows: Any = None) -> np.ndarray:
        """``[n]`` values of any metadata column (NumPy, objects for strings); with ``rows`` (global row
        indices) only those, reading only the metadata files of the shards they lie in."""
        shards = self._need_shards(f"metadata({column!r})")
        if rows is not None:
            return metadata_at(shards, self.images.starts, column, rows, self.name)
        return metadata_column(shards, column, self.name)

    # -- iterator support
    def _item(self, item: Any, k: int) -> tuple[Any, Any]:
        """One iterator item as ``(images, texts)`` (``texts`` None for a single set)."""
        pair = isinstance(item, (tuple, list)) and len(item) == 2
        if self.single:
            if pair and all(hasattr(a, "shape") for a in item):
                raise ValueError(
                    f"{self.name}: block {k} is a pair of arrays; this score takes one set, so the block iterator "
                    "must yield [b, d] arrays (pass the images' blocks)"
                )
            return item, None
        if not pair:
            raise ValueError(
                f"images: the block iterator must yield (images_block, texts_block) pairs, got {type(item).__name__}"
            )
        return item[0], item[1]

    def _iter_pairs(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        k = len(self._peeked)
        yield from self._peeked
        self._peeked = []
        for item in self.iterator:
            yield self._item(item, k)
            k += 1

    def peek(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The first ``(images [b, d_x], texts [b, d_t])`` block of an iterator (texts None for a single set),
        kept for the walk."""
        if self.iterator is None:
            raise ValueError("peek: only for iterator sources")
        if not self._peeked:
            it = iter(self.iterator)
            self.iterator = it
            try:
                first = next(it)
            except StopIteration:
                raise ValueError(f"{self.name}: the block iterator yielded no rows") from None
            x, t = self._item(first, 0)
            self._peeked = [(as_block(x, self.name, 0), None if self.single else as_block(t, "texts", 0))]
            self.d_images = self._peeked[0][0].shape[1]
            self.d_texts = None if self.single else self._peeked[0][1].shape[1]
        return self._peeked[0]

    def blocks(self, block_rows: int, *, nonzero: bool, prefetch: bool = True, depth: int = 2) -> Iterator[Block]:
        """Validated blocks of at most ``block_rows`` rows, read ahead by one thread when ``prefetch`` (at most
        ``depth`` blocks queued, so ``depth + 2`` alive with the one being read and the one in use)."""
        gen = self.read_blocks(block_rows, nonzero=nonzero)
        return prefetched(gen, depth) if prefetch else gen

    def read_blocks(self, block_rows: int, *, nonzero: bool) -> Iterator[Block]:
        """The validated blocks of :meth:`blocks`, read in the calling thread (what the reader thread runs;
        a subclass that walks other rows, e.g. :class:`clipcore.distributed.DistributedSource`, overrides it)."""
        if self.iterator is None:
            return self._file_blocks(block_rows, nonzero)
        return self._iterator_blocks(block_rows, nonzero)

    def _file_blocks(self, block_rows: int, nonzero: bool) -> Iterator[Block]:
        for start in range(0, self.n, block_rows):
            stop = min(self.n, start + block_rows)
            x = self.images.read(start, stop)
            check_block(x, self.name, start, self.images.locate, nonzero=nonzero)
            t = None
            if self.texts is not None:
                t = self.texts.read(start, stop)
                check_block(t, "texts", start, self.texts.locate, nonzero=nonzero)
            yield Block(x, t, start)

    def _checked_item(self, x: Any, t: Any, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Iterator block ``k`` as arrays whose rows and dimensions agree with the first block's."""
        if self.single:
            x = as_block(x, self.name, k)
            if self.d_images is None:
                self.d_images = x.shape[1]
            elif x.shape[1] != self.d_images:
                raise ValueError(f"{self.name}: block {k} has dimension {x.shape[1]} but the first block had "
                                 f"{self.d_images}")
            return x, None
        x, t = as_block(x, "images", k), as_block(t, "texts", k)
        if x.shape[0] != t.shape[0]:
            raise ValueError(f"texts: block {k} has {t.shape[0]} rows but its images block has {x.shape[0]}")
        if self.d_images is None:
            self.d_images, self.d_texts = x.shape[1], t.shape[1]
        elif (x.shape[1], t.shape[1]) != (self.d_images, self.d_texts):
            raise ValueError(
                f"images: block {k} has dimensions ({x.shape[1]}, {t.shape[1]}) but the first block had "
                f"({self.d_images}, {self.d_texts})"
            )
        return x, t

    def _iterator_blocks(self, block_rows: int, nonzero: bool) -> Iterator[Block]:
        start = 0
        name = self.name
        for k, (x, t) in enumerate(self._iter_pairs()):
            x, t = self._checked_item(x, t, k)
            locate = (lambda r, k=k, s=start: f"block {k}, row {r - s}")
            check_block(x, name, start, locate, nonzero=nonzero)
            if t is not None:
                check_block(t, "texts", start, locate, nonzero=nonzero)
            # re-cut into block_rows pieces so compiled shapes repeat
            for a in range(0, x.shape[0], block_rows):
                yield Block(x[a : a + block_rows], None if t is None else t[a : a + block_rows], start + a)
            start += x.shape[0]
        if start == 0:
            raise ValueError(f"{name}: the block iterator yielded no rows")
        self.n = start


def paired_source(images: Any, texts: Any = None, *, single: bool = False, name: str = "images",
                  images_key: str | None = None, texts_key: str | None = None,
                  skip_incomplete: bool = False) -> PairedSource:
    """Images and texts (or one set, or an iterator of pairs) as a :class:`PairedSource`.

    ``texts=None`` with a folder of a known layout (a clipcore manifest, clip-retrieval / LAION, DataComp,
    Parquet: :mod:`clipcore.sources.layouts`) reads both columns from it, shards paired by number
    (:mod:`clipcore.sources.pairing`); with an iterable that is not an array or a path, the iterable
    yields ``(images_block, texts_block)`` pairs, or ``[b, d]`` blocks of one set when ``single`` (then
    ``name`` names it in errors, e.g. ``"x"``).

    Args:
      images, texts: arrays, paths, folders, globs, lists of paths, or an iterator (see above).
      single: one set (the images column of a folder).
      name: the name of a single set in errors.
      images_key, texts_key: the array inside ``.npz`` shards (DataComp: ``"l14_img"``, ``"l14_txt"``;
        ``texts_key`` defaults to ``images_key`` with ``_img`` → ``_txt``) or the Parquet column
        (default: ``image_embedding`` / ``embeddings`` / ``embedding`` / the only list-of-floats column,
        and ``text_embedding``).
      skip_incomplete: shards paired by number: keep only the complete pairs (reported in
        ``source.pairing``) instead of one error naming every missing, mismatched or empty shard.
    """
    if isinstance(images, PairedSource):
        return images
    skip_incomplete = check_flag(skip_incomplete, "skip_incomplete")
    for option, value in (("images_key", images_key), ("texts_key", texts_key)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{option}: expected an array / column name (str), got {type(value).__name__}")
    is_pathlike = isinstance(images, (str, os.PathLike, list, tuple)) or hasattr(images, "shape")
    if texts is None and not is_pathlike and isinstance(images, Iterable):
        return PairedSource(None, None, iterator=images, single=single, name=name if single else "images")
    table = shard_table(images, texts, single=single, name=name if single else "images", images_key=images_key,
                        texts_key=texts_key, skip_incomplete=skip_incomplete)
    if table is not None:
        return PairedSource.from_table(table, single=single, name=name)
    if single:  # a clipcore shard directory gives its images column
        return PairedSource(row_source(images, name, key="images", images_key=images_key), None, name=name)
    img = row_source(images, "images", images_key=images_key)
    return PairedSource(img, None if texts is None else row_source(texts, "texts", texts_key=texts_key))


def prompt_ids(path: Any, texts: Any = None, *, single: bool = False, images_key: str | None = None,
               texts_key: str | None = None, skip_incomplete: bool = False) -> np.ndarray:
    """``[n]`` int64 prompt id of each row of a data set from its metadata's caption column: rows with the same
    caption share one id (ids in order of first appearance; a missing caption is a prompt of its own), in the
    order and over the shards the scores read with the same options, so the ids line up with the rows of
    :func:`clipcore.sce` / :func:`clipcore.vendi` / :func:`clipcore.conditional_vendi` (their ``groups=``).

    The caption column: ``caption`` (clip-retrieval / LAION ``metadata_N.parquet``), else ``text`` (DataComp
    ``{shard}.parquet``) or ``TEXT`` / ``prompt``; for Parquet shards, a column beside the embeddings.
    The captions themselves: ``paired_source(path).prompts()[ids]``.

    Args:
      path, texts: the data set as the scores take it (a folder of a known layout with per-row metadata).
      single: the shards of one set (as :func:`clipcore.vendi` reads them: images only) instead of pairs.
      images_key, texts_key, skip_incomplete: as for the scores (the same shards are kept).

    Raises:
      ValueError: no per-row metadata (arrays, plain ``.npy`` files), no caption column (naming the columns
        there), or a metadata file whose rows differ from its shard's.
    """
    return paired_source(path, texts, single=single, images_key=images_key, texts_key=texts_key,
                         skip_incomplete=skip_incomplete).groups()
