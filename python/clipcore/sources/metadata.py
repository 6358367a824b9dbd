"""Per-row metadata of paired shards (Parquet, through ``pyarrow``): the caption of each row as a prompt
id, ``image_path``, or any column; each shard's metadata file must have its shard's rows, in its order
(clip-retrieval: row j of ``metadata_N.parquet`` is row j of ``img_emb_N.npy``)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["CAPTION_COLUMNS", "metadata_column", "metadata_at", "prompt_groups", "image_paths", "caption_column"]

#: Columns taken as the caption (prompt) of each row, in this order.
CAPTION_COLUMNS = ("caption", "text", "TEXT", "prompt")


def _table(path: str, columns: list[str], name: str):
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: metadata file not found: {path}") from None
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{name}: cannot read column(s) {columns} of {path} ({exc})") from exc
    except Exception as exc:  # pyarrow's own errors: not Parquet, no such column
        raise ValueError(f"{name}: cannot read column(s) {columns} of {path} ({exc})") from exc


def _schema_names(path: str) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def caption_column(path: str, name: str) -> str:
    """The caption column of a metadata file (the first of :data:`CAPTION_COLUMNS` it has)."""
    names = _schema_names(path)
    for c in CAPTION_COLUMNS:
        if c in names:
            return c
    raise ValueError(f"{name}: {os.path.basename(path)} has no caption column (one of {list(CAPTION_COLUMNS)}); "
                     f"its columns: {names}")


def _columns(shards: list, column: str | None, name: str):
    """``(shard, Arrow array)`` of each shard's metadata column, rows checked against the shard's rows
    (``column`` None: the caption column of each file)."""
    for s in shards:
        if s.metadata is None:
            raise ValueError(f"{name}: shard {s.images.label} has no metadata file")
        col = column or caption_column(s.metadata, name)
        arr = _table(s.metadata, [col], name).column(0)
        if len(arr) != s.images.n:
            raise ValueError(f"{name}: {os.path.basename(s.metadata)} has {len(arr)} rows but {s.images.label} "
                             f"has {s.images.n}; row j of each must be the same sample")
        yield s, arr


def metadata_column(shards: list, column: str, name: str) -> np.ndarray:
    """``[n]`` values of one metadata column over the shards, in row order (objects for strings)."""
    parts = [np.asarray(arr.to_numpy(zero_copy_only=False)) for _, arr in _columns(shards, column, name)]
    return np.concatenate(parts) if parts else np.empty(0, object)


def metadata_at(shards: list, starts: np.ndarray, column: str, rows: Any, name: str) -> np.ndarray:
    """Values of one metadata column at the global ``rows`` only (objects): the metadata files of the shards
    those rows lie in are read, each once (``starts``: ``[len(shards) + 1]`` global index of each shard's first
    row, and n)."""
    rows = np.asarray(rows, np.int64)
    n = int(starts[-1])
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"{name}: rows must lie in [0, {n}), got {int(rows.min())}..{int(rows.max())}")
    out = np.empty(rows.shape, object)
    which = np.searchsorted(starts, rows, side="right") - 1
    for k in np.unique(which):
        (_, arr), = _columns([shards[int(k)]], column, name)
        values = np.asarray(arr.to_numpy(zero_copy_only=False), object)
        sel = which == k
        out[sel] = values[rows[sel] - int(starts[int(k)])]
    return out


def image_paths(shards: list, name: str) -> np.ndarray:
    """``[n]`` object array of each row's ``image_path``."""
    return metadata_column(shards, "image_path", name)


def prompt_groups(shards: list, name: str) -> tuple[np.ndarray, list[Any]]:
    """``([n] int64 prompt id of each row, distinct captions)``: rows with equal captions share an id; ids
    follow first appearance; a null caption is a prompt of its own (``None``)."""
    lookup: dict[Any, int] = {}
    out = []
    for _, arr in _columns(shards, None, name):
        enc = arr.dictionary_encode().combine_chunks()
        words = enc.dictionary.to_pylist()
        ids = np.array([lookup.setdefault(w, len(lookup)) for w in words] + [-1], np.int64)
        idx = enc.indices.to_numpy(zero_copy_only=False)
        idx = np.where(np.asarray(enc.indices.is_null()), -1, idx).astype(np.int64)
        if (idx < 0).any():
            ids[-1] = lookup.setdefault(None, len(lookup))
        out.append(ids[idx])
    groups = np.concatenate(out) if out else np.empty(0, np.int64)
    return groups, list(lookup)
