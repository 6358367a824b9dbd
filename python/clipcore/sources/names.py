"""Shard names: files ordered by their number (never as text), and the number a shard's name carries.

``img_emb_10.npy`` comes after ``img_emb_2.npy``; ``train-00003-of-00008.parquet`` is shard 3 (not 8);
``00000012.npz`` is shard 12.
"""

from __future__ import annotations

import os
import re

__all__ = ["GLOB_CHARS", "natural_key", "sort_by_number", "shard_number", "stem"]

#: Characters that make a path a glob pattern.
GLOB_CHARS = "*?["

_DIGITS = re.compile(r"(\d+)")
_OF = re.compile(r"-(\d+)-of-\d+$")


def natural_key(path: str) -> tuple:
    """Sort key of a path that compares its runs of digits as numbers (``a_2`` before ``a_10``)."""
    parts = _DIGITS.split(os.fspath(path))
    return tuple((0, int(p), len(p)) if k % 2 else (1, p, 0) for k, p in enumerate(parts))


def sort_by_number(paths) -> list[str]:
    """``paths`` ordered by :func:`natural_key`."""
    return sorted((os.fspath(p) for p in paths), key=natural_key)


def stem(path: str) -> str:
    """The file name without its extensions (``a.snappy.parquet`` → ``a``)."""
    return os.path.basename(os.fspath(path)).split(".", 1)[0]


def shard_number(path: str) -> int | None:
    """The shard number in a file name: the first number of ``…-N-of-M``, else the last run of digits of
    the name's stem; ``None`` when it has none."""
    s = stem(path)
    m = _OF.search(s)
    if m:
        return int(m.group(1))
    runs = _DIGITS.findall(s)
    return int(runs[-1]) if runs else None
