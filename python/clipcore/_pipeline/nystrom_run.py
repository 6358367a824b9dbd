"""One Nyström call, SCE (paired) or Vendi (one set) alike (SPEC.md, "Large n"):

1. landmarks: m rows chosen by :func:`clipcore.landmarks.select_landmarks` from a seeded pool (for SCE
   the pool holds texts *and* images: both go through the same map), or given points;
2. the map Φ(x) = k(x, L) W (:func:`clipcore.nystrom.nystrom_map`);
3. one pass over the rows accumulating Σ Zᵀ Z (Z = [Φ(T) | Φ(X)] paired): the compiled core's host entry
   on CPU, else the XLA targets / JAX twins, on one device or a mesh; arrays, files, shards, iterators;
4. the spectra (:mod:`clipcore.nystrom_spectra`) and the tail of the "residual" estimate from a seeded
   subsample; the entropies under every named estimate.

Between phases the freed heap is handed back (:func:`clipcore._hostmem.release_heap`), so each phase's
peak is its own.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from .. import _ffi
from .. import nystrom as N
from .. import nystrom_projected as NP
from .. import nystrom_spectra as NS
from .. import sharding as SH
from .._hostmem import release_heap
from .._options import ESTIMATES, TAIL_ESTIMATES
from .._progress import bar, busy
from .._warnings import warn_user
from ..entropy import Spectrum, matrix_entropy_tail, renyi_entropy_tail
from ..landmarks import Landmarks, default_pool, select_landmarks
from .inputs import Inputs, KernelSetup, reduce_sums

__all__ = ["LOW_CAPTURE", "LowCaptureWarning", "NystromRun", "run_nystrom", "sce_entropies", "vendi_entropies",
           "Entropies"]

#: Below this fraction of a modality's kernel trace captured by the Nyström features, the score rests
#: mostly on the tail model and a warning is issued.
LOW_CAPTURE = 0.2


class LowCaptureWarning(UserWarning):
    """Nyström landmarks capture little of a modality's kernel trace: the score is mostly the tail estimate."""


class _Rows:
    """Uniform access to in-memory arrays or a streamed source."""

    def __init__(self, inputs: Inputs, normalize: bool):
        self.src, self.normalize = inputs.src, normalize
        self.images = None if inputs.images is None else np.asarray(inputs.images)
        self.texts = None if inputs.texts is None else np.asarray(inputs.texts)
        self.first = self.src.peek() if self.src is not None and self.src.iterator is not None else None
        self.n = self.images.shape[0] if self.src is None else (None if self.first is not None else self.src.n)

    def prep(self, a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        return a / np.linalg.norm(a, axis=1, keepdims=True) if self.normalize else a

    def take(self, which: str, rows: np.ndarray) -> np.ndarray:
        if self.src is None:
            return self.prep((self.images if which == "images" else self.texts)[rows])
        if self.first is not None:
            a = self.first[0] if which == "images" else self.first[1]
            return self.prep(a[rows[rows < a.shape[0]]])
        return self.prep((self.src.images if which == "images" else self.src.texts).take(rows))

    def available(self) -> int:
        """Rows a seeded sample may index before the pass (the first block for iterators)."""
        return self.n if self.n is not None else self.first[0].shape[0]

    def pairs(self, block: int, nonzero: bool, paired: bool, depth: int = 2):
        """(images, texts or None) host blocks of every row, prepared."""
        if self.src is None:
            for i in range(0, self.n, block):
                yield self.prep(self.images[i:i + block]), (self.prep(self.texts[i:i + block]) if paired else None)
            return
        for blk in self.src.blocks(block, nonzero=nonzero, depth=depth):
            yield self.prep(blk.images), (self.prep(blk.texts) if paired else None)


def _landmarks(rows: _Rows, nys, sigma: float, seed: int, paired: bool, backend: str) -> Landmarks:
    if nys.given_points:
        pts = nys.landmarks
        d = rows.take("images", np.arange(1)).shape[1]
        if pts.shape[1] != d:
            raise ValueError(f"landmarks: points of dimension {pts.shape[1]} but the embeddings have d = {d}")
        return Landmarks(np.arange(0), jnp.asarray(rows.prep(pts)), "given", None, None, 0)
    m = int(nys.landmarks)
    avail = rows.available()
    per = min(avail, max(default_pool(2 * avail if paired else avail, m) // (2 if paired else 1), m))
    idx = NS.pool_rows(avail, per, seed)
    pool = rows.take("images", idx)
    if paired:
        pool = np.concatenate([rows.take("texts", idx), pool])
    return select_landmarks(pool, m, sigma=sigma, method=nys.landmark_method, key=seed, pool=pool.shape[0],
                            backend=backend)


def _block_rows(block_size: int | None, m: int, budget: int = 1 << 25) -> int:
    """Rows per streamed block: ≈ ``budget`` kernel values (the block's [b, m] tile work), 1024…65536."""
    return int(block_size or max(1024, min(1 << 16, budget // max(m, 1))))


def _pass_host(rows: _Rows, nmap, *, paired: bool, dtype, execution, nonzero: bool, desc: str):
    """The pass through the compiled core's host entry (kernel form): host blocks straight to the core,
    no device copy, no per-block dispatch; memory: one block (plus the reader's prefetch), M [R, R] and
    the core's per-thread accumulators."""
    M = np.zeros(((2 if paired else 1) * nmap.num_landmarks,) * 2, np.float64)
    L = np.ascontiguousarray(np.asarray(nmap.landmarks), dtype)
    # ≈ 2²⁴ kernel values per block; one block queued: the core takes ~40× longer per block than reading it
    block = _block_rows(execution.block_size, nmap.num_landmarks, budget=1 << 24)
    n = 0
    with bar(rows.n if rows.src is None else rows.src.n, desc, execution.progress) as progress:
        for x, t in rows.pairs(block, nonzero, paired, depth=1):
            if paired:
                N.nystrom_update_host(M, t, nmap, images=x, dtype=dtype, landmarks=L)
            else:
                N.nystrom_update_host(M, x, nmap, dtype=dtype, landmarks=L)
            n += x.shape[0]
            progress.update(x.shape[0])
    _ffi.release_buffers()  # the core's cached per-thread [R, R] accumulators: not needed after the pass
    release_heap()  # ... and their pages handed back before the finalisation's temporaries
    g = N.finalize_host(M, nmap, paired=paired)  # consumes M
    del M
    release_heap()
    return g, n


def _pass_device(rows: _Rows, nmap, *, paired: bool, dtype, execution, nonzero: bool, desc: str):
    """The pass through the XLA targets / JAX twins, on one device or each block sharded over a mesh."""
    mesh, backend, bs = execution.mesh, execution.backend, execution.block_size
    if rows.src is None:
        x, t = rows.prep(rows.images), (rows.prep(rows.texts) if paired else None)
        if mesh is not None:
            return SH.nystrom_gram(t if paired else x, nmap, mesh=mesh, images=x if paired else None,
                                   backend=backend, dtype=dtype, block_size=bs)
        if paired:
            return N.nystrom_joint_gram(t, x, nmap, backend=backend, dtype=dtype, block_size=bs), x.shape[0]
        return N.nystrom_gram(x, nmap, backend=backend, dtype=dtype, block_size=bs), x.shape[0]
    G = N.nystrom_init(nmap, paired=paired, backend=backend)
    n = 0
    with bar(rows.src.n, desc, execution.progress) as progress:
        for x, t in rows.pairs(_block_rows(bs, nmap.num_landmarks), nonzero, paired):
            first, second = (t, x) if paired else (x, None)
            if mesh is not None:  # the block's rows sharded over the mesh; finalised once at the end
                G = G + SH.nystrom_gram(first, nmap, mesh=mesh, images=second, backend=backend, dtype=dtype,
                                        finalize=False)[0]
            else:
                G = N.nystrom_update(G, first, nmap, images=second, backend=backend, dtype=dtype)
            n += x.shape[0]
            progress.update(x.shape[0])
    return N.nystrom_finalize(G, nmap, paired=paired, backend=backend), n


def _nystrom_pass(rows: _Rows, nmap, *, paired: bool, precision, execution, nonzero: bool, desc: str):
    """Σ Zᵀ Z over all rows (Z = [Φ(T) | Φ(X)] paired) and n, added across processes."""
    dtype = jnp.dtype(precision.feature)
    host = execution.mesh is None and N.host_update_available(execution.backend)
    run = _pass_host if host else _pass_device
    g, n = run(rows, nmap, paired=paired, dtype=np.dtype(dtype) if host else dtype, execution=execution,
               nonzero=nonzero, desc=desc)
    return (g, n) if rows.src is None else reduce_sums(rows.src, g, n)


def _warn_low_capture(captured: float, what: str, lm: Landmarks) -> None:
    if captured < LOW_CAPTURE:
        hint = "use more landmarks or a larger sigma"
        if lm.method == "pivoted-cholesky":
            hint += (", or landmark_method='uniform' (pivoted Cholesky takes the worst-explained rows first: when "
                     "one modality's rows are isolated from each other it can take every landmark from it)")
        warn_user(
            f"nyström: the {lm.points.shape[0]} {lm.method} landmarks capture only {captured:.3g} of the {what}' "
            f"kernel trace, so the score rests mostly on the estimate of the missing part: {hint}",
            LowCaptureWarning)


class NystromRun(NamedTuple):
    """What one Nyström call measured (host float64), before the entropies.

    Attributes:
      image, text, complement: eigenvalues of C_XX, R, S (text and complement None for one set).
      rank_kept: directions of C_TT the pseudo-inverse kept (0 for one set).
      captured, captured_texts: tr C_XX (and tr C_TT) ≤ 1.
      tail: the "residual" estimate's tail spectrum.
      projected: the "projected" estimate's spectra (None where not asked: Conditional Vendi's parts).
      n: rows; rtol: the cutoff used; seed: the int seed (None for a jax key).
      landmarks: the :class:`clipcore.landmarks.Landmarks`; nmap: the map; asked: m as asked.
    """

    image: np.ndarray
    text: np.ndarray | None
    complement: np.ndarray | None
    rank_kept: int
    captured: float
    captured_texts: float | None
    tail: Spectrum
    n: int
    rtol: float | None
    seed: int | None
    landmarks: Landmarks
    nmap: Any
    asked: int
    projected: NP.ProjectedSpectra | None = None


def _sampled(rows: _Rows, nmap, n: int, captured: float, sample: int, seed: int, c, paired: bool, rtol, ridge):
    """From one seeded subsample of the rows (seed + 1): the "residual" estimate's tail (images) and, given
    the scaled Gram c, the "projected" estimate's spectra (images and their texts)."""
    idx = NS.pool_rows(rows.available(), min(sample, rows.available()), seed + 1)
    images = rows.take("images", idx)
    residual = NS.residual_kernel(images, nmap)  # one E_ss for both estimates
    projected = None
    if c is not None:
        projected = NP.projected_spectra(c, n, nmap, images, rows.take("texts", idx) if paired else None, rtol, ridge,
                                         image_residual=residual)
    tail = NS.residual_tail(images, nmap, n, max(1.0 - captured, 0.0), residual=residual[1])  # consumes E_ss
    del images, residual
    release_heap()  # the last large temporaries of the call: leave the heap as the call found it
    return tail, projected


def run_nystrom(inputs: Inputs, setup: KernelSetup, numerics, nys, execution, seed, *, paired: bool,
                nonzero: bool, desc: str, projected: bool = True) -> NystromRun:
    """Landmarks, map, pass, spectra and tail of one Nyström call (paired: SCE; else Vendi); ``projected``:
    also the "projected" estimate (Gaussian kernel maps only)."""
    rows = _Rows(inputs, numerics.normalize)
    with busy(f"{desc}: landmarks", execution.progress):
        lm = _landmarks(rows, nys, setup.sigma, seed.numpy, paired, execution.backend)
        release_heap()  # the landmark pool and its factor
        nmap = N.nystrom_map(lm, setup.sigma)
        release_heap()
    g, n = _nystrom_pass(rows, nmap, paired=paired, precision=numerics.precision, execution=execution,
                         nonzero=nonzero, desc=desc)
    asked = lm.points.shape[0] if nys.given_points else int(nys.landmarks)
    with busy(f"{desc}: eigenvalues", execution.progress):
        c = np.array(g, np.float64) / max(n, 1) if projected else None  # kept: the spectra below consume g
        if paired:
            rtol = numerics.rtol_for(nmap.rank)
            image, text, comp, rank, cap, cap_t = NS.schur_from_gram(g, n, nmap.rank, rtol, numerics.ridge)
        else:
            image, text, comp, rank, cap_t, rtol = NS.gram_eigvalsh(g, n), None, None, 0, None, None
            cap = float(image.sum())
        del g
        release_heap()
        _warn_low_capture(cap, "images" if paired else "rows", lm)
        if paired:
            _warn_low_capture(cap_t, "texts", lm)
        tail, proj = _sampled(rows, nmap, n, cap, nys.residual_sample, seed.numpy, c, paired,
                              numerics.rtol_for(n), numerics.ridge)
        del c
    return NystromRun(image, text, comp, rank, cap, cap_t, tail, n, rtol, seed.seed, lm, nmap, asked, proj)


class Entropies(NamedTuple):
    """One named estimate's entropies (natural log) and the traces of its spectra (SCE), or the one
    Rényi entropy (Vendi: ``log_image`` only)."""

    log_complement: float | None
    log_text: float | None
    log_image: float
    trace_complement: float | None
    trace_text: float | None
    trace_image: float


def _spectra(run: NystromRun, kind: str, paired: bool):
    """(image, complement, text) spectra of one named estimate."""
    if kind == "projected":
        p = run.projected
        return p.image, p.complement, p.text
    return NS.estimate_spectra(kind, run.image, run.complement if paired else None, run.text if paired else None,
                               run.captured, run.tail, run.n)


def _kinds(run: NystromRun) -> tuple:
    return ESTIMATES if run.projected is not None else TAIL_ESTIMATES


def sce_entropies(run: NystromRun, clamp: float | None) -> dict[str, Entropies]:
    """The SCE entropies under every named estimate (:data:`clipcore._options.ESTIMATES`)."""
    out = {}
    for kind in _kinds(run):
        si, sc, st = _spectra(run, kind, True)
        out[kind] = Entropies(matrix_entropy_tail(sc, clamp), matrix_entropy_tail(st, clamp),
                              renyi_entropy_tail(si, 1.0, clamp), sc.total(), st.total(), si.total())
    return out


def vendi_entropies(run: NystromRun, order: float, clamp: float | None) -> dict[str, Entropies]:
    """The Rényi entropy of order α under every named estimate."""
    out = {}
    for kind in _kinds(run):
        si, _, _ = _spectra(run, kind, False)
        out[kind] = Entropies(None, None, renyi_entropy_tail(si, order, clamp), None, None, si.total())
    return out


