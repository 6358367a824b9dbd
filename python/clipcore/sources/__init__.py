"""Embedding sources that stream: files, shard directories, iterators.

A *row source* is a sequence of rows [n, d] that may live on disk across
many shards; a *paired source* walks images and texts together in blocks of
rows (row i of the images belongs to row i of the texts, whatever the shard
boundaries).  Every block is read into a fresh host buffer with ``pread``
(not a memory map, so the resident set stays bounded by the block size
however large the files are), validated (NaN / Inf / zero rows, with the
shard and row named in the error), and handed over by a prefetch thread so
the next block is read while the current one is on the device.

Accepted by :func:`clipcore.sce`, :func:`clipcore.vendi`, :func:`clipcore.rke`:

* a NumPy / JAX array, or a ``numpy.memmap``;
* a ``.npy`` path (read by blocks), an ``.npz`` path holding one array
  (read by blocks when stored uncompressed, as ``np.savez`` does; a
  compressed member is loaded whole);
* a directory: its ``manifest.json`` (written by :func:`write_shards`), or
  else its ``*.npy`` and ``*.npz`` files in sorted name order;
* a glob pattern (``"emb/images-*.npy"``) or a list of paths, in that order;
* for pairs: an iterable of ``(images_block, texts_block)`` tuples; for one
  set (:func:`clipcore.vendi`, :func:`clipcore.rke`): an iterable of
  ``[b, d]`` blocks.

Modules: :mod:`.shards` (THE shard lister :func:`list_shards`, manifests),
:mod:`.rows` (row sources, ``.npy`` / ``.npz`` parts read by rows),
:mod:`.paired` (paired sources, validated blocks), :mod:`.prefetch` (the
reader threads), :mod:`.writer` (:func:`write_shards`).
"""

from __future__ import annotations

from .paired import Block, PairedSource, as_block, check_block, paired_source
from .prefetch import prefetched
from .rows import ArrayPart, NpyPart, RowSource, file_parts, row_source
from .shards import FORMAT, MANIFEST, has_manifest, list_shards, manifest_columns, read_manifest
from .writer import write_shards

__all__ = [
    "RowSource",
    "PairedSource",
    "Block",
    "row_source",
    "paired_source",
    "write_shards",
    "MANIFEST",
    "FORMAT",
    "list_shards",
    "has_manifest",
    "read_manifest",
    "manifest_columns",
    "check_block",
    "as_block",
    "prefetched",
    "ArrayPart",
    "NpyPart",
    "file_parts",
]
