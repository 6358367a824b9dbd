"""Modes of the Schur decomposition and the samples that carry them.

Ospanov, Farnia & Jalali (2024), "Dissecting CLIP: Decomposition with a
Schur Complement-based Approach" (arXiv:2412.18645) interpret the two parts
of C_XX by their leading eigenvectors: the top eigenvectors v of the Schur
complement S = C_XX − R are *prompt-independent modes* (what varies across
images whatever the prompt says), those of R = C_TXᵀ C_TT⁺ C_TX are
*prompt-explained modes*.  A mode is shown by the images whose features
score highest on it, φ(x)·v, in the primal (D×D) feature space: the
row-normalised embedding for the cosine kernel, the random Fourier features
for the Gaussian kernel (the same φ as the scores; SPEC.md).

An eigenvector's sign is arbitrary; each is oriented so that its most extreme
sample score is positive, and samples are ranked by that signed score.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _validate as V
from ._options import EPS32, resolve_precision
from ._pipeline.inputs import (file_source, resolve_kernel, resolve_kernel_options, resolve_source_options,
                               sigma_sample)
from ._pipeline.passes import stream_sums
from ._progress import bar as progress_bar, check_progress
from .covariance import default_block_size
from .kernels import FeatureMap, features
from .schur import EPSILON, schur_matrices

__all__ = ["modes", "ModesResult", "PARTS"]

#: ``part`` → which matrix's eigenvectors are the modes.
PARTS = ("complement", "text", "image")


class ModesResult(NamedTuple):
    """Leading eigenvectors of S (or R, or C_XX) and their top-scoring samples.

    Attributes:
      part: ``"complement"`` (S, prompt-independent), ``"text"`` (R,
        prompt-explained) or ``"image"`` (C_XX).
      eigenvalues: ``[k]`` descending eigenvalues of that matrix.
      eigenvectors: ``[D, k]`` unit eigenvectors (columns), oriented so the
        most extreme sample score is positive.
      indices: ``[k, per_mode]`` rows of the highest-scoring images per mode.
      scores: ``[k, per_mode]`` their scores φ(x_i)·v (descending).
      trace: tr of the matrix (for the share eigenvalue / trace).
      kernel, sigma, rff_features, seed, n, num_features, rtol, ridge: provenance.
      pairing: how shards paired by number were matched (:meth:`clipcore.sources.PairingReport.to_dict`),
        or None; ``indices`` count the rows read (the complete pairs when shards were skipped).
    """

    part: str
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    indices: np.ndarray
    scores: np.ndarray
    trace: float
    kernel: str
    sigma: float | None
    rff_features: int | None
    seed: int | None
    n: int
    num_features: int
    rtol: float
    ridge: float | None
    pairing: dict | None = None

    def summary(self) -> dict:
        """JSON-ready: everything but the eigenvectors."""
        return {k: v for k, v in self._asdict().items() if k != "eigenvectors"}


@functools.partial(jax.jit, static_argnames=("fmap",))
def _project(x, omega, v, *, fmap: FeatureMap):
    """φ(x) v: ``x: [b, d]``, ``v: [D, k]`` → ``[b, k]``."""
    phi = features(x.astype(v.dtype), fmap, omega)
    return jnp.dot(phi, v, precision=jax.lax.Precision.HIGHEST)


def _top(scores_all: np.ndarray, per_mode: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.argsort(-scores_all, axis=0, kind="stable")[:per_mode].T  # [k, per_mode]
    return idx, np.take_along_axis(scores_all.T, idx, axis=1)


def modes(
    images: Any,
    texts: Any = None,
    *,
    part: str = "complement",
    k: int = 5,
    per_mode: int = 16,
    kernel: str = "cosine",
    sigma: float | None = None,
    rff_features: int | None = None,
    omega: Any = None,
    key: Any = None,
    normalize: bool = False,
    rtol: float | None = None,
    ridge: float | None = None,
    block_size: int | None = None,
    progress: bool | None = None,
    images_key: str | None = None,
    texts_key: str | None = None,
    skip_incomplete: bool = False,
) -> ModesResult:
    """Top-k modes of S (prompt-independent) or R (prompt-explained) and their samples.

    Builds C_TT, C_TX, C_XX in the primal feature space (streamed over row
    blocks), forms R = C_TXᵀ (C_TT + εI)⁺ C_TX and S = C_XX − R exactly as
    :func:`clipcore.sce` does (same ``rtol`` / ``ridge``), takes the ``k``
    leading eigenvectors v of the chosen part, and scores every image by
    φ(x_i)·v in a second pass.

    Args:
      images: ``[n, d_x]`` image embeddings: an array, ``.npy`` / ``.npz`` path, shard
        directory or glob (read twice, so not an iterator); a folder of any
        layout :func:`clipcore.sce` reads (clipcore shards, clip-retrieval /
        LAION, DataComp, Parquet) gives both columns (``texts=None``).
      texts: ``[n, d_t]`` prompt embeddings, row i ↔ image i.
      part: ``"complement"`` (S), ``"text"`` (R) or ``"image"`` (C_XX).
      k: number of modes (≤ D).
      per_mode: images listed per mode (at most n).
      kernel: ``"cosine"`` or ``"gaussian"`` (then ``rff_features`` is
        required: the modes live in the RFF space).
      sigma, rff_features, omega, key, normalize, rtol, ridge: as in :func:`clipcore.sce`.
      block_size: rows per block of both passes.
      progress: tqdm bars (``None``: after 2 s; ``False``: never).
      images_key, texts_key, skip_incomplete: as in :func:`clipcore.sce` (the arrays inside ``.npz``
        shards or the Parquet columns; only the complete shard pairs, reported in ``result.pairing``).

    Returns:
      :class:`ModesResult`.
    """
    V.check_choice(part, "part", PARTS)
    progress = check_progress(progress)
    kopts = resolve_kernel_options(kernel=kernel, sigma=sigma, rff_features=rff_features, omega=omega, key=key)
    normalize = V.check_flag(normalize, "normalize")
    k = V.check_positive_int(k, "k")
    per_mode = V.check_positive_int(per_mode, "per_mode")
    block_size = V.check_positive_int(block_size, "block_size")
    ridge = V.check_number(ridge, "ridge", positive=True)
    if kernel == "gaussian" and rff_features is None and omega is None:
        raise ValueError("rff_features: modes of the Gaussian kernel are eigenvectors in the random Fourier feature "
                         "space; pass rff_features= (e.g. 2000)")
    files = resolve_source_options(images_key=images_key, texts_key=texts_key, skip_incomplete=skip_incomplete)
    src = file_source(images, texts, files)
    if src.iterator is not None:
        raise ValueError("images: modes reads the images twice (covariances, then scores); pass arrays or files, "
                         "not an iterator")
    if src.texts is None:
        raise ValueError("texts: missing; pass the prompts' embeddings (or a clipcore shard directory)")
    n, d_x, d_t = src.n, src.d_images, src.d_texts
    if kernel == "gaussian" and d_x != d_t:
        raise ValueError(f"texts: dimension {d_t} differs from images' {d_x}; the Gaussian kernel shares one omega")
    nonzero = kernel == "cosine" or bool(normalize)
    prec = resolve_precision(None)
    with prec.context():
        setup = resolve_kernel(kopts, normalize=normalize, convention="paper", sample=sigma_sample(src), dim=d_x)
        fmap = setup.fmap
        dx, dt = fmap.dim(d_x), fmap.dim(d_t)
        if k > dx:
            raise ValueError(f"k: asks for {k} modes but the feature space has dimension {dx}")
        block = block_size or default_block_size(n, dx + dt)
        rtol_v = V.check_number(rtol, "rtol", positive=False, default=dt * EPS32)
        with progress_bar(n, "modes: covariances", progress) as bar:
            (g_tt, g_tx, g_xx), n_seen = stream_sums(
                src.blocks(block, nonzero=nonzero), fmap, setup.omega, paired=True,
                feature_dtype=jnp.float64, acc_dtype=jnp.float64, progress=bar)
        r, s, _ = schur_matrices(g_tt / n_seen, g_tx / n_seen, g_xx / n_seen, rtol_v, EPSILON,
                                 ridge if ridge is not None else 0.0, mode="ridge" if ridge is not None else "pinv")
        mat = {"complement": s, "text": r, "image": g_xx / n_seen}[part]
        w, v = jnp.linalg.eigh(0.5 * (mat + mat.T))
        w, v = w[::-1][:k], v[:, ::-1][:, :k]
        trace = float(jnp.trace(mat))
        scores_all = np.empty((n, k), np.float64)
        with progress_bar(n, "modes: scores", progress) as bar:
            for start in range(0, n, block):
                stop = min(n, start + block)
                scores_all[start:stop] = np.asarray(_project(jnp.asarray(src.images.read(start, stop)),
                                                             setup.omega, v, fmap=fmap))
                bar.update(stop - start)
        v = np.asarray(v, np.float64)
        w = np.maximum(np.asarray(w, np.float64), 0.0)
    # orient each mode so that its most extreme sample scores positive
    extreme = scores_all[np.argmax(np.abs(scores_all), axis=0), np.arange(k)]
    sign = np.where(extreme < 0, -1.0, 1.0)
    scores_all *= sign
    v = v * sign
    idx, top = _top(scores_all, min(per_mode, n))
    return ModesResult(
        part=part, eigenvalues=w, eigenvectors=v, indices=idx, scores=top, trace=trace,
        kernel=setup.kernel, sigma=setup.sigma,
        rff_features=fmap.num_frequencies if fmap.kind == "rff" else None, seed=setup.seed,
        n=n, num_features=dx, rtol=rtol_v, ridge=ridge,
        pairing=None if src.pairing is None else src.pairing.to_dict(),
    )
