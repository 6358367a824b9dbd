"""SCE, Vendi, RKE and CLIPScore as pure functions of arrays (jit, grad, jvp, vmap, sharded rows).

Same definitions, defaults and numbers as the host API (:func:`clipcore.sce`, :func:`clipcore.vendi`,
:func:`clipcore.rke`, :func:`clipcore.clip_score`) for in-memory arrays; the primal (D×D) or dual (n×n)
form is chosen from the shapes by the host's auto rule (primal when every feature dimension D ≤ n).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .. import _validate as V
from ..covariance import dual_gram_jit
from ..entropy import DEFAULT_CLAMP
from ._moments import accumulate, sce_from_moments, vendi_from_moments
from .setup import backend_of, check_clamp, choose_path, default_rtol, kernel_spec, resolve_dtype, sigma_and_omega
from .spectra import check_order, sce_from_grams, vendi_from_covariance
from .types import ClipScores, SCEScores, VendiScores

__all__ = ["sce", "vendi", "rke", "clip_score", "CLIP_SCORE_VARIANTS"]

#: CLIPScore ``variant`` → its weight w (as :data:`clipcore.tables.CLIP_SCORE_VARIANTS`).
CLIP_SCORE_VARIANTS = {"hessel": 2.5, "torchmetrics": 100.0}


def _check_rows(x: Any, name: str) -> None:
    if jnp.ndim(x) != 2 or 0 in jnp.shape(x):
        raise ValueError(f"{name}: expected a non-empty 2-D array [n, d], got shape {tuple(jnp.shape(x))}")
    if not V.is_floating(jnp.result_type(x)):
        raise ValueError(f"{name}: expected a floating-point array, got dtype {jnp.result_type(x)}")


def _dual_gram(x, spec, sigma, omega, prec, backend):
    kind = "exact" if spec.kind == "exact" else "features"
    return dual_gram_jit(x, omega, sigma, kind=kind, fmap=spec.fmap, normalize=False, feature_dtype=prec.feature,
                         acc_dtype=prec.acc, backend=backend)


def sce(images: jax.Array, texts: jax.Array, *, kernel: str = "cosine", sigma: Any = None, omega: Any = None,
        key: Any = None, rff_features: int | None = None, rtol: Any = None, ridge: Any = 0.0,
        clamp: float | None = DEFAULT_CLAMP, method: str = "auto", dtype: Any = None, backend: str = "auto",
        block_size: int | None = None, mesh: Any = None) -> SCEScores:
    """Schur Complement Entropy of images given their prompts, as a pure function of arrays.

    Ospanov, Farnia & Jalali (2024), arXiv:2412.18645, Eq. 8–10 (SPEC.md): with C = Φᵀ Φ / n,
    R = C_TXᵀ (C_TT + εI)⁺ C_TX, S = C_XX − R; SCE = exp(−Σ λ log(λ/Σλ)) over eig(S), the text score the
    same over eig(R), the image score the order-1 Vendi of C_XX. Usable under ``jax.jit``, ``jax.grad``,
    ``jax.jvp``, ``jax.vmap`` and with rows sharded over a mesh; no host callback.

    Args:
      images: ``[n, d_x]`` image embeddings.
      texts: ``[n, d_t]`` text embeddings; row i is the prompt of image i.
      kernel: ``"cosine"`` (φ = x/‖x‖, D = d) or ``"gaussian"``.
      sigma: Gaussian bandwidth, a number or a (traced, differentiable) 0-d array; None: the median
        pairwise distance of (a seeded sample of at most 2000 of) the images, computed in JAX and
        ``stop_gradient``-ed (:func:`clipcore.functional.median_sigma`, the host API's σ).
      omega: ``[d, D]`` RFF frequencies already scaled by 1/σ (Gaussian through 2D random Fourier
        features); or ``key`` + ``rff_features`` to draw them (the host API's draw); neither: the exact
        Gaussian kernel through the ``[n, n]`` dual (small n).
      key: an int seed or a ``jax.random`` key for ω. rff_features: D.
      rtol: pseudo-inverse cutoff (default D_T · eps(float32), SPEC.md). ridge: 0 (the cut pseudo-inverse
        of C_TT + 1e-12 I) or λ > 0 ((C_TT + λI)⁻¹).
      clamp: eigenvalue floor (1e-10, static) or None.
      method: ``"auto"`` (primal D×D when every D ≤ n, else dual n×n; static, from shapes), ``"primal"``
        or ``"dual"``.
      dtype: None (float64 with x64, else float32), ``"float32"``, ``"float64"`` (see the package doc).
      backend: ``"auto"`` / ``"ffi"`` (the compiled Gram core on CPU) or ``"jax"``.
      block_size: rows per accumulation block (primal).
      mesh: a :class:`jax.sharding.Mesh` whose axes shard the rows (primal; n divisible by its size):
        per-device sums and one psum, the rows never gathered. Inputs whose type carries an explicit row
        sharding are handled so without it.

    Returns:
      :class:`SCEScores` (``[D_X]`` spectra primal; dual: padded to D_X, or n for the exact kernel).

    Raises:
      ValueError: an invalid option or shape, naming the argument.
    """
    _check_rows(images, "images")
    _check_rows(texts, "texts")
    if jnp.shape(images)[0] != jnp.shape(texts)[0]:
        raise ValueError(f"texts: {jnp.shape(texts)[0]} rows but images has {jnp.shape(images)[0]}; row i of "
                         "texts must be the prompt of row i of images")
    spec = kernel_spec(kernel, sigma=sigma, omega=omega, key=key, rff_features=rff_features)
    if spec.kind != "cosine" and jnp.shape(images)[1] != jnp.shape(texts)[1]:
        raise ValueError(f"texts: dimension {jnp.shape(texts)[1]} differs from images' {jnp.shape(images)[1]}; "
                         "the Gaussian kernel shares one feature map between texts and images")
    clamp = check_clamp(clamp)
    prec = resolve_dtype(dtype, images, texts)
    be = backend_of(backend)
    n = jnp.shape(images)[0]
    d_t, d_x = (n, n) if spec.kind == "exact" else (spec.fmap.dim(jnp.shape(texts)[1]),
                                                    spec.fmap.dim(jnp.shape(images)[1]))
    path = choose_path(spec, n, (jnp.shape(texts)[1], jnp.shape(images)[1]), method)
    rt = default_rtol(rtol, d_t)
    if path == "primal":
        m = accumulate(images, texts, spec, prec, sigma, omega, key, be, block_size, mesh)
        return sce_from_moments(m, rtol=rt, ridge=ridge, clamp=clamp)
    if mesh is not None:
        raise ValueError("mesh: sharded rows take the primal (D×D) path; use method='primal' (or more rows than "
                         "features), or drop mesh=")
    x, t = jnp.asarray(images, prec.feature), jnp.asarray(texts, prec.feature)
    sig, om = sigma_and_omega(spec, x, sigma, omega, key, prec.acc)
    k_t, k_x = _dual_gram(t, spec, sig, om, prec, be), _dual_gram(x, spec, sig, om, prec, be)
    return sce_from_grams(k_t, k_x, rtol=rt, ridge=ridge, clamp=clamp, pad_to=None if spec.kind == "exact" else d_x)


def vendi(x: jax.Array, *, kernel: str = "cosine", sigma: Any = None, omega: Any = None, key: Any = None,
          rff_features: int | None = None, order: float = 1.0, clamp: float | None = DEFAULT_CLAMP,
          method: str = "auto", dtype: Any = None, backend: str = "auto", block_size: int | None = None,
          mesh: Any = None) -> VendiScores:
    """Vendi score of order α of a set of embeddings, as a pure function of arrays.

    Friedman & Dieng (2023); order α (Pasarkar & Dieng 2024): exp of the Rényi entropy of eig(C),
    C = Φᵀ Φ / n (or of K / n: same spectrum); α = 1: exp(−Σ λ log λ), α = 2: RKE (Jalali et al. 2023),
    α = ∞: 1 / max λ. ``clamp=None`` is the vendi-score package's ``score_K(K, q)``.

    Args:
      x: ``[n, d]`` embeddings.
      kernel, sigma, omega, key, rff_features, clamp, method, dtype, backend, block_size, mesh: as in
        :func:`sce` (σ's median heuristic runs on x).
      order: α > 0 or ``float("inf")`` (static).

    Returns:
      :class:`VendiScores` (``[D]`` eigenvalues; dual: padded to D, or n for the exact kernel).
    """
    _check_rows(x, "x")
    order = check_order(order)
    spec = kernel_spec(kernel, sigma=sigma, omega=omega, key=key, rff_features=rff_features)
    clamp = check_clamp(clamp)
    prec = resolve_dtype(dtype, x)
    be = backend_of(backend)
    n, d = jnp.shape(x)
    path = choose_path(spec, n, (d,), method)
    if path == "primal":
        m = accumulate(x, None, spec, prec, sigma, omega, key, be, block_size, mesh)
        return vendi_from_moments(m, order=order, clamp=clamp)
    if mesh is not None:
        raise ValueError("mesh: sharded rows take the primal (D×D) path; use method='primal' (or more rows than "
                         "features), or drop mesh=")
    xa = jnp.asarray(x, prec.feature)
    sig, om = sigma_and_omega(spec, xa, sigma, omega, key, prec.acc)
    k = _dual_gram(xa, spec, sig, om, prec, be)
    return vendi_from_covariance(k, order=order, clamp=clamp, pad_to=None if spec.kind == "exact" else spec.fmap.dim(d))


def rke(x: jax.Array, **kwargs) -> VendiScores:
    """RKE (Rényi Kernel Entropy, Jalali et al. 2023): :func:`vendi` of order 2, exp(H₂) = 1 / Σ λ².

    Args:
      x: ``[n, d]`` embeddings; kwargs: :func:`vendi`'s options (``order`` may only be 2).
    """
    order = kwargs.pop("order", 2.0)
    if check_order(order) != 2.0:
        raise ValueError(f"order: rke is the order-2 Vendi score (got order={order}); use vendi(order=...) for "
                         "others")
    return vendi(x, order=2.0, **kwargs)


def clip_score(images: jax.Array, texts: jax.Array, *, variant: str = "hessel", weight: Any = None,
               dtype: Any = None) -> ClipScores:
    """CLIPScore of paired embeddings, as :func:`clipcore.clip_score` (same variants, same numbers).

    ``variant="hessel"`` (Hessel et al. 2021, Eq. 1): mean over pairs of w · max(cos(x_i, t_i), 0),
    w = 2.5; ``"torchmetrics"``: max(mean of w · cos, 0), w = 100 (the clamp after the mean).

    Args:
      images: ``[n, d]``; texts: ``[n, d]`` (row i describes image i).
      variant: ``"hessel"`` or ``"torchmetrics"``. weight: override w (may be traced).
      dtype: as in :func:`sce`.

    Returns:
      :class:`ClipScores`.
    """
    V.check_choice(variant, "variant", tuple(CLIP_SCORE_VARIANTS))
    _check_rows(images, "images")
    _check_rows(texts, "texts")
    if jnp.shape(images) != jnp.shape(texts):
        raise ValueError(f"texts: shape {tuple(jnp.shape(texts))} differs from images' {tuple(jnp.shape(images))}")
    if weight is None:
        weight = CLIP_SCORE_VARIANTS[variant]
    elif not isinstance(weight, jax.Array):
        weight = V.check_number(weight, "weight", positive=True)
    prec = resolve_dtype(dtype, images, texts)
    x, t = jnp.asarray(images, prec.acc), jnp.asarray(texts, prec.acc)
    xn = x / jnp.linalg.norm(x, axis=1, keepdims=True)
    tn = t / jnp.linalg.norm(t, axis=1, keepdims=True)
    cos = jnp.sum(xn * tn, axis=1)
    if variant == "hessel":
        per = weight * jnp.maximum(cos, 0.0)
        return ClipScores(jnp.mean(per), per, cos)
    per = weight * cos
    return ClipScores(jnp.maximum(jnp.mean(per), 0.0), per, cos)
