"""clipcore._blocks: the one block fold (full blocks in a fori_loop, the ragged rest once) against a Python loop
over row blocks, the Kahan-compensated accumulator, and the default block size."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clipcore import _blocks as B


def _loop(arrays, block, fn, init):
    carry = init
    n = arrays[0].shape[0]
    for i in range(0, n, block):
        carry = fn(carry, *[a[i:i + block] for a in arrays])
    return carry


@pytest.mark.parametrize("n, block", [(0, 4), (1, 4), (7, 7), (10, 3), (10, 1), (10, 64), (1037, 100)])
def test_fold_equals_a_python_loop(n, block):
    rng = np.random.default_rng(n)
    a = jnp.asarray(rng.standard_normal((n, 5)))
    b = jnp.asarray(rng.standard_normal((n, 3)))
    calls = []

    def fn(carry, x, y):
        calls.append(x.shape[0])
        g, rows, blocks, first = carry
        return (g + x.T @ y, rows + x.shape[0], blocks + 1,
                jnp.where(blocks == 0, x[0, 0] if x.shape[0] else 0.0, first))

    init = (jnp.zeros((5, 3)), 0, 0, jnp.float64(0.0))
    got = B.fold_blocks((a, b), block, fn, init)
    want = _loop((a, b), block, fn, init)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(got[0], np.asarray(a).T @ np.asarray(b), rtol=1e-12, atol=1e-12)
    assert int(got[1]) == n and int(got[2]) == -(-n // block)  # every row once, ⌈n / block⌉ blocks in order
    if n:
        assert float(got[3]) == float(a[0, 0])
    # traced once per block shape: the full block (in the loop body) and the remainder
    full, rem = divmod(n, block)
    traced = calls[: (1 if full else 0) + (1 if rem else 0)]
    assert traced == ([block] if full else []) + ([rem] if rem else [])


def test_fold_under_jit_and_grad():
    x = jnp.asarray(np.random.default_rng(1).standard_normal((23, 4)))
    f = jax.jit(lambda a: B.fold_blocks((a,), 5, lambda c, b: c + jnp.sum(b * b), jnp.float64(0.0)))
    assert float(f(x)) == pytest.approx(float(jnp.sum(x * x)), rel=1e-13)
    np.testing.assert_allclose(jax.grad(f)(x), 2 * np.asarray(x), rtol=1e-13)


def test_kahan_add_keeps_what_a_float32_sum_loses():
    """2²⁰ additions of 1e-4 to a float32 accumulator: the plain sum drifts, the compensated one does not."""
    term = jnp.float32(1e-4)
    n = 1 << 20
    plain = jax.lax.fori_loop(0, n, lambda i, s: s + term, jnp.float32(0.0))
    comp = jax.lax.fori_loop(0, n, lambda i, acc: B.kahan_add(acc, term), B.zeros_pair((), jnp.float32))
    exact = n * float(np.float32(1e-4))
    assert abs(float(comp[0] - comp[1]) - exact) / exact < 1e-6
    assert abs(float(plain) - exact) / exact > 1e-3
    # add(): compensated or plain, the term cast to the accumulator's dtype
    acc = B.zeros_pair((2,), jnp.float32)
    s, c = B.add(acc, jnp.array([1.0, 2.0], jnp.float64), compensated=False)
    assert s.dtype == jnp.float32 and c is acc[1]
    s2, _ = B.add(acc, jnp.array([1.0, 2.0]), compensated=True)
    np.testing.assert_array_equal(s, s2)


def test_default_block_size():
    assert B.default_block_size(10**7, 64) == 65536  # ≈ 2²⁴ numbers, at most 65 536 rows
    assert B.default_block_size(10**7, 5000) == (1 << 24) // 5000
    assert B.default_block_size(10**7, 10**6) == 256  # at least 256 rows
    assert B.default_block_size(100, 64) == 100  # never more than n
    assert B.default_block_size(0, 64) == 1
    a, c = B.zeros_pair((3, 2), jnp.float32)
    assert a.shape == c.shape == (3, 2) and a.dtype == jnp.float32 and not np.any(np.asarray(a))
