"""Parts of a row source: an in-memory array, or a ``.npy`` file (or an uncompressed ``.npz`` member) read
by rows with ``pread``.

Every read goes into a fresh host buffer (not a memory map, so the resident set stays bounded by the block
size however large the files are).  ``.npz`` shards stored uncompressed (``np.savez``) are read by rows at
their member's offset like ``.npy``; a compressed member is loaded whole.
"""

from __future__ import annotations

import os
import struct
import zipfile
from typing import Any

import numpy as np

from .._validate import is_floating

__all__ = ["ArrayPart", "NpyPart", "aligned_empty", "npz_member_offset", "npz_members", "npz_member_name"]


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

    def __init__(self, path: str, name: str, base: int = 0, label: str | None = None):
        self.path = path
        self.label = label or os.path.basename(path)
        where = path if self.label == os.path.basename(path) else os.path.join(os.path.dirname(path), self.label)
        try:
            with open(path, "rb") as f:
                f.seek(base)
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(f)
                self.offset = f.tell()
        except FileNotFoundError:
            raise FileNotFoundError(f"{name}: file not found: {where}") from None
        except (ValueError, OSError) as exc:
            raise ValueError(f"{name}: {where} is not a readable .npy file ({exc})") from exc
        if len(shape) != 2:
            raise ValueError(f"{name}: {where} holds an array of shape {shape}; expected [n, d]")
        if not is_floating(dtype):
            raise ValueError(f"{name}: {where} holds dtype {dtype}; expected float32 or float64")
        if fortran and shape[0] > 1 and shape[1] > 1:
            raise ValueError(f"{name}: {where} is Fortran-ordered; rows cannot be streamed (re-save it C-ordered)")
        self.n, self.d = int(shape[0]), int(shape[1])
        self.dtype = np.dtype(dtype)
        size = os.path.getsize(path)
        need = self.offset + self.n * self.d * self.dtype.itemsize
        if size < need:
            raise ValueError(f"{name}: {where} is truncated ({size} bytes, the header promises {need})")

    def _pread(self, fd: int, out: np.ndarray, start: int) -> None:
        view = memoryview(out).cast("B")
        pos = self.offset + start * self.d * self.dtype.itemsize
        got = 0
        while got < view.nbytes:
            k = os.preadv(fd, [view[got:]], pos + got)
            if k <= 0:
                raise ValueError(f"{self.path}: unexpected end of file at byte {pos + got}")
            got += k

    #: :meth:`read_into` fills a buffer of this part's own dtype only.
    casts = False

    def read_into(self, out: np.ndarray, start: int) -> None:
        """Rows ``[start, start + len(out))`` into ``out`` (C-contiguous, this part's dtype)."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            self._pread(fd, out, start)
        finally:
            os.close(fd)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as a fresh 64-byte-aligned ``[stop - start, d]`` array."""
        out = aligned_empty((stop - start, self.d), self.dtype)
        self.read_into(out, start)
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


def npz_members(path: str, name: str) -> list:
    """The ``.npy`` members of an ``.npz`` archive (``zipfile.ZipInfo``), in archive order."""
    try:
        with zipfile.ZipFile(path) as zf:
            return [i for i in zf.infolist() if i.filename.endswith(".npy")]
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: file not found: {path}") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{name}: cannot read {path} ({exc})") from exc


def _member(path: str, name: str, key: str | None, option: str):
    members = npz_members(path, name)
    names = [i.filename[:-4] for i in members]
    if key is not None:
        if key not in names:
            raise ValueError(f"{name}: {path} has no array {key!r} (it has {names}); check {option}=")
        return members[names.index(key)]
    if len(members) != 1:
        raise ValueError(f"{name}: {path} holds {len(members)} arrays {names}; a shard holds one "
                         f"(choose one with {option}=)")
    return members[0]


def npz_member_offset(path: str, name: str, key: str | None = None, option: str = "images_key") -> int | None:
    """Byte offset of the ``.npy`` data of an ``.npz`` archive's array (its only one, or the one named
    ``key``) when it is stored uncompressed (``np.savez``), else ``None``.

    Raises:
      ValueError: not a readable archive, no array ``key``, or (``key`` None) an archive of several arrays;
        the message names ``option``, the keyword that chooses the array.
    """
    info = _member(path, name, key, option)
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    try:
        with open(path, "rb") as f:  # the local file header: 30 bytes, then the name and the extra field
            f.seek(info.header_offset)
            head = f.read(30)
    except OSError as exc:
        raise ValueError(f"{name}: cannot read {path} ({exc})") from exc
    if len(head) != 30 or head[:4] != b"PK\x03\x04":
        raise ValueError(f"{name}: cannot read {path} (bad local header for {info.filename})")
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    return info.header_offset + 30 + name_len + extra_len


def npz_member_name(path: str, name: str, key: str | None = None, option: str = "images_key") -> str:
    """The name of the array an ``.npz`` shard gives (its only one, or ``key``), checked."""
    return _member(path, name, key, option).filename[:-4]
