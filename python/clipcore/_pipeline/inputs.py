"""What a call was given: in-memory arrays, large host arrays, files / shards, iterators or a distributed
source, the σ sample, and the resolved kernel (feature map, ω, σ, seed).

Files with at most :data:`IN_MEMORY_ROWS` rows are read whole (checked with the shard and row named) and
take the in-memory paths; larger ones, large host arrays and iterators are streamed.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as V
from .._options import KERNELS, Seed, resolve_key
from ..kernels import FeatureMap, draw_omega, median_sigma
from ..sources import PairedSource, check_block, paired_source, row_source

__all__ = ["IN_MEMORY_ROWS", "Inputs", "sigma_sample", "SourceOptions", "resolve_source_options", "paired_inputs",
           "single_inputs", "PairedArrays", "paired_arrays", "file_source", "column_array", "reduce_sums",
           "KernelOptions", "resolve_kernel_options", "KernelSetup", "resolve_kernel", "to_user"]

#: Files and host arrays with at most this many rows are in-memory inputs; larger ones stream.
IN_MEMORY_ROWS = 1 << 16
SIGMA_SAMPLE = 2000


class Inputs(NamedTuple):
    """One call's data: ``src`` (streamed) or validated arrays ``images`` / ``texts`` (in memory).

    Attributes:
      src: the streamed source, or None for in-memory arrays.
      images, texts: ``[n, d]`` checked arrays (in memory) or None; texts None for one set.
      n: rows (None for an iterator until it is read).
      d_images, d_texts: dimensions (d_texts None for one set).
      sample: rows for the σ heuristic, or a callable that reads them (only when σ is needed).
      pairing: how shards paired by number were matched (:class:`clipcore.sources.PairingReport` as a
        dict), or None.
    """

    src: PairedSource | None
    images: Any
    texts: Any
    n: int | None
    d_images: int
    d_texts: int | None
    sample: Any
    pairing: dict | None = None

    @property
    def dtype(self):
        """The rows' dtype as read (half precision is read as float32); None for an iterator not yet read."""
        if self.src is None:
            return self.images.dtype
        if self.src.iterator is not None:
            return np.asarray(self.src.peek()[0]).dtype
        return self.src.images.dtype

    @property
    def streamed(self) -> bool:
        return self.src is not None

    @property
    def in_memory(self) -> bool:
        """In memory, or a large host array read by blocks for memory's sake (every row is at hand)."""
        return self.src is None or self.src.in_memory

    @property
    def iterator(self) -> bool:
        return self.src is not None and self.src.iterator is not None

    @property
    def distributed(self) -> bool:
        """A source whose pass covers this process's shards only (:mod:`clipcore.distributed`)."""
        return self.src is not None and hasattr(self.src, "reduce_sums")


def reduce_sums(src: Any, sums: Any, n: int):
    """The pass's sums and row count, added across processes for a distributed source."""
    return src.reduce_sums(sums, n) if hasattr(src, "reduce_sums") else (sums, n)


def _is_files(x: Any) -> bool:
    """A path, or a non-empty list of paths (a list of numbers is an array-like)."""
    if isinstance(x, (str, os.PathLike)):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(p, (str, os.PathLike)) for p in x)


def _is_streamed(x: Any) -> bool:
    if isinstance(x, PairedSource) or _is_files(x):
        return True
    array_like = isinstance(x, (np.ndarray, jax.Array, list, tuple)) or hasattr(x, "__array__")
    return x is not None and not array_like and isinstance(x, Iterable)


def _large_host(*arrays: Any) -> bool:
    """Large host (NumPy) arrays stream too: one block at a time goes to the device (the in-memory path
    would first copy the whole, usually unaligned, array: twice the memory), and a progress bar shows.
    Same speed within noise (bench_stream.py)."""
    ok = all(isinstance(a, np.ndarray) and a.ndim == 2 for a in arrays)
    return ok and len({a.shape[0] for a in arrays}) == 1 and arrays[0].shape[0] > IN_MEMORY_ROWS


def _read_whole(rows, nonzero: bool) -> np.ndarray:
    """A small row source read into memory, NaN / Inf / zero rows named by shard and row."""
    a = rows.read(0, rows.n)
    if not rows.in_memory:
        check_block(a, rows.name, 0, rows.locate, nonzero=nonzero)
    return a


def _small(src: PairedSource) -> bool:
    return src.iterator is None and src.n <= IN_MEMORY_ROWS and not hasattr(src, "reduce_sums")


def sigma_sample(src: PairedSource) -> Callable[[], np.ndarray]:
    """Rows for the σ heuristic, chosen exactly as :func:`clipcore.kernels.median_sigma` would."""

    def sample():
        if src.iterator is not None:
            return src.peek()[0][:SIGMA_SAMPLE]
        n = src.n
        idx = (np.arange(n) if n <= SIGMA_SAMPLE
               else np.sort(np.random.default_rng(0).choice(n, SIGMA_SAMPLE, replace=False)))
        return src.images.take(idx)

    return sample


def _streamed_dims(src: PairedSource) -> tuple[int, int | None]:
    if src.d_images is not None:
        return src.d_images, src.d_texts
    first = src.peek()  # an iterator: its first block tells the dimensions
    return first[0].shape[1], None if first[1] is None else first[1].shape[1]


class SourceOptions(NamedTuple):
    """How files are read: the array / column names and whether incomplete shard pairs are skipped."""

    images_key: str | None = None
    texts_key: str | None = None
    skip_incomplete: bool = False


def resolve_source_options(*, images_key: Any = None, texts_key: Any = None,
                           skip_incomplete: Any = False) -> SourceOptions:
    for name, key in (("images_key", images_key), ("texts_key", texts_key)):
        if key is not None and not isinstance(key, str):
            raise ValueError(f"{name}: expected the name of an array or column (a str), got {key!r}")
    return SourceOptions(images_key, texts_key, V.check_flag(skip_incomplete, "skip_incomplete"))


def _pairing(src) -> dict | None:
    report = getattr(src, "pairing", None)
    return None if report is None else report.to_dict()


def paired_inputs(images: Any, texts: Any, *, nonzero: bool, same_dim: bool,
                  files: SourceOptions = SourceOptions()) -> Inputs:
    """Classify and check paired images / texts (row i of each belong together).

    Args:
      nonzero: refuse zero rows (the cosine kernel, or normalised rows).
      same_dim: texts and images must share d (one Gaussian feature map).
      files: array / column names inside shards and the incomplete-pairs rule (file inputs).
    """
    V.refuse_tracer(images, "images")
    V.refuse_tracer(texts, "texts")
    if not (_is_streamed(images) or _is_streamed(texts)):
        if texts is None:
            raise ValueError("texts: missing; pass the prompts' embeddings [n, d]")
        if not _large_host(images, texts):
            _no_file_options(files)
            return _memory_pair(images, texts, nonzero, same_dim)
    src = paired_source(images, texts, images_key=files.images_key, texts_key=files.texts_key,
                        skip_incomplete=files.skip_incomplete)
    if src.texts is not None and _small(src):
        whole = _memory_pair(_read_whole(src.images, nonzero), _read_whole(src.texts, nonzero), nonzero, same_dim)
        return whole._replace(pairing=_pairing(src))
    if src.iterator is None and src.texts is None:
        raise ValueError("texts: missing; pass the prompts' embeddings (or a clipcore shard directory)")
    d_img, d_txt = _streamed_dims(src)
    if same_dim and d_img != d_txt:
        raise ValueError(f"texts: dimension {d_txt} differs from images' {d_img}; {V.GAUSSIAN_SAME_DIM}")
    if d_txt is not None:
        V.warn_dimension_mismatch(d_img, d_txt)
    return Inputs(src, None, None, src.n, d_img, d_txt, sigma_sample(src), _pairing(src))


def _no_file_options(files: SourceOptions) -> None:
    for name in ("images_key", "texts_key"):
        if getattr(files, name) is not None:
            raise ValueError(f"{name}: names an array inside .npz shards or a Parquet column; the inputs here are "
                             "arrays in memory")


def _memory_pair(images, texts, nonzero: bool, same_dim: bool) -> Inputs:
    images = V.as_embeddings(images, "images", nonzero_rows=nonzero)
    texts = V.as_embeddings(texts, "texts", nonzero_rows=nonzero)
    V.check_pair(images, texts, same_dim=same_dim)
    V.warn_dimension_mismatch(images.shape[1], texts.shape[1])
    return Inputs(None, images, texts, images.shape[0], images.shape[1], texts.shape[1], images)


def single_inputs(x: Any, *, nonzero: bool, files: SourceOptions = SourceOptions()) -> Inputs:
    """Classify and check one set (vendi, rke): files, large host arrays and iterators of ``[b, d]``
    blocks stream (``files.images_key``: the array / column of the set in shards)."""
    V.refuse_tracer(x, "x")
    if files.texts_key is not None:
        raise ValueError("texts_key: one set (vendi / rke) reads one column; use images_key")
    if isinstance(x, PairedSource):
        src = x
    elif _is_streamed(x) or _large_host(x):
        src = paired_source(x, None, single=True, name="x", images_key=files.images_key,
                            skip_incomplete=files.skip_incomplete)
    else:
        _no_file_options(files)
        x = V.as_embeddings(x, "x", nonzero_rows=nonzero)
        return Inputs(None, x, None, x.shape[0], x.shape[1], None, x)
    if _small(src):
        x = V.as_embeddings(_read_whole(src.images, nonzero), "x", nonzero_rows=nonzero)
        return Inputs(None, x, None, x.shape[0], x.shape[1], None, x, _pairing(src))
    return Inputs(src, None, None, src.n, _streamed_dims(src)[0], None, sigma_sample(src), _pairing(src))


class PairedArrays(NamedTuple):
    """Paired rows held in memory (:func:`paired_arrays`): ``images``, ``texts`` and the pairing of shards
    paired by number (:meth:`clipcore.sources.PairingReport.to_dict`, or None)."""

    images: Any
    texts: Any
    pairing: dict | None = None


def paired_arrays(images: Any, texts: Any, *, nonzero: bool, files: SourceOptions = SourceOptions()) -> PairedArrays:
    """Paired images / texts for the entries that hold every row in memory (CLIPScore, retrieval, compare):
    arrays are returned as given (the file options refused); paths, folders of any layout, globs and lists
    of paths are read whole through :func:`clipcore.sources.paired_source` (the lister and the pairing by
    shard number :func:`clipcore.sce` uses), NaN / Inf (and with ``nonzero`` zero) rows named by shard and
    row."""
    V.refuse_tracer(images, "images")
    V.refuse_tracer(texts, "texts")
    if not (_is_files(images) or _is_files(texts)):
        _no_file_options(files)
        return PairedArrays(images, texts)
    src = paired_source(images, texts, images_key=files.images_key, texts_key=files.texts_key,
                        skip_incomplete=files.skip_incomplete)
    if src.texts is None:
        raise ValueError("texts: missing; pass the prompts' embeddings (or a folder that holds both columns)")
    return PairedArrays(_read_whole(src.images, nonzero), _read_whole(src.texts, nonzero), _pairing(src))


def file_source(images: Any, texts: Any, files: SourceOptions = SourceOptions()) -> PairedSource:
    """:func:`clipcore.sources.paired_source` with the file options (refused for arrays in memory: they name
    arrays inside files); a :class:`~clipcore.sources.PairedSource` is returned as given."""
    if isinstance(images, PairedSource):
        return images
    if not (_is_streamed(images) or _is_streamed(texts)):
        _no_file_options(files)
    return paired_source(images, texts, images_key=files.images_key, texts_key=files.texts_key,
                         skip_incomplete=files.skip_incomplete)


def column_array(x: Any, name: str, *, role: str, nonzero: bool, files: SourceOptions = SourceOptions()) -> Any:
    """One set held in memory (the rows or the columns of a similarity table): an array as given; a path,
    folder, glob or list read whole through :func:`clipcore.sources.row_source` (``role``, ``"images"`` or
    ``"texts"``: the column of a folder holding both, and which of ``files``' keys applies)."""
    V.refuse_tracer(x, name)
    key = files.images_key if role == "images" else files.texts_key
    if not _is_files(x):
        if key is not None:
            raise ValueError(f"{role}_key: names an array inside .npz shards or a Parquet column; {name} is an "
                             "array in memory")
        return x
    return _read_whole(row_source(x, name, key=role, images_key=files.images_key, texts_key=files.texts_key),
                       nonzero)


# ------------------------------------------------------------------ the kernel
@dataclasses.dataclass(frozen=True)
class KernelOptions:
    """The kernel options as given, validated whatever the kernel (an option a kernel does not use is
    refused by :func:`resolve_kernel`, never ignored)."""

    kernel: str
    sigma: float | None
    rff_features: int | None
    omega: np.ndarray | None
    key: Any
    seed: Seed


def resolve_kernel_options(*, kernel: Any, sigma: Any = None, rff_features: Any = None, omega: Any = None,
                           key: Any = None) -> KernelOptions:
    return KernelOptions(
        kernel=V.check_choice(kernel, "kernel", KERNELS),
        sigma=V.check_sigma(sigma),
        rff_features=V.check_positive_int(rff_features, "rff_features"),
        omega=None if omega is None else V.host_rows(omega, "omega"),
        key=key,
        seed=resolve_key(key),
    )


@dataclasses.dataclass(frozen=True)
class KernelSetup:
    """The resolved kernel: feature map (None: the exact Gaussian kernel), ω, σ and seed."""

    kernel: str
    fmap: FeatureMap | None
    omega: jax.Array | None
    sigma: float | None
    seed: int | None
    normalize: bool

    @property
    def exact(self) -> bool:
        return self.fmap is None

    @property
    def kind(self) -> str:
        """``"cosine"``, ``"exact"`` (Gaussian, n×n) or ``"rff"``."""
        if self.kernel == "cosine":
            return "cosine"
        return "exact" if self.exact else "rff"

    method_name = kind

    @property
    def rff_frequencies(self) -> int | None:
        return self.fmap.num_frequencies if self.fmap is not None and self.fmap.kind == "rff" else None


def resolve_kernel(opts: KernelOptions, *, normalize: bool, convention: str, sample: Any, dim: int) -> KernelSetup:
    """Build ω / σ for the kernel (σ by the median heuristic on ``sample`` when not given).

    Args:
      sample: the σ heuristic's rows, or a callable returning them (read only when σ is needed).
      dim: the input dimension every set sharing the feature map has.
    """
    if opts.kernel == "cosine":
        for name, value in (("rff_features", opts.rff_features), ("omega", opts.omega), ("sigma", opts.sigma)):
            if value is not None:
                raise ValueError(f"{name}: only used by kernel='gaussian' (got kernel='cosine')")
        fmap = FeatureMap("identity") if convention == "clip-dissection" else FeatureMap("cosine")
        return KernelSetup("cosine", fmap, None, None, None, False)
    num, omega = opts.rff_features, opts.omega
    if omega is not None:
        if omega.shape[0] != dim:
            raise ValueError(f"omega: shape {tuple(omega.shape)} but the embeddings have d = {dim}; "
                             "omega must be [d, D]")
        if num is not None and omega.shape[1] != num:
            raise ValueError(f"omega: has {omega.shape[1]} frequencies but rff_features = {num}")
        if opts.key is not None:
            raise ValueError("key: pass either omega= or key=, not both")
        num = int(omega.shape[1])
    sigma = opts.sigma if opts.sigma is not None or omega is not None else median_sigma(_prepared(sample, normalize))
    if num is None:
        return KernelSetup("gaussian", None, None, sigma, None, bool(normalize))
    if omega is None:
        omega = draw_omega(opts.seed.key, dim, num, sigma)
        seed = opts.seed.seed
    else:
        omega, seed = jnp.asarray(omega), None
    return KernelSetup("gaussian", FeatureMap("rff", num, bool(normalize)), omega, sigma, seed, bool(normalize))


def _prepared(sample: Any, normalize: bool) -> np.ndarray:
    x = np.asarray(sample() if callable(sample) else sample)
    return x / np.linalg.norm(x, axis=1, keepdims=True) if normalize else x


def to_user(a: jax.Array) -> jax.Array:
    """Arrays handed back to the user live in the user's x64 setting."""
    if a.dtype == jnp.float64 and not jax.config.jax_enable_x64:
        return np.asarray(a).astype(np.float32)
    return a
