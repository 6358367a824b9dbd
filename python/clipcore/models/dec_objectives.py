"""DEC's objective (Xie, Girshick & Farhadi 2016): the Student-t soft assignment, the target
distribution, the KL loss and the input scale.

Pure ``jax.numpy`` functions (jit-able, differentiable) except :func:`input_scale`
(a host statistic); :mod:`clipcore.models.dec` trains the model on them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["soft_assignment", "target_distribution", "kl_divergence", "input_scale"]


def soft_assignment(z: jax.Array, centers: jax.Array, alpha: float = 1.0) -> jax.Array:
    """Student-t soft assignment of embeddings to centres (DEC eq. 1).

    q_ij = (1 + ‖z_i − μ_j‖²/α)^(−(α+1)/2), normalised over j.

    Args:
      z: ``[n, e]`` embeddings.
      centers: ``[k, e]`` cluster centres μ.
      alpha: degrees of freedom of the Student-t kernel (the paper: 1).

    Returns:
      ``[n, k]`` rows summing to one.
    """
    sq = jnp.sum((z[:, None, :] - centers[None, :, :]) ** 2, axis=-1)
    # in log space: the normalisation is a softmax of the log kernel
    logits = -0.5 * (alpha + 1.0) * jnp.log1p(sq / alpha)
    return jax.nn.softmax(logits, axis=1)


def target_distribution(q: jax.Array) -> jax.Array:
    """DEC's auxiliary target (eq. 3): p_ij ∝ q_ij² / f_j, f_j = Σ_i q_ij.

    Args:
      q: ``[n, k]`` soft assignments over the whole data set.

    Returns:
      ``[n, k]`` rows summing to one.
    """
    w = q**2 / jnp.sum(q, axis=0)
    return w / jnp.sum(w, axis=1, keepdims=True)


def kl_divergence(p: jax.Array, q: jax.Array) -> jax.Array:
    """KL(P‖Q) = Σ_i Σ_j p_ij log(p_ij / q_ij), averaged over the rows i.

    Args:
      p: ``[n, k]`` targets (held constant: no gradient flows into them).
      q: ``[n, k]`` soft assignments.

    Returns:
      scalar: the DEC loss (eq. 2) divided by n (the minibatch mean).
    """
    p = jax.lax.stop_gradient(p)
    tiny = jnp.finfo(q.dtype).tiny
    terms = jnp.where(p > 0, p * (jnp.log(jnp.maximum(p, tiny)) - jnp.log(jnp.maximum(q, tiny))), 0.0)
    return jnp.sum(terms) / p.shape[0]


def input_scale(x: Any) -> float:
    """The global factor s with mean_i (1/d)‖s·x_i‖² = 1 (DEC's input normalisation).

    Args:
      x: ``[n, d]`` inputs.
    """
    x = np.asarray(x, dtype=np.float64)
    ms = float(np.mean(np.einsum("ij,ij->i", x, x))) / x.shape[1]
    if not ms > 0:
        raise ValueError(f"x: every row is zero (shape {x.shape}); cannot scale so that (1/d)‖x‖² ≈ 1")
    return float(1.0 / np.sqrt(ms))
