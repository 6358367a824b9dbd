"""Which embedding-set layout a path holds: clipcore shards, clip-retrieval / LAION, DataComp, Parquet.

:func:`recognise` names the layout of a directory (or a file, a glob, a list) and lists its files, each
column ordered by shard number (:mod:`clipcore.sources.names`):

* ``"clipcore"``: a directory with ``manifest.json`` (:func:`clipcore.write_shards`, :func:`clipcore.embed`);
  its files in manifest order (a manifest may name another layout, e.g. ``"clip-retrieval"``);
* ``"clip-retrieval"``: ``img_emb/img_emb_{N}.npy``, ``text_emb/text_emb_{N}.npy`` and
  ``metadata/metadata_{N}.parquet`` (``clip-retrieval inference``; LAION-400M: the same names, ``N`` not
  zero-padded);
* ``"laion-5b"``: the same inside one subset folder (``laion2B-en/``) with the metadata in the sibling
  folder ``laion2B-en-metadata/``; a root holding one such subset is read as that subset;
* ``"datacomp"``: ``{shard}.npz`` (arrays ``b32_img``, ``b32_txt``, ``l14_img``, ``l14_txt``, ``dedup``) next
  to ``{shard}.parquet`` (its metadata);
* ``"parquet"``: ``*.parquet`` files (or ``data/*.parquet``, as Hugging Face datasets lay them out) with
  embedding columns (``list<float>`` or fixed-size lists); one split at a time;
* ``"files"``: any other ``.npy`` / ``.npz`` files.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

from .manifest import MANIFEST, glob_files, has_manifest, manifest_files, read_manifest
from .names import GLOB_CHARS, sort_by_number, stem

__all__ = ["Layout", "recognise", "LAYOUTS", "CLIP_RETRIEVAL_NAMES", "DATACOMP_ARRAYS"]

#: Every layout name :func:`recognise` gives.
LAYOUTS = ("clipcore", "clip-retrieval", "laion-5b", "datacomp", "parquet", "files")
#: File name patterns of a clip-retrieval partition, by column.
CLIP_RETRIEVAL_NAMES = {"images": ("img_emb", re.compile(r"img_emb_(\d+)\.npy$")),
                        "texts": ("text_emb", re.compile(r"text_emb_(\d+)\.npy$")),
                        "metadata": ("metadata", re.compile(r"metadata_(\d+)\.parquet$"))}
#: The arrays of a DataComp ``.npz`` shard.
DATACOMP_ARRAYS = ("b32_img", "b32_txt", "l14_img", "l14_txt", "dedup")


@dataclasses.dataclass
class Layout:
    """A recognised embedding set.

    Attributes:
      name: one of :data:`LAYOUTS`.
      root: the path it was recognised from.
      images: the files holding the images' rows, in shard-number order.
      texts: the texts' files (their own shards, paired by number), or ``None`` when the texts are a second
        array / column of the same files (``same_files``) or absent.
      metadata: per-row metadata files (Parquet: caption, image_path), maybe empty: ``{shard number: file}``
        when ``by_number``, else ``{position in images: file}``.
      same_files: images and texts are arrays / columns of the same files (DataComp, Parquet).
      by_number: shards are paired by the number in their names (clip-retrieval, LAION).
    """

    name: str
    root: str
    images: list[str]
    texts: list[str] | None = None
    metadata: dict = dataclasses.field(default_factory=dict)
    same_files: bool = False
    by_number: bool = False


def _numbered(directory: str, column: str) -> list[str]:
    sub, pattern = CLIP_RETRIEVAL_NAMES[column]
    folder = os.path.join(directory, sub)
    if not os.path.isdir(folder):
        return []
    return sort_by_number(os.path.join(folder, f) for f in os.listdir(folder) if pattern.fullmatch(f))


def _clip_retrieval(path: str) -> Layout:
    images, texts = _numbered(path, "images"), _numbered(path, "texts")
    meta_dir, name = os.path.join(path, "metadata"), "clip-retrieval"
    sibling = os.path.normpath(path) + "-metadata"
    if not os.path.isdir(meta_dir) and os.path.isdir(sibling):  # LAION-5B: laion2B-en/ beside laion2B-en-metadata/
        meta_dir, name = sibling, "laion-5b"
    metadata = {}
    if os.path.isdir(meta_dir):
        pattern = CLIP_RETRIEVAL_NAMES["metadata"][1]
        for f in os.listdir(meta_dir):
            m = pattern.fullmatch(f)
            if m:
                metadata[int(m.group(1))] = os.path.join(meta_dir, f)
    if not images and not texts:
        raise ValueError(f"images: {path} has img_emb/ or text_emb/ folders but no img_emb_N.npy / text_emb_N.npy "
                         "files in them")
    return Layout(name, path, images, texts, metadata, by_number=True)


def _subsets(path: str) -> list[str]:
    """Subfolders of ``path`` laid out as clip-retrieval (LAION-5B's laion2B-en/, laion2B-multi/, ...)."""
    subs = []
    for f in sorted(os.listdir(path)):
        full = os.path.join(path, f)
        if os.path.isdir(full) and os.path.isdir(os.path.join(full, "img_emb")):
            subs.append(full)
    return subs


def _parquet_files(path: str) -> list[str]:
    files = glob_files(os.path.join(path, "*.parquet"))
    if not files and os.path.isdir(os.path.join(path, "data")):
        files = glob_files(os.path.join(path, "data", "*.parquet"))
    return sort_by_number(files)


def _one_split(files: list[str], path: str) -> list[str]:
    """Hugging Face names shards ``{split}-NNNNN-of-MMMMM``: refuse several splits read as one set."""
    splits = sorted({re.sub(r"-\d+-of-\d+$", "", stem(f)) for f in files if re.search(r"-\d+-of-\d+$", stem(f))})
    if len(splits) > 1:
        raise ValueError(f"images: {path} holds the Parquet shards of several splits ({', '.join(splits)}); "
                         f"pass one, e.g. {os.path.join(os.path.dirname(files[0]), splits[0] + '-*.parquet')!r}")
    return files


def _directory(path: str) -> Layout:
    if has_manifest(path):
        man = read_manifest(path, "images")
        cols = {c for s in man["shards"] for c in s if c != "rows"}
        images = manifest_files(path, "images", "images") if "images" in cols else []
        texts = manifest_files(path, "images", "texts") if "texts" in cols else None
        metadata = ({k: f for k, f in enumerate(manifest_files(path, "images", "metadata"))}
                    if "metadata" in cols else {})
        return Layout("clipcore", path, images, texts, metadata)
    if os.path.isdir(os.path.join(path, "img_emb")) or os.path.isdir(os.path.join(path, "text_emb")):
        return _clip_retrieval(path)
    subs = _subsets(path)
    if len(subs) == 1:
        return _clip_retrieval(subs[0])
    if len(subs) > 1:
        names = ", ".join(os.path.basename(s) for s in subs)
        raise ValueError(f"images: {path} holds several clip-retrieval embedding sets ({names}); pass one of them")
    npz = sort_by_number(glob_files(os.path.join(path, "*.npz")))
    pq = {stem(f): f for f in glob_files(os.path.join(path, "*.parquet"))}
    if npz and any(stem(f) in pq for f in npz):
        return Layout("datacomp", path, npz, None, {k: pq[stem(f)] for k, f in enumerate(npz) if stem(f) in pq},
                      same_files=True)
    files = sort_by_number(glob_files(os.path.join(path, "*.npy")) + npz)
    if files:
        return Layout("files", path, files)
    parquet = _parquet_files(path)
    if parquet:
        return Layout("parquet", path, _one_split(parquet, path), same_files=True)
    raise ValueError(f"images: directory {path} has no .npy or .npz files and no {MANIFEST} (nor .parquet files "
                     "or an img_emb/ folder of clip-retrieval)")


def recognise(obj: Any, name: str = "images") -> Layout:
    """The layout of a directory, file, glob or list of files (see the module docstring).

    Args:
      obj: a path (directory, file or glob) or a list / tuple of paths.
      name: the argument name used in error messages.

    Returns:
      :class:`Layout` (files exist; each column ordered by shard number, a list kept in its order).

    Raises:
      FileNotFoundError: a named file or glob matches nothing.
      ValueError: a directory of no known layout, or several embedding sets in one.
    """
    if isinstance(obj, (list, tuple)):
        files = [os.fspath(p) for p in obj]
        root = os.path.dirname(files[0]) if files else ""
    elif isinstance(obj, (str, os.PathLike)):
        root = os.fspath(obj)
        if os.path.isdir(root):
            try:
                return _directory(root)
            except ValueError as exc:
                raise ValueError(str(exc).replace("images:", f"{name}:", 1)) from None
        if any(ch in root for ch in GLOB_CHARS):
            files = sort_by_number(glob_files(root))
            if not files:
                raise FileNotFoundError(f"{name}: no file matches {root}")
        else:
            files = [root]
    else:
        raise ValueError(f"{name}: expected a path, a directory, a glob or a list of paths; got {type(obj).__name__}")
    if files and all(f.lower().endswith(".parquet") for f in files):
        return Layout("parquet", root, files, same_files=True)
    return Layout("files", root, files)
