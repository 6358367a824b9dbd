"""Conditional and Information Vendi as a pure function of arrays (jit, grad, vmap).

Jalali, Ospanov, Gohari & Farnia (2024), "Conditional Vendi Score", arXiv:2411.02817 — the exact (n×n,
dual) form of :func:`clipcore.conditional_vendi` for rows in memory: ρ_X = K_X/n, ρ_T = K_T/n,
ρ_XT = (K_X ∘ K_T)/tr(K_X ∘ K_T); H(X|T) = H(X, T) − H(T), I(X; T) = H(X) + H(T) − H(X, T), Rényi
entropies of order α (natural log). The three spectra come from one batched eigendecomposition
(:func:`clipcore.functional.spectra.three_spectra`, differentiable without 1/(λ_i − λ_j) terms); order 2
without truncation uses ‖ρ‖_F² and no eigendecomposition. O(n³): for large n use the host function, which
streams.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _validate as V
from ..product_kernel import PRODUCT_KERNELS, combine, marginal_gram, spectrum_entropy
from .setup import SIGMA_SAMPLE, median_sigma, resolve_dtype, sample_sq_distances
from .spectra import check_order, three_spectra

__all__ = ["ConditionalVendiScores", "conditional_vendi", "distinct_median_sigma"]


class ConditionalVendiScores(NamedTuple):
    """Conditional / Information Vendi of paired rows (every field a ``[]`` array; a pytree).

    Attributes:
      conditional_vendi: exp H(X|T). information_vendi: exp I(X; T).
      conditional_entropy: H(X|T) = H(X, T) − H(T). mutual_information: I(X; T) = H(X) + H(T) − H(X, T).
      joint_entropy: H(X, T) of (K_X ∘ K_T)/tr. image_entropy: H(X) of K_X/n. text_entropy: H(T) of K_T/n.
      sigma_images, sigma_texts: the Gaussian bandwidths used (None for the cosine kernel).
    """

    conditional_vendi: jax.Array
    information_vendi: jax.Array
    conditional_entropy: jax.Array
    mutual_information: jax.Array
    joint_entropy: jax.Array
    image_entropy: jax.Array
    text_entropy: jax.Array
    sigma_images: Any
    sigma_texts: Any


def distinct_median_sigma(t: jax.Array, *, max_samples: int = SIGMA_SAMPLE, seed: int = 0) -> jax.Array:
    """The texts' median heuristic of :func:`clipcore.conditional_vendi`, in JAX: the median pairwise
    distance of the *distinct* rows among (a seeded sample of at most ``max_samples``) rows.

    Prompts repeat (k images each), and the pairs of a prompt with itself would pull the median to 0; the
    host takes ``numpy.unique`` of the sample, this twin the first occurrence of each exactly equal row (the
    same set of rows, so the same σ). ``stop_gradient``-ed. Fewer than two distinct rows give NaN (the host
    refuses them): pass σ then.

    Args:
      t: ``[n, d]`` rows (n ≥ 2).

    Returns:
      ``[]`` σ in t's dtype.
    """
    t, d2, iu = sample_sq_distances(jnp.asarray(t), max_samples=max_samples, seed=seed)
    rows = jnp.arange(t.shape[0])
    # row i repeats an earlier row: exact equality, one row against all at a time (m·d memory)
    repeat = jax.lax.map(lambda i: jnp.any(jnp.all(t == t[i], axis=1) & (rows < i)), rows)
    keep = ~repeat[iu[0]] & ~repeat[iu[1]]
    med = jnp.nanmedian(jnp.where(keep, d2, jnp.nan))
    return jnp.sqrt(jnp.maximum(med, 0.0))


def _check_rows(a: Any, name: str) -> None:
    if jnp.ndim(a) != 2 or 0 in jnp.shape(a):
        raise ValueError(f"{name}: expected a non-empty 2-D array [n, d], got shape {tuple(jnp.shape(a))}")
    if not V.is_floating(jnp.result_type(a)):
        raise ValueError(f"{name}: expected a floating-point array, got dtype {jnp.result_type(a)}")


def _sigma_pair(kernel: str, sigma: Any) -> tuple[Any, Any]:
    """``sigma``: None, a number or 0-d array (both), or a pair (either None); numbers checked > 0."""
    if kernel == "cosine":
        if sigma is not None:
            raise ValueError("sigma: only used by kernel='gaussian' (got kernel='cosine')")
        return None, None
    if isinstance(sigma, (tuple, list)):
        if len(sigma) != 2:
            raise ValueError(f"sigma: expected a number or a pair (sigma_images, sigma_texts), got {sigma!r}")
        pair = tuple(sigma)
    else:
        pair = (sigma, sigma)
    return tuple(s if s is None or isinstance(s, jax.Array) else V.check_sigma(s, "sigma") for s in pair)


def _entropy(rho: jax.Array, eigs, order: float, top_k: int | None, clamp: float | None) -> jax.Array:
    if eigs is None:  # order 2 without truncation: −log ‖ρ‖_F²
        return -jnp.log(jnp.sum(rho * rho))
    return spectrum_entropy(eigs, order, top_k=top_k, clamp=clamp)


def conditional_vendi(images: jax.Array, texts: jax.Array, *, kernel: str = "gaussian", sigma: Any = None,
                      order: float = 1.0, top_k: int | None = None, clamp: float | None = None,
                      dtype: Any = None) -> ConditionalVendiScores:
    """Conditional Vendi exp H(X|T) and Information Vendi exp I(X; T), as a pure function of arrays.

    The exact dual form of :func:`clipcore.conditional_vendi` (same definitions, defaults and numbers for
    rows in memory): the n×n kernels K_X, K_T and K_X ∘ K_T, their normalised spectra, Rényi entropies of
    order α. Usable under ``jax.jit``, ``jax.grad`` and ``jax.vmap`` (a batch of sets of one shape); no host
    callback. Options other than the arrays and σ are static Python.

    Args:
      images: ``[n, d_x]`` image embeddings.
      texts: ``[n, d_t]`` prompt embeddings; row i is image i's prompt.
      kernel: ``"gaussian"`` (default, as the authors) or ``"cosine"``.
      sigma: a number or 0-d array (both modalities; may be traced, differentiable), a pair
        ``(sigma_images, sigma_texts)`` (an entry may be None), or None: the median heuristic of each
        modality in JAX, ``stop_gradient``-ed (images: :func:`clipcore.functional.median_sigma`; texts:
        :func:`distinct_median_sigma`, the median over distinct prompts, as the host).
      order: the Rényi order α > 0, including 1 and ``inf`` (static); order 2 uses ‖ρ‖_F².
      top_k: keep the k largest eigenvalues of each ρ and spread the missing mass evenly over them (static,
        1 ≤ k ≤ n; at every order).
      clamp: eigenvalue floor (static); None (default): eigenvalues ≤ 0 and at the rounding level of the
        decomposition dropped (the authors' p > 0).
      dtype: None (float64 with x64, else float32), ``"float32"`` (float32 kernels, float64 eigenvalues
        with x64) or ``"float64"``.

    Returns:
      :class:`ConditionalVendiScores`.

    Raises:
      ValueError: an invalid option or shape, naming the argument.
    """
    _check_rows(images, "images")
    _check_rows(texts, "texts")
    n = jnp.shape(images)[0]
    if jnp.shape(texts)[0] != n:
        raise ValueError(f"texts: {jnp.shape(texts)[0]} rows but images has {n}; row i of texts must be the "
                         "prompt of row i of images")
    kernel = V.check_choice(kernel, "kernel", PRODUCT_KERNELS)
    order = check_order(order)
    top_k = V.check_positive_int(top_k, "top_k")
    if top_k is not None and top_k > n:
        raise ValueError(f"top_k: expected at most n = {n} eigenvalues, got {top_k}")
    if clamp is not None:
        clamp = V.check_number(clamp, "clamp", positive=True)
    sx, st = _sigma_pair(kernel, sigma)
    prec = resolve_dtype(dtype, images, texts)
    x, t = jnp.asarray(images, prec.feature), jnp.asarray(texts, prec.feature)
    if kernel == "gaussian":
        sx = median_sigma(jnp.asarray(images, prec.acc)) if sx is None else jnp.asarray(sx, prec.acc)
        st = distinct_median_sigma(jnp.asarray(texts, prec.acc)) if st is None else jnp.asarray(st, prec.acc)
    kx = marginal_gram(x, kernel=kernel, sigma=None if sx is None else sx.astype(prec.feature)).astype(prec.acc)
    kt = marginal_gram(t, kernel=kernel, sigma=None if st is None else st.astype(prec.feature)).astype(prec.acc)
    h = kx * kt
    rhos = (h / jnp.trace(h), kx / n, kt / n)
    eigs = (None,) * 3 if order == 2.0 and top_k is None else three_spectra(*rhos)
    hj, hx, ht = (_entropy(r, e, order, top_k, clamp) for r, e in zip(rhos, eigs))
    e = combine(hj, hx, ht)
    return ConditionalVendiScores(e.conditional_vendi, e.information_vendi, e.conditional, e.mutual, e.joint,
                                  e.images, e.texts, sx, st)
