"""The IIN's jitted training programs: ActNorm's data initialisation and the optax steps of the pair
loss and of the flow likelihood, on the models' one scan trainer (:mod:`clipcore.models._common`), and
the host side that feeds them (batches, the finite-loss check).

:class:`clipcore.models.iin.IIN` drives them; they are public so that benchmarks can time one step.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from ._common import scan_trainer
from .iin_flow import flow_loss, pair_loss

__all__ = ["actnorm_init", "gather_rows", "pairs_trainer", "flow_trainer", "batch_maker", "check_finite"]


@functools.partial(jax.jit, static_argnums=0)
def actnorm_init(graphdef, params, rest, x):
    """ActNorm data init, block by block (each sees the blocks before it): the flow's new ``nnx.Param`` state.

    loc = −mean, scale = 1/(std + 1e−6) of what reaches the block (std unbiased, as torch's ``Tensor.std``).
    """
    flow = nnx.merge(graphdef, params, rest)
    blocks_def, state = nnx.split(flow.blocks)

    def body(v, st):
        blk = nnx.merge(blocks_def, st)
        blk.loc[...] = -jnp.mean(v, axis=0)
        blk.scale[...] = 1.0 / (jnp.std(v, axis=0, ddof=1) + 1e-6)
        v, _ = blk.forward(v)
        return v, (blk.loc[...], blk.scale[...])

    _, (locs, scales) = jax.lax.scan(body, x, state)
    flow.blocks.loc[...] = locs
    flow.blocks.scale[...] = scales
    return nnx.state(flow, nnx.Param)


#: ``x[i]`` on the device (rows of a training batch), jitted.
gather_rows = jax.jit(lambda x, i: x[i])


def _adam(hyper):
    lr, b1, b2 = hyper
    return optax.adam(lr, b1=b1, b2=b2)


def _jitter(x: jax.Array, key: jax.Array, noise: float, scale: jax.Array) -> jax.Array:
    return x + noise * scale * jax.random.normal(key, x.shape, x.dtype)


@functools.lru_cache(maxsize=16)
def pairs_trainer(graphdef, hyper: tuple[float, float, float], factor_sizes: tuple[int, ...], rho: float,
                  noise: float = 0.0):
    """``(tx, run)`` for the pair loss: Adam ``hyper = (lr, b1, b2)``.

    ``noise`` = 0: ``run(params, opt_state, rest, (xa, xb, f))`` with ``xa, xb: [steps, B, D]`` pair members
    and ``f: [steps, B]`` their shared factors (:func:`clipcore.models._common.scan_trainer`).
    ``noise`` > 0: ``run(params, opt_state, (rest, scale), (xa, xb, f, seeds))``; each member is jittered
    by ``noise · scale · N(0, I)`` (``scale: [D]``, the data's per-coordinate standard deviation) with a
    key from ``seeds: [steps]`` uint32, a fresh draw every step.
    """
    tx = _adam(hyper)

    def loss(params, data, batch):
        if noise > 0:
            rest, scale = data
            xa, xb, f, seed = batch
            ka, kb = jax.random.split(jax.random.key(seed))
            xa, xb = _jitter(xa, ka, noise, scale), _jitter(xb, kb, noise, scale)
        else:
            rest = data
            xa, xb, f = batch
        flow = nnx.merge(graphdef, params, rest)
        za, lda = flow.forward(xa)
        zb, ldb = flow.forward(xb)
        return pair_loss(za, lda, zb, ldb, f, factor_sizes, rho)

    return tx, scan_trainer(loss, tx)


@functools.lru_cache(maxsize=16)
def flow_trainer(graphdef, hyper: tuple[float, float, float]):
    """``(tx, run)`` for the flow likelihood: ``run(params, opt_state, rest, xs)``, ``xs: [steps, B, D]``."""
    tx = _adam(hyper)

    def loss(params, rest, xb):
        return flow_loss(*nnx.merge(graphdef, params, rest).forward(xb))

    return tx, scan_trainer(loss, tx)


def check_finite(step: int, losses: np.ndarray) -> None:
    """Raise ``FloatingPointError`` naming the first step (``step`` + offset) whose loss is not finite."""
    if not np.isfinite(losses).all():
        first = step + int(np.argmin(np.isfinite(losses)))
        raise FloatingPointError(f"IIN: the loss became non-finite at step {first}; lower learning_rate")


def batch_maker(x: jax.Array, sampler: Any, rng: np.random.Generator, bs: int, jitter: bool):
    """``batches(steps)`` for the trainers: pairs ``(x_i, x_j, f[, seeds])`` from ``sampler``, or rows."""

    def batches(steps: int):
        if sampler is None:
            return gather_rows(x, jnp.asarray(rng.integers(0, x.shape[0], size=(steps, bs))))
        i, j, f = sampler.sample((steps, bs))
        out = gather_rows(x, jnp.asarray(i)), gather_rows(x, jnp.asarray(j)), jnp.asarray(f)
        if jitter:
            out += (jnp.asarray(rng.integers(0, 2 ** 31, size=steps), jnp.uint32),)
        return out

    return batches
