"""Sums as a monoid: the moments of a set of rows, added over sets, blocks and devices, and scored.

A memory bank is a precomputed :class:`Moments`; the score of bank ∪ batch,
``sce_from_moments(bank + moments(batch_images, batch_texts, ...))``, and its gradient with respect to the
batch cost O(b·D² + D³): the bank's rows are never touched again.

The sums are :func:`clipcore.covariance.joint_sums` / ``single_sums`` (the host API's own kernels: the
compiled core on CPU, three XLA dots elsewhere; float32 sums Kahan-compensated over blocks). Rows
sharded over a device mesh (``mesh=``, or inputs whose type carries an explicit row sharding) are summed
per device inside :func:`jax.shard_map` and added with one :func:`jax.lax.psum`: the ``[n, d]`` rows are
never gathered.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.custom_derivatives import SymbolicZero
from jax.sharding import PartitionSpec as P

from ..covariance import default_block_size, joint_sums, single_sums
from ..entropy import DEFAULT_CLAMP
from ..kernels import features
from .setup import KernelSpec, backend_of, kernel_spec, resolve_dtype, sigma_and_omega
from .spectra import sce_from_covariances, vendi_from_covariance
from .types import Moments, SCEScores, VendiScores

_HI = jax.lax.Precision.HIGHEST

__all__ = ["moments", "accumulate", "sums", "sce_from_moments", "vendi_from_moments", "row_axes"]


def _block(n: int, width: int, fmap, backend: str, acc, block_size: int | None) -> int:
    """Rows per block: as :func:`clipcore.covariance.joint_covariances` (the packed core takes all rows)."""
    if block_size is not None:
        return int(block_size)
    if backend == "ffi" and fmap.kind in ("cosine", "identity") and jnp.dtype(acc) == jnp.float64:
        return max(n, 1)
    return default_block_size(max(n, 1), width)


def row_axes(mesh: Any, *arrays: jax.Array) -> tuple[Any, Any] | None:
    """``(mesh, axes)`` the rows are sharded over: every axis of a given ``mesh``; else the row axes of an
    explicit sharding in the inputs' type (``jax.typeof(x).sharding``, jax's Explicit mesh axes); else None."""
    if mesh is not None:
        if not isinstance(mesh, Mesh):
            raise ValueError(f"mesh: expected a jax.sharding.Mesh, got {type(mesh).__name__}")
        names = tuple(mesh.axis_names)
        return mesh, names[0] if len(names) == 1 else names
    try:
        sharding = jax.typeof(arrays[0]).sharding
    except (AttributeError, TypeError):  # pragma: no cover - NumPy inputs
        return None
    spec = getattr(sharding, "spec", None)
    if spec is None or len(spec) == 0 or spec[0] is None or sharding.mesh.empty:
        return None
    return sharding.mesh, spec[0]


def _axis_size(mesh, axes) -> int:
    names = axes if isinstance(axes, tuple) else (axes,)
    size = 1
    for a in names:
        size *= mesh.shape[a]
    return size


def _gram_terms(a, da, b, db, acc):
    """The tangent of Σ aᵀ b: daᵀ b + aᵀ db (None: a zero tangent, its GEMM skipped); for Σ aᵀ a one GEMM,
    s + sᵀ with s = daᵀ a (its transpose in a gradient is one GEMM too)."""
    dims = (((0,), (0,)), ((), ()))
    if a is b:
        if da is None:
            return jnp.zeros((a.shape[1], a.shape[1]), acc)
        s = jax.lax.dot_general(da, a, dims, precision=_HI, preferred_element_type=acc)
        return s + s.T
    out = None
    if da is not None:
        out = jax.lax.dot_general(da, b, dims, precision=_HI, preferred_element_type=acc)
    if db is not None:
        term = jax.lax.dot_general(a, db, dims, precision=_HI, preferred_element_type=acc)
        out = term if out is None else out + term
    return jnp.zeros((a.shape[1], b.shape[1]), acc) if out is None else out


def _local_sums(fmap, feature_dtype, acc_dtype, backend, width, block_size):
    """The per-device sums as a ``jax.custom_jvp`` function ``f(omega, *rows)``.

    Forward: :func:`clipcore.covariance.joint_sums` / ``single_sums`` (the compiled core on CPU). Tangent:
    the GEMMs dΦ_Aᵀ Φ_B + Φ_Aᵀ dΦ_B of the features' tangents (one GEMM, s + sᵀ, for Φᵀ Φ), skipping the
    inputs that are not differentiated (a batch's texts, ω): the gradient of SCE with respect to the images
    costs two [n, D_X] × [D, D_X] GEMMs (Vendi's one), not the [n, D_T + D_X] joint Gram's.
    """
    opts = dict(fmap=fmap, feature_dtype=feature_dtype, acc_dtype=acc_dtype, backend=backend)

    def primal(om, *rows):
        blk = _block(rows[0].shape[0], width, fmap, backend, acc_dtype, block_size)
        if len(rows) == 2:
            return joint_sums(rows[0], rows[1], om, block=blk, **opts)
        return (single_sums(rows[0], om, block=blk, **opts),)

    f = jax.custom_jvp(primal)

    def rule(primals, tangents):
        om, rows = primals[0], primals[1:]
        dom, drows = tangents[0], tangents[1:]
        phis, dphis = [], []
        for r, dr in zip(rows, drows):
            phi, dphi = _feature_jvp(r, dr, om, dom, fmap, feature_dtype)
            phis.append(phi)
            dphis.append(dphi)
        out = f(om, *rows)
        if len(rows) == 1:
            return out, (_gram_terms(phis[0], dphis[0], phis[0], dphis[0], acc_dtype),)
        (pt, px), (dt, dx) = phis, dphis
        return out, tuple(_gram_terms(a, da, b, db, acc_dtype)
                          for a, da, b, db in ((pt, dt, pt, dt), (pt, dt, px, dx), (px, dx, px, dx)))

    f.defjvp(rule, symbolic_zeros=True)
    return f


def _feature_jvp(rows, drows, om, dom, fmap, feature_dtype):
    """``(φ(rows), dφ)``: the features and their tangent (None when neither rows nor ω are differentiated)."""
    def feats(r, o):
        return features(r.astype(feature_dtype), fmap, o)

    zr, zo = isinstance(drows, SymbolicZero), om is None or isinstance(dom, SymbolicZero)
    if zr and zo:
        return feats(rows, om), None
    if zo:
        return jax.jvp(lambda r: feats(r, om), (rows,), (drows,))
    if zr:
        return jax.jvp(lambda o: feats(rows, o), (om,), (dom,))
    return jax.jvp(feats, (rows, om), (drows, dom))


def sums(images, texts, omega, fmap, *, feature_dtype, acc_dtype, backend: str, block_size: int | None = None,
         mesh: Any = None) -> tuple:
    """Unnormalised (Σφ(t)ᵀφ(t), Σφ(t)ᵀφ(x), Σφ(x)ᵀφ(x)) (texts given) or (Σφ(x)ᵀφ(x),), in ``acc_dtype``.

    Differentiable in the rows and ω (the tangent skips what is not differentiated, see
    :func:`_local_sums`).

    Args:
      images: ``[n, d_x]``; texts: ``[n, d_t]`` or None; omega: ``[d, D]`` (RFF) or None.
      fmap: :class:`clipcore.kernels.FeatureMap`; feature_dtype, acc_dtype, backend: as
        :func:`clipcore.covariance.joint_sums`.
      block_size: rows per block (per device when sharded).
      mesh: a mesh whose every axis shards the rows (or None: see :func:`row_axes`).
    """
    arrays = (images,) if texts is None else (texts, images)
    sharded = row_axes(mesh, *arrays)
    width = sum(fmap.dim(a.shape[1]) for a in arrays)
    local = _local_sums(fmap, jnp.dtype(feature_dtype), jnp.dtype(acc_dtype), backend, width, block_size)
    if sharded is None:
        return local(omega, *arrays)
    sm, axes = sharded
    k, n = _axis_size(sm, axes), arrays[0].shape[0]
    if n % k:
        raise ValueError(f"images: {n} rows do not split evenly over the {k} devices sharding them; pad or trim "
                         f"to a multiple of {k} (clipcore.sharding.shard_rows handles host arrays)")

    def per_device(om, *rows):
        return jax.lax.psum(local(om, *rows), axes)

    fn = jax.shard_map(per_device, mesh=sm, in_specs=(P(),) + (P(axes, None),) * len(arrays), out_specs=P(),
                       check_vma=False)
    return fn(omega, *arrays)


def moments(images: jax.Array, texts: jax.Array | None = None, *, kernel: str = "cosine", sigma: Any = None,
            omega: Any = None, key: Any = None, rff_features: int | None = None, dtype: Any = None,
            backend: str = "auto", block_size: int | None = None, mesh: Any = None) -> Moments:
    """The moments (n and the D×D feature sums) of paired rows, or of one set (``texts=None``).

    Moments add: ``moments(a) + moments(b)`` equals ``moments`` of the rows of a and b together (same
    feature map), ``jax.lax.psum`` adds them over devices. Score them with :func:`sce_from_moments` /
    :func:`vendi_from_moments`.

    Args:
      images: ``[n, d_x]`` image embeddings; texts: ``[n, d_t]`` their prompts' embeddings, or None.
      kernel: ``"cosine"`` (φ = x/‖x‖) or ``"gaussian"`` through random Fourier features (SPEC.md:
        φ(x) = [cos xω, sin xω]/√D): give ``omega`` (``[d, D]``, already scaled by 1/σ), or ``key``,
        ``rff_features`` and ``sigma`` (sums of different sets must share ω, so σ is not estimated here).
      dtype: None, ``"float32"`` or ``"float64"`` (see :mod:`clipcore.functional`).
      backend: ``"auto"`` (the compiled core on CPU), ``"ffi"`` or ``"jax"``.
      block_size: rows per accumulation block.
      mesh: a :class:`jax.sharding.Mesh` whose axes shard the rows (n divisible by its size).

    Returns:
      :class:`Moments`: ``n`` and ``[D_T, D_T]``, ``[D_T, D_X]``, ``[D_X, D_X]`` sums (``tt``/``tx`` None
      for one set), in the accumulation dtype (float64 with x64, else float32).
    """
    spec = kernel_spec(kernel, sigma=sigma, omega=omega, key=key, rff_features=rff_features)
    if spec.kind == "exact":
        raise ValueError("kernel: moments need a finite feature map: the cosine kernel, or the Gaussian kernel "
                         "through random Fourier features (omega= or rff_features=); the exact Gaussian kernel "
                         "is n×n")
    if spec.draw and sigma is None:
        raise ValueError("sigma: moments of different sets add only with one feature map; pass sigma= with key= "
                         "and rff_features= (or omega=)")
    prec = resolve_dtype(dtype, images, texts)
    return accumulate(images, texts, spec, prec, sigma, omega, key, backend_of(backend), block_size, mesh)


def accumulate(images, texts, spec: KernelSpec, prec, sigma, omega, key, backend, block_size, mesh) -> Moments:
    """:func:`moments` after validation (also the primal step of :func:`clipcore.functional.sce`)."""
    x = jnp.asarray(images, prec.feature)
    t = None if texts is None else jnp.asarray(texts, prec.feature)
    _, om = sigma_and_omega(spec, x, sigma, omega, key, prec.acc)
    s = sums(x, t, om, spec.fmap, feature_dtype=prec.feature, acc_dtype=prec.acc, backend=backend,
             block_size=block_size, mesh=mesh)
    n = jnp.asarray(x.shape[0], prec.acc)
    return Moments(n, None, None, s[0]) if t is None else Moments(n, *s)


def sce_from_moments(m: Moments, *, rtol: Any = None, ridge: Any = 0.0,
                     clamp: float | None = DEFAULT_CLAMP) -> SCEScores:
    """SCE of paired :class:`Moments` (C = the sums / n; :func:`clipcore.functional.sce_from_covariances`).

    Args:
      m: paired moments (``moments(images, texts, ...)``, possibly a sum of several).
      rtol, ridge, clamp: as in :func:`clipcore.functional.sce`.

    Returns:
      :class:`SCEScores` with ``[D_X]`` spectra (the primal form, whatever n).
    """
    return sce_from_covariances(m.covariances(), rtol=rtol, ridge=ridge, clamp=clamp)


def vendi_from_moments(m: Moments, *, order: float = 1.0, clamp: float | None = DEFAULT_CLAMP) -> VendiScores:
    """Vendi score of order α of the images' moments (C_XX = Σφ(x)ᵀφ(x) / n; paired moments use their images).

    Args:
      m: :class:`Moments` (of one set, or paired).
      order: α > 0 or ``inf`` (2: RKE). clamp: as in :func:`clipcore.functional.vendi`.

    Returns:
      :class:`VendiScores` with ``[D]`` eigenvalues.
    """
    return vendi_from_covariance(m.xx / m.n, order=order, clamp=clamp)
