"""THE shard lister: which files a data set argument names, in order.

One rule for every reader of shards (:func:`clipcore.sce` and friends through
:func:`clipcore.sources.row_source` / :func:`clipcore.sources.paired_source`,
:mod:`clipcore.distributed`, :func:`clipcore.sources.inspect`, the CLI):

* a path to a file: that file;
* a directory holding ``manifest.json`` (written by
  :func:`clipcore.write_shards` or :func:`clipcore.embed`): the files of one
  column of its manifest, in manifest order (files it does not list are never read);
* a directory of a known layout (:mod:`clipcore.sources.layouts`: clip-retrieval, LAION, DataComp,
  Parquet): the files of the column asked for, ordered by shard number;
* any other directory: its ``*.npy`` and ``*.npz`` files, ordered by the numbers in their names
  (``img_emb_2`` before ``img_emb_10``; never as text);
* a glob pattern (``"emb/images-*.npy"``): the matching files, ordered the same way (a warning when a
  ``manifest.json`` beside them does not list some of them);
* a list or tuple of paths: those files, in that order.

Whether a listed file is a readable shard (``.npy`` / ``.npz`` / ``.parquet``, 2-D,
floating) is the reader's check (:mod:`clipcore.sources.rows`).
"""

from __future__ import annotations

import os
from typing import Any

from .layouts import recognise
from .manifest import (FORMAT, MANIFEST, ShardWarning, check_glob_against_manifest, has_manifest,
                       manifest_columns, manifest_files, read_manifest)
from .names import GLOB_CHARS, natural_key, shard_number, sort_by_number

__all__ = ["MANIFEST", "FORMAT", "ShardWarning", "list_shards", "has_manifest", "read_manifest",
           "manifest_columns", "natural_key", "shard_number", "sort_by_number"]


def list_shards(obj: Any, name: str, *, key: str | None = None) -> list[str]:
    """The shard files a data set argument names, in reading order (see the module docstring).

    Args:
      obj: a path, a directory, a glob pattern, or a list / tuple of paths.
      name: the argument name used in error messages (and the column when ``key`` is None).
      key: for a directory of several columns (a clipcore manifest, clip-retrieval), which column
        (``"images"`` or ``"texts"``); for DataComp / Parquet both columns live in the same files.

    Returns:
      ``[k]`` file paths (strings), each an existing file.

    Raises:
      FileNotFoundError: a named file or glob matches nothing.
      ValueError: an empty directory or list, a manifest without that column, or ``obj`` of another type.
    """
    column = key or name
    if isinstance(obj, (str, os.PathLike)) and has_manifest(obj):
        files = manifest_files(obj, name, column)
    elif isinstance(obj, (list, tuple, str, os.PathLike)):
        layout = recognise(obj, name)
        files = layout.texts if column == "texts" and layout.texts is not None else layout.images
        if layout.name == "clip-retrieval" or layout.name == "laion-5b":
            if not files:
                which = "text_emb/text_emb_N.npy" if column == "texts" else "img_emb/img_emb_N.npy"
                raise ValueError(f"{name}: {layout.root} has no {which} files")
        pattern = os.fspath(obj) if isinstance(obj, (str, os.PathLike)) else ""
        if files and any(ch in pattern for ch in GLOB_CHARS) and not os.path.isdir(pattern):
            check_glob_against_manifest(pattern, files, name)
    else:
        raise ValueError(f"{name}: expected a path, a directory, a glob or a list of paths; got {type(obj).__name__}")
    if not files:
        raise ValueError(f"{name}: no embedding files found")
    for f in files:
        if not os.path.exists(f):
            raise FileNotFoundError(f"{name}: file not found: {f}")
    return files
