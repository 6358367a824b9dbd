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

import functools
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

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
from .covariance import Covariances, _dual_gram, column_cosine, feature_covariance, joint_covariances
from .entropy import DEFAULT_CLAMP, matrix_entropy, renyi_entropy
from .kernels import FeatureMap, features, gaussian_kernel
from .schur import EPSILON, SchurSpectra, _pad, schur_dual, schur_primal

__all__ = ["SCEResult", "VendiResult", "sce", "vendi", "rke", "DegenerateWarning"]


class DegenerateWarning(UserWarning):
    """The text part explains every sample direction: S ≈ 0, SCE ≈ 1."""


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

    def summary(self) -> dict:
        """JSON-ready scores and provenance (eigenvalues and ω left out)."""
        skip = {"complement_eigenvalues", "text_eigenvalues", "image_eigenvalues", "omega"}
        return {k: v for k, v in self._asdict().items() if k not in skip}


class VendiResult(NamedTuple):
    """Vendi score of order α of one set of embeddings (RKE: α = 2).

    Attributes:
      score: exp of the Rényi entropy of order α of eig(C) (C = Φᵀ Φ / n).
      log_score: the entropy.
      eigenvalues: ``[k]`` descending, clipped at 0.
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


def _primal_covariances(setup, prec, convention, backend, block_size, texts, images) -> Covariances:
    cov = joint_covariances(
        setup.prepare(texts), setup.prepare(images), setup.fmap, setup.omega,
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


# -------------------------------------------------------------------- public
def sce(
    images: Any,
    texts: Any,
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
) -> SCEResult:
    """Schur Complement Entropy of images given their prompts.

    Splits C_XX into the prompt-explained part R = C_TXᵀ (C_TT + εI)⁺ C_TX
    and the Schur complement S = C_XX − R, and scores each with
    exp(−Σ λ log(λ / Σλ)) (Ospanov, Farnia & Jalali 2024, Eq. 8–10; the
    reference code's ``schur_vendi``; SPEC.md).

    Args:
      images: ``[n, d_x]`` image embeddings.
      texts: ``[n, d_t]`` text embeddings; row i is the prompt of image i.
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

    Returns:
      :class:`SCEResult`.

    Raises:
      ValueError: on invalid input, naming the argument.
    """
    nonzero = kernel == "cosine" or bool(normalize)
    images = V.as_embeddings(images, "images", nonzero_rows=nonzero)
    texts = V.as_embeddings(texts, "texts", nonzero_rows=nonzero)
    V.check_pair(images, texts, same_dim=(kernel == "gaussian"))
    prec = resolve_precision(dtype)
    clamp = V.check_number(clamp, "clamp", positive=True)
    ridge = V.check_number(ridge, "ridge", positive=True)
    normalize = bool(normalize)
    block_size = V.check_positive_int(block_size, "block_size")
    backend_name = resolve_backend(backend)
    n = images.shape[0]

    with prec.context():
        setup = resolve_kernel(
            kernel, sigma=sigma, rff_features=rff_features, omega=omega, key=key,
            normalize=normalize, convention=convention, sample=images, dims=(images.shape[1],),
        )
        if setup.kernel == "cosine" and convention == "clip-dissection":
            V.check_nonzero_columns(images, "images")
            V.check_nonzero_columns(texts, "texts")
        d_t = _feature_dim(setup, texts.shape[1], n)
        d_x = _feature_dim(setup, images.shape[1], n)
        how = _choose_method(method, setup, (d_t, d_x), n)
        rtol_v = V.check_number(rtol, "rtol", positive=False, default=d_t * EPS32)
        mode = "ridge" if ridge is not None else "pinv"
        ridge_v = ridge if ridge is not None else 0.0

        if how == "primal":
            cov = _primal_covariances(setup, prec, convention, backend_name, block_size, texts, images)
            spectra: SchurSpectra = schur_primal(cov.tt, cov.tx, cov.xx, rtol_v, EPSILON, ridge_v, mode=mode)
        else:
            spectra = _dual_spectra(
                texts, images, setup.omega, setup.sigma, rtol_v, ridge_v,
                **_dual_static(setup, prec, convention, backend_name),
                mode=mode, pad_to=None if setup.exact else d_x,
            )

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
) -> VendiResult:
    """Vendi score of order α: exp of the Rényi entropy of eig(K / n).

    Friedman & Dieng (2023); order α (Pasarkar & Dieng 2024): α = 1 is
    exp(−Σ λ log λ), α = 2 is RKE (Jalali et al. 2023), α = ∞ is 1 / max λ.
    With ``clamp=None`` this is the vendi-score package's ``score_K(K, q)``.

    Args:
      x: ``[n, d]`` embeddings.
      kernel, sigma, rff_features, omega, key, normalize, dtype, block_size,
        backend: as in :func:`sce`.
      order: α > 0 or ``float("inf")``.
      clamp: eigenvalue floor 1e-10 (the reference code) or ``None``.
      method: ``"auto"``, ``"primal"`` (D×D covariance) or ``"dual"`` (n×n).

    Returns:
      :class:`VendiResult` (``float(result)`` is the score).
    """
    x = V.as_embeddings(x, "x", nonzero_rows=(kernel == "cosine" or bool(normalize)))
    prec = resolve_precision(dtype)
    order = _check_order(order)
    clamp = V.check_number(clamp, "clamp", positive=True)
    block_size = V.check_positive_int(block_size, "block_size")
    backend_name = resolve_backend(backend)
    n = x.shape[0]
    with prec.context():
        setup = resolve_kernel(
            kernel, sigma=sigma, rff_features=rff_features, omega=omega, key=key,
            normalize=bool(normalize), convention="paper", sample=x, dims=(x.shape[1],),
        )
        d = _feature_dim(setup, x.shape[1], n)
        how = _choose_method(method, setup, (d,), n)
        if how == "primal":
            c = feature_covariance(
                setup.prepare(x), setup.fmap, setup.omega, block_size=block_size,
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
