"""The primal, dual and streamed passes of one call: host loops over blocks, device queues, progress.

:func:`stream_sums` is the streamed pass (its host fast path sends host blocks of the cosine / identity
map straight to the compiled core, with no device copy); :func:`primal_covariances` the in-memory primal
sums (one device or a mesh); :func:`dual_spectra` / :func:`dual_image_eigs` the n×n forms (the Gram matrices
here, the dual Schur spectra :mod:`clipcore.functional`'s).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import _ffi
from .. import functional as F
from .. import sharding as SH
from .._progress import bar
from ..covariance import (Covariances, block_features, column_cosine, default_block_size, dual_gram_jit,
                          feature_covariance, joint_covariances, joint_sums, single_sums)
from ..dual_lowrank import (MAX_KEPT_FRACTION, kept_eigenpairs, repeated_feature_pairs, repeated_kept_pairs,
                            schur_dual_lowrank, schur_primal_lowrank, schur_projected)
from ..schur import EPSILON, SchurSpectra, desc_eigvalsh, pad, schur_dual
from ..kernels import FeatureMap
from .inputs import KernelSetup, reduce_sums

__all__ = ["stream_sums", "streamed_covariances", "streamed_covariance", "primal_covariances",
           "primal_covariance", "dual_static", "dual_spectra", "dual_grams", "dual_schur", "primal_schur",
           "projected_applies", "projected_primal_schur", "LOWRANK_ROWS", "LOWRANK_FEATURES", "FEATURE_BYTES",
           "REPEATED_FRACTION", "distinct_prompts", "row_keys", "dual_image_eigs", "image_eigs"]


def _host_path(paired: bool, mesh, backend: str, fmap, acc_dtype) -> bool:
    return (paired and mesh is None and backend == "ffi" and fmap.kind in ("cosine", "identity")
            and jnp.dtype(acc_dtype) == jnp.float64 and _ffi.host_entry_available("joint_gram_host"))


def stream_sums(blocks, fmap, omega=None, *, paired: bool = True, feature_dtype=jnp.float64,
                acc_dtype=jnp.float64, backend: str = "jax", progress=None, mesh=None):
    """Unnormalised second moments over an iterator of host blocks.

    Each block (``clipcore.sources.Block``: images ``[b, d_x]``, texts ``[b, d_t]``) goes through the
    same compiled kernel as the in-memory path; all blocks but the last share one shape, so it compiles
    once (twice with a ragged tail). At most two blocks are in flight: the host never runs ahead of the
    device by more than one block, which bounds memory.

    Args:
      blocks: iterable of blocks; ``paired=False`` uses only ``images``.
      progress: an object with ``update(rows)`` (e.g. a tqdm bar) or None.
      mesh: a :class:`jax.sharding.Mesh`: each block's rows are sharded over its devices
        (:mod:`clipcore.sharding`; one psum per block).

    Returns:
      ``(sums, n)``: ``(Σφ(t)ᵀφ(t), Σφ(t)ᵀφ(x), Σφ(x)ᵀφ(x))`` (paired) or ``Σφ(x)ᵀφ(x)``, and the
      number of rows seen.
    """
    opts = dict(feature_dtype=jnp.dtype(feature_dtype), acc_dtype=jnp.dtype(acc_dtype), backend=backend)
    if _host_path(paired, mesh, backend, fmap, acc_dtype):
        return _stream_sums_host(blocks, fmap, jnp.dtype(feature_dtype), progress)
    acc, n, previous = None, 0, None
    for blk in blocks:
        b = blk.images.shape[0]
        if mesh is not None:
            args = (blk.texts, blk.images) if paired else (blk.images,)
            sums, _ = (SH.joint_sums if paired else SH.single_sums)(*args, fmap, omega, mesh=mesh, **opts)
        elif paired:
            sums = joint_sums(blk.texts, blk.images, omega, fmap=fmap, block=b, **opts)
        else:
            sums = single_sums(blk.images, omega, fmap=fmap, block=b, **opts)
        acc = sums if acc is None else _tree_add(acc, sums)
        if previous is not None:
            jax.block_until_ready(previous)  # keep at most two blocks in flight
        previous = acc
        n += b
        if progress is not None:
            progress.update(b)
    if acc is None:
        raise ValueError("images: no rows to accumulate")
    return acc, n


def _stream_sums_host(blocks, fmap, feature_dtype, progress):
    """Cosine / identity sums of host blocks straight through the compiled core.

    Host blocks (files, large NumPy arrays) need no device: the packed Gram core (the same C++ as
    ``clipcore_joint_gram_accumulate``, with its own threads) reads them where they are, so no device
    copy, no per-block dispatch and no per-block (D×D) additions. The prefetch thread of the source keeps
    reading the next block meanwhile (the GIL is released).
    """
    dt = np.dtype(feature_dtype)
    G, n, d_t = None, 0, 0
    for blk in blocks:
        t = np.ascontiguousarray(blk.texts, dtype=dt)
        x = np.ascontiguousarray(blk.images, dtype=dt)
        if G is None:
            d_t = t.shape[1]
            G = np.zeros((d_t + x.shape[1],) * 2)
        _ffi.joint_gram_host(G, t, x, fmap.kind == "cosine")
        n += x.shape[0]
        if progress is not None:
            progress.update(x.shape[0])
    if G is None:
        raise ValueError("images: no rows to accumulate")
    with jax.enable_x64(True):
        Gj = jnp.asarray(G)
        return (Gj[:d_t, :d_t], Gj[:d_t, d_t:], Gj[d_t:, d_t:]), n


@jax.jit
def _tree_add(a, b):
    return jax.tree.map(jnp.add, a, b)


def _check_columns(tt, xx) -> None:
    for name, g in (("texts", tt), ("images", xx)):
        zero = np.flatnonzero(np.asarray(jnp.diagonal(g)) == 0)
        if zero.size:
            raise ValueError(f"{name}: column {int(zero[0])} has zero norm; the clip-dissection convention "
                             "normalises columns")


def streamed_covariances(src, setup: KernelSetup, precision, convention: str, execution, *, nonzero: bool,
                         desc: str) -> tuple[Covariances, int]:
    """C_TT, C_TX, C_XX of a paired source, by one streamed pass (added across processes), and n."""
    width = setup.fmap.dim(src.d_images or 1) + setup.fmap.dim(src.d_texts or src.d_images or 1)
    block = execution.block_size or default_block_size(src.n or (1 << 30), width)
    with bar(src.n, desc, execution.progress) as progress:
        (tt, tx, xx), n = stream_sums(
            src.blocks(block, nonzero=nonzero), setup.fmap, setup.omega, paired=True,
            feature_dtype=precision.feature, acc_dtype=precision.acc, backend=execution.backend,
            progress=progress, mesh=execution.mesh)
    (tt, tx, xx), n = reduce_sums(src, (tt, tx, xx), n)
    if setup.kernel == "cosine" and convention == "clip-dissection":
        _check_columns(tt, xx)
        return Covariances(*column_cosine(tt, tx, xx)), n
    return Covariances(tt / n, tx / n, xx / n), n


def streamed_covariance(src, setup: KernelSetup, precision, execution, *, nonzero: bool, desc: str):
    """C = Φᵀ Φ / n of one streamed set (added across processes), and n."""
    block = execution.block_size or default_block_size(src.n or (1 << 30), setup.fmap.dim(src.d_images))
    with bar(src.n, desc, execution.progress) as progress:
        g, n = stream_sums(src.blocks(block, nonzero=nonzero), setup.fmap, setup.omega, paired=False,
                           feature_dtype=precision.feature, acc_dtype=precision.acc, backend=execution.backend,
                           progress=progress, mesh=execution.mesh)
    g, n = reduce_sums(src, g, n)
    return g / n, n


def primal_covariances(setup: KernelSetup, precision, convention: str, execution, texts, images) -> Covariances:
    """The in-memory primal covariances (one device, or rows sharded over ``execution.mesh``)."""
    mesh = execution.mesh
    fn = joint_covariances if mesh is None else functools.partial(SH.joint_covariances, mesh=mesh)
    cov = fn(texts, images, setup.fmap, setup.omega, block_size=execution.block_size,
             feature_dtype=precision.feature, acc_dtype=precision.acc, backend=execution.backend)
    if setup.kernel == "cosine" and convention == "clip-dissection":
        n = texts.shape[0]
        return Covariances(*column_cosine(cov.tt * n, cov.tx * n, cov.xx * n))
    return cov


def primal_covariance(setup: KernelSetup, precision, execution, x) -> jax.Array:
    """C = Φᵀ Φ / n of one in-memory set (one device or a mesh)."""
    mesh = execution.mesh
    fn = feature_covariance if mesh is None else functools.partial(SH.feature_covariance, mesh=mesh)
    return fn(x, setup.fmap, setup.omega, block_size=execution.block_size, feature_dtype=precision.feature,
              acc_dtype=precision.acc, backend=execution.backend)


def image_eigs(c: jax.Array, d: int) -> jax.Array:
    """Descending eigenvalues of a covariance, clipped at 0 and padded to ``d``."""
    return pad(desc_eigvalsh(c), d)


def dual_static(setup: KernelSetup, precision, convention: str, backend: str) -> dict:
    """Static options of :func:`clipcore.covariance.dual_gram_jit` for ``setup``."""
    colcos = setup.kernel == "cosine" and convention == "clip-dissection"
    return dict(kind="exact" if setup.exact else ("colcos" if colcos else "features"), fmap=setup.fmap,
                normalize=setup.normalize, feature_dtype=jnp.dtype(precision.feature),
                acc_dtype=jnp.dtype(precision.acc), backend=backend)


_STATIC = ("kind", "fmap", "normalize", "feature_dtype", "acc_dtype", "backend")


@functools.partial(jax.jit, static_argnames=_STATIC + ("mode", "pad_to"))
def dual_spectra(texts, images, omega, sigma, rtol, ridge, *, mode, pad_to, **static) -> SchurSpectra:
    """Both n×n Gram matrices and the dual Schur spectra (:func:`clipcore.functional.schur_spectra_dual`)
    in one program."""
    sig = None if sigma is None else jnp.asarray(sigma, static["acc_dtype"])
    k_t = dual_gram_jit(texts, omega, sig, **static)
    k_x = dual_gram_jit(images, omega, sig, **static)
    return F.schur_spectra_dual(k_t, k_x, rtol, EPSILON, ridge, mode=mode, pad_to=pad_to)


@functools.partial(jax.jit, static_argnames=_STATIC + ("symmetric",))
def dual_grams(texts, images, omega, sigma, *, symmetric: bool = False, **static):
    """K_T and K_X (÷ n) of the dual form in one program (``symmetric``: each averaged with its transpose,
    so both triangles agree to the last bit)."""
    sig = None if sigma is None else jnp.asarray(sigma, static["acc_dtype"])
    grams = dual_gram_jit(texts, omega, sig, **static), dual_gram_jit(images, omega, sig, **static)
    return tuple(0.5 * (k + k.T) for k in grams) if symmetric else grams


#: From this many rows on, the pseudo-inverse dual form goes through the kept subspace of K_T
#: (:mod:`clipcore.dual_lowrank`) instead of a full eigendecomposition with vectors.
LOWRANK_ROWS = 512
#: From this many features on, the pseudo-inverse primal form goes through the kept subspace of C_TT. Below
#: it the dense jitted form wins whatever the rank (bench on 20,000 CLIP-like rows: 0.09 s against 0.23 s at
#: D = 512, 0.43 against 0.73 s at 2D = 1024, 2.5 against 4.7 s at 2D = 2048).
LOWRANK_FEATURES = 2048


def dual_schur(texts, images, omega, sigma, rtol, ridge, *, mode, pad_to, **static) -> SchurSpectra:
    """The dual Schur spectra: :func:`dual_spectra` (one jitted program), or from
    :data:`LOWRANK_ROWS` rows on in the pseudo-inverse mode the kept-subspace form (same spectra to
    float64 rounding; three two-stage ``eigvalsh`` and O(n²k) products instead of an eigendecomposition
    with vectors and n³ products), K_T's kept pairs from the distinct prompts alone where they repeat
    (:data:`REPEATED_FRACTION`)."""
    n = texts.shape[0]
    if mode != "pinv" or n < LOWRANK_ROWS or jnp.dtype(static["acc_dtype"]) != jnp.float64:
        return dual_spectra(texts, images, omega, sigma, rtol, ridge, mode=mode, pad_to=pad_to, **static)
    k_t, k_x = dual_grams(texts, images, omega, sigma, symmetric=True, **static)
    sp = schur_dual_lowrank(k_t, k_x, rtol, pairs=_repeated_pairs(texts, k_t, rtol))
    if sp is None:  # K_T keeps most directions: the dense form
        return schur_dual(k_t, k_x, rtol, EPSILON, ridge, mode=mode, pad_to=pad_to)
    del k_t, k_x
    return SchurSpectra(pad(jnp.asarray(sp.text), pad_to), pad(jnp.asarray(sp.complement), pad_to),
                        pad(jnp.asarray(sp.image), pad_to), jnp.asarray(sp.rank))


#: Where at most this fraction of the rows' prompts are distinct, K_T's kept pairs come from the distinct
#: prompts' u×u problem (:func:`clipcore.dual_lowrank.repeated_kept_pairs`).
REPEATED_FRACTION = 0.5


def distinct_prompts(texts) -> tuple[np.ndarray, np.ndarray] | None:
    """``(first, inverse)`` of the distinct rows (one row's index each; each row's prompt) where at most
    :data:`REPEATED_FRACTION` of the rows are distinct (several images per prompt), else None.

    Rows are grouped by one number each (their float64 product with a fixed random vector: O(n·d), where sorting whole
    rows costs seconds at 10⁶ rows) and every group is then checked to hold equal rows; a group that does not
    (two rows that met by chance) sends the call to NumPy's exact row-wise unique. Equal rows split over two
    groups by rounding would only cost speed: every group holds equal rows, which is what the forms need."""
    rows = np.asarray(texts)
    n = rows.shape[0]
    if n == 0:
        return None
    rows = rows.reshape(n, -1)
    step = 1 << 16
    _, first, inverse = np.unique(row_keys(rows, step), return_index=True, return_inverse=True)
    if first.size > REPEATED_FRACTION * n:
        return None
    if not all(np.array_equal(rows[a:a + step], rows[first[inverse[a:a + step]]]) for a in range(0, n, step)):
        _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def row_keys(rows: np.ndarray, step: int) -> np.ndarray:
    """One float64 number per row, equal for equal rows: the product with a fixed random vector, by blocks."""
    v = np.random.default_rng(0).standard_normal(rows.shape[1])
    return np.concatenate([np.asarray(rows[a:a + step], np.float64) @ v for a in range(0, rows.shape[0], step)])


def _repeated_pairs(texts, k_t, rtol: float):
    """K_T's kept pairs from its distinct rows where prompts repeat, else None."""
    rep = distinct_prompts(texts)
    return None if rep is None else repeated_kept_pairs(k_t, *rep, rtol, EPSILON)


def primal_schur(cov, rtol: float, numerics):
    """SCE scores of the primal covariances: :func:`clipcore.functional.sce_from_covariances`, or from
    :data:`LOWRANK_FEATURES` features on in the pseudo-inverse mode the kept-subspace form
    (:func:`clipcore.dual_lowrank.schur_primal_lowrank`: equal spectra to float64 rounding, no D×D
    eigendecomposition with vectors)."""
    dense = lambda: F.sce_from_covariances(cov, rtol=rtol, ridge=numerics.ridge_value, clamp=numerics.clamp)  # noqa: E731
    if numerics.mode != "pinv" or cov.tt.shape[0] < LOWRANK_FEATURES or cov.tt.dtype != jnp.float64:
        return dense()
    sp = schur_primal_lowrank(*cov, rtol)
    if sp is None:  # C_TT keeps most directions
        return dense()
    return _lowrank_scores(sp, numerics.clamp)


def _lowrank_scores(sp, clamp):
    """:func:`clipcore.functional.sce_scores` of host :class:`clipcore.dual_lowrank.LowRankSpectra`."""
    return F.sce_scores(SchurSpectra(jnp.asarray(sp.text), jnp.asarray(sp.complement), jnp.asarray(sp.image),
                                     jnp.asarray(sp.rank)), clamp)


def projected_applies(setup: KernelSetup, precision, numerics, execution, d_t: int) -> bool:
    """Whether an in-memory primal SCE takes :func:`projected_primal_schur`: random Fourier features of rows
    in memory on one device, the pseudo-inverse mode, float64 accumulation, :data:`LOWRANK_FEATURES` or more
    features."""
    return (setup.kind == "rff" and execution.mesh is None and numerics.mode == "pinv"
            and jnp.dtype(precision.acc) == jnp.float64 and d_t >= LOWRANK_FEATURES)


#: Up to this many bytes of features (both sides, the feature dtype) :func:`projected_primal_schur` forms them
#: once and keeps them for its second product (n = 6000, D = 2500: 480 MB, 0.9 s of cos / sin saved); above it
#: each of its passes forms them block by block.
FEATURE_BYTES = 1 << 30


def projected_primal_schur(setup: KernelSetup, precision, execution, texts, images, rtol: float, numerics,
                           group_plans=None):
    """SCE's scores of paired rows in memory (random Fourier features) without the D_T × D_X cross covariance:
    C_TT and C_XX by one Gram each, C_TT's kept pairs (U_k, w_k), then B = U_kᵀ C_TX = (Φ_T U_k)ᵀ Φ_X / n by a
    second product over the rows' features (2·n·D·k flops for each factor instead of the n·D_T·D_X of C_TX)
    and :func:`clipcore.dual_lowrank.schur_projected`. Where C_TT keeps more than a third of its directions
    the second product forms C_TX and the dense form follows. Features of at most :data:`FEATURE_BYTES` are
    formed once. Where prompts repeat (:data:`REPEATED_FRACTION`) C_TT comes from the distinct prompts' features
    weighted by their counts and its kept pairs from their u×u problem
    (:func:`clipcore.dual_lowrank.repeated_feature_pairs`).

    Args:
      group_plans: C_TT → the RFF error's feature groups (:func:`clipcore._pipeline.errors.group_plans`: each
        with its indices and, where it has them, the kept pairs (w_g, U_g) of its block of C_TT); for each the
        second product also forms B_g = U_gᵀ C_TX^g, or the group's whole diagonal block of C_TX.

    Returns:
      ``(scores, covariances, cross)``: :class:`clipcore.functional.SCEScores`, the covariances (``tx`` None
      when B replaced it) and ``(plans, products)``, the groups' plans and their B_g or blocks (None with
      ``tx``).
    """
    n = texts.shape[0]
    d_t, d_x = setup.fmap.dim(texts.shape[1]), setup.fmap.dim(images.shape[1])
    opts = dict(fmap=setup.fmap, feature_dtype=jnp.dtype(precision.feature), acc_dtype=jnp.dtype(precision.acc))
    kw = dict(block_size=execution.block_size, feature_dtype=precision.feature, acc_dtype=precision.acc,
              backend=execution.backend)
    rep = distinct_prompts(texts)
    stored = n * (d_t + d_x) * jnp.dtype(precision.feature).itemsize <= FEATURE_BYTES
    block = int(execution.block_size or default_block_size(n, d_t + d_x))
    spans = [(s, min(s + block, n)) for s in range(0, n, block)]
    if rep is None:
        if stored:
            pt, px = (_features(a, setup.omega, **opts) for a in (texts, images))
            c_tt, c_xx = (feature_covariance(f, FeatureMap("identity"), **kw) for f in (pt, px))
            rows = [(pt, px)]
        else:
            c_tt, c_xx = (feature_covariance(a, setup.fmap, setup.omega, **kw) for a in (texts, images))
            rows = ((_features(texts[a:b], setup.omega, **opts), _features(images[a:b], setup.omega, **opts))
                    for a, b in spans)
        pairs = kept_eigenpairs(np.asarray(c_tt), rtol, EPSILON)
    else:  # prompts repeat: C_TT from the distinct prompts' features weighted by their counts, its kept
        # pairs from their u×u problem (clipcore.dual_lowrank.repeated_feature_pairs), and Φ_Tᵀ Φ_X = Φ_uᵀ X̄
        # with X̄ the sums of each prompt's image features
        first, inverse = rep
        u_n = first.size
        phi_u = _features(texts[first], setup.omega, **opts)
        counts = np.bincount(inverse, minlength=u_n)
        weighted = phi_u * jnp.sqrt(jnp.asarray(counts, phi_u.dtype) * u_n / n)[:, None]
        c_tt = feature_covariance(weighted, FeatureMap("identity"), **kw)
        if stored:
            px = _features(images, setup.omega, **opts)
            c_xx = feature_covariance(px, FeatureMap("identity"), **kw)
            xbar = _prompt_sums(px, jnp.asarray(inverse), num=u_n)
        else:
            c_xx = feature_covariance(images, setup.fmap, setup.omega, **kw)
            xbar = sum(_prompt_sums(_features(images[a:b], setup.omega, **opts), jnp.asarray(inverse[a:b]),
                                    num=u_n) for a, b in spans)
        rows = [(phi_u, xbar)]
        pairs = repeated_feature_pairs(np.asarray(phi_u), counts, n, rtol, EPSILON)
        if pairs is not None and pairs[0].size > MAX_KEPT_FRACTION * d_t:
            pairs = None
    if pairs is None:  # most directions kept: C_TX and the dense form
        c_tx, _ = _cross_products(rows, n, None)
        cov = Covariances(c_tt, jnp.asarray(c_tx), c_xx)
        return (F.sce_from_covariances(cov, rtol=rtol, ridge=numerics.ridge_value, clamp=numerics.clamp), cov,
                None)
    w, u = pairs
    plans = group_plans(c_tt) if group_plans is not None else []
    b, products = _cross_products(rows, n, u, plans)
    sp = schur_projected(w, b, c_xx, rtol, EPSILON)
    return _lowrank_scores(sp, numerics.clamp), Covariances(c_tt, None, c_xx), (plans, products)


@functools.partial(jax.jit, static_argnames=("fmap", "feature_dtype", "acc_dtype"))
def _features(a, omega, *, fmap, feature_dtype, acc_dtype):
    """φ of rows in the feature dtype (formed as the Grams' blocks are)."""
    return block_features(a, fmap, omega, feature_dtype, acc_dtype)


@functools.partial(jax.jit, static_argnames=("num",))
def _prompt_sums(f, inverse, *, num: int):
    """``[num, D]``: the sum of the rows of ``f`` that belong to each prompt (``inverse``: each row's prompt),
    in float64."""
    return jax.ops.segment_sum(f.astype(jnp.float64), inverse, num_segments=num)


def _cross_products(rows, n: int, u, plans=()):
    """(Φ_T U)ᵀ Φ_X / n (Φ_Tᵀ Φ_X / n where ``u`` is None) and, for each group plan (``.idx``, ``.pairs``),
    (Φ_T^g U_g)ᵀ Φ_X^g / n where it has pairs, else its diagonal block Φ_T^gᵀ Φ_X^g / n: host float64 over
    ``rows``, an iterable of feature blocks ``(φ(t), φ(x))``. Groups are read by their contiguous runs of
    columns (views, no copies)."""
    b = products = None
    spans = [_runs(np.asarray(p.idx)) for p in plans]
    for ft, fx in rows:
        pt, px = np.asarray(ft, np.float64), np.asarray(fx, np.float64)
        if b is None:
            b = np.zeros((pt.shape[1] if u is None else u.shape[1], px.shape[1]))
            products = [np.zeros((len(p.idx) if p.pairs is None else p.pairs[1].shape[1], len(p.idx)))
                        for p in plans]
        b += (pt if u is None else pt @ u).T @ px
        for runs, plan, acc in zip(spans, plans, products):
            if plan.pairs is None:
                for a0, a1, r0 in runs:
                    for b0, b1, c0 in runs:
                        acc[r0:r0 + a1 - a0, c0:c0 + b1 - b0] += pt[:, a0:a1].T @ px[:, b0:b1]
            else:
                ug = plan.pairs[1]
                left = sum(pt[:, a0:a1] @ ug[r0:r0 + a1 - a0] for a0, a1, r0 in runs)
                for b0, b1, c0 in runs:
                    acc[:, c0:c0 + b1 - b0] += left.T @ px[:, b0:b1]
    return b / n, [a / n for a in products]


def _runs(idx: np.ndarray) -> list[tuple[int, int, int]]:
    """The contiguous runs of an index array as ``(start, stop, position in idx)``."""
    cuts = np.flatnonzero(np.diff(idx) != 1) + 1
    pos = np.concatenate([[0], cuts, [len(idx)]]).astype(int)
    return [(int(idx[p]), int(idx[q - 1]) + 1, int(p)) for p, q in zip(pos[:-1], pos[1:])]


@functools.partial(jax.jit, static_argnames=_STATIC + ("pad_to",))
def dual_image_eigs(x, omega, sigma, *, pad_to, **static) -> jax.Array:
    """Descending eigenvalues of K_X = Φ Φᵀ / n, cut or zero-padded to ``pad_to``."""
    sig = None if sigma is None else jnp.asarray(sigma, static["acc_dtype"])
    return pad(desc_eigvalsh(dual_gram_jit(x, omega, sig, **static)), pad_to)
