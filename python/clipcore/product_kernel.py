"""The product (Hadamard) kernel of paired images and texts, and the Conditional / Information Vendi
entropies built on it (math layer: pure functions of arrays; host twins only where marked).

Jalali, Ospanov, Gohari & Farnia, "Conditional Vendi Score" (arXiv 2411.02817). For paired rows
(x_i, t_i), i = 1..n, with kernels k_X, k_T (k(a, a) = 1):

* ρ_X = K_X / n, ρ_T = K_T / n, ρ_XT = (K_X ∘ K_T) / tr(K_X ∘ K_T) (tr = n);
* H_α(ρ) = the Rényi entropy of order α of eig(ρ) (natural log; α = 1: −Σ λ log λ, α = ∞:
  −log max λ, α = 2: −log ‖ρ‖_F², which needs no eigendecomposition);
* H(X|T) = H(X, T) − H(T) (Conditional Vendi = exp), I(X; T) = H(X) + H(T) − H(X, T)
  (Information Vendi = exp).

Features of the product kernel (so the joint entropy streams in a primal m×m / D×D form):

* Gaussian: k_X(x, x') k_T(t, t') = exp(−‖z − z'‖² / 2) with z = [x/σ_x, t/σ_t]
  (:func:`scaled_concat`): the Gaussian kernel with σ = 1 of the concatenation, so Nyström
  landmarks or random Fourier features of z give the joint;
* cosine: cos(x, x') cos(t, t') = ⟨x̂ ⊗ t̂, x̂' ⊗ t̂'⟩: exact tensor-product features of dimension
  d_x·d_t (:func:`tensor_features`), or D random features of the product
  (x̂ W_x) ∘ (t̂ W_t) / √D with Gaussian W (:func:`product_random_features`; unbiased:
  E[φ(x, t)·φ(x', t')] = cos(x, x') cos(t, t'); the spectrum is taken of C / tr C).

``top_k`` truncation (the authors' ``truncated-vendi``): keep the k largest eigenvalues and add
(1 − their sum) / k to each (:func:`truncate_top_k`), applied alike to the joint and both
marginals. (The authors' code passes ``top_k`` to the marginals only; its joint keeps
``feature_dim`` eigenvalues, default 3000, so H(X|T) mixes two truncations. Applying one k to all
three keeps H(X|T) = H(X,T) − H(T) a difference of like quantities; the reference fixtures pass
``feature_dim = top_k`` to get this behaviour from their code.) At order 2 the authors ignore the
truncation (they use ‖ρ‖_F²); here a given ``top_k`` applies at every order, order 2 included.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _ffi
from ._options import resolve_backend, x64
from ._validate import check_sigma
from .entropy import Spectrum, renyi_entropy, renyi_entropy_tail
from .kernels import cosine_features, gaussian_kernel
from .landmarks import check_float_rows
from .schur import desc_eigvalsh

__all__ = [
    "PRODUCT_KERNELS", "scaled_concat", "tensor_features", "ProductFeatureMap", "draw_product_features",
    "product_random_features", "marginal_gram", "hadamard_gram", "drop_rounding", "truncate_top_k", "missing_mass",
    "spectrum_entropy", "truncated_spectrum", "spectrum_entropy_host", "ConditionalEntropies", "combine",
    "conditional_entropies",
    "dual_spectra", "dual_densities", "dual_purities", "hadamard_sq_frobenius", "hadamard_sq_frobenius_panels",
    "entropy_from_sq_frobenius",
]

PRODUCT_KERNELS = ("gaussian", "cosine")
_HI = jax.lax.Precision.HIGHEST


def _xp(a):
    return np if isinstance(a, np.ndarray) else jnp


# ------------------------------------------------------------------ features of the product kernel
def scaled_concat(x, t, sigma_x: float, sigma_t: float):
    """z = [x/σ_x, t/σ_t]: ``[n, dx] × [n, dt] → [n, dx + dt]`` (NumPy in, NumPy out; else jnp).

    The Gaussian kernel of z with σ = 1 is k_X ∘ k_T: exp(−‖z − z'‖²/2) =
    exp(−‖x − x'‖²/(2σ_x²)) · exp(−‖t − t'‖²/(2σ_t²)).
    """
    xp = _xp(x)
    return xp.concatenate([x / xp.asarray(sigma_x, x.dtype), t / xp.asarray(sigma_t, t.dtype)], axis=1)


def tensor_features(x, t):
    """x̂ ⊗ t̂ row by row: ``[n, dx] × [n, dt] → [n, dx·dt]`` (unit rows; ⟨u_i, u_j⟩ = cos_x cos_t)."""
    xp = _xp(x)
    xh = x / xp.linalg.norm(x, axis=1, keepdims=True)
    th = t / xp.linalg.norm(t, axis=1, keepdims=True)
    return (xh[:, :, None] * th[:, None, :]).reshape(x.shape[0], -1)


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class ProductFeatureMap:
    """Random features of the cosine product kernel: φ(x, t) = (x̂ W_x) ∘ (t̂ W_t) / √D (a pytree).

    Attributes:
      w_x: ``[dx, D]`` and w_t: ``[dt, D]`` independent N(0, 1) entries.
    """

    w_x: Any
    w_t: Any

    @property
    def num_features(self) -> int:
        return int(self.w_x.shape[1])

    def tree_flatten(self):
        return (self.w_x, self.w_t), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


def draw_product_features(key: jax.Array, dx: int, dt: int, num_features: int, dtype=jnp.float32) -> ProductFeatureMap:
    """Draw W_x ``[dx, D]`` and W_t ``[dt, D]`` (N(0, 1)) from one key."""
    kx, kt = jax.random.split(key)
    return ProductFeatureMap(jax.random.normal(kx, (dx, num_features), dtype),
                             jax.random.normal(kt, (dt, num_features), dtype))


def product_random_features(x, t, pmap: ProductFeatureMap):
    """φ(x, t) = (x̂ W_x) ∘ (t̂ W_t) / √D: ``[n, D]`` in x's dtype (NumPy in, NumPy out; else jnp).

    E[φ(x, t) · φ(x', t')] = cos(x, x') cos(t, t') (independent W_x, W_t with E[w wᵀ] = I); each
    feature's variance is O(1), so the kernel's error is O(1/√D).
    """
    xp = _xp(x)
    wx, wt = (np.asarray(w, x.dtype) if xp is np else jnp.asarray(w, x.dtype) for w in (pmap.w_x, pmap.w_t))
    xh = x / xp.linalg.norm(x, axis=1, keepdims=True)
    th = t / xp.linalg.norm(t, axis=1, keepdims=True)
    dot = np.dot if xp is np else functools.partial(jnp.dot, precision=_HI)
    return dot(xh, wx) * dot(th, wt) * xp.asarray(1.0 / np.sqrt(wx.shape[1]), x.dtype)


# ------------------------------------------------------------------ exact n×n kernels
def marginal_gram(x: jax.Array, *, kernel: str, sigma=None) -> jax.Array:
    """K ``[n, n]``: the Gaussian kernel with σ (diagonal exactly 1) or the cosine kernel."""
    if kernel == "gaussian":
        return gaussian_kernel(x, x, sigma)
    xh = cosine_features(x)
    return jnp.dot(xh, xh.T, precision=_HI)


def hadamard_gram(x: jax.Array, t: jax.Array, *, kernel: str, sigma_x=None, sigma_t=None) -> jax.Array:
    """K_X ∘ K_T ``[n, n]`` of paired rows."""
    return marginal_gram(x, kernel=kernel, sigma=sigma_x) * marginal_gram(t, kernel=kernel, sigma=sigma_t)


# ------------------------------------------------------------------ spectra → entropies
def drop_rounding(eigs):
    """Eigenvalues at the rounding level of their decomposition, λ ≤ k·eps·λ_max (k of them), set to 0.

    They decide nothing at α ≥ 1 (λ log λ ≈ 1e-15), but at α < 1 each adds λ^α (√1e-17 ≈ 3e-9 at
    α = ½), so a rank-d spectrum computed as n×n would gain the noise of its n − d zeros (NumPy in,
    NumPy out; else jnp)."""
    xp = _xp(eigs)
    if eigs.shape[0] == 0:
        return eigs
    tol = _rounding_level(eigs, eigs.shape[0], xp)
    return xp.where(eigs > tol, eigs, xp.zeros((), eigs.dtype))


def _rounding_level(values, n: int, xp):
    """n · eps · max(values): the rounding level of a decomposition that gave n eigenvalues."""
    return n * float(np.finfo(values.dtype).eps) * xp.max(values)


def truncate_top_k(eigs: jax.Array, top_k: int | None) -> jax.Array:
    """The k largest of descending eigenvalues, each raised by (1 − their sum)/k (the authors'
    ``truncated-vendi``); eigenvalues beyond the array count as 0 (k may exceed its length). A missing mass
    at the rounding level of the spectrum (:func:`missing_mass`) is 0: spread over zeros it would add
    k·(1e-16/k)^α ≈ 1e-8 at α = ½ (a rank-4 ρ with k = 7)."""
    if top_k is None:
        return eigs
    top = eigs[:top_k]
    if top.shape[0] < top_k:
        top = jnp.concatenate([top, jnp.zeros((top_k - top.shape[0],), eigs.dtype)])
    return top + missing_mass(top, eigs.shape[0], jnp) / top_k


def missing_mass(top, n: int, xp=np):
    """1 − Σ top of a trace-one spectrum of n eigenvalues, or 0 where it is within the rounding level
    n · eps · max(top) that :func:`drop_rounding` uses for each eigenvalue (:func:`_rounding_level`)."""
    missing = 1.0 - xp.sum(top)
    tol = xp.maximum(_rounding_level(top, n, xp), 0.0) if top.shape[0] else 0.0
    return xp.where(xp.abs(missing) <= tol, xp.zeros((), top.dtype), missing)


def spectrum_entropy(eigs: jax.Array, order: float, *, top_k: int | None = None,
                     clamp: float | None = None) -> jax.Array:
    """H_α of descending eigenvalues of a trace-one ρ, after ``top_k`` truncation (jit-able; order,
    top_k and clamp static). ``clamp=None``: eigenvalues ≤ 0 dropped (the authors' p > 0), and those at
    the rounding level of the decomposition too (:func:`drop_rounding`)."""
    return renyi_entropy(truncate_top_k(drop_rounding(eigs), top_k), order, clamp)


def truncated_spectrum(sp: Spectrum, top_k: int, n: int) -> np.ndarray:
    """Host twin of :func:`truncate_top_k` for a spectrum with a flat tail (Nyström estimates): the k
    largest of the explicit values, the tail and the implicit zeros up to n, raised by (1 − sum)/k."""
    k = int(top_k)
    vals = [np.asarray(sp.explicit, np.float64)]
    if sp.count > 0 and sp.value > 0:
        vals.append(np.full(int(min(sp.count, k)), float(sp.value)))
    e = np.sort(np.concatenate(vals))[::-1][:k]
    if e.shape[0] < min(k, n):
        e = np.concatenate([e, np.zeros(min(k, n) - e.shape[0])])
    return e + float(missing_mass(e, n)) / k


def spectrum_entropy_host(sp: Spectrum, order: float, *, top_k: int | None, n: int,
                          clamp: float | None = None) -> float:
    """H_α of a :class:`clipcore.entropy.Spectrum` (float64 NumPy), after ``top_k`` truncation (explicit
    eigenvalues at rounding level dropped first, :func:`drop_rounding`)."""
    sp = Spectrum(drop_rounding(np.asarray(sp.explicit, np.float64)), sp.count, sp.value)
    if top_k is not None:
        sp = Spectrum(truncated_spectrum(sp, top_k, n))
    return renyi_entropy_tail(sp, order, clamp)


class ConditionalEntropies(NamedTuple):
    """The entropies of Conditional / Information Vendi (natural log; a pytree of scalars).

    Attributes:
      joint: H(X, T). images: H(X). texts: H(T).
      conditional: H(X|T) = H(X, T) − H(T). mutual: I(X; T) = H(X) + H(T) − H(X, T).
    """

    joint: Any
    images: Any
    texts: Any
    conditional: Any
    mutual: Any

    @property
    def conditional_vendi(self):
        """exp H(X|T)."""
        return jnp.exp(self.conditional)

    @property
    def information_vendi(self):
        """exp I(X; T)."""
        return jnp.exp(self.mutual)


def combine(joint, images, texts) -> ConditionalEntropies:
    """The five entropies from H(X, T), H(X), H(T)."""
    return ConditionalEntropies(joint, images, texts, joint - texts, images + texts - joint)


def _rho_entropy(rho: jax.Array, order: float, top_k: int | None, clamp: float | None) -> jax.Array:
    if order == 2.0 and top_k is None:
        return -jnp.log(jnp.sum(rho * rho))  # −log ‖ρ‖_F², no eigendecomposition
    return spectrum_entropy(desc_eigvalsh(rho), order, top_k=top_k, clamp=clamp)


@functools.partial(jax.jit, static_argnames=("kernel", "order", "top_k", "clamp"))
def conditional_entropies(x: jax.Array, t: jax.Array, *, kernel: str = "gaussian", sigma_x=None, sigma_t=None,
                          order: float = 1.0, top_k: int | None = None,
                          clamp: float | None = None) -> ConditionalEntropies:
    """The exact (n×n, dual) entropies of paired rows, as the authors define them.

    Pure JAX (jit, grad, vmap); σ's may be traced. O(n³): for large n use
    :func:`clipcore.conditional_vendi`, which streams.

    Args:
      x: ``[n, dx]`` image embeddings; t: ``[n, dt]`` text embeddings (row i of each paired).
      kernel: ``"gaussian"`` or ``"cosine"``. sigma_x, sigma_t: the Gaussian bandwidths.
      order: α > 0 or inf (static). top_k: truncation (static). clamp: eigenvalue floor, None = p > 0.
    """
    n = x.shape[0]
    kx = marginal_gram(x, kernel=kernel, sigma=sigma_x)
    kt = marginal_gram(t, kernel=kernel, sigma=sigma_t)
    h = kx * kt
    hj = _rho_entropy(h / jnp.trace(h), order, top_k, clamp)
    hx = _rho_entropy(kx / n, order, top_k, clamp)
    ht = _rho_entropy(kt / n, order, top_k, clamp)
    return combine(hj, hx, ht)


@functools.partial(jax.jit, static_argnames=("kernel", "acc_dtype"))
def dual_spectra(x: jax.Array, t: jax.Array, *, kernel: str, sigma_x=None, sigma_t=None, acc_dtype=jnp.float64):
    """Descending eigenvalues (clipped at 0) of ρ_XT, ρ_X, ρ_T: the n×n (dual) form, kernels in the
    rows' dtype, eigendecompositions in ``acc_dtype``."""
    n = x.shape[0]
    kx = marginal_gram(x, kernel=kernel, sigma=sigma_x).astype(acc_dtype)
    kt = marginal_gram(t, kernel=kernel, sigma=sigma_t).astype(acc_dtype)
    h = kx * kt
    return desc_eigvalsh(h / jnp.trace(h)), desc_eigvalsh(kx / n), desc_eigvalsh(kt / n)


@functools.partial(jax.jit, static_argnames=("kernel", "acc_dtype"))
def dual_densities(x: jax.Array, t: jax.Array, *, kernel: str, sigma_x=None, sigma_t=None, acc_dtype=jnp.float64):
    """ρ_XT = K_X ∘ K_T / tr, ρ_X = K_X / n, ρ_T = K_T / n (``[n, n]`` each, in ``acc_dtype``)."""
    n = x.shape[0]
    kx = marginal_gram(x, kernel=kernel, sigma=sigma_x).astype(acc_dtype)
    kt = marginal_gram(t, kernel=kernel, sigma=sigma_t).astype(acc_dtype)
    h = kx * kt
    return h / jnp.trace(h), kx / n, kt / n


@functools.partial(jax.jit, static_argnames=("kernel", "acc_dtype"))
def dual_purities(x: jax.Array, t: jax.Array, *, kernel: str, sigma_x=None, sigma_t=None, acc_dtype=jnp.float64):
    """‖ρ‖_F² = Σ λ² of ρ_XT, ρ_X, ρ_T from the n×n kernels (no eigendecomposition): H₂ = −log of each."""
    n = x.shape[0]
    kx = marginal_gram(x, kernel=kernel, sigma=sigma_x).astype(acc_dtype)
    kt = marginal_gram(t, kernel=kernel, sigma=sigma_t).astype(acc_dtype)
    h = kx * kt
    return jnp.sum(h * h) / jnp.trace(h) ** 2, jnp.sum(kx * kx) / n**2, jnp.sum(kt * kt) / n**2


# ------------------------------------------------------------------ ‖K_X ∘ K_T‖_F² at any n
def entropy_from_sq_frobenius(f: float, n: int) -> float:
    """H₂ = −log(‖K‖_F² / n²) of ρ = K/n (k(a, a) = 1, so tr K = n)."""
    return float(2.0 * np.log(n) - np.log(f))


def _bandwidths(kernel: str, sigma_x, sigma_t):
    if kernel == "gaussian":
        return check_sigma(sigma_x, "sigma_x", required=True), check_sigma(sigma_t, "sigma_t", required=True)
    if kernel != "cosine":
        raise ValueError(f"kernel: expected 'gaussian' or 'cosine', got {kernel!r}")
    return None, None


def hadamard_sq_frobenius(x, t, *, kernel: str = "gaussian", sigma_x=None, sigma_t=None, backend: str = "auto",
                          tile_rows: int | None = None) -> float:
    """‖K_X ∘ K_T‖_F² = Σ_ij k_X(x_i, x_j)² k_T(t_i, t_j)² without an n×n matrix (float64).

    O(n²·(dx + dt)) over symmetric tiles: the compiled core (``backend="ffi"``, threaded) or its
    JAX twin. H₂(X, T) = −log(‖K_X ∘ K_T‖_F² / n²) (:func:`entropy_from_sq_frobenius`).

    Args:
      x: ``[n, dx]``; t: ``[n, dt]`` paired rows of one float dtype.
      kernel: ``"gaussian"`` (σ_x, σ_t) or ``"cosine"``.
      backend: ``"auto"``, ``"ffi"``, ``"jax"``. tile_rows: tile edge (default 512).
    """
    be = resolve_backend(backend)
    sx, st = _bandwidths(kernel, sigma_x, sigma_t)
    with x64():
        x, t = jnp.asarray(x), jnp.asarray(t)
        check_float_rows(x)
        check_float_rows(t, "t")
        fn = _ffi.hadamard_sq_frobenius if be == "ffi" else _ffi.hadamard_sq_frobenius_jax
        return float(fn(x, t.astype(x.dtype), sx, st, kernel=kernel, tile_rows=tile_rows))


def hadamard_sq_frobenius_panels(read, n: int, *, kernel: str = "gaussian", sigma_x=None, sigma_t=None,
                                 panel_rows: int, backend: str = "auto", tile_rows: int | None = None,
                                 on_pairs=None) -> float:
    """‖K_X ∘ K_T‖_F² of n paired rows read by panels: Σ_P ‖H_PP‖² + 2 Σ_{P<Q} ‖H_PQ‖².

    Two panels are in memory at a time (files, shards, large host arrays); panel Q is read again for
    every P < Q. Each term is one call of the compiled core's host entry (``backend="ffi"``) or of
    the JAX twin, summed in float64 in a fixed order.

    Args:
      read: ``read(start, stop)`` → ``(x [b, dx], t [b, dt])`` host rows (float32|float64, validated
        by the caller).
      n: total rows. panel_rows: rows per panel (≥ 1).
      on_pairs: called with the number of pairs (i ≤ j) each term covered (a progress bar's ``update``).
    """
    be = resolve_backend(backend)
    sx, st = _bandwidths(kernel, sigma_x, sigma_t)
    panel_rows = int(panel_rows)
    if panel_rows < 1:
        raise ValueError(f"panel_rows: expected a positive integer, got {panel_rows}")

    def term(a, b=None):
        y, u = (None, None) if b is None else b
        if be == "ffi":
            return _ffi.hadamard_sq_frobenius_host(a[0], a[1], sx, st, y=y, u=u, kernel=kernel, tile_rows=tile_rows)
        with x64():
            j = (lambda v: None if v is None else jnp.asarray(v))  # noqa: E731
            return float(_ffi.hadamard_sq_frobenius_jax(j(a[0]), j(a[1]), sx, st, y=j(y), u=j(u), kernel=kernel,
                                                        tile_rows=tile_rows))

    starts = list(range(0, n, panel_rows))
    total = 0.0
    for k, a0 in enumerate(starts):
        a1 = min(n, a0 + panel_rows)
        A = read(a0, a1)
        total += term(A)
        if on_pairs is not None:
            on_pairs((a1 - a0) * (a1 - a0 + 1) // 2)
        for b0 in starts[k + 1:]:
            b1 = min(n, b0 + panel_rows)
            total += 2.0 * term(A, read(b0, b1))
            if on_pairs is not None:
                on_pairs((a1 - a0) * (b1 - b0))
    return total
