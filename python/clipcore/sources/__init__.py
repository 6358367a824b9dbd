"""Embedding sources that stream: files, shard directories, known layouts, iterators.

A *row source* is a sequence of rows [n, d] that may live on disk across
many shards; a *paired source* walks images and texts together in blocks of
rows (row i of the images belongs to row i of the texts, whatever the shard
boundaries).  Every block is read into a fresh host buffer (``pread`` for
``.npy`` / ``.npz``, one row group or batch at a time for Parquet; never a
whole file, so the resident set stays bounded by the block size however large
the files are), validated (NaN / Inf / zero rows, with the shard and row named
in the error), and handed over by a prefetch thread so the next block is read
while the current one is on the device.  Half precision is read as stored and
widened to float32 block by block.

Accepted by :func:`clipcore.sce`, :func:`clipcore.vendi`, :func:`clipcore.rke`:

* a NumPy / JAX array, or a ``numpy.memmap``;
* a ``.npy`` path (read by blocks), an ``.npz`` path holding one array (or
  the one named by ``images_key=`` / ``texts_key=``; read by blocks when stored
  uncompressed, as ``np.savez`` does; a compressed member is loaded whole), a
  ``.parquet`` file with ``list<float>`` / fixed-size-list embedding columns;
* a folder of a known layout (:mod:`.layouts`): a clipcore shard directory
  (``manifest.json``), clip-retrieval / LAION-400M / LAION-5B
  (``img_emb/img_emb_{N}.npy``, ``text_emb/text_emb_{N}.npy``,
  ``metadata/metadata_{N}.parquet``), DataComp (``{shard}.npz`` + ``{shard}.parquet``),
  Parquet / Hugging Face datasets (``*.parquet``, ``data/*.parquet``); shards
  are paired by their number (:mod:`.pairing`), every missing / mismatched /
  empty shard named in one error, or skipped and reported with ``skip_incomplete=True``;
* any other directory: its ``*.npy`` and ``*.npz`` files ordered by the number
  in their names (never as text);
* a glob pattern (``"emb/images-*.npy"``) or a list of paths, in that order;
* for pairs: an iterable of ``(images_block, texts_block)`` tuples; for one
  set (:func:`clipcore.vendi`, :func:`clipcore.rke`): an iterable of
  ``[b, d]`` blocks.

Modules: :mod:`.shards` (THE shard lister :func:`list_shards`), :mod:`.names`
(shard numbers), :mod:`.manifest`, :mod:`.layouts` (:func:`recognise`),
:mod:`.parts` and :mod:`.parquet` (file parts read by rows), :mod:`.rows`
(row sources), :mod:`.pairing` (shards paired by number, :class:`PairingReport`),
:mod:`.paired` (paired sources, validated blocks, :func:`prompt_ids`), :mod:`.metadata` (captions as
prompt ids, ``image_path``), :mod:`.prefetch` (the reader threads), :mod:`.writer`
(:func:`write_shards`), :mod:`.inspection` (:func:`inspect`).
"""

from __future__ import annotations

from .inspection import BadRow, ColumnReport, InspectReport, format_report, inspect
from .layouts import DATACOMP_ARRAYS, LAYOUTS, Layout, recognise
from .metadata import CAPTION_COLUMNS
from .paired import Block, PairedSource, as_block, check_block, paired_source, prompt_ids
from .pairing import PairingReport, Shard, ShardTable, shard_table
from .parquet import IMAGE_COLUMNS, TEXT_COLUMNS, ParquetPart, embedding_columns
from .prefetch import prefetched
from .rows import ArrayPart, NpyPart, RowSource, file_parts, open_part, row_source
from .shards import (FORMAT, MANIFEST, ShardWarning, has_manifest, list_shards, manifest_columns, natural_key,
                     read_manifest, shard_number, sort_by_number)
from .writer import WRITE_LAYOUTS, write_shards

__all__ = [
    "RowSource",
    "PairedSource",
    "Block",
    "row_source",
    "paired_source",
    "write_shards",
    "WRITE_LAYOUTS",
    "MANIFEST",
    "FORMAT",
    "ShardWarning",
    "list_shards",
    "has_manifest",
    "read_manifest",
    "manifest_columns",
    "natural_key",
    "shard_number",
    "sort_by_number",
    "recognise",
    "Layout",
    "LAYOUTS",
    "DATACOMP_ARRAYS",
    "shard_table",
    "ShardTable",
    "Shard",
    "PairingReport",
    "inspect",
    "InspectReport",
    "ColumnReport",
    "BadRow",
    "format_report",
    "CAPTION_COLUMNS",
    "prompt_ids",
    "IMAGE_COLUMNS",
    "TEXT_COLUMNS",
    "embedding_columns",
    "ParquetPart",
    "check_block",
    "as_block",
    "prefetched",
    "ArrayPart",
    "NpyPart",
    "file_parts",
    "open_part",
]
