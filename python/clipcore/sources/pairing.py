"""Shards paired by their number: images, texts and metadata of one shard opened together, every missing,
mismatched or empty shard named in ONE error, or (opt-in) only the complete pairs kept and reported.

:func:`shard_table` applies to the inputs whose shards belong together as files: a recognised folder
(:mod:`clipcore.sources.layouts`: clipcore manifest, clip-retrieval / LAION, DataComp, Parquet), ``.npz`` /
Parquet files holding both columns (``images_key`` and ``texts_key``), or two clip-retrieval folders /
lists (``img_emb_N.npy`` with ``text_emb_N.npy``).  Other inputs (arrays, two plain lists) are aligned row by
row as before (:func:`clipcore.sources.paired_source`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

from .layouts import CLIP_RETRIEVAL_NAMES, Layout, recognise
from .names import shard_number
from .rows import open_part

__all__ = ["Shard", "ShardTable", "PairingReport", "shard_table"]


@dataclasses.dataclass
class Shard:
    """One shard: its number, its parts (``texts`` None for one set), its metadata file (or None) and the
    files its parts read."""

    number: int
    images: Any
    texts: Any = None
    metadata: str | None = None
    image_file: str | None = None
    text_file: str | None = None


@dataclasses.dataclass(frozen=True)
class PairingReport:
    """How the shards of a data set were paired.

    Attributes:
      layout: the recognised layout (:data:`clipcore.sources.layouts.LAYOUTS`).
      root: the path it was read from.
      shards: shards read; rows: their rows.
      complete: every shard had its images and texts with equal, non-zero rows (nothing skipped).
      missing, mismatched, empty: one line per problem, e.g. ``"text_emb_1913.npy missing"``,
        ``"img_emb_0007.npy has 1000 rows, text_emb_0007.npy has 999"``, ``"img_emb_0003.npy is empty"``.
      skipped: numbers of the shards left out (``skip_incomplete=True``); skipped_rows: the image rows they held.
      images_key, texts_key: the arrays / columns read.
    """

    layout: str
    root: str
    shards: int
    rows: int
    complete: bool
    missing: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()
    empty: tuple[str, ...] = ()
    skipped: tuple[int, ...] = ()
    skipped_rows: int = 0
    images_key: str | None = None
    texts_key: str | None = None

    @property
    def problems(self) -> list[str]:
        """Every missing, mismatched or empty shard, one line each."""
        return [*self.missing, *self.mismatched, *self.empty]

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


@dataclasses.dataclass
class ShardTable:
    """The shards of a data set, paired (:func:`shard_table`), and the report of the pairing."""

    layout: str
    root: str
    shards: list[Shard]
    pairing: PairingReport


def _missing_name(present: str, role: str) -> str:
    """The file a clip-retrieval shard lacks: ``img_emb_0007.npy`` → ``text_emb_0007.npy``."""
    src, dst = ("img_emb", "text_emb") if role == "texts" else ("text_emb", "img_emb")
    return re.sub(rf"^{src}_", f"{dst}_", os.path.basename(present))


def _by_number(files: list[str], name: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for f in files:
        k = shard_number(f)
        if k is None:
            raise ValueError(f"{name}: {os.path.basename(f)} has no shard number in its name")
        if k in out:
            raise ValueError(f"{name}: {os.path.basename(out[k])} and {os.path.basename(f)} both claim shard {k}")
        out[k] = f
    return out


def _datacomp_texts_key(images_key: str | None, texts_key: str | None) -> str | None:
    if texts_key is None and images_key is not None and images_key.endswith("_img"):
        return images_key[:-4] + "_txt"  # l14_img -> l14_txt
    return texts_key


def _numbered_rows(layout: Layout, single: bool, name: str) -> list[tuple[int, str | None, str | None]]:
    """``(number, images file, texts file)`` by shard number (a file missing on one side: None)."""
    img = _by_number(layout.images, name)
    if single:
        return [(k, img[k], None) for k in sorted(img)]
    txt = _by_number(layout.texts or [], "texts")
    return [(k, img.get(k), txt.get(k)) for k in sorted(set(img) | set(txt))]


def _rows(layout: Layout, single: bool, name: str) -> list[tuple[int, str | None, str | None]]:
    if layout.by_number:
        return _numbered_rows(layout, single, name)
    if layout.same_files:
        return [(k, f, None if single else f) for k, f in enumerate(layout.images)]
    texts = layout.texts if layout.texts is not None else [None] * len(layout.images)
    if not single and len(texts) != len(layout.images):
        raise ValueError(f"texts: the manifest in {layout.root} lists {len(texts)} texts shards for "
                         f"{len(layout.images)} images shards")
    return [(k, f, None if single else t) for k, (f, t) in enumerate(zip(layout.images, texts))]


def _problem(shard: Shard, img: str | None, txt: str | None, single: bool) -> tuple[str, str] | None:
    """``(kind, line)`` of a shard that cannot be scored as it is, or None."""
    if img is None:
        return "missing", f"{_missing_name(txt, 'images')} missing"
    if not single and txt is None:
        return "missing", f"{_missing_name(img, 'texts')} missing"
    if single or shard.texts is None:
        return ("empty", f"{shard.images.label} is empty (0 rows)") if shard.images.n == 0 else None
    a, b = shard.images, shard.texts
    if a.n != b.n:
        return "mismatched", f"{a.label} has {a.n} rows, {b.label} has {b.n}"
    if a.n == 0:
        return "empty", (f"{a.label} is empty (0 rows)" if a.label == b.label
                         else f"{a.label} and {b.label} are empty (0 rows)")
    return None


def _open(layout: Layout, k: int, img: str | None, txt: str | None, keys: tuple, single: bool, name: str) -> Shard:
    meta = layout.metadata.get(k)
    if meta is None and layout.name == "parquet":
        meta = img  # the caption column lives beside the embeddings
    return Shard(k, None if img is None else open_part(img, name, role="images", key=keys[0]),
                 None if single or txt is None else open_part(txt, "texts", role="texts", key=keys[1]), meta,
                 img, None if single else txt)


def _layout_of(images: Any, texts: Any, single: bool, texts_key: str | None, name: str) -> Layout | None:
    """The layout whose shards pair as files, or None (row-aligned inputs)."""
    if not isinstance(images, (str, os.PathLike, list, tuple)) or (isinstance(images, (list, tuple)) and not images):
        return None
    if texts is not None:
        if single or not isinstance(texts, (str, os.PathLike, list, tuple)):
            return None
        a, b = recognise(images, name), recognise(texts, "texts")
        named = all(CLIP_RETRIEVAL_NAMES[c][1].search(os.path.basename(f)) for c, files in
                    (("images", a.images), ("texts", b.images)) for f in files)
        if a.name == b.name == "files" and named:
            return Layout("clip-retrieval", a.root, a.images, b.images, by_number=True)
        return None
    layout = recognise(images, name)
    if layout.name != "files":
        return layout
    if not single and texts_key is not None:  # .npz files holding both arrays
        return dataclasses.replace(layout, same_files=True)
    return None


def shard_table(images: Any, texts: Any = None, *, single: bool = False, name: str = "images",
                images_key: str | None = None, texts_key: str | None = None,
                skip_incomplete: bool = False) -> ShardTable | None:
    """The shards of a data set paired as files (see the module docstring), or None for inputs aligned
    row by row.

    Args:
      images, texts: the data set arguments (``texts`` None: from the same folder / files).
      single: one set (the images column only).
      name: the images argument's name in errors.
      images_key, texts_key: array names inside ``.npz`` shards / Parquet columns (DataComp: ``texts_key``
        defaults to ``images_key`` with ``_img`` → ``_txt``).
      skip_incomplete: keep only the complete pairs (reported) instead of refusing the set.

    Raises:
      ValueError: ONE error naming every missing, mismatched or empty shard (unless ``skip_incomplete``).
    """
    layout = _layout_of(images, texts, single, texts_key, name)
    if layout is None:
        return None
    if layout.name == "datacomp":
        texts_key = _datacomp_texts_key(images_key, texts_key)
    if not single and not layout.by_number and not layout.same_files and layout.texts is None:
        return None  # a manifest of images only: the caller says texts are missing
    kept, skipped, problems, skipped_rows = [], [], {"missing": [], "mismatched": [], "empty": []}, 0
    for k, img, txt in _rows(layout, single, name):
        shard = _open(layout, k, img, txt, (images_key, texts_key), single, name)
        issue = _problem(shard, img, txt, single)
        if issue is None:
            kept.append(shard)
            continue
        problems[issue[0]].append(issue[1])
        skipped.append(k)
        skipped_rows += 0 if shard.images is None else shard.images.n
    lines = problems["missing"] + problems["mismatched"] + problems["empty"]
    if lines and not skip_incomplete:
        shown = "; ".join(lines[:20]) + (f"; ... ({len(lines)} in all)" if len(lines) > 20 else "")
        raise ValueError(f"{name}: {len(lines)} shard(s) of {layout.root} cannot be {'read' if single else 'paired'} "
                         f"({layout.name} layout, shards paired by number): {shown}. Pass skip_incomplete=True "
                         "to score only the complete shards (they are reported in the result's pairing)")
    if not kept:
        raise ValueError(f"{name}: no complete shard in {layout.root} ({len(lines)} skipped)")
    rows = sum(s.images.n for s in kept)
    report = PairingReport(layout.name, layout.root, len(kept), rows, not lines, tuple(problems["missing"]),
                           tuple(problems["mismatched"]), tuple(problems["empty"]), tuple(skipped), skipped_rows,
                           images_key, None if single else texts_key)
    return ShardTable(layout.name, layout.root, kept, report)
