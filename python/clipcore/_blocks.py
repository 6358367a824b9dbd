"""The one block fold of clipcore: a function folded over consecutive row blocks (pure, jit-able).

Full blocks run in a ``lax.fori_loop`` on dynamic slices (one trace, no padded
copy of the input); the remainder block is handled once, statically. Used by
the primal covariances, the Nyström accumulations and the sharded sums.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["fold_blocks", "kahan_add", "add", "default_block_size", "zeros_pair"]


def fold_blocks(arrays: tuple[jax.Array, ...], block: int, fn: Callable, init: Any) -> Any:
    """``carry = fn(carry, *row_blocks)`` over consecutive blocks of ``block`` rows of ``arrays``
    (each ``[n, ·]``, same n); a last block of ``n % block`` rows is handled once."""
    n = arrays[0].shape[0]
    nb, rem = divmod(n, block)

    def body(i, carry):
        return fn(carry, *[lax.dynamic_slice_in_dim(a, i * block, block, axis=0) for a in arrays])

    carry = lax.fori_loop(0, nb, body, init) if nb > 0 else init
    if rem:
        carry = fn(carry, *[a[nb * block:] for a in arrays])
    return carry


def kahan_add(acc: tuple[jax.Array, jax.Array], term: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Compensated ``acc + term`` (Kahan); ``acc = (sum, compensation)``."""
    s, c = acc
    y = term.astype(s.dtype) - c
    t = s + y
    c = (t - s) - y
    return t, c


def add(acc: tuple[jax.Array, jax.Array], term: jax.Array, compensated: bool) -> tuple[jax.Array, jax.Array]:
    """``acc + term``: Kahan-compensated (float32 accumulators) or plain."""
    if compensated:
        return kahan_add(acc, term)
    return acc[0] + term.astype(acc[0].dtype), acc[1]


def default_block_size(n: int, width: int, *, budget: int = 1 << 24) -> int:
    """Rows per block so one block of features holds ≈ ``budget`` numbers (256 … 65 536 rows, ≤ n)."""
    b = max(256, min(65536, budget // max(width, 1)))
    return int(max(1, min(b, n)))


def zeros_pair(shape: tuple[int, ...], dtype) -> tuple[jax.Array, jax.Array]:
    """A zero accumulator and its zero Kahan compensation."""
    return jnp.zeros(shape, dtype), jnp.zeros(shape, dtype)
