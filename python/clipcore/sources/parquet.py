"""Parquet embedding columns (``list<float>`` or fixed-size lists) read by rows in bounded memory, through
``pyarrow``.

A :class:`ParquetPart` is one file's column: its rows are decoded one row group at a time (or, for a row
group larger than :data:`WHOLE_GROUP_BYTES`, in batches of about :data:`BATCH_BYTES`), so a sequential
pass holds at most one row group (or one batch) beside the block being built.  Values are returned as
stored (float16 stays float16; the row source widens each block).  The row count and the dimension come
from the file's footer; a ragged or null list row, or a column that is not a list of floats, is a
``ValueError`` naming the file, the column and the row.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from .parts import aligned_empty

__all__ = ["ParquetPart", "embedding_columns", "choose_column", "IMAGE_COLUMNS", "TEXT_COLUMNS",
           "WHOLE_GROUP_BYTES", "BATCH_BYTES"]

#: Column names taken for the images when no ``images_key`` is given, in this order
#: (``embeddings``: autofaiss; ``embedding``: embedding-reader).
IMAGE_COLUMNS = ("image_embedding", "image_embeddings", "img_emb", "image_emb", "img_embedding",
                 "embeddings", "embedding", "emb")
#: Column names taken for the texts when no ``texts_key`` is given, in this order.
TEXT_COLUMNS = ("text_embedding", "text_embeddings", "text_emb", "txt_emb", "caption_embedding")
#: A row group whose column is at most this large (uncompressed) is decoded whole; larger ones in batches.
WHOLE_GROUP_BYTES = 64 << 20
#: About this many bytes per batch when a row group is decoded in batches.
BATCH_BYTES = 16 << 20


def _pq():
    import pyarrow.parquet as pq

    return pq


def _float_list(t: Any) -> bool:
    import pyarrow as pa

    lists = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    return bool(lists and pa.types.is_floating(t.value_type))


def embedding_columns(schema: Any) -> list[str]:
    """Names of the columns of an Arrow schema that hold lists of floats (candidate embeddings)."""
    return [f.name for f in schema if _float_list(f.type)]


def choose_column(path: str, schema: Any, role: str, key: str | None, name: str) -> str | None:
    """The embedding column of ``role`` (``"images"`` / ``"texts"``) in a Parquet file: ``key`` when given
    (checked), else the first of :data:`IMAGE_COLUMNS` / :data:`TEXT_COLUMNS` present, else (images) the only
    list-of-floats column; ``None`` for texts not found.

    Raises:
      ValueError: no column ``key``, ``key`` not a list of floats, or no unambiguous images column.
    """
    label, option = os.path.basename(path), f"{role}_key" if role in ("images", "texts") else "images_key"
    emb = embedding_columns(schema)
    if key is not None:
        if key not in schema.names:
            raise ValueError(f"{name}: {label} has no column {key!r} (its columns: {schema.names}; embedding "
                             f"columns: {emb}); check {option}=")
        typ = schema.field(key).type
        if not _float_list(typ):
            raise ValueError(f"{name}: {label} column {key!r} holds {typ}, not embeddings; expected a list of "
                             f"floats (list<float> or a fixed-size list); embedding columns: {emb}")
        return key
    known = TEXT_COLUMNS if role == "texts" else IMAGE_COLUMNS
    for c in known:
        if c in emb:
            return c
    if role == "texts":
        return None
    rest = [c for c in emb if c not in TEXT_COLUMNS]
    if len(rest) == 1:
        return rest[0]
    raise ValueError(f"{name}: {label} has {len(rest)} embedding columns {rest} (lists of floats) and none "
                     f"named {list(IMAGE_COLUMNS)}; choose one with {option}=")


class ParquetPart:
    """Rows ``[n, d]`` of one list-of-floats column of a Parquet file, read by range (see the module).

    Attributes:
      path, column, label: the file, the column, and ``"file.parquet[column]"`` for errors.
      n, d, dtype: rows, list length, stored value dtype (float16 / float32 / float64).
      group_starts: ``[groups + 1]`` first row of each row group (and n).
    """

    def __init__(self, path: str, name: str, *, role: str = "images", key: str | None = None):
        pq = _pq()
        try:
            with pq.ParquetFile(path) as pf:
                self._md, schema, leaves = pf.metadata, pf.schema_arrow, pf.schema
        except FileNotFoundError:
            raise FileNotFoundError(f"{name}: file not found: {path}") from None
        except Exception as exc:  # pyarrow's ArrowInvalid / OSError for a file that is not Parquet
            raise ValueError(f"{name}: {path} is not a readable Parquet file ({exc})") from exc
        self.path, self.name = path, name
        self._lock = threading.Lock()
        self._file = None
        self._cache: tuple[int, np.ndarray] | None = None
        self._batches: tuple[int, Any, int] | None = None
        self.column = choose_column(path, schema, role, key, name)
        if self.column is None:
            raise ValueError(f"{name}: {os.path.basename(path)} has no {role} embedding column")
        self.label = f"{os.path.basename(path)}[{self.column}]"
        typ = schema.field(self.column).type
        self.dtype = np.dtype(typ.value_type.to_pandas_dtype())
        self.group_starts = np.cumsum([0] + [self._md.row_group(g).num_rows for g in range(self._md.num_row_groups)])
        self.n = int(self.group_starts[-1])
        leaf = [j for j in range(len(leaves)) if leaves.column(j).path.split(".")[0] == self.column]
        self._leaf = leaf[0]
        self.d = int(typ.list_size) if hasattr(typ, "list_size") and typ.list_size > 0 else self._list_length()

    # ------------------------------------------------------------------ footer
    def _values(self, g: int) -> int:
        return int(self._md.row_group(g).column(self._leaf).num_values)

    def _list_length(self) -> int:
        """d from the footer: values / rows when every row group agrees; otherwise the first row's length,
        and the row groups are decoded to name the first row of another length (or a null row)."""
        groups = [g for g in range(self._md.num_row_groups) if self._md.row_group(g).num_rows > 0]
        if not groups:
            return 0
        rows = {g: self._md.row_group(g).num_rows for g in groups}
        d, rem = divmod(self._values(groups[0]), rows[groups[0]])
        if not rem and all(self._values(g) == d * rows[g] for g in groups):
            return d
        try:
            first = self._open().read_row_group(groups[0], columns=[self.column], use_threads=False).column(0)
            offsets = np.asarray(first.chunk(0).offsets)
            self.d = int(offsets[1] - offsets[0])
            for g in groups:
                self._decode_group(g)  # raises, naming the row
        finally:
            self._close()
        raise ValueError(f"{self.name}: {self.label}: {sum(self._values(g) for g in groups)} values for "
                         f"{sum(rows.values())} rows: ragged list column")

    # ------------------------------------------------------------------ decoding
    def _rows(self, arr: Any, first: int) -> np.ndarray:
        """An Arrow list array (rows ``first ...``) as ``[k, d]`` NumPy, refusing null and ragged rows."""
        import pyarrow as pa

        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if arr.null_count:
            r = int(np.flatnonzero(np.asarray(arr.is_null()))[0])
            raise ValueError(f"{self.name}: {self.label}, row {first + r} is null; expected a list of {self.d} floats")
        if not pa.types.is_fixed_size_list(arr.type):
            lengths = np.diff(np.asarray(arr.offsets))
            bad = np.flatnonzero(lengths != self.d)
            if bad.size:
                r = int(bad[0])
                raise ValueError(f"{self.name}: {self.label}, row {first + r} has {int(lengths[r])} values but rows "
                                 f"have {self.d}: ragged list column")
        values = arr.flatten()
        if values.null_count:
            r = int(np.flatnonzero(np.asarray(values.is_null()))[0]) // max(self.d, 1)
            raise ValueError(f"{self.name}: {self.label}, row {first + r} holds a null value")
        return values.to_numpy(zero_copy_only=False).reshape(-1, self.d)

    def _open(self):
        if self._file is None:
            self._file = _pq().ParquetFile(self.path, metadata=self._md)
        return self._file

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._batches, self._cache = None, None, None

    def _group_bytes(self, g: int) -> int:
        return int(self._md.row_group(g).column(self._leaf).total_uncompressed_size)

    def _decode_group(self, g: int) -> np.ndarray:
        table = self._open().read_row_group(g, columns=[self.column], use_threads=False)
        return self._rows(table.column(0), int(self.group_starts[g]))

    def _next_batch(self, g: int, pos: int) -> tuple[int, np.ndarray]:
        """The batch of row group ``g`` holding row ``pos`` (batches run forward; a jump back restarts)."""
        if self._batches is None or self._batches[0] != g or self._batches[2] > pos:
            size = max(1, BATCH_BYTES // max(1, self.d * self.dtype.itemsize))
            it = self._open().iter_batches(batch_size=size, row_groups=[g], columns=[self.column], use_threads=False)
            self._batches = (g, it, int(self.group_starts[g]))
        while True:
            g_, it, start = self._batches
            batch = next(it)
            self._batches = (g_, it, start + batch.num_rows)
            if start + batch.num_rows > pos:
                return start, self._rows(batch.column(0), start)

    def _chunk_at(self, pos: int) -> tuple[int, np.ndarray]:
        if self._cache is not None and self._cache[0] <= pos < self._cache[0] + len(self._cache[1]):
            return self._cache
        g = int(np.searchsorted(self.group_starts, pos, side="right") - 1)
        if self._group_bytes(g) <= WHOLE_GROUP_BYTES:
            self._cache = (int(self.group_starts[g]), self._decode_group(g))
        else:
            self._cache = self._next_batch(g, pos)
        return self._cache

    # ------------------------------------------------------------------ the part interface
    #: :meth:`read_into` converts to the buffer's dtype (float16 rows widened as they are copied).
    casts = True

    def read_into(self, out: np.ndarray, start: int) -> None:
        """Rows ``[start, start + len(out))`` into ``out`` (any floating dtype: converted as copied)."""
        stop = start + out.shape[0]
        with self._lock:
            pos = start
            try:
                while pos < stop:
                    first, chunk = self._chunk_at(pos)
                    hi = min(stop, first + len(chunk))
                    out[pos - start:hi - start] = chunk[pos - first:hi - first]
                    pos = hi
            finally:
                if stop >= self.n or pos < stop:
                    self._close()  # the pass has left this file (or failed): let go of it and its cache

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as a fresh 64-byte-aligned ``[stop - start, d]`` array (stored dtype)."""
        out = aligned_empty((stop - start, self.d), self.dtype)
        self.read_into(out, start)
        return out

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows at the given local indices ``[k]`` (any order) as ``[k, d]``: each row group holding some is
        decoded once (in batches when large), nothing kept."""
        rows = np.asarray(rows, np.int64)
        out = np.empty((rows.size, self.d), self.dtype)
        order = np.argsort(rows, kind="stable")
        with self._lock:
            saved, self._cache, self._batches = (self._cache, self._batches), None, None
            try:
                for i in order:
                    first, chunk = self._chunk_at(int(rows[i]))
                    out[i] = chunk[int(rows[i]) - first]
            finally:
                self._cache, self._batches = saved
                if self._cache is None and self._batches is None and self._file is not None:
                    self._file.close()
                    self._file = None
        return out
