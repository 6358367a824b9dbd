"""Writing paired embeddings as a clipcore shard directory (``.npy`` shards plus a manifest)."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .paired import paired_source
from .shards import FORMAT, MANIFEST

__all__ = ["write_shards"]


def write_shards(
    directory: str | os.PathLike,
    images: Any,
    texts: Any,
    *,
    shard_rows: int = 1 << 20,
    dtype: Any = np.float32,
    extra: dict | None = None,
) -> str:
    """Write paired embeddings as ``.npy`` shards plus a ``manifest.json``.

    Args:
      directory: created if missing.
      images, texts: ``[n, d]`` arrays (or any row source) with equal n.
      shard_rows: rows per shard file.
      dtype: on-disk dtype.
      extra: more JSON fields for the manifest (model, normalisation, ...).

    Returns:
      The manifest path.  ``clipcore.sce(directory)`` then streams it.
    """
    src = paired_source(images, texts)
    if src.texts is None:
        raise ValueError("texts: write_shards needs paired images and texts")
    os.makedirs(directory, exist_ok=True)
    shards = []
    for k, start in enumerate(range(0, src.n, shard_rows)):
        stop = min(src.n, start + shard_rows)
        names = {"images": f"images-{k:05d}.npy", "texts": f"texts-{k:05d}.npy"}
        np.save(os.path.join(directory, names["images"]), src.images.read(start, stop).astype(dtype))
        np.save(os.path.join(directory, names["texts"]), src.texts.read(start, stop).astype(dtype))
        shards.append({**names, "rows": stop - start})
    manifest = {"format": FORMAT, "n": src.n, "d_images": src.d_images, "d_texts": src.d_texts,
                "dtype": np.dtype(dtype).name, "shards": shards, **(extra or {})}
    path = os.path.join(directory, MANIFEST)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1)
    return path
