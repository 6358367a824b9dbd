"""Writing paired embeddings as shards plus a manifest: clipcore's own layout or clip-retrieval's.

A folder that already holds anything is refused unless ``overwrite=True``, which removes exactly the files
the folder's manifest owns (nothing else), so a later read of the folder (or a glob over it, which warns
about files its manifest does not list) never mixes in shards of an earlier write.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np

from .._validate import check_flag, check_positive_int
from .manifest import FORMAT, MANIFEST, owned_files
from .paired import paired_source

__all__ = ["write_shards", "WRITE_LAYOUTS"]

#: The layouts :func:`write_shards` writes.
WRITE_LAYOUTS = ("clipcore", "clip-retrieval")


def _clear(directory: str, overwrite: bool) -> None:
    """Refuse a non-empty folder, or (``overwrite``) remove the files its manifest owns and the manifest."""
    if not os.path.isdir(directory):
        os.makedirs(directory, exist_ok=True)
        return
    entries = os.listdir(directory)
    if not entries:
        return
    if not overwrite:
        raise ValueError(f"directory: {directory} is not empty ({len(entries)} entries, e.g. {sorted(entries)[0]}); "
                         "pass overwrite=True to replace the shards its manifest lists, or write to a new folder")
    for path in owned_files(directory):
        if os.path.isfile(path):
            os.remove(path)
    if os.path.isfile(os.path.join(directory, MANIFEST)):
        os.remove(os.path.join(directory, MANIFEST))
    for sub in ("img_emb", "text_emb", "metadata"):  # clip-retrieval folders left empty
        full = os.path.join(directory, sub)
        if os.path.isdir(full) and not os.listdir(full):
            os.rmdir(full)


def _check_metadata(metadata: Mapping[str, Any] | None, n: int) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValueError(f"metadata: expected a mapping of column name -> [n] values, got {type(metadata).__name__}")
    out = {}
    for col, values in metadata.items():
        if len(values) != n:
            raise ValueError(f"metadata: column {col!r} has {len(values)} values for {n} rows")
        out[str(col)] = values
    return out


def _names(layout: str, k: int, count: int, with_metadata: bool) -> dict[str, str]:
    if layout == "clipcore":
        return {"images": f"images-{k:05d}.npy", "texts": f"texts-{k:05d}.npy"}
    num = str(k).zfill(len(str(count)))  # clip-retrieval pads to the width of the partition count
    names = {"images": f"img_emb/img_emb_{num}.npy", "texts": f"text_emb/text_emb_{num}.npy"}
    if with_metadata:
        names["metadata"] = f"metadata/metadata_{num}.parquet"
    return names


def _write_metadata(path: str, metadata: dict[str, Any], start: int, stop: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({col: pa.array(list(values[start:stop])) for col, values in metadata.items()})
    pq.write_table(table, path)


def write_shards(
    directory: str | os.PathLike,
    images: Any,
    texts: Any,
    *,
    shard_rows: int = 1 << 20,
    dtype: Any = np.float32,
    extra: dict | None = None,
    layout: str = "clipcore",
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> str:
    """Write paired embeddings as ``.npy`` shards plus a ``manifest.json``.

    Args:
      directory: created if missing; a folder that holds anything is refused unless ``overwrite``.
      images, texts: ``[n, d]`` arrays (or any row source) with equal n.
      shard_rows: rows per shard file.
      dtype: on-disk dtype (e.g. ``np.float16``, as clip-retrieval writes).
      extra: more JSON fields for the manifest (model, normalisation, ...).
      layout: ``"clipcore"`` (``images-00000.npy``, ``texts-00000.npy``) or ``"clip-retrieval"``
        (``img_emb/img_emb_{N}.npy``, ``text_emb/text_emb_{N}.npy``, ``metadata/metadata_{N}.parquet``, N
        zero-padded to the width of the shard count: what clip-retrieval, autofaiss and LAION tools read).
      metadata: ``{column: [n] values}`` (e.g. ``caption``, ``image_path``) written per shard as Parquet
        (clip-retrieval layout only).
      overwrite: replace an earlier write: the files its manifest lists are removed first (only those).

    Returns:
      The manifest path.  ``clipcore.sce(directory)`` then streams it.

    Raises:
      ValueError: a non-empty folder without ``overwrite``, unpaired input, a bad option (named).
    """
    if layout not in WRITE_LAYOUTS:
        raise ValueError(f"layout: expected one of {WRITE_LAYOUTS}, got {layout!r}")
    shard_rows = check_positive_int(shard_rows, "shard_rows")
    overwrite = check_flag(overwrite, "overwrite")
    src = paired_source(images, texts)
    if src.texts is None:
        raise ValueError("texts: write_shards needs paired images and texts")
    meta = _check_metadata(metadata, src.n)
    if meta and layout != "clip-retrieval":
        raise ValueError("metadata: written with layout='clip-retrieval' only (a clipcore manifest has no metadata)")
    directory = os.fspath(directory)
    _clear(directory, overwrite)
    count = -(-src.n // shard_rows)
    shards = []
    for k, start in enumerate(range(0, src.n, shard_rows)):
        stop = min(src.n, start + shard_rows)
        names = _names(layout, k, count, bool(meta))
        for sub in {os.path.dirname(v) for v in names.values()} - {""}:
            os.makedirs(os.path.join(directory, sub), exist_ok=True)
        np.save(os.path.join(directory, names["images"]), src.images.read(start, stop).astype(dtype))
        np.save(os.path.join(directory, names["texts"]), src.texts.read(start, stop).astype(dtype))
        if meta:
            _write_metadata(os.path.join(directory, names["metadata"]), meta, start, stop)
        shards.append({**names, "rows": stop - start})
    manifest = {"format": FORMAT, "layout": layout, "n": src.n, "d_images": src.d_images, "d_texts": src.d_texts,
                "dtype": np.dtype(dtype).name, "shards": shards, **(extra or {})}
    path = os.path.join(directory, MANIFEST)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1)
    return path
