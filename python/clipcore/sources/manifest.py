"""clipcore shard manifests (``manifest.json``, written by :func:`clipcore.write_shards` and
:func:`clipcore.embed`): reading them, the files they own, and globs that disagree with them."""

from __future__ import annotations

import glob
import json
import os
import warnings
from typing import Any

__all__ = ["MANIFEST", "FORMAT", "ShardWarning", "has_manifest", "read_manifest", "manifest_columns",
           "manifest_files", "owned_files", "check_glob_against_manifest", "glob_files"]

#: File name of a shard directory's manifest.
MANIFEST = "manifest.json"
#: The ``"format"`` tag of a clipcore shard manifest.
FORMAT = "clipcore-shards/1"


class ShardWarning(UserWarning):
    """A shard listing that may not be what the user meant (a glob that disagrees with a manifest)."""


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
    if not isinstance(man, dict) or man.get("format") != FORMAT or "shards" not in man:
        fmt = man.get("format") if isinstance(man, dict) else None
        raise ValueError(f"{name}: {path} is not a clipcore shard manifest (format {fmt!r})")
    return man


def manifest_columns(directory: str | os.PathLike, name: str) -> list[str]:
    """The columns (``"images"``, ``"texts"``) every shard of a manifest has, in that order."""
    shards = read_manifest(directory, name)["shards"]
    return [c for c in ("images", "texts") if shards and all(c in s for s in shards)]


def manifest_files(directory: str | os.PathLike, name: str, column: str) -> list[str]:
    """The files of one column of a manifest, in manifest order (paths joined to ``directory``)."""
    directory = os.fspath(directory)
    man = read_manifest(directory, name)
    try:
        return [os.path.join(directory, s[column]) for s in man["shards"]]
    except KeyError:
        raise ValueError(f"{name}: the manifest in {directory} has no {column!r} shards") from None


def owned_files(directory: str | os.PathLike) -> dict[str, str]:
    """Every file a readable manifest lists, as ``{normalised path: column}`` (empty without one)."""
    directory = os.fspath(directory)
    try:
        man = read_manifest(directory, "directory")
    except ValueError:
        return {}
    out = {}
    for s in man["shards"]:
        for column, f in s.items():
            if isinstance(f, str):
                out[os.path.normpath(os.path.join(directory, f))] = column
    return out


def check_glob_against_manifest(pattern: str, files: list[str], name: str) -> None:
    """Warn (:class:`ShardWarning`) when a glob's files disagree with a manifest in the glob's directory:
    it matches files the manifest does not list (stale shards of an earlier write?), or files of several
    of its columns (images and texts mixed)."""
    directory = os.path.dirname(pattern) or "."
    if any(ch in directory for ch in "*?[") or not has_manifest(directory):
        return
    owned = owned_files(directory)
    if not owned:
        return
    unlisted = [os.path.basename(f) for f in files if os.path.normpath(f) not in owned]
    columns = sorted({owned[os.path.normpath(f)] for f in files if os.path.normpath(f) in owned})
    if unlisted:
        shown = ", ".join(unlisted[:5]) + (f", ... ({len(unlisted)} in all)" if len(unlisted) > 5 else "")
        warnings.warn(f"{name}: the glob {pattern} matches {len(unlisted)} file(s) that {MANIFEST} in {directory} "
                      f"does not list ({shown}): left by an earlier write? Pass the directory itself to read "
                      "what its manifest lists", ShardWarning, stacklevel=4)
    elif len(columns) > 1:
        warnings.warn(f"{name}: the glob {pattern} matches files of several columns of {MANIFEST} in {directory} "
                      f"({', '.join(columns)}); pass the directory itself to read them as columns", ShardWarning,
                      stacklevel=4)


def glob_files(pattern: str) -> list[str]:
    """Files matching a glob (unsorted)."""
    return [f for f in glob.glob(pattern) if os.path.isfile(f)]
