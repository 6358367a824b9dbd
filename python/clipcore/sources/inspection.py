"""What a data set path holds, without scoring it: :func:`inspect` (the ``clipcore inspect`` command).

The layout recognised, its shards and rows per shard, dimension and stored dtype, mean / min / max row norm
(of a seeded sample, or of every row with ``check=True``), the pairing of images and texts (missing,
mismatched, empty shards), files a manifest does not list, the metadata columns; with ``check=True`` a
full scan naming every NaN / Inf / zero row by shard and row.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, NamedTuple

import numpy as np

from .. import _progress
from .layouts import recognise
from .manifest import has_manifest, owned_files
from .pairing import PairingReport, Shard, shard_table
from .rows import RowSource, row_source

__all__ = ["inspect", "InspectReport", "ColumnReport", "BadRow", "SAMPLE_ROWS", "BAD_ROWS_LISTED"]

#: Rows sampled (seeded) for the norms when not checking every row.
SAMPLE_ROWS = 10_000
#: At most this many bad rows are listed (all are counted).
BAD_ROWS_LISTED = 100


class BadRow(NamedTuple):
    """A NaN / Inf / zero row: its column, shard, row in the shard, global row and kind (``"nan"``, ``"inf"``,
    ``"zero"``)."""

    column: str
    shard: str
    row: int
    global_row: int
    kind: str

    def __str__(self) -> str:
        return f"{self.column}: {self.shard}, row {self.row} (global row {self.global_row}): {self.kind}"


@dataclasses.dataclass
class ColumnReport:
    """One column (images or texts): its shards, rows, dimension, dtype and row norms.

    Attributes:
      shards: ``[(label, rows)]`` in reading order; rows: their total; d; dtype: the stored dtype(s).
      norm_mean, norm_min, norm_max: row norms (float64) over ``norm_rows`` rows (all with ``check``).
      unit: every norm measured is within 1e-2 of 1 (unit-normalised embeddings).
      bad_rows: with ``check``: NaN / Inf / zero rows (at most :data:`BAD_ROWS_LISTED` listed);
      bad_counts: ``{"nan": k, "inf": k, "zero": k}`` (with ``check``).
    """

    shards: list
    rows: int
    d: int
    dtype: str
    norm_mean: float
    norm_min: float
    norm_max: float
    norm_rows: int
    unit: bool
    bad_rows: list = dataclasses.field(default_factory=list)
    bad_counts: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["shards"] = [{"file": a, "rows": int(b)} for a, b in self.shards]
        out["bad_rows"] = [r._asdict() for r in self.bad_rows]
        return out


@dataclasses.dataclass
class InspectReport:
    """What :func:`inspect` found (``to_dict()`` for JSON, ``str()`` for people).

    Attributes:
      path, layout: the path and the recognised layout.
      images, texts: :class:`ColumnReport` (texts None when the set has none).
      pairing: the :class:`~clipcore.sources.PairingReport` (None without texts).
      pairing_error: why no texts were read (none in the set, or none of its shards pairs), or None.
      unlisted: files in a manifest folder that its manifest does not list (never read).
      metadata_columns: the columns of the first metadata file ([] without metadata).
      checked: every row was scanned (``check=True``).
    """

    path: str
    layout: str
    images: ColumnReport
    texts: ColumnReport | None
    pairing: PairingReport | None
    pairing_error: str | None
    unlisted: list
    metadata_columns: list
    checked: bool

    @property
    def ok(self) -> bool:
        """Nothing to fix: complete pairs (when texts were read) and, when checked, no bad row."""
        bad = any(c is not None and c.bad_rows for c in (self.images, self.texts))
        return not bad and (self.pairing is None or self.pairing.complete)

    def to_dict(self) -> dict:
        return {"path": self.path, "layout": self.layout, "ok": self.ok, "checked": self.checked,
                "images": self.images.to_dict(), "texts": None if self.texts is None else self.texts.to_dict(),
                "pairing": None if self.pairing is None else self.pairing.to_dict(),
                "pairing_error": self.pairing_error, "unlisted": list(self.unlisted),
                "metadata_columns": list(self.metadata_columns)}

    def __str__(self) -> str:
        return format_report(self)


def _norm_stats(sq: np.ndarray) -> tuple[float, float, float]:
    norms = np.sqrt(sq[np.isfinite(sq)])
    if norms.size == 0:
        return float("nan"), float("nan"), float("nan")
    return float(norms.mean()), float(norms.min()), float(norms.max())


def _scan(src: RowSource, column: str, block_rows: int, bar) -> tuple[np.ndarray, list, dict]:
    """Every row's squared norm (float64) and the NaN / Inf / zero rows, block by block."""
    sq_all, bad, counts = [], [], {"nan": 0, "inf": 0, "zero": 0}
    for k, part in enumerate(src.parts):
        for a in range(0, part.n, block_rows):
            x = np.asarray(part.read(a, min(part.n, a + block_rows)), np.float64)
            sq = np.einsum("ij,ij->i", x, x)
            for kind, rows in (("nan", np.isnan(x).any(axis=1)), ("inf", np.isinf(x).any(axis=1)), ("zero", sq == 0)):
                idx = np.flatnonzero(rows)
                counts[kind] += idx.size
                bad += [BadRow(column, part.label, int(a + i), int(src.starts[k]) + int(a + i), kind)
                        for i in idx[:max(0, BAD_ROWS_LISTED - len(bad))]]
            sq_all.append(sq)
            bar.update(x.shape[0])
    return np.concatenate(sq_all), bad, counts


def _column(src: RowSource, column: str, check: bool, sample_rows: int, block_rows: int, bar) -> ColumnReport:
    bad, counts = [], {}
    if check:
        sq, bad, counts = _scan(src, column, block_rows, bar)
    else:
        rows = (np.arange(src.n) if src.n <= sample_rows
                else np.sort(np.random.default_rng(0).choice(src.n, sample_rows, replace=False)))
        x = np.asarray(src.take(rows), np.float64)
        sq = np.einsum("ij,ij->i", x, x)
    mean, lo, hi = _norm_stats(sq)
    dtypes = sorted({np.dtype(p.dtype).name for p in src.parts})
    unit = bool(np.isfinite(lo) and abs(lo - 1) < 1e-2 and abs(hi - 1) < 1e-2)
    return ColumnReport([(p.label, p.n) for p in src.parts], src.n, src.d, "/".join(dtypes), mean, lo, hi,
                        int(sq.size), unit, bad, counts)


def _sources(path: Any, images_key, texts_key) -> tuple[str, RowSource, RowSource | None, Any, str | None, list]:
    """(layout, images, texts, pairing report, pairing error, shards with metadata)."""
    try:
        paired, error = shard_table(path, None, images_key=images_key, texts_key=texts_key, skip_incomplete=True), None
    except ValueError as exc:
        paired, error = None, str(exc)
    if paired is not None:
        images = RowSource([s.images for s in paired.shards], "images")
        return paired.layout, images, RowSource([s.texts for s in paired.shards], "texts"), paired.pairing, None, \
            paired.shards
    single = shard_table(path, None, single=True, images_key=images_key, skip_incomplete=True)
    if single is not None:
        images = RowSource([s.images for s in single.shards], "images")
        layout, shards = single.layout, single.shards
    else:
        images = row_source(path, "images", images_key=images_key)
        layout, shards = recognise(path).name, [Shard(k, p) for k, p in enumerate(images.parts)]
    return layout, images, None, None, error, shards


def _unlisted(path: Any) -> list:
    if not has_manifest(path):
        return []
    owned = owned_files(path)
    out = []
    for root, _dirs, files in os.walk(os.fspath(path)):
        for f in files:
            full = os.path.normpath(os.path.join(root, f))
            if f.endswith((".npy", ".npz", ".parquet")) and full not in owned:
                out.append(os.path.relpath(full, os.fspath(path)))
    return sorted(out)


def _metadata_columns(shards: list) -> list:
    first = next((s.metadata for s in shards if s.metadata is not None), None)
    if first is None:
        return []
    import pyarrow.parquet as pq

    return list(pq.read_schema(first).names)


def inspect(path: Any, check: bool = False, *, images_key: str | None = None, texts_key: str | None = None,
            sample_rows: int = SAMPLE_ROWS, block_rows: int = 1 << 16, progress: bool | None = None) -> InspectReport:
    """What a data set path holds (see the module docstring); never raises for a defect it can report.

    Args:
      path: a folder of any recognised layout, a file, a glob or a list of files.
      check: scan every row: exact norms, and every NaN / Inf / zero row named by shard and row.
      images_key, texts_key: as for :func:`clipcore.sources.paired_source`.
      sample_rows: rows (seeded) the norms are measured on without ``check``.
      block_rows: rows read at a time by the scan.
      progress: the scan's bar (:mod:`clipcore._progress`).

    Returns:
      :class:`InspectReport`.

    Raises:
      ValueError / FileNotFoundError: what cannot be read at all (no such path, unknown layout, a bad key).
    """
    layout, images, texts, pairing, error, shards = _sources(path, images_key, texts_key)
    total = images.n + (0 if texts is None else texts.n)
    with _progress.bar(total if check else 0, "inspect", progress if check else False) as bar:
        img = _column(images, "images", check, sample_rows, block_rows, bar)
        txt = None if texts is None else _column(texts, "texts", check, sample_rows, block_rows, bar)
    return InspectReport(os.fspath(path) if not isinstance(path, (list, tuple)) else str(list(path)), layout, img,
                         txt, pairing, error, _unlisted(path), _metadata_columns(shards), bool(check))


def _format_column(name: str, c: ColumnReport) -> list[str]:
    shards = ", ".join(f"{a}: {b}" for a, b in c.shards[:6]) + (f", ... ({len(c.shards)} shards)"
                                                               if len(c.shards) > 6 else "")
    how = "every row" if c.norm_rows == c.rows else f"{c.norm_rows} sampled rows"
    out = [f"{name}: {c.rows} rows in {len(c.shards)} shard(s), d = {c.d}, {c.dtype}",
           f"  shards: {shards}",
           f"  row norm mean {c.norm_mean:.4g}, min {c.norm_min:.4g}, max {c.norm_max:.4g} ({how}; "
           f"{'unit-normalised' if c.unit else 'raw'})"]
    if c.bad_counts:
        out.append("  NaN rows {nan}, Inf rows {inf}, zero rows {zero}".format(**c.bad_counts))
        out += [f"    {r}" for r in c.bad_rows]
    return out


def format_report(r: InspectReport) -> str:
    """The report as text for a terminal."""
    lines = [f"{r.path}: {r.layout} layout"]
    lines += _format_column("images", r.images)
    if r.texts is not None:
        lines += _format_column("texts", r.texts)
    if r.pairing is not None:
        p = r.pairing
        lines.append(f"pairing: {'complete' if p.complete else 'INCOMPLETE'} ({p.shards} shard pairs, {p.rows} rows"
                     + (f"; {len(p.skipped)} shard(s) with {p.skipped_rows} image rows cannot be paired" if p.skipped
                        else "") + ")")
        lines += [f"  {line}" for line in p.problems]
    elif r.pairing_error:
        lines.append(f"texts: none read ({r.pairing_error})")
    if r.unlisted:
        lines.append(f"not in the manifest (never read): {', '.join(r.unlisted[:10])}"
                     + (f", ... ({len(r.unlisted)})" if len(r.unlisted) > 10 else ""))
    if r.metadata_columns:
        lines.append(f"metadata columns: {', '.join(r.metadata_columns)}")
    if r.checked:
        bad = any(c is not None and c.bad_rows for c in (r.images, r.texts))
        lines.append("check: " + ("bad rows found (listed above)" if bad else "no NaN / Inf / zero row"))
    return "\n".join(lines)
