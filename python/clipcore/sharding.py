"""Row-sharded accumulation of the primal covariances and Nyström Grams under a device mesh.

The n rows are split over the devices of a :class:`jax.sharding.Mesh` (every
mesh axis together shards the rows); each device runs the *same* per-block
kernels as the one-device path (:func:`clipcore.covariance.joint_sums`,
``single_sums`` and :func:`clipcore.nystrom.nystrom_accumulator`, i.e. the compiled FFI
ops ``joint_gram_accumulate`` / ``gram_accumulate`` / ``nystrom_accumulate``
on CPU) over its own rows inside :func:`jax.shard_map`, and one
:func:`jax.lax.psum` adds the D×D (or R×R) sums. The inputs are never
gathered: the compiled program holds one all-reduce of the D×D result and no
all-gather (tests/test_sharding.py reads the HLO).

Rows that do not divide evenly: with k devices and n = k·b + e rows
(0 < e < k), each device accumulates b rows of the main block and then one
*extra* row — the last e rows of the input for devices 0..e−1, a zero
padding row for the others — into a separate D×D term that is kept only
where a per-device mask says the row is real (``jnp.where``, so the NaN
features of a zero row under the cosine map, or the non-zero RFF / Nyström
features of a zero row, never reach the sums). The sums are divided by the
true n. (The same as padding to ⌈n/k⌉ rows per device, laid out so that no
device slices or copies its block.)

Works with meshes of either axis type (jax 0.10's ``AxisType.Explicit``, the
default of :func:`jax.make_mesh`, or ``Auto``). The multi-process variant is
:mod:`clipcore.distributed`.
"""

from __future__ import annotations

import functools
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from . import nystrom as N
from ._options import resolve_backend, x64
from .covariance import Covariances, default_block_size, joint_sums as _local_joint_sums
from .covariance import single_sums as _local_single_sums
from .kernels import FeatureMap
from .landmarks import check_float_rows

__all__ = [
    "AXIS",
    "resolve_mesh",
    "ShardedRows",
    "shard_rows",
    "joint_sums",
    "single_sums",
    "joint_covariances",
    "feature_covariance",
    "nystrom_gram",
]

#: Axis name of the meshes :func:`resolve_mesh` builds from a device count.
AXIS = "rows"


def resolve_mesh(mesh: Any) -> Mesh | None:
    """``None``, a :class:`jax.sharding.Mesh`, or a device count k → a mesh (or None).

    An int k means ``jax.make_mesh((k,), ("rows",))`` over the first k of
    *this process's* devices (``jax.local_devices()``; on CPU, start Python
    with ``XLA_FLAGS=--xla_force_host_platform_device_count=K`` to have K).
    In a multi-process job (:mod:`clipcore.distributed`) each process shards
    its own rows over its own devices and the processes' sums are added
    afterwards, so a mesh must hold only devices this process can address.

    Raises:
      ValueError: k < 1, more devices than this process has, a mesh with
        devices of other processes, or another type.
    """
    if mesh is None:
        return None
    if isinstance(mesh, Mesh):
        if mesh.size < 1:
            raise ValueError("mesh: the mesh has no devices")
        me = jax.process_index()
        foreign = sorted({d.process_index for d in mesh.devices.flat if d.process_index != me})
        if foreign:
            raise ValueError(
                f"mesh: the mesh holds devices of processes {foreign} (this is process {me}); clipcore shards "
                f"each process's rows over its own devices and adds the processes' sums with "
                f"clipcore.distributed: pass a mesh of jax.local_devices() or mesh=k"
            )
        return mesh
    if isinstance(mesh, (int, np.integer)) and not isinstance(mesh, bool):
        k = int(mesh)
        local = jax.local_devices()
        if k < 1:
            raise ValueError(f"mesh: expected a number of devices >= 1, got {k}")
        if k > len(local):
            where = f" on process {jax.process_index()}" if jax.process_count() > 1 else ""
            raise ValueError(
                f"mesh: asked for {k} devices but JAX sees {len(local)}{where} ({jax.default_backend()}); on CPU "
                f"start Python with XLA_FLAGS=--xla_force_host_platform_device_count={k}"
            )
        return jax.make_mesh((k,), (AXIS,), devices=local[:k])
    raise ValueError(f"mesh: expected a jax.sharding.Mesh or a number of devices, got {type(mesh).__name__}")


def _axes(mesh: Mesh):
    names = tuple(mesh.axis_names)
    return names[0] if len(names) == 1 else names


class ShardedRows(NamedTuple):
    """Row-sharded copies of paired arrays, with the rows that do not divide evenly set apart.

    With k devices and n = k·b' + e rows (0 ≤ e < k): ``arrays`` hold the
    first k·b' rows, b' per device; when e > 0, ``extra`` holds the last e
    rows plus k − e zero rows, one row per device, and ``valid[j]`` says
    whether device j's extra row is real. (Same rows as padding every device
    to ⌈n/k⌉ rows, laid out so that no device slices or copies its block.)

    Attributes:
      arrays: ``[k·b', d_i]`` each, sharded over the mesh by rows.
      extra: ``[k, d_i]`` each, sharded (one row per device), or ``()``.
      valid: ``[k]`` bool, sharded.
      n: the true number of rows.
      per_device: b'.
    """

    arrays: tuple
    extra: tuple
    valid: jax.Array
    n: int
    per_device: int

    @property
    def padded(self) -> bool:
        return bool(self.extra)

    @property
    def operands(self) -> tuple:
        """``arrays + extra``: what the sharded kernels take."""
        return tuple(self.arrays) + tuple(self.extra)


def shard_rows(mesh: Mesh, *arrays: Any) -> ShardedRows:
    """Split the rows of ``arrays`` (same n) over ``mesh``; the uneven rest goes to masked extra rows."""
    k = mesh.size
    n = int(arrays[0].shape[0])
    b, e = divmod(n, k)
    axes = _axes(mesh)
    row_sharding = NamedSharding(mesh, P(axes, None))
    valid = jax.device_put(np.arange(k) < e if e else np.ones(k, bool), NamedSharding(mesh, P(axes)))
    if e == 0:
        return ShardedRows(tuple(jax.device_put(a, row_sharding) for a in arrays), (), valid, n, b)
    main, extra = [], []
    for a in arrays:
        main.append(jax.device_put(a[: k * b], row_sharding))
        h = np.asarray(a[k * b:])
        buf = np.zeros((k, h.shape[1]), h.dtype)
        buf[:e] = h
        extra.append(jax.device_put(buf, row_sharding))
    return ShardedRows(tuple(main), tuple(extra), valid, n, b)


def _masked(local_fn, operands, valid, padded: bool):
    """``local_fn`` over a device's rows, plus its extra row's term kept only where ``valid``.

    The extra row's term is selected with ``jnp.where`` (not multiplied), so
    the NaN features of a zero row under the cosine map, or the non-zero RFF
    / Nyström features of a zero row, never reach the sums.
    """
    if not padded:
        return local_fn(*operands)
    h = len(operands) // 2
    head = local_fn(*operands[:h])
    tail = local_fn(*operands[h:])
    return jax.tree.map(lambda a, t: a + jnp.where(valid[0], t, jnp.zeros_like(t)), head, tail)


def _shard_map(mesh, fn, n_sharded: int, n_replicated: int):
    axes = _axes(mesh)
    in_specs = (P(axes),) * n_sharded + (P(axes),) + (P(),) * n_replicated
    return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=P(), check_vma=False)


@functools.partial(
    jax.jit,
    static_argnames=("mesh", "fmap", "block", "feature_dtype", "acc_dtype", "backend", "padded", "paired"),
)
def _sharded_sums(arrays, valid, omega, *, mesh, fmap, block, feature_dtype, acc_dtype, backend, padded, paired):
    opts = dict(fmap=fmap, feature_dtype=feature_dtype, acc_dtype=acc_dtype, backend=backend)
    rest = () if omega is None else (omega,)

    def local(*ops):
        arrs, v = ops[: len(arrays)], ops[len(arrays)]
        om = ops[len(arrays) + 1] if omega is not None else None

        def fn(*rows):
            blk = max(1, min(block, rows[0].shape[0]))
            if paired:
                return _local_joint_sums(rows[0], rows[1], om, block=blk, **opts)
            return _local_single_sums(rows[0], om, block=blk, **opts)

        return jax.lax.psum(_masked(fn, arrs, v, padded), _axes(mesh))

    return _shard_map(mesh, local, len(arrays), len(rest))(*arrays, valid, *rest)


def _block_for(sh: ShardedRows, width: int, block_size: int | None, fmap: FeatureMap, backend: str, acc_dtype) -> int:
    rows = max(sh.per_device, 1)
    if block_size is not None:
        return int(block_size)
    if backend == "ffi" and fmap.kind in ("cosine", "identity") and jnp.dtype(acc_dtype) == jnp.float64:
        return rows  # as the one-device path: the packed core chunks and threads internally
    return default_block_size(rows, width)


def joint_sums(texts, images, fmap: FeatureMap, omega=None, *, mesh: Mesh, block_size: int | None = None,
               feature_dtype=jnp.float32, acc_dtype=jnp.float64, backend: str = "jax"):
    """Unnormalised (Σφ(t)ᵀφ(t), Σφ(t)ᵀφ(x), Σφ(x)ᵀφ(x)) over rows sharded on ``mesh``, and n.

    Args:
      texts: ``[n, d_t]``; images: ``[n, d_x]`` (paired rows).
      fmap, omega, block_size, feature_dtype, acc_dtype, backend: as in
        :func:`clipcore.covariance.joint_covariances` (``block_size`` is
        rows per block on each device).
      mesh: the device mesh.

    Returns:
      ``((tt, tx, xx), n)``, replicated on the mesh's devices.
    """
    sh = shard_rows(mesh, texts, images)
    width = fmap.dim(texts.shape[1]) + fmap.dim(images.shape[1])
    block = _block_for(sh, width, block_size, fmap, backend, acc_dtype)
    sums = _sharded_sums(sh.operands, sh.valid, omega, mesh=mesh, fmap=fmap, block=block,
                         feature_dtype=jnp.dtype(feature_dtype), acc_dtype=jnp.dtype(acc_dtype), backend=backend,
                         padded=sh.padded, paired=True)
    return sums, sh.n


def single_sums(x, fmap: FeatureMap, omega=None, *, mesh: Mesh, block_size: int | None = None,
                feature_dtype=jnp.float32, acc_dtype=jnp.float64, backend: str = "jax"):
    """Unnormalised Σφ(x)ᵀφ(x) (``[D, D]``) over rows of ``x: [n, d]`` sharded on ``mesh``, and n."""
    sh = shard_rows(mesh, x)
    rows = max(sh.per_device, 1)
    block = int(block_size or default_block_size(rows, fmap.dim(x.shape[1])))
    g = _sharded_sums(sh.operands, sh.valid, omega, mesh=mesh, fmap=fmap, block=block,
                      feature_dtype=jnp.dtype(feature_dtype), acc_dtype=jnp.dtype(acc_dtype), backend=backend,
                      padded=sh.padded, paired=False)
    return g, sh.n


def joint_covariances(texts, images, fmap: FeatureMap, omega=None, *, mesh: Mesh, **kwargs) -> Covariances:
    """:func:`clipcore.covariance.joint_covariances` with the rows sharded on ``mesh`` (divided by the true n)."""
    (tt, tx, xx), n = joint_sums(texts, images, fmap, omega, mesh=mesh, **kwargs)
    return Covariances(tt / n, tx / n, xx / n)


def feature_covariance(x, fmap: FeatureMap, omega=None, *, mesh: Mesh, **kwargs) -> jax.Array:
    """:func:`clipcore.covariance.feature_covariance` with the rows sharded on ``mesh``."""
    g, n = single_sums(x, fmap, omega, mesh=mesh, **kwargs)
    return g / n


# ------------------------------------------------------------------ Nyström
def _rows_array(a: Any):
    """A jax.Array as is; anything else as a host NumPy array (no device copy before sharding)."""
    return a if isinstance(a, jax.Array) else np.asarray(a)


def _threads_per_device(mesh: Mesh) -> int:
    """CPU threads for one device's compiled call when the mesh's CPU devices share this host's cores."""
    cpus = int(os.environ.get("CLIPCORE_NUM_THREADS") or len(os.sched_getaffinity(0)))
    local = sum(1 for dev in mesh.devices.flat if dev.process_index == jax.process_index() and dev.platform == "cpu")
    return max(1, cpus // max(local, 1))


@functools.partial(jax.jit, static_argnames=("mesh", "block", "strategy", "backend", "paired", "padded"))
def _sharded_nystrom(arrays, valid, L, W, sig, *, mesh, block, strategy, backend, paired, padded):
    threads = _threads_per_device(mesh)

    def local(*ops):
        arrs, v, L_, W_, s_ = ops[: len(arrays)], ops[len(arrays)], *ops[len(arrays) + 1:]

        def fn(*rows):
            # the one-device fold (the core's threads split between the devices sharing the CPUs); the sum
            # is finalised (Wᵀ M W) once, after the psum, not per device
            blk = max(1, min(block, rows[0].shape[0]))
            return N.nystrom_accumulator(rows, L_, W_, s_, block=blk, strategy=strategy, backend=backend,
                                         num_threads=threads)

        return jax.lax.psum(_masked(fn, arrs, v, padded), _axes(mesh))

    return _shard_map(mesh, local, len(arrays), 3)(*arrays, valid, L, W, sig)


def nystrom_gram(x, nmap, *, mesh: Mesh, images=None, block_size: int | None = None, backend: str = "auto",
                 strategy: str = "auto", dtype=None, finalize: bool = True):
    """:func:`clipcore.nystrom.nystrom_gram` (or ``nystrom_joint_gram`` with ``images``) sharded on ``mesh``.

    Args:
      x: ``[n, d]`` rows (the texts when ``images`` is given).
      nmap: :class:`clipcore.nystrom.NystromMap`.
      mesh: the device mesh.
      images: ``[n, d]`` image rows paired with ``x``, or None.
      block_size, backend, strategy, dtype: as in :func:`clipcore.nystrom.nystrom_gram`.
      finalize: return Σ Zᵀ Z; ``False``: the raw accumulator of
        :func:`clipcore.nystrom.nystrom_update` (finish with
        :func:`clipcore.nystrom.nystrom_finalize`), for streaming.

    Returns:
      ``(G, n)``: Σ Zᵀ Z (``[r, r]``, or ``[2r, 2r]`` paired) float64, and n.
    """
    be = resolve_backend(backend)
    strat = N.resolve_strategy(strategy, be)
    with x64():
        sh, dt = _nystrom_rows(x, images, nmap, mesh, dtype)
        rows = max(sh.per_device, 1)
        block = N.default_block(rows, be, nmap.num_landmarks) if block_size is None else int(block_size)
        L, W, sig = N.cast_map(nmap, dt)
        Wc = W if strat == "whiten" else jnp.asarray(nmap.whitening, jnp.float64)
        g = _sharded_nystrom(sh.operands, sh.valid, L, Wc, sig, mesh=mesh, block=block, strategy=strat,
                             backend=be, paired=images is not None, padded=sh.padded)
        # one finalisation on one device (inside the SPMD program every device would repeat it)
        one = jax.sharding.SingleDeviceSharding(mesh.devices.flat[0])
        g = jax.device_put(g, one)
        if not finalize:
            return g, sh.n
        W64 = jax.device_put(jnp.asarray(nmap.whitening, jnp.float64), one)
        return N.finalize_gram(g, W64, strategy=strat, paired=images is not None), sh.n


def _nystrom_rows(x, images, nmap, mesh, dtype):
    """Checked rows (host arrays stay on the host until each device's rows are put on it) and the dtype."""
    x = _rows_array(x)
    check_float_rows(x)
    if images is not None:
        images = _rows_array(images)
        check_float_rows(images, "images")
        if images.shape != x.shape:
            raise ValueError(f"images: shape {list(images.shape)} differs from texts' {list(x.shape)}")
    if x.shape[1] != nmap.landmarks.shape[1]:
        raise ValueError(f"x: dimension {x.shape[1]} differs from the landmarks' {nmap.landmarks.shape[1]}")
    dt = jnp.dtype(dtype) if dtype is not None else jnp.dtype(x.dtype)
    arrays = tuple(a if a.dtype == dt else a.astype(dt) for a in ((x,) if images is None else (x, images)))
    return shard_rows(mesh, *arrays), dt
