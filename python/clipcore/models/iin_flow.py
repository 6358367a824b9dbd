"""The IIN's invertible map T and its objectives (Esser, Rombach & Ommer 2020; SPEC_MODELS.md).

* :class:`Block` — ActNorm → double affine coupling → fixed permutation, with
  its exact inverse and log-determinant; the coupling nets s, t are the
  models' one :class:`~clipcore.models._common.MLP` (LeakyReLU, s ends in
  ``tanh``, the last layer starts at zero so every coupling starts as the identity);
* :class:`Flow` — ``num_blocks`` blocks stacked on a leading axis and run by
  ``lax.scan``;
* :func:`pair_loss`, :func:`flow_loss`, :func:`equal_factor_sizes`,
  :func:`estimate_factor_sizes` — pure functions.

:mod:`clipcore.models.iin` builds the model (fit / encode / decode / edit) on them.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ._common import MLP

__all__ = ["Permutation", "Block", "Flow", "factor_masks", "pair_loss", "flow_loss", "equal_factor_sizes",
           "estimate_factor_sizes"]


class Permutation(nnx.Variable):
    """A fixed (non-trainable) permutation of the coordinates."""


def _coupling_net(h: int, hidden: int, layers: int, *, tanh: bool, slope: float, dtype: Any,
                  rngs: nnx.Rngs) -> MLP:
    # Last layer starts at zero: every coupling is the identity at
    # initialisation (Glow / RealNVP practice), so a deep stack starts stable.
    return MLP((h, *[hidden] * layers, h), activation="leaky_relu", negative_slope=slope,
               final="tanh" if tanh else None, zero_last=True, param_dtype=dtype, dtype=dtype, rngs=rngs)


class Block(nnx.Module):
    """ActNorm → double affine coupling → fixed permutation.

    Args:
      dim: D (even); hidden, hidden_layers: width and depth of the s / t MLPs.
      slope: their LeakyReLU slope; perm: ``[D]`` the fixed permutation.
      dtype: parameter and compute dtype; rngs: ``nnx.Rngs``.

    ``forward(x [..., D]) -> (y [..., D], logdet [...])``; ``inverse(y) -> x``.
    """

    def __init__(self, dim: int, hidden: int, hidden_layers: int, slope: float, perm: np.ndarray, dtype: Any,
                 rngs: nnx.Rngs):
        h = dim // 2
        self.loc = nnx.Param(jnp.zeros((dim,), dtype))
        self.scale = nnx.Param(jnp.ones((dim,), dtype))
        kw = dict(slope=slope, dtype=dtype, rngs=rngs)
        self.s1 = _coupling_net(h, hidden, hidden_layers, tanh=True, **kw)
        self.t1 = _coupling_net(h, hidden, hidden_layers, tanh=False, **kw)
        self.s2 = _coupling_net(h, hidden, hidden_layers, tanh=True, **kw)
        self.t2 = _coupling_net(h, hidden, hidden_layers, tanh=False, **kw)
        self.perm = Permutation(jnp.asarray(perm, jnp.int32))

    def forward(self, x):
        h = x.shape[-1] // 2
        x = self.scale[...] * (x + self.loc[...])
        logdet = jnp.sum(jnp.log(jnp.abs(self.scale[...]))) * jnp.ones(x.shape[:-1], x.dtype)
        a, b = x[..., :h], x[..., h:]
        s = self.s1(a)
        b = b * jnp.exp(s) + self.t1(a)
        logdet = logdet + jnp.sum(s, axis=-1)
        s = self.s2(b)
        a = a * jnp.exp(s) + self.t2(b)
        logdet = logdet + jnp.sum(s, axis=-1)
        return jnp.concatenate([a, b], axis=-1)[..., self.perm[...]], logdet

    def inverse(self, y):
        inv = jnp.argsort(self.perm[...])
        y = y[..., inv]
        h = y.shape[-1] // 2
        a, b = y[..., :h], y[..., h:]
        a = (a - self.t2(b)) * jnp.exp(-self.s2(b))
        b = (b - self.t1(a)) * jnp.exp(-self.s1(a))
        x = jnp.concatenate([a, b], axis=-1)
        return x / self.scale[...] - self.loc[...]


class Flow(nnx.Module):
    """``num_blocks`` blocks held as ONE :class:`Block` whose every parameter
    (and permutation) has a leading ``[num_blocks]`` axis; forward and inverse
    are a ``lax.scan`` over it, so compile time does not grow with depth."""

    def __init__(self, dim: int, num_blocks: int, hidden: int, hidden_layers: int, slope: float, dtype: Any,
                 rngs: nnx.Rngs, perm_seed: int):
        prng = np.random.default_rng(perm_seed)
        blocks = [Block(dim, hidden, hidden_layers, slope, prng.permutation(dim), dtype, rngs)
                  for _ in range(num_blocks)]
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *[nnx.state(b) for b in blocks])
        nnx.update(blocks[0], stacked)
        self.blocks = blocks[0]
        self.num_blocks = num_blocks

    def _scan(self, fn, x, reverse=False):
        graphdef, state = nnx.split(self.blocks)

        def body(carry, st):
            return fn(nnx.merge(graphdef, st), carry)

        return jax.lax.scan(body, x, state, reverse=reverse)

    def forward(self, x):
        x = x.astype(self.blocks.loc[...].dtype)
        y, logdets = self._scan(lambda blk, v: blk.forward(v), x)
        return y, jnp.sum(logdets, axis=0)

    def inverse(self, y):
        y = y.astype(self.blocks.loc[...].dtype)
        x, _ = self._scan(lambda blk, v: (blk.inverse(v), None), y, reverse=True)
        return x



# ---------------------------------------------------------- pure functions
def factor_masks(factor_sizes: Sequence[int], dtype: Any) -> jax.Array:
    """``[K+1, D]`` 0/1 masks of each factor's coordinates."""
    ids = np.repeat(np.arange(len(factor_sizes)), factor_sizes)
    return jnp.asarray(ids[None, :] == np.arange(len(factor_sizes))[:, None], dtype)


def pair_loss(zbar_a: jax.Array, logdet_a: jax.Array, zbar_b: jax.Array, logdet_b: jax.Array,
              factor: jax.Array, factor_sizes: Sequence[int], rho: float = 0.975) -> jax.Array:
    """Mean IIN pair loss (Esser et al. 2020, eq. 10; SPEC_MODELS.md).

    For a pair (z^a, z^b) sharing factor F:

      ½‖z̄^a‖² − logdet^a + Σ_{k≠F} ½‖z̄^b_k‖² + ½‖z̄^b_F − ρ z̄^a_F‖²/(1 − ρ²) − logdet^b

    i.e. the negative log-likelihood (up to constants) of z̄^a under N(0, I)
    and of z̄^b given z̄^a when factor F is correlated with coefficient ρ.

    Args:
      zbar_a, zbar_b: ``[B, D]`` outputs of T on the two members of each pair.
      logdet_a, logdet_b: ``[B]`` log|det ∂T/∂z| at each member.
      factor: ``[B]`` int index F ∈ [0, K) of the shared factor of each pair.
      factor_sizes: K+1 static sizes (the last is the residual), summing to D.
      rho: shared-factor correlation in [0, 1).

    Returns:
      Scalar: the mean over the B pairs.
    """
    masks = factor_masks(factor_sizes, zbar_a.dtype)
    m = masks[factor]  # [B, D]
    nll_a = 0.5 * jnp.sum(zbar_a * zbar_a, axis=-1)
    free = 0.5 * jnp.sum((1.0 - m) * zbar_b * zbar_b, axis=-1)
    diff = zbar_b - rho * zbar_a
    shared = 0.5 * jnp.sum(m * diff * diff, axis=-1) / (1.0 - rho * rho)
    return jnp.mean(nll_a - logdet_a + free + shared - logdet_b)


def flow_loss(zbar: jax.Array, logdet: jax.Array) -> jax.Array:
    """Mean unsupervised flow loss ½‖T(z)‖² − log|det J| (N(0, I) prior, no constant).

    Args:
      zbar: ``[B, D]``; logdet: ``[B]``.
    """
    return jnp.mean(0.5 * jnp.sum(zbar * zbar, axis=-1) - logdet)


def equal_factor_sizes(dim: int, num_attributes: int, residual: int | None = None) -> tuple[int, ...]:
    """K+1 near-equal chunks of ``dim`` (the first ``dim mod (K+1)`` one larger).

    With ``residual``: the last chunk has that size and the K attribute factors
    split ``dim − residual`` near-equally (the first ones larger).
    """
    k1 = num_attributes + 1
    if dim < k1:
        raise ValueError(f"factor_sizes: D={dim} is smaller than the {k1} factors (K attributes + residual)")
    if residual is None:
        base, extra = divmod(dim, k1)
        return tuple(base + (i < extra) for i in range(k1))
    residual = int(residual)
    if not 1 <= residual <= dim - num_attributes:
        raise ValueError(f"residual_size: {residual} leaves fewer than one dimension per attribute factor "
                         f"(D={dim}, K={num_attributes}); expected 1..{dim - num_attributes}")
    base, extra = divmod(dim - residual, num_attributes)
    return tuple(base + (i < extra) for i in range(num_attributes)) + (residual,)


def estimate_factor_sizes(z_a: np.ndarray, z_b: np.ndarray, factor: np.ndarray,
                          num_attributes: int) -> tuple[int, ...]:
    """Factor dimensions from pair statistics, as CompVis/iin's dimension estimator.

    For each attribute F with pairs (z^a, z^b) sharing F, the score is the
    summed per-coordinate covariance between the pair members, divided by the
    total variance of all embeddings:

      s_F = Σ_i mean((z^a_i − m_i)(z^b_i − m_i)) / Σ_i Var(z_i),   m = ½(mean z^a + mean z^b) over F's pairs;

    the residual's score is 1. The sizes are ⌊softmax(s)·D⌋ for the
    attributes and the remainder for the residual. Unlike the reference, every
    factor gets at least one dimension (taken from the residual, then from the
    largest factor).

    Args:
      z_a, z_b: ``[P, D]`` pairs (row p of each); factor: ``[P]`` int in [0, K).
      num_attributes: K.

    Returns:
      K+1 sizes summing to D.
    """
    z_a = np.asarray(z_a, np.float64)
    z_b = np.asarray(z_b, np.float64)
    factor = np.asarray(factor)
    dim = z_a.shape[1]
    equal_factor_sizes(dim, num_attributes)  # D ≥ K+1
    zall = np.concatenate([z_a, z_b])
    total_var = np.sum(np.mean((zall - zall.mean(0)) ** 2, axis=0))
    scores = np.ones(num_attributes + 1)
    for f in range(num_attributes):
        sel = factor == f
        if not sel.any():
            raise ValueError(f"factor: no pair shares attribute {f}; cannot estimate its size")
        a, b = z_a[sel], z_b[sel]
        m = 0.5 * (a.mean(0) + b.mean(0))
        scores[f] = np.sum(np.mean((a - m) * (b - m), axis=0)) / total_var
    e = np.exp(scores - scores.max())
    soft = e / e.sum()
    sizes = [int(s * dim) for s in soft[:-1]]
    sizes.append(dim - sum(sizes))
    for i in range(len(sizes)):  # at least one dimension each
        while sizes[i] < 1:
            donor = len(sizes) - 1 if sizes[-1] > 1 else int(np.argmax(sizes))
            sizes[donor] -= 1
            sizes[i] += 1
    return tuple(sizes)
