"""Row sources: rows ``[n, d]`` spread over parts (arrays, ``.npy`` / ``.npz`` shards, Parquet columns),
read by range.

Every read goes into a fresh host buffer (:mod:`clipcore.sources.parts`: ``pread``, not a memory map, so
the resident set stays bounded by the block size however large the files are; Parquet:
:mod:`clipcore.sources.parquet`, one row group or batch at a time).  ``.npz`` shards stored uncompressed
(``np.savez``) are read by rows at their member's offset like ``.npy``; a compressed member is loaded
whole.  Half-precision parts are read as stored and widened to float32 block by block.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from .._validate import is_floating
from ..io import load_embeddings
from .parquet import ParquetPart
from .parts import ArrayPart, NpyPart, aligned_empty, npz_member_name, npz_member_offset
from .shards import list_shards

__all__ = ["RowSource", "ArrayPart", "NpyPart", "ParquetPart", "row_source", "file_parts", "open_part",
           "npz_member_offset", "aligned_empty", "role_of", "key_of"]


class RowSource:
    """Rows [n, d] spread over parts (:class:`ArrayPart`, :class:`NpyPart`), read by range.

    Attributes:
      parts: the parts, in row order.
      name: the argument name used in error messages.
      n, d, dtype: total rows, dimension, dtype (promoted over the parts; half precision read as float32).
      starts: ``[len(parts) + 1]`` global index of each part's first row (and ``n``).
    """

    def __init__(self, parts: Sequence[Any], name: str):
        if not parts:
            raise ValueError(f"{name}: no embedding files found")
        self.parts = list(parts)
        self.name = name
        first = next((p for p in self.parts if p.n > 0), self.parts[0])
        for p in self.parts:
            if p.d != first.d and p.n > 0:
                raise ValueError(
                    f"{name}: shard {p.label} has dimension {p.d} but {first.label} has {first.d}"
                )
        self.d = first.d
        # half-precision shards are read as float32 (exact); mixed shards promote
        self.dtype = np.dtype(np.float64 if any(np.dtype(p.dtype).itemsize >= 8 for p in self.parts) else np.float32)
        self.starts = np.cumsum([0] + [p.n for p in self.parts])
        self.n = int(self.starts[-1])
        if self.n == 0:
            raise ValueError(f"{name}: empty set of embeddings (0 rows in {len(self.parts)} part(s))")

    @property
    def in_memory(self) -> bool:
        """True when every part is an array already in memory (no file to read)."""
        return all(isinstance(p, ArrayPart) for p in self.parts)

    def locate(self, row: int) -> str:
        """'<shard label>, row <local>' for a global row index."""
        k = int(np.searchsorted(self.starts, row, side="right") - 1)
        return f"{self.parts[k].label}, row {row - int(self.starts[k])}"

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) as one contiguous host array ``[stop - start, d]`` (copied), in :attr:`dtype`.

        A block within one part is that part's read (widened in place of a copy when half precision); a block
        across parts is assembled in one aligned buffer, each part reading straight into its slice."""
        k = int(np.searchsorted(self.starts, start, side="right") - 1)
        if stop <= int(self.starts[k + 1]) and not getattr(self.parts[k], "casts", False):
            base = int(self.starts[k])
            return self.parts[k].read(start - base, stop - base).astype(self.dtype, copy=False)
        out = aligned_empty((stop - start, self.d), self.dtype)
        pos = start
        while pos < stop:
            part, base = self.parts[k], int(self.starts[k])
            hi = min(stop, base + part.n)
            dst = out[pos - start:hi - start]
            if hasattr(part, "read_into") and (np.dtype(part.dtype) == self.dtype or part.casts):
                part.read_into(dst, pos - base)
            else:
                dst[...] = part.read(pos - base, hi - base)
            pos, k = hi, k + 1
        return out

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Scattered rows ``[k]`` (any order, in that order) as ``[k, d]``, e.g. a sample for σ; one open
        file per shard."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        out = np.empty((rows.size, self.d), self.dtype)
        if rows.size == 0:
            return out
        if rows.min() < 0 or rows.max() >= self.n:
            raise IndexError(f"{self.name}: rows out of range [0, {self.n})")
        which = np.searchsorted(self.starts, rows, side="right") - 1
        for k in np.unique(which):
            sel = np.flatnonzero(which == k)
            out[sel] = self.parts[k].take(rows[sel] - int(self.starts[k]))
        return out


def role_of(name: str, key: str | None = None) -> str:
    """The column a source of this argument reads: ``key`` (``"images"`` / ``"texts"``), else ``"texts"`` for
    the argument ``texts``, else ``"images"``."""
    role = key or name
    return "texts" if role == "texts" else "images"


def key_of(role: str, images_key: str | None, texts_key: str | None) -> str | None:
    """The array / column name chosen for ``role``."""
    return texts_key if role == "texts" else images_key


def open_part(path: str, name: str, *, role: str = "images", key: str | None = None):
    """One part of a file: :class:`NpyPart` for ``.npy`` and uncompressed ``.npz`` members (read by rows),
    :class:`ParquetPart` for a Parquet column, an :class:`ArrayPart` of a compressed ``.npz`` member (loaded).

    Args:
      path: the file.
      name: the argument name used in errors.
      role: ``"images"`` or ``"texts"``: which keyword (``images_key`` / ``texts_key``) errors name, and
        which Parquet column names are looked for when ``key`` is None.
      key: the array inside an ``.npz`` / the Parquet column; ``None``: the only array / the usual column.
    """
    ext = os.path.splitext(path)[1].lower()
    option = f"{role}_key"
    if ext == ".npy":
        if key is not None:
            raise ValueError(f"{option}: {key!r} names an array inside .npz shards or a Parquet column, but "
                             f"{os.path.basename(path)} is a .npy file (one array)")
        return NpyPart(path, name)
    if ext == ".npz":
        base = npz_member_offset(path, name, key, option)
        member = npz_member_name(path, name, key, option)
        label = os.path.basename(path) + (f"[{member}]" if key is not None else "")
        if base is not None:  # np.savez: the member's .npy bytes lie uncompressed in the file
            return NpyPart(path, name, base=base, label=label)
        # np.savez_compressed: no offsets to read rows from, so the member is loaded
        return ArrayPart(np.asarray(load_embeddings(path, key=member, name=name)), label)
    if ext == ".parquet":
        return ParquetPart(path, name, role=role, key=key)
    raise ValueError(f"{name}: {path}: expected .npy, .npz or .parquet shards, got {ext or 'no extension'}")


def file_parts(paths: Sequence[str], name: str, *, role: str = "images", key: str | None = None) -> list:
    """One part per file (:func:`open_part`), in order."""
    return [open_part(p, name, role=role, key=key) for p in paths]


def row_source(obj: Any, name: str, *, key: str | None = None, images_key: str | None = None,
               texts_key: str | None = None) -> RowSource:
    """Build a :class:`RowSource` from an array, a path, a directory, a glob or a list.

    Args:
      obj: a NumPy / JAX array ``[n, d]`` (or a memmap), a :class:`RowSource` (returned as is), or what
        :func:`clipcore.sources.list_shards` lists (clipcore / clip-retrieval / DataComp / Parquet folders too).
      name: argument name for errors.
      key: for a directory of several columns (clipcore manifest, clip-retrieval), which column ("images" or
        "texts"); default ``name``.
      images_key, texts_key: the array inside ``.npz`` shards / the Parquet column of that column (the one
        of ``key``'s role is used).
    """
    if isinstance(obj, RowSource):
        return obj
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):
        if len(obj.shape) != 2:
            raise ValueError(f"{name}: expected a 2-D array [n, d], got shape {tuple(obj.shape)}")
        if not is_floating(obj.dtype):
            raise ValueError(f"{name}: expected a floating-point array (float32 or float64), got dtype {obj.dtype}")
        return RowSource([ArrayPart(obj, "array")], name)
    if isinstance(obj, (list, tuple, str, os.PathLike)):
        role = role_of(name, key)
        files = list_shards(obj, name, key=key)
        return RowSource(file_parts(files, name, role=role, key=key_of(role, images_key, texts_key)), name)
    raise ValueError(f"{name}: expected an array, a path, a directory, a glob or a list of paths; got {type(obj).__name__}")
