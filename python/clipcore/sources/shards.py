"""THE shard lister: which files a data set argument names, in order.

One rule for every reader of shards (:func:`clipcore.sce` and friends through
:func:`clipcore.sources.row_source`, :mod:`clipcore.distributed`, the CLI):

* a path to a file: that file;
* a directory holding ``manifest.json`` (written by
  :func:`clipcore.write_shards` or :func:`clipcore.embed`): the files of one
  column of its manifest, in manifest order;
* any other directory: its ``*.npy`` and ``*.npz`` files, sorted by path;
* a glob pattern (``"emb/images-*.npy"``): the matching files, sorted;
* a list or tuple of paths: those files, in that order.

Whether a listed file is a readable shard (``.npy`` / ``.npz``, 2-D,
floating) is the reader's check (:mod:`clipcore.sources.rows`).
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any

__all__ = ["MANIFEST", "FORMAT", "list_shards", "has_manifest", "read_manifest", "manifest_columns"]

#: File name of a shard directory's manifest.
MANIFEST = "manifest.json"
#: The ``"format"`` tag of a clipcore shard manifest.
FORMAT = "clipcore-shards/1"

_GLOB_CHARS = "*?["


def has_manifest(obj: Any) -> bool:
    """True when ``obj`` is a path to a directory holding a :data:`MANIFEST`."""
    if not isinstance(obj, (str, os.PathLike)):
        return False
    path = os.fspath(obj)
    return os.path.isdir(path) and os.path.exists(os.path.join(path, MANIFEST))


def read_manifest(directory: str | os.PathLike, name: str) -> dict:
    """The parsed manifest of a clipcore shard directory.

    Args:
      directory: the shard directory.
      name: the argument name used in error messages.

    Returns:
      The manifest as a dict (``"format"``, ``"shards"``: one ``{column: file, "rows": k}`` per shard, ...).

    Raises:
      ValueError: unreadable, or not a clipcore shard manifest.
    """
    path = os.path.join(os.fspath(directory), MANIFEST)
    try:
        with open(path) as f:
            man = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{name}: cannot read {path} ({exc})") from exc
    if man.get("format") != FORMAT or "shards" not in man:
        raise ValueError(f"{name}: {path} is not a clipcore shard manifest (format {man.get('format')!r})")
    return man


def manifest_columns(directory: str | os.PathLike, name: str) -> list[str]:
    """The columns (``"images"``, ``"texts"``) every shard of a manifest has, in that order."""
    shards = read_manifest(directory, name)["shards"]
    return [c for c in ("images", "texts") if shards and all(c in s for s in shards)]


def _manifest_files(directory: str, name: str, column: str) -> list[str]:
    man = read_manifest(directory, name)
    try:
        return [os.path.join(directory, s[column]) for s in man["shards"]]
    except KeyError:
        raise ValueError(f"{name}: the manifest in {directory} has no {column!r} shards") from None


def list_shards(obj: Any, name: str, *, key: str | None = None) -> list[str]:
    """The shard files a data set argument names, in reading order (see the module docstring).

    Args:
      obj: a path, a directory, a glob pattern, or a list / tuple of paths.
      name: the argument name used in error messages (and the manifest column when ``key`` is None).
      key: for a clipcore shard directory, which column (``"images"`` or ``"texts"``).

    Returns:
      ``[k]`` file paths (strings), each an existing file.

    Raises:
      FileNotFoundError: a named file or glob matches nothing.
      ValueError: an empty directory or list, a manifest without that column, or ``obj`` of another type.
    """
    if isinstance(obj, (list, tuple)):
        files = [os.fspath(p) for p in obj]
    elif isinstance(obj, (str, os.PathLike)):
        path = os.fspath(obj)
        if os.path.isdir(path):
            if has_manifest(path):
                files = _manifest_files(path, name, key or name)
            else:
                files = sorted(glob.glob(os.path.join(path, "*.npy")) + glob.glob(os.path.join(path, "*.npz")))
                if not files:
                    raise ValueError(f"{name}: directory {path} has no .npy or .npz files and no {MANIFEST}")
        elif any(ch in path for ch in _GLOB_CHARS):
            files = sorted(glob.glob(path))
            if not files:
                raise FileNotFoundError(f"{name}: no file matches {path}")
        else:
            files = [path]
    else:
        raise ValueError(f"{name}: expected a path, a directory, a glob or a list of paths; got {type(obj).__name__}")
    if not files:
        raise ValueError(f"{name}: no embedding files found")
    for f in files:
        if not os.path.exists(f):
            raise FileNotFoundError(f"{name}: file not found: {f}")
    return files
