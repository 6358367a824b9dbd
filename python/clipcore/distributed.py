"""Multi-process scoring on JAX's distributed runtime (``jax.distributed``).

Every process runs the same program over a sharded data set on disk
(:func:`clipcore.write_shards`, or directories, globs or lists of ``.npy`` /
``.npz`` shards, listed by :func:`clipcore.sources.list_shards`):

1. :func:`initialize` joins the job (``jax.distributed.initialize``) with the
   coordinator address, process count and id from the arguments, or the
   environment (``CLIPCORE_COORDINATOR``, ``CLIPCORE_NUM_PROCESSES``,
   ``CLIPCORE_PROCESS_ID``), or JAX's own variables / cluster detection.
2. The shards, listed and paired as :func:`clipcore.sce` reads them (ordered
   by shard number; clip-retrieval / LAION / DataComp / Parquet folders paired
   by number, :func:`clipcore.sources.shard_table`), are dealt round-robin:
   process p of P accumulates shards p, p + P, p + 2P, ... of that order
   (:func:`assign_shards`) through the usual streamed path
   (:mod:`clipcore.sources`, the compiled kernels).
3. The D×D (or Nyström R×R) sums and the row counts are added across the
   processes (``multihost_utils.process_allgather`` of the small D×D
   matrices, summed in float64 in process order, so every process holds the
   same sums bit for bit); the scores are then computed from them as on
   one process. :func:`is_writer` is True on process 0 only: it writes the
   result (the CLI does so).

The σ heuristic and Nyström landmarks read a seeded *sample* of rows from the
whole set, so every process must be able to read every shard (a shared file
system); the accumulation pass reads only the process's own shards.

CPU collectives: on CPU the cross-process reduction needs a collectives
implementation. Set it where the distributed run starts, before JAX creates
its backend: ``initialize(cpu_collectives="gloo")`` (which calls
``jax.config.update("jax_cpu_collectives_implementation", "gloo")`` for this
process), or do that yourself. ``clipcore score --distributed`` passes gloo.

Failure: ``initialization_timeout`` bounds the wait for peers to join;
``heartbeat_timeout`` bounds how long a dead peer goes unnoticed. A peer that
dies makes the reduction fail at once (the connection closes:
:class:`RuntimeError` naming the processes) or, if the others are still
working, JAX's coordination service terminates them after the heartbeat
timeout ("... another task died"): a clear error in bounded time, never a
hang.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import jax
import numpy as np

from .sources import PairedSource, RowSource, Shard, ShardTable, list_shards, open_part, shard_table

__all__ = [
    "ProcessInfo",
    "initialize",
    "process_info",
    "is_writer",
    "assign_shards",
    "shard_files",
    "shard_table_of",
    "DistributedSource",
    "distributed_source",
    "allreduce_sums",
    "sce",
    "vendi",
    "rke",
    "ENV_COORDINATOR",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
]

#: Environment variable with process 0's coordinator address ``HOST:PORT`` (when not passed to initialize).
ENV_COORDINATOR = "CLIPCORE_COORDINATOR"
#: Environment variable with the number of processes of the job.
ENV_NUM_PROCESSES = "CLIPCORE_NUM_PROCESSES"
#: Environment variable with this process's id in [0, number of processes).
ENV_PROCESS_ID = "CLIPCORE_PROCESS_ID"


class ProcessInfo(NamedTuple):
    """This process's place in the job: ``process_id`` of ``num_processes``."""

    process_id: int
    num_processes: int


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"{name}: expected an integer, got {v!r}") from None


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    initialization_timeout: int = 60,
    heartbeat_timeout: int = 10,
    shutdown_timeout: int = 10,
    cpu_collectives: str | None = None,
) -> ProcessInfo:
    """Join the distributed job (``jax.distributed.initialize``); idempotent.

    Args:
      coordinator_address: ``"host:port"`` of process 0's coordinator;
        default ``$CLIPCORE_COORDINATOR``, else JAX's own
        (``JAX_COORDINATOR_ADDRESS`` or cluster detection).
      num_processes: P; default ``$CLIPCORE_NUM_PROCESSES``, else JAX's.
      process_id: this process's id in ``[0, P)``; default
        ``$CLIPCORE_PROCESS_ID``, else JAX's.
      initialization_timeout: seconds to wait for all processes to join.
      heartbeat_timeout: seconds after which a silent peer counts as dead.
      shutdown_timeout: seconds the shutdown barrier waits at exit.
      cpu_collectives: e.g. ``"gloo"``: sets this process's
        ``jax_cpu_collectives_implementation`` before the backend starts
        (needed for the reduction on CPU); ``None`` leaves it alone.

    Returns:
      :class:`ProcessInfo`.

    Raises:
      ValueError: a count or id out of range (naming the argument).
    """
    coordinator_address = coordinator_address or os.environ.get(ENV_COORDINATOR) or None
    if num_processes is None:
        num_processes = _env_int(ENV_NUM_PROCESSES)
    if process_id is None:
        process_id = _env_int(ENV_PROCESS_ID)
    if num_processes is not None and (isinstance(num_processes, bool) or int(num_processes) < 1):
        raise ValueError(f"num_processes: expected an integer >= 1, got {num_processes!r}")
    if process_id is not None:
        if isinstance(process_id, bool) or int(process_id) < 0:
            raise ValueError(f"process_id: expected an integer >= 0, got {process_id!r}")
        if num_processes is not None and int(process_id) >= int(num_processes):
            raise ValueError(f"process_id: {process_id} is not below num_processes = {num_processes}")
    if coordinator_address is not None and ":" not in coordinator_address:
        raise ValueError(f"coordinator_address: expected HOST:PORT, got {coordinator_address!r}")
    if jax.distributed.is_initialized():
        return process_info()
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address, None if num_processes is None else int(num_processes),
        None if process_id is None else int(process_id),
        initialization_timeout=int(initialization_timeout), heartbeat_timeout_seconds=int(heartbeat_timeout),
        shutdown_timeout_seconds=int(shutdown_timeout),
    )
    return process_info()


def process_info() -> ProcessInfo:
    """This process's id and the process count (0 of 1 without :func:`initialize`)."""
    return ProcessInfo(jax.process_index(), jax.process_count())


def is_writer() -> bool:
    """True on process 0, the one that writes results."""
    return jax.process_index() == 0


def assign_shards(num_shards: int, num_processes: int, process_id: int) -> list[int]:
    """Shards of process ``process_id``: ``process_id, process_id + P, ...`` (round-robin)."""
    if num_shards < num_processes:
        raise ValueError(
            f"images: {num_shards} shard file(s) for {num_processes} processes; every process needs at least "
            "one (write more, smaller shards: write_shards(..., shard_rows=...))"
        )
    return list(range(process_id, num_shards, num_processes))


def _files(obj: Any, name: str) -> list[str]:
    """The shard files of one column, by :func:`clipcore.sources.list_shards` (distributed runs read files)."""
    if not isinstance(obj, (list, tuple, str, os.PathLike)):
        raise ValueError(f"{name}: distributed scoring reads shard files; got {type(obj).__name__} "
                         "(pass a shard directory, a glob or a list of .npy / .npz / .parquet paths)")
    return list_shards(obj, name)


def shard_table_of(images: Any, texts: Any = None, *, single: bool = False, images_key: str | None = None,
                   texts_key: str | None = None, skip_incomplete: bool = False) -> ShardTable:
    """The shards of a data set as every process lists them, in dealing order.

    A folder of a known layout (clipcore manifest, clip-retrieval / LAION, DataComp, Parquet), or
    clip-retrieval files, gives its shards paired by number (:func:`clipcore.sources.shard_table`, with the
    same keywords); other directories / globs / lists of ``.npy`` / ``.npz`` / ``.parquet`` files are paired
    file by file with ``texts`` (the same count), or alone (``texts=None``: Vendi).
    """
    if not isinstance(images, (list, tuple, str, os.PathLike)):
        _files(images, "images")  # the error for what is not files
    table = shard_table(images, texts, single=single, images_key=images_key, texts_key=texts_key,
                        skip_incomplete=skip_incomplete)
    if table is not None:
        return table
    img = _files(images, "images")
    txt = [None] * len(img) if texts is None or single else _files(texts, "texts")
    if len(txt) != len(img):
        raise ValueError(f"texts: {len(txt)} shard files but images has {len(img)}; pair them file by file")
    shards = [Shard(k, open_part(a, "images", key=images_key),
                    None if b is None else open_part(b, "texts", role="texts", key=texts_key), None, a, b)
              for k, (a, b) in enumerate(zip(img, txt))]
    return ShardTable("files", os.fspath(images) if isinstance(images, (str, os.PathLike)) else "", shards, None)


def shard_files(images: Any, texts: Any = None, **keys: Any) -> list[tuple[str, str | None]]:
    """The ``(images_file, texts_file)`` of each shard, in dealing order (:func:`shard_table_of`; ``texts_file``
    None for one set; DataComp / Parquet: the same file twice)."""
    return [(s.image_file, s.text_file) for s in shard_table_of(images, texts, **keys).shards]


def allreduce_sums(tree: Any, info: ProcessInfo | None = None) -> Any:
    """Σ over processes of a small pytree of arrays / numbers (float64; same result on every process)."""
    info = info or process_info()
    leaves, treedef = jax.tree.flatten(tree)
    if info.num_processes == 1:
        return tree
    from jax.experimental import multihost_utils

    host = [np.asarray(v, np.float64) for v in leaves]
    try:
        with jax.enable_x64(True):
            gathered = multihost_utils.process_allgather(host)
    except Exception as exc:  # the XLA/gloo error of a dead or unreachable peer
        raise RuntimeError(
            f"distributed: process {info.process_id} of {info.num_processes} could not add the sums across "
            f"processes; a peer process died or is unreachable ({type(exc).__name__}: {str(exc)[:300]})"
        ) from exc
    out = []
    for v, g in zip(leaves, gathered):
        s = np.asarray(g, np.float64).reshape((info.num_processes,) + np.shape(v)).sum(axis=0)
        out.append(int(round(float(s))) if isinstance(v, (int, np.integer)) else s)
    return jax.tree.unflatten(treedef, out)


class DistributedSource(PairedSource):
    """The whole data set for sampling (σ, landmarks), this process's shards for the accumulation pass.

    :func:`clipcore.sce` / :func:`clipcore.vendi` stream it (never read it
    whole), and call :meth:`reduce_sums` on the sums of the pass.

    Attributes:
      local: the process's own shards (a :class:`PairedSource`).
      shards: their indices in :func:`shard_files` order.
      info: :class:`ProcessInfo`.
      pairing, layout: as the whole set's :class:`~clipcore.sources.PairedSource`.
    """

    distributed = True

    def __init__(self, full: PairedSource, local: PairedSource, shards: list[int], info: ProcessInfo):
        super().__init__(full.images, full.texts)
        self.local, self.shards, self.info = local, shards, info
        self.pairing, self.layout = full.pairing, full.layout

    def read_blocks(self, block_rows: int, *, nonzero: bool):
        """The validated blocks of this process's own shards (the accumulation pass reads only those)."""
        return self.local.read_blocks(block_rows, nonzero=nonzero)

    def reduce_sums(self, sums: Any, n: int):
        """``(Σ_p sums_p, Σ_p n_p)`` across the processes."""
        return allreduce_sums((sums, n), self.info)


def _paired(shards: list, paired: bool) -> PairedSource:
    return PairedSource(RowSource([s.images for s in shards], "images"),
                        RowSource([s.texts for s in shards], "texts") if paired else None)


def distributed_source(images: Any, texts: Any = None, *, info: ProcessInfo | None = None, single: bool = False,
                       images_key: str | None = None, texts_key: str | None = None,
                       skip_incomplete: bool = False) -> DistributedSource:
    """This process's :class:`DistributedSource` of a sharded data set (see :func:`shard_table_of`).

    Args:
      images, texts: the data set (``texts`` None: from the same folder / files, or one set).
      info: this process's place (default :func:`process_info`).
      single: one set (Vendi, RKE): the images column only.
      images_key, texts_key, skip_incomplete: as :func:`clipcore.sources.paired_source`.
    """
    info = info or process_info()
    table = shard_table_of(images, texts, single=single, images_key=images_key, texts_key=texts_key,
                           skip_incomplete=skip_incomplete)
    mine = assign_shards(len(table.shards), info.num_processes, info.process_id)
    paired = table.shards[0].texts is not None
    full = PairedSource.from_table(table, single=not paired) if table.pairing is not None else _paired(table.shards,
                                                                                                       paired)
    local = _paired([table.shards[i] for i in mine], paired)
    return DistributedSource(full, local, mine, info)


_SOURCE_KEYS = ("images_key", "texts_key", "skip_incomplete")


def _split(kwargs: dict) -> tuple[dict, dict]:
    """The keywords of the source apart from the score's."""
    return {k: kwargs.pop(k) for k in _SOURCE_KEYS if k in kwargs}, kwargs


def sce(images: Any, texts: Any = None, **kwargs):
    """:func:`clipcore.sce` of a sharded data set, accumulated across the processes.

    Call :func:`initialize` first (or run as one process). Every process
    gets the same :class:`clipcore.SCEResult`; write it from process 0
    (:func:`is_writer`). Options as :func:`clipcore.sce` (primal paths:
    cosine, ``rff_features=``, ``landmarks=``), plus ``images_key``, ``texts_key``, ``skip_incomplete``
    for the source.
    """
    from .scores import sce as _sce

    keys, kwargs = _split(dict(kwargs))
    return _sce(distributed_source(images, texts, **keys), **kwargs)


def vendi(x: Any, **kwargs):
    """:func:`clipcore.vendi` of sharded files, accumulated across the processes (``images_key``,
    ``skip_incomplete`` for the source)."""
    from .scores import vendi as _vendi

    keys, kwargs = _split(dict(kwargs))
    return _vendi(distributed_source(x, single=True, **keys), **kwargs)


def rke(x: Any, **kwargs):
    """:func:`clipcore.rke` of sharded files, accumulated across the processes (``images_key``,
    ``skip_incomplete`` for the source)."""
    from .scores import rke as _rke

    keys, kwargs = _split(dict(kwargs))
    return _rke(distributed_source(x, single=True, **keys), **kwargs)
