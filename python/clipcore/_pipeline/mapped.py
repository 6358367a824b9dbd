"""One column made from a paired source: images, texts, or a row map of both (the product kernel's
features), walked like a one-set source by the Vendi machinery (:func:`clipcore._pipeline.run.run_vendi`,
:func:`clipcore._pipeline.frobenius_run.frobenius_sq`, Nyström's landmarks and tail samples).

Conditional Vendi runs three Vendi-like problems on the same rows (H(X), H(T), H(X, T)); each reads its
column through a :class:`MappedSource` over the call's paired source, so files, shards, large host
arrays and distributed sources stream block by block (the map runs in the reader thread). A block
iterator is read once, so it is first spooled to temporary ``.npy`` files (:func:`spool`).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from .._progress import bar
from ..sources import Block, check_block, paired_source, prefetched

__all__ = ["MappedRows", "MappedSource", "spool", "SPOOL_BLOCK"]

#: Rows per spooled file of an iterator.
SPOOL_BLOCK = 1 << 16

RowMap = Callable[[np.ndarray, np.ndarray], np.ndarray]


class MappedRows:
    """Row access (``read``, ``take``) to ``fn(images, texts)`` of a paired source's row sources; the raw
    rows are checked (NaN / Inf, zero rows when ``nonzero``) with their shard and row named."""

    def __init__(self, src: Any, fn: RowMap, dim: int, nonzero: bool):
        self.src, self.fn, self.d, self.nonzero = src, fn, dim, nonzero
        self.name = src.name

    @property
    def n(self) -> int:
        return self.src.n

    @property
    def in_memory(self) -> bool:
        return self.src.in_memory

    def locate(self, row: int) -> str:
        return self.src.images.locate(row)

    def read(self, start: int, stop: int) -> np.ndarray:
        x, t = self.src.images.read(start, stop), self.src.texts.read(start, stop)
        check_block(x, "images", start, self.src.images.locate, nonzero=self.nonzero)
        check_block(t, "texts", start, self.src.texts.locate, nonzero=self.nonzero)
        return self.fn(x, t)

    def take(self, rows: np.ndarray) -> np.ndarray:
        return self.fn(self.src.images.take(rows), self.src.texts.take(rows))


class MappedSource:
    """A one-set source whose rows are ``fn(images_block, texts_block)`` of a paired source.

    It has what the one-set pipelines read of a :class:`clipcore.sources.PairedSource`: ``n``,
    ``d_images``, ``images`` (:class:`MappedRows`), ``texts`` (None), ``iterator`` (None: iterators are
    spooled first), ``in_memory``, ``name``, ``blocks``; and ``reduce_sums`` when the paired source is
    distributed (its sums are added across processes).
    """

    def __init__(self, src: Any, fn: RowMap, dim: int, *, name: str, nonzero: bool):
        if src.iterator is not None:
            raise ValueError(f"{name}: a block iterator is read once; spool it first (clipcore._pipeline.mapped.spool)")
        self.base, self.fn, self.name, self.nonzero = src, fn, name, nonzero
        self.images = MappedRows(src, fn, dim, nonzero)
        self.texts = None
        self.iterator = None
        self.single = True
        self.d_images, self.d_texts = dim, None
        if hasattr(src, "reduce_sums"):
            self.reduce_sums = src.reduce_sums

    @property
    def n(self) -> int:
        return self.base.n

    @property
    def in_memory(self) -> bool:
        return self.base.in_memory

    def _mapped(self, blocks):
        for blk in blocks:
            yield Block(self.fn(blk.images, blk.texts), None, blk.start)

    def blocks(self, block_rows: int, *, nonzero: bool, prefetch: bool = True, depth: int = 2):
        """Blocks of ``fn(images, texts)`` (the raw rows validated by the paired source); the map runs in
        the reader thread when ``prefetch``."""
        gen = self._mapped(self.base.read_blocks(block_rows, nonzero=nonzero or self.nonzero))
        return prefetched(gen, depth) if prefetch else gen


def spool(src: Any, directory: str, *, nonzero: bool, progress: bool | None, desc: str) -> Any:
    """The blocks of an iterator source written to ``directory`` as numbered ``.npy`` pairs (validated as
    read, dtype kept), returned as a paired source over those files (read as often as needed)."""
    images, texts = [], []
    with bar(None, f"{desc}: spooling the iterator", progress) as progress_bar:
        for k, blk in enumerate(src.blocks(SPOOL_BLOCK, nonzero=nonzero)):
            if blk.texts is None:
                raise ValueError("texts: the block iterator must yield (images_block, texts_block) pairs")
            for name, a, paths in (("images", blk.images, images), ("texts", blk.texts, texts)):
                paths.append(os.path.join(directory, f"{name}-{k:06d}.npy"))
                np.save(paths[-1], np.ascontiguousarray(a))
            progress_bar.update(blk.images.shape[0])
    if not images:
        raise ValueError("images: the block iterator yielded no rows")
    return paired_source(images, texts)
