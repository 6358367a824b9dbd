"""Scores: SCE (with its text part), Vendi and RKE.

Schur Complement Entropy — Ospanov, Farnia & Jalali (2024), "Dissecting
CLIP: Decomposition with a Schur Complement-based Approach", arXiv:2412.18645.
Vendi — Friedman & Dieng (2023), "The Vendi Score", TMLR.
RKE — Jalali et al. (2023), "An Information-Theoretic Evaluation of
Generative Models in Learning Multi-modal Distributions", NeurIPS.

The public functions here validate their (concrete) inputs, resolve options
into static configuration, and call the jit-compiled kernels of
:mod:`clipcore.covariance`, :mod:`clipcore.schur` and :mod:`clipcore.entropy`.
Results are NamedTuples of host values (Python floats, NumPy arrays) that
carry their provenance (SPEC.md, "Results carry their provenance").
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import warnings
from typing import Any, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _large_n as _LN
from . import _validate as V
from ._ffi import eigvalsh
from ._setup import (
    EPS32,
    METHODS,
    KernelSetup,
    Precision,
    resolve_backend,
    resolve_kernel,
    resolve_precision,
)
from .covariance import (
    Covariances,
    _dual_gram,
    column_cosine,
    default_block_size,
    feature_covariance,
    joint_covariances,
    stream_sums,
)
from .entropy import DEFAULT_CLAMP, matrix_entropy, renyi_entropy
from .kernels import FeatureMap, features, gaussian_kernel
from .schur import EPSILON, SchurSpectra, _pad, schur_dual, schur_primal
from .sources import PairedSource, check_block, paired_source
from . import sharding as _SH

__all__ = ["SCEResult", "VendiResult", "sce", "vendi", "rke", "DegenerateWarning"]


class DegenerateWarning(UserWarning):
    """The text part explains every sample direction: S ≈ 0, SCE ≈ 1."""


class LowCaptureWarning(UserWarning):
    """Nyström landmarks capture little of a modality's kernel trace: the score is mostly the tail estimate."""


class SCEResult(NamedTuple):
    """Schur Complement Entropy of paired image/text embeddings.

    Attributes:
      sce: exp of the entropy of S (the prompt-independent diversity).
      text_score: the same score of R (the prompt-explained part).
      image_score: Vendi (order 1) of C_XX.
      log_sce, log_text_score, log_image_score: the entropies themselves.
      complement_eigenvalues, text_eigenvalues, image_eigenvalues: ``[k]``
        eigenvalues of S, R, C_XX (descending, negatives from rounding
        clipped to 0; k = d for cosine, 2D for RFF, n for the exact kernel).
      trace_complement, trace_text, trace_image: their sums (≥ 0).
      rank_kept: directions of C_TT kept by the pseudo-inverse.
      kernel, sigma, method, convention, n, num_features, rff_features, rtol,
      ridge, clamp, dtype, seed, omega: provenance.
      nystrom: with ``landmarks=m`` (Nyström, SPEC.md "Large n"), a dict:
        ``landmarks`` (m), ``rank`` (r), ``landmark_method``,
        ``captured_trace`` (tr C_XX ≤ 1), ``captured_trace_texts``,
        ``missing_mass`` (1 − tr C_XX), ``estimate`` (the one the scores
        above use) and ``estimates`` (every named estimate's scores and log
        scores: "residual", "missing-mass", "renormalised"); else None. The
        eigenvalue fields hold the r Nyström eigenvalues as measured.
    """

    sce: float
    text_score: float
    image_score: float
    log_sce: float
    log_text_score: float
    log_image_score: float
    complement_eigenvalues: np.ndarray
    text_eigenvalues: np.ndarray
    image_eigenvalues: np.ndarray
    trace_complement: float
    trace_text: float
    trace_image: float
    rank_kept: int
    kernel: str
    sigma: float | None
    method: str
    convention: str
    n: int
    num_features: int
    rff_features: int | None
    rtol: float
    ridge: float | None
    clamp: float | None
    dtype: str
    backend: str
    seed: int | None
    omega: np.ndarray | None
    nystrom: dict | None = None

    def summary(self) -> dict:
        """JSON-ready scores and provenance (eigenvalues and ω left out)."""
        skip = {"complement_eigenvalues", "text_eigenvalues", "image_eigenvalues", "omega"}
        return {k: v for k, v in self._asdict().items() if k not in skip}


class VendiResult(NamedTuple):
    """Vendi score of order α of one set of embeddings (RKE: α = 2).

    Attributes:
      score: exp of the Rényi entropy of order α of eig(C) (C = Φᵀ Φ / n).
      log_score: the entropy.
      eigenvalues: ``[k]`` descending, clipped at 0 (empty for
        ``method="frobenius"``, which never forms them).
      nystrom: Nyström provenance and every named estimate (see
        :class:`SCEResult`), or None.
    """

    score: float
    log_score: float
    order: float
    eigenvalues: np.ndarray
    kernel: str
    sigma: float | None
    method: str
    n: int
    num_features: int
    rff_features: int | None
    clamp: float | None
    dtype: str
    backend: str
    seed: int | None
    nystrom: dict | None = None

    def __float__(self) -> float:
        return float(self.score)

    def summary(self) -> dict:
        return {k: v for k, v in self._asdict().items() if k != "eigenvalues"}


# ----------------------------------------------------------------- internals
def _feature_dim(setup: KernelSetup, d: int, n: int) -> int:
    return n if setup.exact else setup.fmap.dim(d)


def _choose_method(method: str, setup: KernelSetup, dims: tuple[int, ...], n: int) -> str:
    V.check_choice(method, "method", METHODS)
    if setup.exact:
        if method == "primal":
            raise ValueError(
                "method: the exact Gaussian kernel has no finite primal form; "
                "use method='dual' (or 'auto'), or rff_features= for the primal"
            )
        return "dual"
    if method != "auto":
        return method
    # primal: n·D² + D³; dual: n²·D + n³ — the smaller matrix wins.
    return "primal" if max(dims) <= n else "dual"


def _dual_static(setup: KernelSetup, prec: Precision, convention: str, backend: str) -> dict:
    """Static options of :func:`clipcore.covariance.dual_gram` for ``setup``."""
    colcos = setup.kernel == "cosine" and convention == "clip-dissection"
    return dict(
        kind="exact" if setup.exact else ("colcos" if colcos else "features"), fmap=setup.fmap,
        normalize=setup.normalize, feature_dtype=jnp.dtype(prec.feature), acc_dtype=jnp.dtype(prec.acc),
        backend=backend,
    )


@functools.partial(
    jax.jit,
    static_argnames=("kind", "fmap", "normalize", "feature_dtype", "acc_dtype", "backend", "mode", "pad_to"),
)
def _dual_spectra(texts, images, omega, sigma, rtol, ridge, *, mode, pad_to, **static):
    """Both n×n Gram matrices and the dual Schur spectra in one program."""
    sig = None if sigma is None else jnp.asarray(sigma, static["acc_dtype"])
    k_t = _dual_gram(texts, omega, sig, **static)
    k_x = _dual_gram(images, omega, sig, **static)
    return schur_dual(k_t, k_x, rtol, EPSILON, ridge, mode=mode, pad_to=pad_to)


@functools.partial(
    jax.jit, static_argnames=("kind", "fmap", "normalize", "feature_dtype", "acc_dtype", "backend", "pad_to")
)
def _dual_image_eigs(x, omega, sigma, *, pad_to, **static):
    """Descending eigenvalues of K_X = Φ Φᵀ / n, cut or zero-padded to ``pad_to``."""
    sig = None if sigma is None else jnp.asarray(sigma, static["acc_dtype"])
    k = _dual_gram(x, omega, sig, **static)
    return _pad(jnp.maximum(eigvalsh(0.5 * (k + k.T))[::-1], 0.0), pad_to)


def _primal_covariances(setup, prec, convention, backend, block_size, texts, images, mesh=None) -> Covariances:
    cov = (joint_covariances if mesh is None else functools.partial(_SH.joint_covariances, mesh=mesh))(
        texts, images, setup.fmap, setup.omega,
        block_size=block_size, feature_dtype=prec.feature, acc_dtype=prec.acc, backend=backend,
    )
    if setup.kernel == "cosine" and convention == "clip-dissection":
        n = texts.shape[0]
        return Covariances(*column_cosine(cov.tt * n, cov.tx * n, cov.xx * n))
    return cov


def _check_order(order: Any) -> float:
    try:
        order = float(order)
    except (TypeError, ValueError):
        raise ValueError(f"order: expected a number α > 0 or inf, got {order!r}") from None
    if not order > 0:
        raise ValueError(f"order: expected α > 0 (or inf), got {order}")
    return order


def _host(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)



# ------------------------------------------------------------------ streaming
#: Files with at most this many rows are read whole and take the in-memory
#: path (every method); larger ones, large NumPy arrays, and iterators are
#: streamed (primal).
IN_MEMORY_ROWS = 1 << 16


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


def _as_source(images: Any, texts: Any, *, nonzero: bool) -> tuple[PairedSource | None, Any, Any]:
    """``(None, images, texts)`` for in-memory data (small files are read whole
    here, and checked with the shard and row named); ``(source, None, None)``
    for what must be streamed."""
    if not (_is_streamed(images) or _is_streamed(texts)):
        if texts is None:
            raise ValueError("texts: missing; pass the prompts' embeddings [n, d]")
        if not _large_host_pair(images, texts):
            return None, images, texts
    src = paired_source(images, texts)
    if src.iterator is None and src.texts is not None and src.n <= IN_MEMORY_ROWS and not _reduces(src):
        return None, _read_whole(src.images, nonzero), _read_whole(src.texts, nonzero)
    return src, None, None


def _read_whole(rows, nonzero: bool) -> np.ndarray:
    """A small row source read into memory, NaN / Inf / zero rows named by shard and row."""
    a = rows.read(0, rows.n)
    if not rows.in_memory:
        check_block(a, rows.name, 0, rows.locate, nonzero=nonzero)
    return a


def _large_host_pair(*arrays: Any) -> bool:
    """Large host (NumPy) arrays stream too: one block at a time goes to the
    device (the in-memory path would first copy the whole, usually unaligned,
    array: twice the memory), and a progress bar shows.  Same speed within
    noise (bench_stream.py)."""
    ok = all(isinstance(a, np.ndarray) and a.ndim == 2 for a in arrays)
    return ok and len({a.shape[0] for a in arrays}) == 1 and arrays[0].shape[0] > IN_MEMORY_ROWS


def _as_single_source(x: Any, *, nonzero: bool) -> tuple[PairedSource | None, Any]:
    """As :func:`_as_source` for one set (vendi, rke): files, large host arrays
    and iterators of ``[b, d]`` blocks stream."""
    if isinstance(x, PairedSource):
        src = x
    elif _is_streamed(x) or _large_host_pair(x):
        src = paired_source(x, None, single=True, name="x")
    else:
        return None, x
    if src.iterator is None and src.n <= IN_MEMORY_ROWS and not _reduces(src):
        return None, _read_whole(src.images, nonzero)
    return src, None


def _reduces(src) -> bool:
    """A source whose pass covers this process's shards only (:mod:`clipcore.distributed`)."""
    return hasattr(src, "reduce_sums")


def _reduce(src, sums, n):
    """The pass's sums and row count, added across processes for a distributed source."""
    return src.reduce_sums(sums, n) if _reduces(src) else (sums, n)


def _sigma_sample(src: PairedSource):
    """Rows for the σ heuristic, chosen exactly as :func:`median_sigma` would."""

    def sample():
        if src.iterator is not None:
            return src.peek()[0][:2000]
        n = src.n
        idx = np.arange(n) if n <= 2000 else np.sort(np.random.default_rng(0).choice(n, 2000, replace=False))
        return src.images.take(idx)

    return sample


def _streamed_method(method: str, setup: KernelSetup) -> str:
    V.check_choice(method, "method", METHODS)
    if setup.exact:
        raise ValueError(
            f"method: the exact Gaussian kernel (method={method!r}) needs the n×n Gram matrix, which is not "
            "formed for streamed inputs; use method='auto' (Nyström landmarks), landmarks= or rff_features="
        )
    if method == "dual":
        raise ValueError("method: streamed inputs take the primal (D×D) path; use method='auto' or 'primal'")
    return "primal"


def _progress_bar(total: int | None, desc: str, progress: bool | None, unit: str = "rows"):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=progress is False,
                delay=0 if progress else 2.0, leave=False)


@contextlib.contextmanager
def _busy(desc: str, progress: bool | None, delay: float = 2.0):
    """An elapsed-time line for one step that reports no progress of its own (an
    n×n eigendecomposition, the exact ‖K‖_F² over n² pairs): shown once the step
    has lasted ``delay`` s (at once with ``progress=True``, never with ``False``),
    refreshed twice a second by a daemon thread, cleared when the step ends."""
    if progress is False:
        yield
        return
    from tqdm.auto import tqdm

    def make():
        return tqdm(total=None, desc=desc, bar_format="{desc}: {elapsed} elapsed", leave=False)

    done = threading.Event()
    first = make() if progress else None  # progress=True: shown at once, whatever the step's length

    def beat():
        bar = first
        if bar is None:
            if done.wait(delay):
                return
            bar = make()
        while not done.wait(0.5):
            bar.refresh()
        bar.close()

    thread = threading.Thread(target=beat, name="clipcore-busy", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _streamed_covariances(src, setup, prec, convention, backend, block_size, *, nonzero, progress, desc, mesh=None):
    width = setup.fmap.dim(src.d_images or 1) + setup.fmap.dim(src.d_texts or src.d_images or 1)
    block = block_size or default_block_size(src.n or (1 << 30), width)
    fmap = setup.fmap
    with _progress_bar(src.n, desc, progress) as bar:
        blocks = src.blocks(block, nonzero=nonzero)
        (tt, tx, xx), n = stream_sums(
            blocks, fmap, setup.omega, paired=True, feature_dtype=prec.feature, acc_dtype=prec.acc,
            backend=backend, progress=bar, mesh=mesh,
        )
    (tt, tx, xx), n = _reduce(src, (tt, tx, xx), n)
    if setup.kernel == "cosine" and convention == "clip-dissection":
        for name, g in (("texts", tt), ("images", xx)):
            zero = np.flatnonzero(np.asarray(jnp.diagonal(g)) == 0)
            if zero.size:
                raise ValueError(
                    f"{name}: column {int(zero[0])} has zero norm; the clip-dissection convention normalises columns"
                )
        return Covariances(*column_cosine(tt, tx, xx)), n
    return Covariances(tt / n, tx / n, xx / n), n


def _streamed_covariance(src, setup, prec, backend, block_size, *, nonzero, progress, mesh=None):
    block = block_size or default_block_size(src.n or (1 << 30), setup.fmap.dim(src.d_images))
    with _progress_bar(src.n, "vendi", progress) as bar:
        blocks = src.blocks(block, nonzero=nonzero)
        g, n = stream_sums(blocks, setup.fmap, setup.omega, paired=False, feature_dtype=prec.feature,
                           acc_dtype=prec.acc, backend=backend, progress=bar, mesh=mesh)
    g, n = _reduce(src, g, n)
    return g / n, n


# ------------------------------------------------------------------- Nyström
class _Rows:
    """Uniform access to in-memory arrays or a streamed source, for Nyström."""

    def __init__(self, src: PairedSource | None, images: Any, texts: Any, normalize: bool):
        self.src, self.normalize = src, normalize
        self.images = None if images is None else np.asarray(images)
        self.texts = None if texts is None else np.asarray(texts)
        if src is None:
            self.n = self.images.shape[0]
        elif src.iterator is not None:
            first = src.peek()
            self.first = first
            self.n = None
        else:
            self.n = src.n

    def _prep(self, a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        return a / np.linalg.norm(a, axis=1, keepdims=True) if self.normalize else a

    def take(self, which: str, rows: np.ndarray) -> np.ndarray:
        if self.src is None:
            a = self.images if which == "images" else self.texts
            return self._prep(a[rows])
        if self.src.iterator is not None:
            a = self.first[0] if which == "images" else self.first[1]
            return self._prep(a[rows[rows < a.shape[0]]])
        part = self.src.images if which == "images" else self.src.texts
        return self._prep(part.take(rows))

    def available(self) -> int:
        """Rows a seeded sample may index before the pass (the first block for iterators)."""
        return self.n if self.n is not None else self.first[0].shape[0]


def _landmarks_for(rows: _Rows, landmarks: Any, sigma: float, method: str, seed: int, paired: bool, backend: str):
    from . import nystrom as N

    if not (isinstance(landmarks, (int, np.integer)) and not isinstance(landmarks, bool)):
        pts = np.asarray(landmarks)
        if pts.ndim != 2 or not V.is_floating(pts.dtype):
            raise ValueError(f"landmarks: expected an int m or [m, d] floating-point points, got shape {pts.shape} "
                             f"and dtype {pts.dtype}")
        pts = V.widen_half(pts)
        d = rows.take("images", np.arange(1)).shape[1]
        if pts.shape[1] != d:
            raise ValueError(f"landmarks: points of dimension {pts.shape[1]} but the embeddings have d = {d}")
        pts = rows._prep(pts)
        return N.Landmarks(np.arange(0), jnp.asarray(pts), "given", None, None, 0)
    m = int(landmarks)

    avail = rows.available()
    per = min(avail, max(N.default_pool(2 * avail if paired else avail, m) // (2 if paired else 1), m))
    idx = _LN.pool_rows(avail, per, seed)
    pool = rows.take("images", idx)
    if paired:
        pool = np.concatenate([rows.take("texts", idx), pool])
    return N.select_landmarks(pool, m, sigma=sigma, method=method, key=seed, pool=pool.shape[0],
                              backend=backend)


def _nystrom_pass(rows: _Rows, nmap, *, paired: bool, prec: Precision, backend: str, block_size: int | None,
                  nonzero: bool, progress: bool | None, desc: str, mesh=None):
    """Σ Zᵀ Z over all rows (Z = [Φ(T) | Φ(X)] when paired) and n."""
    from . import nystrom as N

    dt = jnp.dtype(prec.feature)
    if mesh is None and N.host_update_available(backend):
        return _nystrom_pass_host(rows, nmap, paired=paired, dtype=np.dtype(dt), backend=backend,
                                  block_size=block_size, nonzero=nonzero, progress=progress, desc=desc)
    if rows.src is None and mesh is not None:
        x = rows._prep(rows.images)
        t = rows._prep(rows.texts) if paired else None
        return _SH.nystrom_gram(t if paired else x, nmap, mesh=mesh, images=x if paired else None,
                                backend=backend, dtype=dt, block_size=block_size)
    if rows.src is None:
        x = rows._prep(rows.images)
        if paired:
            t = rows._prep(rows.texts)
            g = N.nystrom_joint_gram(t, x, nmap, backend=backend, dtype=dt, block_size=block_size)
        else:
            g = N.nystrom_gram(x, nmap, backend=backend, dtype=dt, block_size=block_size)
        return g, x.shape[0]
    src = rows.src
    G = N.nystrom_init(nmap, paired=paired, backend=backend)
    block = _nystrom_block(block_size, nmap.num_landmarks)
    n = 0
    with _progress_bar(src.n, desc, progress) as bar:
        for blk in src.blocks(block, nonzero=nonzero):
            x = rows._prep(blk.images)
            t = rows._prep(blk.texts) if paired else None
            if mesh is not None:  # the block's rows sharded over the mesh; finalised once at the end
                G = G + _SH.nystrom_gram(t if paired else x, nmap, mesh=mesh, images=x if paired else None,
                                         backend=backend, dtype=dt, finalize=False)[0]
            elif paired:
                G = N.nystrom_update(G, t, nmap, images=x, backend=backend, dtype=dt)
            else:
                G = N.nystrom_update(G, x, nmap, backend=backend, dtype=dt)
            n += x.shape[0]
            bar.update(x.shape[0])
    return _reduce(src, N.nystrom_finalize(G, nmap, paired=paired, backend=backend), n)


def _nystrom_block(block_size: int | None, m: int, budget: int = 1 << 25) -> int:
    """Rows per streamed Nyström block: ≈ ``budget`` kernel values (the block's [b, m] tile work), 1024…65536."""
    return int(block_size or max(1024, min(1 << 16, budget // max(m, 1))))


def _release_heap() -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``) between the large-n phases.

    Large NumPy temporaries freed by one phase (landmark pool, kernel
    matrices) otherwise stay in the process's heap and add to the next
    phase's peak RSS. No-op where there is no glibc.
    """
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None


def _nystrom_pass_host(rows: _Rows, nmap, *, paired: bool, dtype: np.dtype, backend: str, block_size: int | None,
                       nonzero: bool, progress: bool | None, desc: str):
    """:func:`_nystrom_pass` on CPU through the compiled core's host entry (kernel form).

    Blocks of host rows (read from disk, or slices of the in-memory arrays)
    go straight to the core: no device copy of the rows and no per-block
    dispatch; memory is one block (plus the reader's prefetch), M [R, R]
    and the core's per-thread accumulators.
    """
    from . import nystrom as N

    R = (2 if paired else 1) * nmap.num_landmarks
    M = np.zeros((R, R), np.float64)
    L = np.ascontiguousarray(np.asarray(nmap.landmarks), dtype)
    # ≈ 2²⁴ kernel values per block (8 388 rows at m = 2000): the reader keeps up to three blocks in flight
    block = _nystrom_block(block_size, nmap.num_landmarks, budget=1 << 24)

    def add(x, t):
        x = rows._prep(x)
        if paired:
            N.nystrom_update_host(M, rows._prep(t), nmap, images=x, dtype=dtype, landmarks=L)
        else:
            N.nystrom_update_host(M, x, nmap, dtype=dtype, landmarks=L)
        return x.shape[0]

    src = rows.src
    if src is None:  # slices of the in-memory arrays
        pairs = ((rows.images[i:i + block], rows.texts[i:i + block] if paired else None)
                 for i in range(0, rows.n, block))
    else:  # one block queued: the core takes ~40x longer per block than reading it from the page cache
        pairs = ((blk.images, blk.texts) for blk in src.blocks(block, nonzero=nonzero, depth=1))
    n = 0
    with _progress_bar(rows.n if src is None else src.n, desc, progress) as bar:
        for x, t in pairs:
            k = add(x, t)
            n += k
            bar.update(k)
    from . import _ffi

    _ffi._ext.release_buffers()  # the core's cached per-thread [R, R] accumulators: not needed after the pass
    _release_heap()  # ... and hand their pages back before the finalisation's temporaries are allocated
    g = N.finalize_host(M, nmap, paired=paired)  # consumes M
    del M
    _release_heap()
    return (g, n) if src is None else _reduce(src, g, n)


def _check_nystrom_options(landmarks, landmark_method, estimate, residual_sample, setup_kernel, rff_features,
                           omega, method):
    from .nystrom import LANDMARK_METHODS

    if isinstance(landmarks, (int, np.integer)) and not isinstance(landmarks, bool):
        m = V.check_positive_int(landmarks, "landmarks")
    else:
        pts = V.as_embeddings(landmarks, "landmarks")
        m = pts.shape[0]
    V.check_choice(landmark_method, "landmark_method", LANDMARK_METHODS)
    V.check_choice(estimate, "estimate", _LN.ESTIMATES)
    s = V.check_positive_int(residual_sample, "residual_sample")
    if setup_kernel != "gaussian":
        raise ValueError("landmarks: Nyström features are for kernel='gaussian' (the cosine kernel is exact in d×d)")
    if rff_features is not None or omega is not None:
        raise ValueError("landmarks: choose Nyström (landmarks=) or random Fourier features (rff_features=), not both")
    if method not in ("auto", "primal"):
        raise ValueError(f"method: Nyström is a primal (m×m) method; got method={method!r}")
    return m, s


def _nystrom_info(m, lm, nmap, captured, captured_t, estimate, estimates):
    return {
        "landmarks": int(m), "selected": int(lm.points.shape[0]), "rank": int(nmap.rank),
        "landmark_method": lm.method, "captured_trace": captured, "captured_trace_texts": captured_t,
        "missing_mass": 1.0 - captured, "estimate": estimate, "estimates": estimates,
    }


def _seed_int(key: Any) -> int:
    if key is None:
        return 0
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return int(key)
    raise ValueError(f"key: Nyström landmarks take an integer seed, got {type(key).__name__}")


def _nystrom_setup(src, images, texts, setup, backend, landmarks, landmark_method, estimate, residual_sample,
                   key, normalize, kernel, rff_features, omega, method, *, paired):
    """Validated options, seed, row access, landmarks (from texts and images when paired) and the map."""
    from .nystrom import nystrom_map

    m, s_res = _check_nystrom_options(landmarks, landmark_method, estimate, residual_sample, kernel,
                                      rff_features, omega, method)
    seed = _seed_int(key)
    rows = _Rows(src, images, texts, normalize)
    lm = _landmarks_for(rows, landmarks, setup.sigma, landmark_method, seed, paired, backend)
    _release_heap()  # the landmark pool and its factor
    nmap = nystrom_map(lm, setup.sigma)
    _release_heap()
    return m, s_res, seed, rows, lm, nmap


#: Below this fraction of a modality's kernel trace captured by the Nyström
#: features, the score rests mostly on the tail model and a warning is issued.
LOW_CAPTURE = 0.2


def _warn_low_capture(captured: float, what: str, m: int, method: str) -> None:
    if captured < LOW_CAPTURE:
        hint = "use more landmarks or a larger sigma"
        if method == "pivoted-cholesky":
            hint += (", or landmark_method='uniform' (pivoted Cholesky takes the worst-explained rows first: when "
                     "one modality's rows are isolated from each other it can take every landmark from it)")
        warnings.warn(
            f"nyström: the {m} {method} landmarks capture only {captured:.3g} of the {what}' kernel trace, so the "
            f"score rests mostly on the estimate of the missing part: {hint}",
            LowCaptureWarning, stacklevel=4)


def _residual_tail(rows, nmap, n, captured, s_res, seed):
    """The "residual" estimate's tail from a seeded subsample of the image rows (seed + 1)."""
    avail = rows.available()
    sample = rows.take("images", _LN.pool_rows(avail, min(s_res, avail), seed + 1))
    tail = _LN.residual_tail(sample, nmap, n, max(1.0 - captured, 0.0))
    del sample
    _release_heap()  # the last large temporaries of the call: leave the heap as the call found it
    return tail


def _nystrom_sce(src, images, texts, setup, prec, backend, block_size, landmarks, landmark_method, estimate,
                 residual_sample, key, rtol, ridge, clamp, progress, normalize, nonzero, kernel, rff_features,
                 omega, method, convention, mesh=None) -> SCEResult:
    if convention != "paper":
        raise ValueError("convention: 'clip-dissection' is the cosine kernel's; Nyström uses convention='paper'")
    with _busy("sce (nyström): landmarks", progress):
        m, s_res, seed, rows, lm, nmap = _nystrom_setup(
            src, images, texts, setup, backend, landmarks, landmark_method, estimate, residual_sample, key,
            normalize, kernel, rff_features, omega, method, paired=True)
    g, n = _nystrom_pass(rows, nmap, paired=True, prec=prec, backend=backend, block_size=block_size,
                         nonzero=nonzero, progress=progress, desc="sce (nyström)", mesh=mesh)
    r = nmap.rank
    rtol_v = V.check_number(rtol, "rtol", positive=False, default=r * EPS32)
    with _busy("sce (nyström): eigenvalues", progress):
        image, text, comp, rank, cap, cap_t = _LN.schur_from_gram(g, n, r, rtol_v, ridge)
        _warn_low_capture(cap, "images", lm.points.shape[0], lm.method)
        _warn_low_capture(cap_t, "texts", lm.points.shape[0], lm.method)
        tail = _residual_tail(rows, nmap, n, cap, s_res, seed)
    estimates = {}
    for kind in _LN.ESTIMATES:
        si, sc, stx = _LN.estimate_spectra(kind, image, comp, text, cap, tail, n)
        ls, lt = _LN.matrix_entropy_tail(sc, clamp), _LN.matrix_entropy_tail(stx, clamp)
        li = _LN.renyi_entropy_tail(si, 1.0, clamp)
        estimates[kind] = {
            "sce": float(np.exp(ls)), "text_score": float(np.exp(lt)), "image_score": float(np.exp(li)),
            "log_sce": ls, "log_text_score": lt, "log_image_score": li,
            "trace_complement": sc.total(), "trace_text": stx.total(), "trace_image": si.total(),
        }
    e = estimates[estimate]
    if rank >= n:
        warnings.warn(f"sce: the text part kept {rank} directions for n = {n} samples (S ≈ 0).",
                      DegenerateWarning, stacklevel=3)
    return SCEResult(
        sce=e["sce"], text_score=e["text_score"], image_score=e["image_score"],
        log_sce=e["log_sce"], log_text_score=e["log_text_score"], log_image_score=e["log_image_score"],
        complement_eigenvalues=comp, text_eigenvalues=text, image_eigenvalues=image,
        trace_complement=e["trace_complement"], trace_text=e["trace_text"], trace_image=e["trace_image"],
        rank_kept=rank, kernel="gaussian", sigma=setup.sigma, method="primal/nystrom", convention=convention,
        n=n, num_features=r, rff_features=None, rtol=rtol_v, ridge=ridge, clamp=clamp, dtype=prec.name,
        backend=backend, seed=seed, omega=None,
        nystrom=_nystrom_info(m, lm, nmap, cap, cap_t, estimate, estimates),
    )


def _nystrom_vendi(src, x, setup, prec, backend, block_size, landmarks, landmark_method, estimate,
                   residual_sample, key, order, clamp, progress, normalize, nonzero, kernel, rff_features, omega,
                   method, mesh=None) -> VendiResult:
    with _busy("vendi (nyström): landmarks", progress):
        m, s_res, seed, rows, lm, nmap = _nystrom_setup(
            src, x, None, setup, backend, landmarks, landmark_method, estimate, residual_sample, key, normalize,
            kernel, rff_features, omega, method, paired=False)
    g, n = _nystrom_pass(rows, nmap, paired=False, prec=prec, backend=backend, block_size=block_size,
                         nonzero=nonzero, progress=progress, desc="vendi (nyström)", mesh=mesh)
    with _busy("vendi (nyström): eigenvalues", progress):
        image = _LN.gram_eigvalsh(g, n)
        del g
        _release_heap()
        cap = float(image.sum())
        _warn_low_capture(cap, "rows", lm.points.shape[0], lm.method)
        tail = _residual_tail(rows, nmap, n, cap, s_res, seed)
    estimates = {}
    for kind in _LN.ESTIMATES:
        si, _, _ = _LN.estimate_spectra(kind, image, None, None, cap, tail, n)
        h = _LN.renyi_entropy_tail(si, order, clamp)
        estimates[kind] = {"score": float(np.exp(h)), "log_score": h}
    e = estimates[estimate]
    return VendiResult(
        score=e["score"], log_score=e["log_score"], order=order, eigenvalues=image, kernel="gaussian",
        sigma=setup.sigma, method="primal/nystrom", n=n, num_features=nmap.rank, rff_features=None,
        clamp=clamp, dtype=prec.name, backend=backend, seed=seed,
        nystrom=_nystrom_info(m, lm, nmap, cap, None, estimate, estimates),
    )


#: Above this many rows (or for streamed inputs) the Gaussian kernel without
#: ``rff_features`` / ``landmarks`` / an explicit ``method`` uses Nyström with
#: DEFAULT_LANDMARKS pivoted-Cholesky landmarks and the "residual" estimate
#: instead of the exact n×n kernel (2 GiB of float64 at this size):
#: the most accurate large-n method on bench/accuracy.py.
EXACT_ROWS = 16384
DEFAULT_LANDMARKS = 2000

#: In-memory exact-Gaussian RKE uses the streamed ‖K‖_F² (O(n²d), no
#: eigendecomposition, no n×n matrix) above this many rows with method="auto".
FROBENIUS_ROWS = 4096



#: Rows per panel of the exact ‖K‖_F² from files: two panels of 2²⁵ values
#: (128 MiB each in float32) are in memory at a time.
FROBENIUS_PANEL_VALUES = 1 << 25


def _panel_rows(n: int, d: int, *, streamed: bool) -> int:
    """Rows per panel, a multiple of the core's 512-row tile: bounded by memory for
    streamed rows; for rows in memory about 16 panels (the progress bar's steps)."""
    rows = FROBENIUS_PANEL_VALUES // max(d, 1) if streamed else max(2048, -(-n // 16))
    return int(max(512, -(-rows // 512) * 512))


def _frobenius_rke(x, src, setup, prec, backend, order, clamp, normalize, progress) -> VendiResult:
    """Exact RKE n² / ‖K‖_F² of the Gaussian kernel: by row panels with a progress bar (rows in host
    memory with the compiled core, or streamed from files: two panels in memory), else one call."""
    from .nystrom import kernel_sq_frobenius, sq_frobenius_panels

    if not (setup.exact and order == 2.0):
        raise ValueError(
            "method: 'frobenius' is the exact Gaussian kernel's order-2 score (rke, or vendi(order=2) "
            "without rff_features)"
        )
    if src is not None and (src.iterator is not None or _reduces(src)):
        raise ValueError("method: 'frobenius' reads the rows several times (panel against panel); an iterator "
                         "or a distributed source is read once: pass files, shards or an array")
    dt = np.dtype(prec.feature)

    def prep(a):
        a = np.asarray(a, dtype=np.float64 if normalize else dt)
        if normalize:
            a = a / np.linalg.norm(a, axis=1, keepdims=True)
        return np.ascontiguousarray(a, dtype=dt)

    # panels: streamed rows, or host rows for the compiled core (one call per panel pair, a bar of pairs)
    if src is not None or (backend == "ffi" and (isinstance(x, np.ndarray)
                                                 or all(dev.platform == "cpu" for dev in x.devices()))):
        if src is not None:
            n, d = src.n, src.d_images

            def read(a, b):
                rows = src.images.read(a, b)
                check_block(rows, src.name, a, src.images.locate, nonzero=normalize)
                return prep(rows)
        else:
            host = prep(x)
            n, d = host.shape

            def read(a, b):
                return host[a:b]

        with _progress_bar(n * (n + 1) // 2, "rke (exact ‖K‖_F²)", progress, unit="pairs") as bar:
            streamed = src is not None and not src.in_memory
            f = sq_frobenius_panels(read, n, setup.sigma, panel_rows=_panel_rows(n, d, streamed=streamed),
                                    backend=backend, on_pairs=bar.update)
    else:  # rows on an accelerator: one call of the target (CUDA) or its JAX twin
        x = jnp.asarray(x)
        if normalize:
            x = x / jnp.linalg.norm(x, axis=1, keepdims=True)
        n = int(x.shape[0])
        with _busy("rke (exact ‖K‖_F²)", progress):
            f = kernel_sq_frobenius(x.astype(prec.feature), kernel="gaussian", sigma=setup.sigma, backend=backend)
    log_score = float(np.log(n) * 2 - np.log(f))
    return VendiResult(
        score=float(np.exp(log_score)), log_score=log_score, order=2.0, eigenvalues=np.zeros(0),
        kernel="gaussian", sigma=setup.sigma, method="frobenius/exact", n=n, num_features=n, rff_features=None,
        clamp=None, dtype=prec.name, backend=backend, seed=None,
    )


def _mesh_for(mesh, src, kernel, rff_features, omega, landmarks, method):
    """The resolved mesh (or None); the sharded paths are the primal ones (in memory, or each streamed block)."""
    mesh = _SH.resolve_mesh(mesh)
    if mesh is None:
        return None
    if method not in ("auto", "primal"):
        raise ValueError(f"mesh: sharded scores take the primal (D×D) path; got method={method!r}")
    return mesh


def _sharded_method(setup) -> str:
    if setup.exact:
        raise ValueError("mesh: the exact Gaussian kernel has no sharded (primal) path; pass rff_features= "
                         "or landmarks=")
    return "primal"


# -------------------------------------------------------------------- public
def sce(
    images: Any,
    texts: Any = None,
    *,
    kernel: str = "cosine",
    sigma: float | None = None,
    rff_features: int | None = None,
    omega: Any = None,
    key: Any = None,
    method: str = "auto",
    convention: str = "paper",
    dtype: Any = None,
    rtol: float | None = None,
    ridge: float | None = None,
    clamp: float | None = DEFAULT_CLAMP,
    normalize: bool = False,
    block_size: int | None = None,
    backend: str = "auto",
    progress: bool | None = None,
    landmarks: int | None = None,
    landmark_method: str = "pivoted-cholesky",
    estimate: str = _LN.DEFAULT_ESTIMATE,
    residual_sample: int = _LN.DEFAULT_RESIDUAL_SAMPLE,
    mesh: Any = None,
) -> SCEResult:
    """Schur Complement Entropy of images given their prompts.

    Splits C_XX into the prompt-explained part R = C_TXᵀ (C_TT + εI)⁺ C_TX
    and the Schur complement S = C_XX − R, and scores each with
    exp(−Σ λ log(λ / Σλ)) (Ospanov, Farnia & Jalali 2024, Eq. 8–10; the
    reference code's ``schur_vendi``; SPEC.md).

    Args:
      images: ``[n, d_x]`` image embeddings: an array, a ``.npy`` path (read
        by blocks), a directory or glob of ``.npy`` shards, a clipcore shard
        directory (then ``texts`` may be omitted), or an iterable of
        ``(images_block, texts_block)`` pairs (``texts`` omitted). Files and
        iterators are streamed in bounded memory (see
        :mod:`clipcore.sources`); they take the primal path.
      texts: ``[n, d_t]`` text embeddings, in any of the same forms; row i is
        the prompt of image i.
      kernel: ``"cosine"`` (φ = x/‖x‖) or ``"gaussian"``.
      sigma: Gaussian bandwidth; default the median pairwise distance of
        (a seeded sample of) the images.
      rff_features: D random Fourier frequencies (2D features); ``None`` with
        the Gaussian kernel means the exact kernel (dual, n×n).
      omega: ``[d, D]`` RFF frequencies already scaled by 1/σ (e.g. the
        reference code's draw); overrides ``key``.
      key: int seed or ``jax.random`` key for ω (default seed 0).
      method: ``"auto"`` (the smaller of D×D and n×n), ``"primal"``, ``"dual"``.
      convention: ``"paper"`` or ``"clip-dissection"`` (the reference code's
        column-cosine covariance for the cosine kernel).
      dtype: ``None``/``"float64"`` (everything in float64; x64 is enabled
        locally for the call) or ``"float32"`` (features and block GEMMs in
        float32, accumulation and linear algebra in float64: the fast path).
      rtol: pseudo-inverse cutoff relative to the largest eigenvalue of
        C_TT + εI; default D_T · eps(float32) whatever the dtype.
      ridge: use (C_TT + ridge·I)⁻¹ instead of the cut pseudo-inverse.
      clamp: eigenvalue floor of the score (1e-10, the code's), or ``None`` to
        drop zero eigenvalues.
      normalize: L2-normalise rows before the Gaussian kernel.
      block_size: rows per accumulation block (primal).
      backend: ``"auto"``, ``"jax"`` or ``"ffi"`` (compiled core) for the
        primal accumulation.
      progress: progress bar for streamed inputs (and an elapsed-time line
        for in-memory steps that report no progress of their own: an n×n
        decomposition, the exact ‖K‖_F², Nyström's landmarks and
        eigenvalues): ``None`` shows it once a step has lasted 2 s, ``True``
        always, ``False`` never.
      landmarks: m: the Gaussian kernel through m Nyström landmarks (SPEC.md,
        "Large n"): one streamed pass, m×m memory, any n; texts and images
        share the landmarks' kernel map (landmarks are drawn from both).
        Or ``[m, d]`` landmark points to use as given.
      landmark_method: ``"pivoted-cholesky"`` (default), ``"kmeans++"`` or
        ``"uniform"`` (:func:`clipcore.nystrom.select_landmarks`, seeded by
        ``key``).
      estimate: how the mass Nyström misses enters the scores:
        ``"residual"`` (default), ``"missing-mass"`` or ``"renormalised"``
        (see :mod:`clipcore._large_n`); all three are in ``result.nystrom``.
      residual_sample: rows of the seeded subsample the ``"residual"``
        estimate studies (default 2000).
      mesh: a :class:`jax.sharding.Mesh`, or a number of devices k (a 1-D
        ``"rows"`` mesh of the first k): the rows of in-memory inputs are
        sharded over its devices and the primal sums (cosine, RFF,
        Nyström) accumulated per device and added with one ``psum``
        (:mod:`clipcore.sharding`); same result to float rounding. Streamed
        inputs shard each block. Across processes: :mod:`clipcore.distributed`.

    Returns:
      :class:`SCEResult`.

    Raises:
      ValueError: on invalid input, naming the argument.
    """
    nonzero = kernel == "cosine" or bool(normalize)
    prec = resolve_precision(dtype)
    clamp = V.check_number(clamp, "clamp", positive=True)
    ridge = V.check_number(ridge, "ridge", positive=True)
    normalize = bool(normalize)
    block_size = V.check_positive_int(block_size, "block_size")
    backend_name = resolve_backend(backend)
    mode = "ridge" if ridge is not None else "pinv"
    ridge_v = ridge if ridge is not None else 0.0
    src, images, texts = _as_source(images, texts, nonzero=nonzero)
    mesh = _mesh_for(mesh, src, kernel, rff_features, omega, landmarks, method)
    if src is None:
        images = V.as_embeddings(images, "images", nonzero_rows=nonzero)
        texts = V.as_embeddings(texts, "texts", nonzero_rows=nonzero)
        V.check_pair(images, texts, same_dim=(kernel == "gaussian"))
        n, d_img, d_txt, sample = images.shape[0], images.shape[1], texts.shape[1], images
    else:
        if src.iterator is None and src.texts is None:
            raise ValueError("texts: missing; pass the prompts' embeddings (or a clipcore shard directory)")
        n, d_img, d_txt = src.n, src.d_images, src.d_texts
        if d_img is None:  # an iterator: its first block tells the dimensions
            first_x, first_t = src.peek()
            d_img, d_txt = first_x.shape[1], first_t.shape[1]
        if kernel == "gaussian" and d_img != d_txt:
            raise ValueError(
                f"texts: dimension {d_txt} differs from images' {d_img}; the Gaussian kernel shares one "
                "feature map (one omega) between texts and images"
            )
        sample = _sigma_sample(src)

    with prec.context():
        setup = resolve_kernel(
            kernel, sigma=sigma, rff_features=rff_features, omega=omega, key=key,
            normalize=normalize, convention=convention, sample=sample, dims=(d_img,),
        )
        if landmarks is None and setup.exact and method == "auto" and (src is not None or n > EXACT_ROWS):
            landmarks = DEFAULT_LANDMARKS  # the n×n exact kernel is out of reach: Nyström (bench/accuracy.py)
        if landmarks is not None:
            return _nystrom_sce(
                src, images, texts, setup, prec, backend_name, block_size, landmarks, landmark_method,
                estimate, residual_sample, key, rtol, ridge, clamp, progress, normalize, nonzero, kernel,
                rff_features, omega, method, convention, mesh=mesh,
            )
        colcos = setup.kernel == "cosine" and convention == "clip-dissection"
        if src is None:
            if colcos:
                V.check_nonzero_columns(images, "images")
                V.check_nonzero_columns(texts, "texts")
            d_t, d_x = _feature_dim(setup, d_txt, n), _feature_dim(setup, d_img, n)
            how = _choose_method(method, setup, (d_t, d_x), n) if mesh is None else _sharded_method(setup)
        else:
            how = _streamed_method(method, setup)
            d_t, d_x = setup.fmap.dim(d_txt), setup.fmap.dim(d_img)
        rtol_v = V.check_number(rtol, "rtol", positive=False, default=d_t * EPS32)

        # in memory: one opaque step (n×n or D×D decomposition) behind an elapsed-time line
        with _busy("sce", progress) if src is None else contextlib.nullcontext():
            if how == "dual":
                spectra = _dual_spectra(
                    texts, images, setup.omega, setup.sigma, rtol_v, ridge_v,
                    **_dual_static(setup, prec, convention, backend_name),
                    mode=mode, pad_to=None if setup.exact else d_x,
                )
            else:
                if src is None:
                    cov = _primal_covariances(setup, prec, convention, backend_name, block_size, texts, images, mesh)
                else:
                    cov, n = _streamed_covariances(src, setup, prec, convention, backend_name, block_size,
                                                   nonzero=nonzero, progress=progress, desc="sce", mesh=mesh)
                spectra: SchurSpectra = schur_primal(cov.tt, cov.tx, cov.xx, rtol_v, EPSILON, ridge_v, mode=mode)

            log_s = matrix_entropy(spectra.complement, clamp)
            log_t = matrix_entropy(spectra.text, clamp)
            log_i = renyi_entropy(spectra.image, 1.0, clamp)
            comp, text, image = _host(spectra.complement), _host(spectra.text), _host(spectra.image)
            rank = int(spectra.rank)
            log_s, log_t, log_i = float(log_s), float(log_t), float(log_i)

    if rank >= n:
        warnings.warn(
            f"sce: the text part kept {rank} directions for n = {n} samples, so it explains every "
            "sample direction: S ≈ 0 and SCE ≈ 1 say nothing about diversity. Use more samples "
            "than text features (n > D), fewer RFF features, or a larger rtol/ridge.",
            DegenerateWarning,
            stacklevel=2,
        )
    return SCEResult(
        sce=float(np.exp(log_s)), text_score=float(np.exp(log_t)), image_score=float(np.exp(log_i)),
        log_sce=log_s, log_text_score=log_t, log_image_score=log_i,
        complement_eigenvalues=comp, text_eigenvalues=text, image_eigenvalues=image,
        trace_complement=float(comp.sum()), trace_text=float(text.sum()), trace_image=float(image.sum()),
        rank_kept=rank, kernel=setup.kernel, sigma=setup.sigma,
        method=f"{how}/{setup.method_name}", convention=convention, n=n, num_features=d_x,
        rff_features=(setup.fmap.num_frequencies if setup.fmap is not None and setup.fmap.kind == "rff" else None),
        rtol=rtol_v, ridge=ridge, clamp=clamp, dtype=prec.name,
        backend=backend_name, seed=setup.seed,
        omega=None if setup.omega is None else np.asarray(setup.omega),
    )


def vendi(
    x: Any,
    *,
    kernel: str = "cosine",
    sigma: float | None = None,
    order: float = 1.0,
    rff_features: int | None = None,
    omega: Any = None,
    key: Any = None,
    clamp: float | None = DEFAULT_CLAMP,
    normalize: bool = False,
    method: str = "auto",
    dtype: Any = None,
    block_size: int | None = None,
    backend: str = "auto",
    progress: bool | None = None,
    landmarks: int | None = None,
    landmark_method: str = "pivoted-cholesky",
    estimate: str = _LN.DEFAULT_ESTIMATE,
    residual_sample: int = _LN.DEFAULT_RESIDUAL_SAMPLE,
    mesh: Any = None,
) -> VendiResult:
    """Vendi score of order α: exp of the Rényi entropy of eig(K / n).

    Friedman & Dieng (2023); order α (Pasarkar & Dieng 2024): α = 1 is
    exp(−Σ λ log λ), α = 2 is RKE (Jalali et al. 2023), α = ∞ is 1 / max λ.
    With ``clamp=None`` this is the vendi-score package's ``score_K(K, q)``.

    Args:
      x: ``[n, d]`` embeddings: an array, a ``.npy`` path, a directory, glob
        or list of ``.npy`` / ``.npz`` shards, or an iterator of ``[b, d]``
        blocks (streamed in bounded memory, primal path; for an iterator the
        σ heuristic and Nyström's landmarks see its first block only).
      kernel, sigma, rff_features, omega, key, normalize, dtype, block_size,
        backend, progress: as in :func:`sce`.
      order: α > 0 or ``float("inf")``.
      clamp: eigenvalue floor 1e-10 (the reference code) or ``None``.
      method: ``"auto"``, ``"primal"`` (D×D covariance) or ``"dual"`` (n×n);
        for the exact Gaussian kernel at order 2 also ``"frobenius"``:
        exp(H₂) = n² / ‖K‖_F² from streamed kernel tiles (the compiled core;
        no eigendecomposition, no n×n matrix), which ``"auto"`` picks above
        ``FROBENIUS_ROWS`` rows. No eigenvalues are returned then and the
        1e-10 clamp is not applied (it would add ≤ n·1e-20 to Σλ²).
      landmarks, landmark_method, estimate, residual_sample: Nyström for the
        Gaussian kernel at large n, as in :func:`sce` (landmarks drawn from x).
      mesh: shard the rows over a device mesh (primal paths), as in :func:`sce`.

    Returns:
      :class:`VendiResult` (``float(result)`` is the score).
    """
    nonzero = kernel == "cosine" or bool(normalize)
    prec = resolve_precision(dtype)
    order = _check_order(order)
    clamp = V.check_number(clamp, "clamp", positive=True)
    block_size = V.check_positive_int(block_size, "block_size")
    backend_name = resolve_backend(backend)
    src, x = _as_single_source(x, nonzero=nonzero)
    mesh = _mesh_for(mesh, src, kernel, rff_features, omega, landmarks, method)
    if src is None:
        x = V.as_embeddings(x, "x", nonzero_rows=nonzero)
        n, dim, sample = x.shape[0], x.shape[1], x
    else:
        n, dim, sample = src.n, src.d_images, _sigma_sample(src)
        if dim is None:  # an iterator: its first block tells the dimension
            dim = src.peek()[0].shape[1]
    with prec.context():
        setup = resolve_kernel(
            kernel, sigma=sigma, rff_features=rff_features, omega=omega, key=key,
            normalize=bool(normalize), convention="paper", sample=sample, dims=(dim,),
        )
        # a large host array is streamed by blocks too (memory), but it is in memory: order 2 stays exact
        in_memory = src is None or src.in_memory
        if landmarks is None and setup.exact and method == "auto" and (
                not in_memory or (n > EXACT_ROWS and order != 2.0)):
            landmarks = DEFAULT_LANDMARKS  # order 2 in memory stays exact (frobenius)
        if landmarks is not None:
            return _nystrom_vendi(src, x, setup, prec, backend_name, block_size, landmarks, landmark_method,
                                  estimate, residual_sample, key, order, clamp, progress, bool(normalize),
                                  nonzero, kernel, rff_features, omega, method, mesh=mesh)
        if method == "frobenius" or (setup.exact and order == 2.0 and method == "auto" and in_memory
                                     and n > FROBENIUS_ROWS and mesh is None):
            return _frobenius_rke(x, src, setup, prec, backend_name, order, clamp, bool(normalize), progress)
        if src is None:
            d = _feature_dim(setup, dim, n)
            how = _choose_method(method, setup, (d,), n) if mesh is None else _sharded_method(setup)
        else:
            how, d = _streamed_method(method, setup), setup.fmap.dim(dim)
        # in memory: one opaque step (n×n or D×D decomposition) behind an elapsed-time line
        with _busy("vendi", progress) if src is None else contextlib.nullcontext():
            if src is not None:
                c, n = _streamed_covariance(src, setup, prec, backend_name, block_size, nonzero=nonzero,
                                            progress=progress, mesh=mesh)
                eigs = _pad(jnp.maximum(eigvalsh(0.5 * (c + c.T))[::-1], 0.0), d)
            elif how == "primal":
                c = (feature_covariance if mesh is None else functools.partial(_SH.feature_covariance, mesh=mesh))(
                    x, setup.fmap, setup.omega, block_size=block_size,
                    feature_dtype=prec.feature, acc_dtype=prec.acc, backend=backend_name,
                )
                eigs = eigvalsh(0.5 * (c + c.T))
                eigs = _pad(jnp.maximum(eigs[::-1], 0.0), d)
            else:
                # the dual's n eigenvalues are cut or zero-padded to the primal
                # dimension d, so the 1e-10 clamp counts the same entries.
                eigs = _dual_image_eigs(
                    x, setup.omega, setup.sigma, pad_to=None if setup.exact else d,
                    **_dual_static(setup, prec, "paper", backend_name),
                )
            log_score = float(renyi_entropy(eigs, order, clamp))
            host = _host(eigs)
    return VendiResult(
        score=float(np.exp(log_score)), log_score=log_score, order=order, eigenvalues=host,
        kernel=setup.kernel, sigma=setup.sigma, method=f"{how}/{setup.method_name}", n=n,
        num_features=d,
        rff_features=(setup.fmap.num_frequencies if setup.fmap is not None and setup.fmap.kind == "rff" else None),
        clamp=clamp, dtype=prec.name, backend=backend_name,
        seed=setup.seed,
    )


def rke(x: Any, **kwargs) -> VendiResult:
    """RKE (Rényi Kernel Entropy) score: :func:`vendi` of order 2.

    exp(H₂) = 1 / Σ λ² = n² / ‖K‖_F² (Jalali et al. 2023).
    """
    if "order" in kwargs:
        raise ValueError("order: rke is the order-2 Vendi score; use vendi(order=...) for others")
    return vendi(x, order=2.0, **kwargs)
