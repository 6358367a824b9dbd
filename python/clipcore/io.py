"""Reading embeddings from files (.npy, memory-mapped; .npz).

Errors say which argument, which file and what was expected.  ``.npy`` files
are opened memory-mapped, so nothing is read before the rows are used.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from typing import Any

import numpy as np

__all__ = ["load_embeddings", "file_digest"]


def load_embeddings(path: str | os.PathLike, *, key: str | None = None, name: str = "embeddings") -> np.ndarray:
    """Load a 2-D floating array from ``path``.

    Args:
      path: a ``.npy`` file (opened with ``mmap_mode="r"``) or a ``.npz``
        archive (its only array, or the one named ``key``).
      key: array name inside an ``.npz``.
      name: the argument name used in error messages.

    Returns:
      ``[n, d]`` float array (a read-only memmap for ``.npy``).

    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: unknown format, missing key, not 2-D, not floating point.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{name}: file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{name}: {path} is a directory; expected a .npy or .npz file")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npy":
            arr: Any = np.load(path, mmap_mode="r", allow_pickle=False)
        elif ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                if key is None:
                    if len(keys) != 1:
                        raise ValueError(
                            f"{name}: {path} holds {len(keys)} arrays {keys}; choose one with the key option"
                        )
                    key = keys[0]
                if key not in keys:
                    raise ValueError(f"{name}: {path} has no array {key!r} (it has {keys})")
                arr = z[key]
        else:
            raise ValueError(f"{name}: {path}: expected a .npy or .npz file, got {ext or 'no extension'}")
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{name}: cannot read {path} ({exc})") from exc
    if arr.ndim != 2:
        raise ValueError(f"{name}: {path} holds an array of shape {arr.shape}; expected [n, d]")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name}: {path} holds dtype {arr.dtype}; expected float32 or float64")
    return arr


def file_digest(path: str | os.PathLike, *, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file (provenance in JSON outputs)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
