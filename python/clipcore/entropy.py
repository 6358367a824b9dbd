"""Spectra → entropies and scores (SPEC.md, "Scores from a spectrum").

All functions take a vector of eigenvalues ``λ: [k]`` of a PSD matrix and are
pure and jit-able.  ``clamp`` is static:

* ``clamp=1e-10`` (default, the reference code): λ ← max(λ, 1e-10) for every
  eigenvalue, zeros included (each zero then adds ≈ 2.3e-9 to the entropy).
* ``clamp=None`` (the vendi-score package): eigenvalues ≤ 0 are dropped.

The ``*_tail`` functions are float64 NumPy twins for spectra with a flat
tail of up to n − r equal eigenvalues that is never materialised (the
large-n Nyström estimates, :mod:`clipcore.nystrom_spectra`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "DEFAULT_CLAMP",
    "matrix_entropy",
    "matrix_entropy_score",
    "renyi_entropy",
    "renyi_score",
    "Spectrum",
    "matrix_entropy_tail",
    "renyi_entropy_tail",
]

DEFAULT_CLAMP = 1e-10


def _prepare(eigs: jax.Array, clamp: float | None):
    """Clamped eigenvalues and a mask of the entries that count."""
    if clamp is None:
        mask = eigs > 0
        lam = jnp.where(mask, eigs, 1.0)
        return lam, mask
    return jnp.maximum(eigs, clamp), jnp.ones(eigs.shape, bool)


@functools.partial(jax.jit, static_argnames=("clamp",))
def matrix_entropy(eigs: jax.Array, clamp: float | None = DEFAULT_CLAMP) -> jax.Array:
    """The SCE entropy −Σ λᵢ log(λᵢ / s), s = Σ λ (the code's ``schur_vendi``).

    This equals s · H(λ/s): the Shannon entropy of the normalised spectrum
    weighted by the trace, so a part holding little of the trace scores low
    (Ospanov, Farnia & Jalali 2024, Sec. 4).

    Args:
      eigs: ``[k]`` eigenvalues (any order).
    """
    lam, mask = _prepare(eigs, clamp)
    s = jnp.sum(jnp.where(mask, lam, 0.0))
    terms = jnp.where(mask, lam * jnp.log(lam / s), 0.0)
    return -jnp.sum(terms)


def matrix_entropy_score(eigs: jax.Array, clamp: float | None = DEFAULT_CLAMP) -> jax.Array:
    """``exp(matrix_entropy(eigs))``: SCE for eig(S), the text score for eig(R)."""
    return jnp.exp(matrix_entropy(eigs, clamp))


@functools.partial(jax.jit, static_argnames=("order", "clamp"))
def renyi_entropy(eigs: jax.Array, order: float = 1.0, clamp: float | None = DEFAULT_CLAMP) -> jax.Array:
    """Rényi entropy of order α of a (trace-one) spectrum, natural log.

    α = 1: −Σ λ log λ (von Neumann); α = ∞: −log max λ;
    otherwise log(Σ λ^α) / (1 − α).  The spectrum is used as given (not
    renormalised), as in the Vendi and RKE papers for kernels with k(x,x) = 1.

    Args:
      eigs: ``[k]`` eigenvalues.
      order: α > 0, or ``float("inf")``.
    """
    lam, mask = _prepare(eigs, clamp)
    if order == 1.0:
        return -jnp.sum(jnp.where(mask, lam * jnp.log(lam), 0.0))
    if order == float("inf"):
        return -jnp.log(jnp.max(jnp.where(mask, lam, 0.0)))
    power_sum = jnp.sum(jnp.where(mask, lam**order, 0.0))
    return jnp.log(power_sum) / (1.0 - order)


def renyi_score(eigs: jax.Array, order: float = 1.0, clamp: float | None = DEFAULT_CLAMP) -> jax.Array:
    """Vendi score of order α: ``exp(renyi_entropy)``.  RKE is order 2."""
    return jnp.exp(renyi_entropy(eigs, order, clamp))


# ---------------------------------------------------------------- spectra with a flat tail (host)
class Spectrum(NamedTuple):
    """Eigenvalues ``explicit`` plus ``count`` more equal to ``value`` (a tail never materialised)."""

    explicit: np.ndarray
    count: float = 0.0
    value: float = 0.0

    def total(self) -> float:
        return float(self.explicit.sum() + self.count * self.value)


def _clamped(eigs: np.ndarray, clamp: float | None) -> np.ndarray:
    e = np.asarray(eigs, np.float64)
    return np.maximum(e, clamp) if clamp is not None else e[e > 0]


def matrix_entropy_tail(sp: Spectrum, clamp: float | None = DEFAULT_CLAMP) -> float:
    """:func:`matrix_entropy` of a :class:`Spectrum`: −Σ λ log(λ / s), s = Σ λ, over the explicit
    eigenvalues and the flat tail (float64 NumPy)."""
    e = _clamped(sp.explicit, clamp)
    s = e.sum() + sp.count * sp.value
    h = -float(np.sum(e * np.log(e / s)))
    if sp.count > 0 and sp.value > 0:
        h -= sp.count * sp.value * np.log(sp.value / s)
    return float(h)


def renyi_entropy_tail(sp: Spectrum, order: float, clamp: float | None = DEFAULT_CLAMP) -> float:
    """:func:`renyi_entropy` of order α of a :class:`Spectrum` (unnormalised, float64 NumPy)."""
    e = _clamped(sp.explicit, clamp)
    tail = sp.count > 0 and sp.value > 0
    if order == 1.0:
        h = -float(np.sum(e * np.log(e)))
        return float(h - (sp.count * sp.value * np.log(sp.value) if tail else 0.0))
    if np.isinf(order):
        top = max(float(e.max()) if e.size else 0.0, sp.value if tail else 0.0)
        return -float(np.log(top))
    p = float(np.sum(e ** order)) + (sp.count * sp.value ** order if tail else 0.0)
    return float(np.log(p) / (1.0 - order))
