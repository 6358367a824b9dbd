"""Embedding sources that stream: files, shard directories, iterators.

A *row source* is a sequence of rows [n, d] that may live on disk across
many shards; a *paired source* walks images and texts together in blocks of
rows (row i of the images belongs to row i of the texts, whatever the shard
boundaries).  Every block is read into a fresh host buffer with ``pread``
(not a memory map, so the resident set stays bounded by the block size
however large the files are), validated (NaN / Inf / zero rows, with the
shard and row named in the error), and handed over by a prefetch thread so
the next block is read while the current one is on the device.

Accepted by :func:`clipcore.sce`, :func:`clipcore.vendi`, :func:`clipcore.rke`:

* a NumPy / JAX array, or a ``numpy.memmap``;
* a ``.npy`` path (read by blocks), an ``.npz`` path holding one array
  (read by blocks when stored uncompressed, as ``np.savez`` does; a
  compressed member is loaded whole);
* a directory: its ``manifest.json`` (written by :func:`write_shards`), or
  else its ``*.npy`` files in sorted name order;
* a glob pattern (``"emb/images-*.npy"``) or a list of paths, in that order;
* for pairs: an iterable of ``(images_block, texts_block)`` tuples; for one
  set (:func:`clipcore.vendi`, :func:`clipcore.rke`): an iterable of
  ``[b, d]`` blocks.
"""

from __future__ import annotations

import glob
import json
import os
import queue
import struct
import threading
import zipfile
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from ._validate import is_floating, widen_half

__all__ = [
    "RowSource",
    "PairedSource",
    "Block",
    "row_source",
    "paired_source",
    "write_shards",
    "MANIFEST",
]

MANIFEST = "manifest.json"
_FORMAT = "clipcore-shards/1"


# ------------------------------------------------------------------ readers
def _aligned_empty(shape: tuple[int, int], dtype: np.dtype, align: int = 64) -> np.ndarray:
    """An uninitialised array whose data is ``align``-byte aligned: XLA's CPU
    client then uses it in place (``device_put`` without a copy)."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(nbytes + align, np.uint8)
    offset = (-raw.ctypes.data) % align
    return raw[offset:offset + nbytes].view(dtype).reshape(shape)


class _ArrayPart:
    """Rows of an in-memory (or memory-mapped) array."""

    def __init__(self, array: Any, label: str):
        self.array = array
        self.label = label
        self.n, self.d = int(array.shape[0]), int(array.shape[1])
        self.dtype = np.dtype(array.dtype)

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.array[start:stop])

    def take(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.array[rows])


class _NpyPart:
    """Rows of a C-ordered 2-D ``.npy`` file, read with ``os.pread``.

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
        out = _aligned_empty((stop - start, self.d), self.dtype)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            self._pread(fd, out, start)
        finally:
            os.close(fd)
        return out

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows at the given local indices (any order), one pread per row."""
        out = np.empty((len(rows), self.d), self.dtype)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for i, r in enumerate(rows):
                self._pread(fd, out[i], int(r))
        finally:
            os.close(fd)
        return out


# ---------------------------------------------------------------- row source
class RowSource:
    """Rows [n, d] spread over parts (arrays or .npy shards), read by range.

    Attributes:
      name: the argument name used in error messages.
      n, d, dtype: total rows, dimension, dtype (promoted over the parts).
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
        return all(isinstance(p, _ArrayPart) for p in self.parts)

    def locate(self, row: int) -> str:
        """'shard <label>, row <local>' for a global row index."""
        k = int(np.searchsorted(self.starts, row, side="right") - 1)
        return f"{self.parts[k].label}, row {row - int(self.starts[k])}"

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) as one contiguous host array (copied)."""
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
        """Scattered rows (any order, in that order), e.g. a sample for σ; one open file per shard."""
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


def _npy_parts(paths: Sequence[str], name: str) -> list:
    parts = []
    for p in paths:
        ext = os.path.splitext(p)[1].lower()
        if ext == ".npy":
            parts.append(_NpyPart(p, name))
        elif ext == ".npz":
            base = _stored_npz_member(p, name)
            if base is not None:  # np.savez: the member's .npy bytes lie uncompressed in the file
                parts.append(_NpyPart(p, name, base=base))
            else:  # np.savez_compressed: no offsets to read rows from, so the member is loaded
                from .io import load_embeddings

                parts.append(_ArrayPart(np.asarray(load_embeddings(p, name=name)), os.path.basename(p)))
        else:
            raise ValueError(f"{name}: {p}: expected .npy or .npz shards, got {ext or 'no extension'}")
    return parts


def _stored_npz_member(path: str, name: str) -> int | None:
    """Byte offset of the ``.npy`` data of an ``.npz`` archive's only array when
    it is stored uncompressed (``np.savez``), else ``None``."""
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


def _read_manifest(directory: str, name: str) -> dict:
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path) as f:
            man = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{name}: cannot read {path} ({exc})") from exc
    if man.get("format") != _FORMAT or "shards" not in man:
        raise ValueError(f"{name}: {path} is not a clipcore shard manifest (format {man.get('format')!r})")
    return man


def row_source(obj: Any, name: str, *, key: str | None = None) -> RowSource:
    """Build a :class:`RowSource` from an array, a path, a directory, a glob or a list.

    Args:
      obj: see the module docstring.
      name: argument name for errors.
      key: for a clipcore shard directory, which column ("images" or "texts").
    """
    if isinstance(obj, RowSource):
        return obj
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):
        if len(obj.shape) != 2:
            raise ValueError(f"{name}: expected a 2-D array [n, d], got shape {tuple(obj.shape)}")
        if not is_floating(obj.dtype):
            raise ValueError(f"{name}: expected a floating-point array (float32 or float64), got dtype {obj.dtype}")
        return RowSource([_ArrayPart(obj, "array")], name)
    if isinstance(obj, (list, tuple)):
        return RowSource(_npy_parts([os.fspath(p) for p in obj], name), name)
    if isinstance(obj, (str, os.PathLike)):
        path = os.fspath(obj)
        if os.path.isdir(path):
            if os.path.exists(os.path.join(path, MANIFEST)):
                man = _read_manifest(path, name)
                col = key or name
                try:
                    files = [os.path.join(path, s[col]) for s in man["shards"]]
                except KeyError:
                    raise ValueError(f"{name}: the manifest in {path} has no {col!r} shards") from None
                return RowSource(_npy_parts(files, name), name)
            files = sorted(glob.glob(os.path.join(path, "*.npy")) + glob.glob(os.path.join(path, "*.npz")))
            if not files:
                raise ValueError(f"{name}: directory {path} has no .npy or .npz files and no {MANIFEST}")
            return RowSource(_npy_parts(files, name), name)
        if any(ch in path for ch in "*?["):
            files = sorted(glob.glob(path))
            if not files:
                raise FileNotFoundError(f"{name}: no file matches {path}")
            return RowSource(_npy_parts(files, name), name)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{name}: file not found: {path}")
        return RowSource(_npy_parts([path], name), name)
    raise ValueError(f"{name}: expected an array, a path, a directory, a glob or a list of paths; got {type(obj).__name__}")


# ------------------------------------------------------------------- blocks
class Block(NamedTuple):
    """One validated block of rows: ``images [b, d_x]``, ``texts [b, d_t]`` (texts
    ``None`` for a single set), and the global index of its first row."""

    images: np.ndarray
    texts: np.ndarray | None
    start: int


def check_block(x: np.ndarray, name: str, start: int, locate: Callable[[int], str] | None, *, nonzero: bool) -> None:
    """NaN / Inf / zero-norm rows of a block, named by global row and shard."""
    sq = np.einsum("ij,ij->i", x, x)
    for r in np.flatnonzero(~np.isfinite(sq)):
        values = x[r]
        if not np.isfinite(values).all():
            kind = "NaN" if np.isnan(values).any() else "Inf"
            where = f" ({locate(start + int(r))})" if locate else ""
            raise ValueError(f"{name}: contains {kind} at row {start + int(r)}{where}")
    if nonzero:
        zero = np.flatnonzero(sq == 0)
        if zero.size:
            r = start + int(zero[0])
            where = f" ({locate(r)})" if locate else ""
            raise ValueError(f"{name}: row {r}{where} has zero norm; the cosine kernel needs a direction for every embedding")


class PairedSource:
    """Images and texts walked together in blocks (texts may be absent).

    Attributes:
      n: total rows, or ``None`` for an iterator (unknown until consumed).
      d_images, d_texts: dimensions (known after the first block for iterators).
    """

    def __init__(self, images: RowSource | None, texts: RowSource | None, iterator: Iterable | None = None,
                 *, single: bool = False, name: str = "images"):
        self.images, self.texts, self.iterator = images, texts, iterator
        # single: the iterator yields [b, d] blocks of one set (vendi, rke), named `name` in errors
        self.single, self.name = single, name
        if images is not None:
            self.n = images.n
            self.d_images = images.d
            self.d_texts = None if texts is None else texts.d
            if texts is not None and texts.n != images.n:
                raise ValueError(
                    f"texts: {texts.n} rows but images has {images.n}; row i of texts must be the prompt of row i of images"
                )
        else:
            self.n = None
            self.d_images = self.d_texts = None
            self._peeked: list = []

    @property
    def in_memory(self) -> bool:
        return self.iterator is None and self.images.in_memory and (self.texts is None or self.texts.in_memory)

    # -- iterator support
    def _item(self, item: Any, k: int) -> tuple[Any, Any]:
        """One iterator item as ``(images, texts)`` (``texts`` None for a single set)."""
        pair = isinstance(item, (tuple, list)) and len(item) == 2
        if self.single:
            if pair and all(hasattr(a, "shape") for a in item):
                raise ValueError(
                    f"{self.name}: block {k} is a pair of arrays; this score takes one set, so the block iterator "
                    "must yield [b, d] arrays (pass the images' blocks)"
                )
            return item, None
        if not pair:
            raise ValueError(
                f"images: the block iterator must yield (images_block, texts_block) pairs, got {type(item).__name__}"
            )
        return item[0], item[1]

    def _iter_pairs(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        k = len(self._peeked)
        yield from self._peeked
        self._peeked = []
        for item in self.iterator:
            yield self._item(item, k)
            k += 1

    def peek(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The first ``(images, texts)`` block of an iterator (texts None for a single set), kept for the walk."""
        if self.iterator is None:
            raise ValueError("peek: only for iterator sources")
        if not self._peeked:
            it = iter(self.iterator)
            self.iterator = it
            try:
                first = next(it)
            except StopIteration:
                raise ValueError(f"{self.name}: the block iterator yielded no rows") from None
            x, t = self._item(first, 0)
            self._peeked = [(_as_block(x, self.name, 0), None if self.single else _as_block(t, "texts", 0))]
            self.d_images = self._peeked[0][0].shape[1]
            self.d_texts = None if self.single else self._peeked[0][1].shape[1]
        return self._peeked[0]

    def blocks(self, block_rows: int, *, nonzero: bool, prefetch: bool = True, depth: int = 2) -> Iterator[Block]:
        """Validated blocks, read ahead by one thread when ``prefetch`` (at most ``depth`` blocks queued,
        so ``depth + 2`` alive with the one being read and the one in use)."""
        gen = self._blocks(block_rows, nonzero)
        return _prefetched(gen, depth) if prefetch else gen

    def _blocks(self, block_rows: int, nonzero: bool) -> Iterator[Block]:
        if self.iterator is None:
            for start in range(0, self.n, block_rows):
                stop = min(self.n, start + block_rows)
                x = self.images.read(start, stop)
                check_block(x, self.name, start, self.images.locate, nonzero=nonzero)
                t = None
                if self.texts is not None:
                    t = self.texts.read(start, stop)
                    check_block(t, "texts", start, self.texts.locate, nonzero=nonzero)
                yield Block(x, t, start)
            return
        start = 0
        name = self.name
        for k, (x, t) in enumerate(self._iter_pairs()):
            if self.single:
                x = _as_block(x, name, k)
                if self.d_images is None:
                    self.d_images = x.shape[1]
                elif x.shape[1] != self.d_images:
                    raise ValueError(f"{name}: block {k} has dimension {x.shape[1]} but the first block had "
                                     f"{self.d_images}")
            else:
                x, t = _as_block(x, "images", k), _as_block(t, "texts", k)
                if x.shape[0] != t.shape[0]:
                    raise ValueError(f"texts: block {k} has {t.shape[0]} rows but its images block has {x.shape[0]}")
                if self.d_images is None:
                    self.d_images, self.d_texts = x.shape[1], t.shape[1]
                elif (x.shape[1], t.shape[1]) != (self.d_images, self.d_texts):
                    raise ValueError(
                        f"images: block {k} has dimensions ({x.shape[1]}, {t.shape[1]}) but the first block had "
                        f"({self.d_images}, {self.d_texts})"
                    )
            locate = (lambda r, k=k, s=start: f"block {k}, row {r - s}")
            check_block(x, name, start, locate, nonzero=nonzero)
            if t is not None:
                check_block(t, "texts", start, locate, nonzero=nonzero)
            # re-cut into block_rows pieces so compiled shapes repeat
            for a in range(0, x.shape[0], block_rows):
                yield Block(x[a : a + block_rows], None if t is None else t[a : a + block_rows], start + a)
            start += x.shape[0]
        if start == 0:
            raise ValueError(f"{name}: the block iterator yielded no rows")
        self.n = start


def _as_block(a: Any, name: str, k: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name}: block {k} has shape {a.shape}; expected [b, d]")
    if not is_floating(a.dtype):
        raise ValueError(f"{name}: block {k} has dtype {a.dtype}; expected float32 or float64")
    return widen_half(a)


_DONE = object()


def _prefetched(gen: Iterator[Block], depth: int = 2) -> Iterator[Block]:
    """Run ``gen`` in a thread, ``depth`` blocks ahead; errors re-raised here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def worker():
        try:
            for item in gen:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    done = _start_reader(worker)
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        done.wait(timeout=5)


#: Reader threads kept for the process (a fresh thread per pass took a fresh
#: glibc malloc arena each time, and RSS grew ~15 MB per streamed call).
_READERS_MAX = 4
_readers_lock = threading.Lock()
_readers_idle: list = []
_readers_count = 0


def _reader_loop(inbox: "queue.Queue") -> None:
    while True:
        task, done = inbox.get()
        try:
            task()
        finally:
            done.set()
            with _readers_lock:
                _readers_idle.append(inbox)


def _start_reader(task) -> threading.Event:
    """Run ``task`` on an idle kept reader thread (or a new one, up to _READERS_MAX kept; beyond, a
    one-off thread); returns an Event set when it has finished."""
    global _readers_count
    done = threading.Event()
    with _readers_lock:
        inbox = _readers_idle.pop() if _readers_idle else None
        keep = inbox is None and _readers_count < _READERS_MAX
        if keep:
            _readers_count += 1
    if inbox is None and keep:
        inbox = queue.Queue()
        threading.Thread(target=_reader_loop, args=(inbox,), name="clipcore-prefetch", daemon=True).start()
    if inbox is not None:
        inbox.put((task, done))
        return done

    def once():
        try:
            task()
        finally:
            done.set()

    threading.Thread(target=once, name="clipcore-prefetch", daemon=True).start()
    return done


def paired_source(images: Any, texts: Any = None, *, single: bool = False, name: str = "images") -> PairedSource:
    """Images and texts (or one set, or an iterator of pairs) as a :class:`PairedSource`.

    ``texts=None`` with a clipcore shard directory reads both columns from its
    manifest; with an iterable that is not an array or a path, the iterable
    yields ``(images_block, texts_block)`` pairs, or ``[b, d]`` blocks of one
    set when ``single`` (then ``name`` names it in errors, e.g. ``"x"``).
    """
    if isinstance(images, PairedSource):
        return images
    is_pathlike = isinstance(images, (str, os.PathLike, list, tuple)) or hasattr(images, "shape")
    if texts is None and not is_pathlike and isinstance(images, Iterable):
        return PairedSource(None, None, iterator=images, single=single, name=name if single else "images")
    if single:  # a clipcore shard directory gives its images column
        return PairedSource(row_source(images, name, key="images"), None, name=name)
    if texts is None and isinstance(images, (str, os.PathLike)) and os.path.isdir(images) \
            and os.path.exists(os.path.join(images, MANIFEST)):
        return PairedSource(row_source(images, "images", key="images"), row_source(images, "texts", key="texts"))
    img = row_source(images, "images")
    return PairedSource(img, None if texts is None else row_source(texts, "texts"))


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
    manifest = {"format": _FORMAT, "n": src.n, "d_images": src.d_images, "d_texts": src.d_texts,
                "dtype": np.dtype(dtype).name, "shards": shards, **(extra or {})}
    path = os.path.join(directory, MANIFEST)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1)
    return path
