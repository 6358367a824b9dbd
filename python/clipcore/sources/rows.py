"""Row sources: rows ``[n, d]`` spread over parts (arrays, ``.npy`` / ``.npz`` shards), read by range.

Every read goes into a fresh host buffer with ``pread`` (not a memory map, so
the resident set stays bounded by the block size however large the files
are).  ``.npz`` shards stored uncompressed (``np.savez``) are read by rows at
their member's offset like ``.npy``; a compressed member is loaded whole.
"""

from __future__ import annotations

import os
import struct
import zipfile
from typing import Any, Sequence

import numpy as np

from .._validate import is_floating
from ..io import load_embeddings
from .shards import list_shards

__all__ = ["RowSource", "ArrayPart", "NpyPart", "row_source", "file_parts", "npz_member_offset", "aligned_empty"]


def aligned_empty(shape: tuple[int, int], dtype: np.dtype, align: int = 64) -> np.ndarray:
    """An uninitialised ``shape`` array whose data is ``align``-byte aligned: XLA's CPU
    client then uses it in place (``device_put`` without a copy)."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(nbytes + align, np.uint8)
    offset = (-raw.ctypes.data) % align
    return raw[offset:offset + nbytes].view(dtype).reshape(shape)


class ArrayPart:
    """Rows of an in-memory (or memory-mapped) array ``[n, d]``, named ``label`` in errors."""

    def __init__(self, array: Any, label: str):
        self.array = array
        self.label = label
        self.n, self.d = int(array.shape[0]), int(array.shape[1])
        self.dtype = np.dtype(array.dtype)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as ``[stop - start, d]``."""
        return np.asarray(self.array[start:stop])

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows at the given local indices ``[k]`` as ``[k, d]``."""
        return np.asarray(self.array[rows])


class NpyPart:
    """Rows of a C-ordered 2-D ``.npy`` file, read with ``os.pread`` (nothing kept open or mapped).

    ``base`` is where the ``.npy`` bytes start in the file: 0, or the data of
    an uncompressed ``.npz`` member (``np.savez`` stores its arrays that way).
    """

    def __init__(self, path: str, name: str, base: int = 0):
        self.path = path
        self.label = os.path.basename(path)
        try:
            with open(path, "rb") as f:
                f.seek(base)
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(f)
                self.offset = f.tell()
        except FileNotFoundError:
            raise FileNotFoundError(f"{name}: file not found: {path}") from None
        except (ValueError, OSError) as exc:
            raise ValueError(f"{name}: {path} is not a readable .npy file ({exc})") from exc
        if len(shape) != 2:
            raise ValueError(f"{name}: {path} holds an array of shape {shape}; expected [n, d]")
        if not is_floating(dtype):
            raise ValueError(f"{name}: {path} holds dtype {dtype}; expected float32 or float64")
        if fortran and shape[0] > 1 and shape[1] > 1:
            raise ValueError(f"{name}: {path} is Fortran-ordered; rows cannot be streamed (re-save it C-ordered)")
        self.n, self.d = int(shape[0]), int(shape[1])
        self.dtype = np.dtype(dtype)
        size = os.path.getsize(path)
        need = self.offset + self.n * self.d * self.dtype.itemsize
        if size < need:
            raise ValueError(f"{name}: {path} is truncated ({size} bytes, the header promises {need})")

    def _pread(self, fd: int, out: np.ndarray, start: int) -> None:
        view = memoryview(out).cast("B")
        pos = self.offset + start * self.d * self.dtype.itemsize
        got = 0
        while got < view.nbytes:
            k = os.preadv(fd, [view[got:]], pos + got)
            if k <= 0:
                raise ValueError(f"{self.path}: unexpected end of file at byte {pos + got}")
            got += k

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as a fresh 64-byte-aligned ``[stop - start, d]`` array."""
        out = aligned_empty((stop - start, self.d), self.dtype)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            self._pread(fd, out, start)
        finally:
            os.close(fd)
        return out

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows at the given local indices ``[k]`` (any order) as ``[k, d]``, one pread per row."""
        out = np.empty((len(rows), self.d), self.dtype)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for i, r in enumerate(rows):
                self._pread(fd, out[i], int(r))
        finally:
            os.close(fd)
        return out


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
        d0 = self.parts[0].d
        for p in self.parts:
            if p.d != d0:
                raise ValueError(
                    f"{name}: shard {p.label} has dimension {p.d} but {self.parts[0].label} has {d0}"
                )
        self.d = d0
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
        """Rows [start, stop) as one contiguous host array ``[stop - start, d]`` (copied)."""
        out = []
        k = int(np.searchsorted(self.starts, start, side="right") - 1)
        pos = start
        while pos < stop:
            part, base = self.parts[k], int(self.starts[k])
            hi = min(stop, base + part.n)
            out.append(part.read(pos - base, hi - base))
            pos, k = hi, k + 1
        block = out[0] if len(out) == 1 else np.concatenate(out)
        return block.astype(self.dtype, copy=False)

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


def file_parts(paths: Sequence[str], name: str) -> list:
    """One part per ``.npy`` / ``.npz`` file: :class:`NpyPart` (read by rows) or, for a compressed
    ``.npz`` member, an :class:`ArrayPart` of the loaded array."""
    parts = []
    for p in paths:
        ext = os.path.splitext(p)[1].lower()
        if ext == ".npy":
            parts.append(NpyPart(p, name))
        elif ext == ".npz":
            base = npz_member_offset(p, name)
            if base is not None:  # np.savez: the member's .npy bytes lie uncompressed in the file
                parts.append(NpyPart(p, name, base=base))
            else:  # np.savez_compressed: no offsets to read rows from, so the member is loaded
                parts.append(ArrayPart(np.asarray(load_embeddings(p, name=name)), os.path.basename(p)))
        else:
            raise ValueError(f"{name}: {p}: expected .npy or .npz shards, got {ext or 'no extension'}")
    return parts


def npz_member_offset(path: str, name: str) -> int | None:
    """Byte offset of the ``.npy`` data of an ``.npz`` archive's only array when
    it is stored uncompressed (``np.savez``), else ``None``.

    Raises:
      ValueError: not a readable archive, or an archive of several arrays (not one shard).
    """
    try:
        with zipfile.ZipFile(path) as zf:
            members = [i for i in zf.infolist() if i.filename.endswith(".npy")]
            if len(members) != 1:
                names = [i.filename[:-4] for i in members]
                raise ValueError(f"{name}: {path} holds {len(members)} arrays {names}; a shard holds one")
            info = members[0]
            if info.compress_type != zipfile.ZIP_STORED:
                return None
        with open(path, "rb") as f:  # the local file header: 30 bytes, then the name and the extra field
            f.seek(info.header_offset)
            head = f.read(30)
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: file not found: {path}") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{name}: cannot read {path} ({exc})") from exc
    if len(head) != 30 or head[:4] != b"PK\x03\x04":
        raise ValueError(f"{name}: cannot read {path} (bad local header for {info.filename})")
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    return info.header_offset + 30 + name_len + extra_len


def row_source(obj: Any, name: str, *, key: str | None = None) -> RowSource:
    """Build a :class:`RowSource` from an array, a path, a directory, a glob or a list.

    Args:
      obj: a NumPy / JAX array ``[n, d]`` (or a memmap), a :class:`RowSource` (returned as is), or what
        :func:`clipcore.sources.list_shards` lists.
      name: argument name for errors.
      key: for a clipcore shard directory, which column ("images" or "texts"); default ``name``.
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
        return RowSource(file_parts(list_shards(obj, name, key=key), name), name)
    raise ValueError(f"{name}: expected an array, a path, a directory, a glob or a list of paths; got {type(obj).__name__}")
