"""The Hadamard-kernel ‖K_X ∘ K_T‖_F² (clipcore._ffi.hadamard: the FFI call, its JAX twin, the host entry)
against float64 NumPy (tests/reference/cond_vendi_numpy.py, explicit n×n matrices).

Both kernels (Gaussian with σ_x, σ_t; cosine), float32 / float64, odd tile sizes, symmetric and cross
forms; the Gaussian product equals the single-kernel ‖K‖_F² of z = [x/σ_x, t/σ_t] at σ = 1 (a second,
independent route through the compiled core); thread-count independence; near duplicates at tiny σ;
errors named by operand and row; jit, grad (x, t, σ_x, σ_t: check_grads and a closed form), vmap.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clipcore import _ffi
from reference import cond_vendi_numpy as ref

pytestmark = pytest.mark.skipif(not _ffi.available(), reason=f"compiled core: {_ffi.unavailable_reason()}")

SX, ST = 1.3, 0.8


def pairs(n=150, dx=7, dt=5, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, dt))
    x = np.concatenate([t, rng.normal(size=(n, max(dx - dt, 0)))], 1)[:, :dx] + 0.4 * rng.normal(size=(n, dx))
    return x.astype(dtype), t.astype(dtype)


def want(x, t, kernel, **kw):
    s = dict(sigma_x=SX, sigma_t=ST) if kernel == "gaussian" else {}
    return ref.hadamard_sq_frobenius(x, t, kernel=kernel, **s, **kw)


def sig(kernel):
    return (SX, ST) if kernel == "gaussian" else (None, None)


@pytest.mark.parametrize("kernel", ["gaussian", "cosine"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tile", [None, 1, 17, 64])
def test_matches_float64_numpy(kernel, dtype, tile):
    x, t = pairs(dtype=dtype)
    w = want(x, t, kernel)
    rtol = 2e-6 if dtype == np.float32 else 1e-12
    for fn in (_ffi.hadamard_sq_frobenius, _ffi.hadamard_sq_frobenius_jax):
        got = float(fn(x, t, *sig(kernel), kernel=kernel, tile_rows=tile))
        assert got == pytest.approx(w, rel=rtol), fn.__name__
    got = _ffi.hadamard_sq_frobenius_host(x, t, *sig(kernel), kernel=kernel, tile_rows=tile)
    assert got == pytest.approx(w, rel=rtol)


@pytest.mark.parametrize("kernel", ["gaussian", "cosine"])
def test_cross_sum_host_and_twin(kernel):
    x, t = pairs(120, seed=1)
    y, u = pairs(47, seed=2)
    w = want(x, t, kernel, y=y, u=u)
    got = _ffi.hadamard_sq_frobenius_host(x, t, *sig(kernel), y=y, u=u, kernel=kernel, tile_rows=32)
    assert got == pytest.approx(w, rel=1e-12)
    got = float(_ffi.hadamard_sq_frobenius_jax(x, t, *sig(kernel), y=y, u=u, kernel=kernel, tile_rows=32))
    assert got == pytest.approx(w, rel=1e-12)
    # panels: Σ_P ‖H_PP‖² + 2 Σ_{P<Q} ‖H_PQ‖² is the whole
    a, b = slice(0, 70), slice(70, 120)
    parts = [_ffi.hadamard_sq_frobenius_host(x[s], t[s], *sig(kernel), kernel=kernel) for s in (a, b)]
    parts.append(2 * _ffi.hadamard_sq_frobenius_host(x[a], t[a], *sig(kernel), y=x[b], u=t[b], kernel=kernel))
    assert sum(parts) == pytest.approx(want(x, t, kernel), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_product_is_the_gaussian_kernel_of_the_scaled_concatenation(dtype):
    """k_X² k_T² = exp(−‖z − z'‖²), z = [x/σ_x, t/σ_t]: the single-kernel core at σ = 1 on z agrees."""
    x, t = pairs(300, dx=9, dt=9, seed=3, dtype=dtype)
    z = np.concatenate([x / dtype(SX), t / dtype(ST)], 1)
    single = float(_ffi.gaussian_sq_frobenius(z, 1.0))
    got = float(_ffi.hadamard_sq_frobenius(x, t, SX, ST))
    assert got == pytest.approx(single, rel=2e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("kernel", ["gaussian", "cosine"])
def test_thread_count_does_not_change_the_result(kernel):
    x, t = pairs(700, seed=4)
    vals = {float(_ffi.hadamard_sq_frobenius(x, t, *sig(kernel), kernel=kernel, num_threads=k, tile_rows=64))
            for k in (1, 2, 3)}
    vals |= {_ffi.hadamard_sq_frobenius_host(x, t, *sig(kernel), kernel=kernel, num_threads=k, tile_rows=64)
             for k in (1, 2)}
    assert len(vals) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_near_duplicates_at_tiny_sigma_are_recomputed(dtype):
    """Rows 1e-3 apart and exact duplicates with σ so small that only exact duplicates have k = 1: the near
    pairs are recomputed from the rows (as the single-kernel tiles do) and agree with float64 NumPy."""
    rng = np.random.default_rng(5)
    bx, bt = rng.standard_normal((6, 3)) * 3, rng.standard_normal((6, 2)) * 3
    x = np.concatenate([bx, bx[:2] + 1e-3, bx[:2]]).astype(dtype)
    t = np.concatenate([bt, bt[:2], bt[:2]]).astype(dtype)
    s = 1e-5
    w = ref.hadamard_sq_frobenius(x, t, kernel="gaussian", sigma_x=s, sigma_t=1.0)
    assert w == pytest.approx(len(x) + 4.0)
    assert float(_ffi.hadamard_sq_frobenius(x, t, s, 1.0)) == pytest.approx(w, rel=1e-12)
    assert _ffi.hadamard_sq_frobenius_host(x, t, s, 1.0) == pytest.approx(w, rel=1e-12)


def test_empty_and_single_rows():
    x, t = pairs(1)
    assert float(_ffi.hadamard_sq_frobenius(x, t, SX, ST)) == 1.0
    assert float(_ffi.hadamard_sq_frobenius(x[:0], t[:0], kernel="cosine")) == 0.0


@pytest.mark.parametrize("call,match", [
    (lambda x, t: _ffi.hadamard_sq_frobenius(x, t[:-1], SX, ST), r"x \[n, dx\] and t \[n, dt\] must be paired"),
    (lambda x, t: _ffi.hadamard_sq_frobenius(x, t.astype(np.float32), SX, ST), "must share float32 or float64"),
    (lambda x, t: _ffi.hadamard_sq_frobenius(x, t, 0.0, ST), "sigma must be a positive finite number"),
    (lambda x, t: _ffi.hadamard_sq_frobenius(x, t, SX, None), "needs sigma_x and sigma_t"),
    (lambda x, t: _ffi.hadamard_sq_frobenius(x, t, SX, ST, kernel="cosine"), "sigma_x is only used by the Gaussian"),
    (lambda x, t: _ffi.hadamard_sq_frobenius(x, t, SX, ST, kernel="laplace"), "kernel must be 'gaussian' or 'cosine'"),
    (lambda x, t: _ffi.hadamard_sq_frobenius(x, t, SX, ST, tile_rows=0), "tile_rows must be >= 1"),
    (lambda x, t: _ffi.hadamard_sq_frobenius_host(x, t, SX, ST, y=x), "pass both y and u"),
    (lambda x, t: _ffi.hadamard_sq_frobenius_host(x, t, -1.0, ST), "sigma_x"),
])
def test_bad_arguments_are_refused(call, match):
    x, t = pairs(20)
    with pytest.raises(ValueError, match=match):
        call(x, t)


@pytest.mark.parametrize("entry", ["ffi", "host"])
def test_core_names_the_bad_row(entry):
    x, t = pairs(40)
    x[17, 2] = np.nan
    t0 = t.copy()
    t0[9] = 0.0

    def run(a, b, kernel):
        if entry == "ffi":
            return _ffi.hadamard_sq_frobenius(a, b, *sig(kernel), kernel=kernel)
        return _ffi.hadamard_sq_frobenius_host(a, b, *sig(kernel), kernel=kernel)

    with pytest.raises(Exception, match=r"x has a non-finite value \(NaN or Inf\) in row 17"):
        run(x, t, "gaussian")
    with pytest.raises(Exception, match="t row 9 has zero norm"):
        run(pairs(40)[0], t0, "cosine")


def test_jit_and_traced_sigmas():
    x, t = pairs(90, seed=6)
    f = jax.jit(lambda a, b, s, r: _ffi.hadamard_sq_frobenius(a, b, s, r))
    assert float(f(x, t, SX, ST)) == pytest.approx(want(x, t, "gaussian"), rel=1e-12)
    text = jax.jit(lambda a, b: _ffi.hadamard_sq_frobenius(a, b, SX, ST)).lower(x, t).as_text()
    assert _ffi.HADAMARD_SQ_FROBENIUS_TARGET in text and "while" not in text  # the forward is the call alone


@pytest.mark.parametrize("kernel", ["gaussian", "cosine"])
def test_derivatives(kernel):
    from jax.test_util import check_grads

    x, t = pairs(40, dx=4, dt=3, seed=7)
    if kernel == "gaussian":
        f = lambda a, b, s, r: _ffi.hadamard_sq_frobenius(a, b, s, r, tile_rows=16)  # noqa: E731
        args = (x, t, jnp.float64(SX), jnp.float64(ST))
    else:
        f = lambda a, b: _ffi.hadamard_sq_frobenius(a, b, kernel="cosine", tile_rows=16)  # noqa: E731
        args = (x, t)
    check_grads(f, args, order=1, modes=("fwd", "rev"))


def test_gradient_closed_form_and_sigma_derivative():
    """∂/∂x_i Σ_jk h_jk² = −4/σ_x² Σ_j h_ij² (x_i − x_j) (h = k_X k_T, the sum symmetric), and ∂/∂σ_x by
    central differences of the float64 NumPy reference."""
    x, t = pairs(60, seed=8)
    dx = x[:, None, :] - x[None, :, :]
    dt = t[:, None, :] - t[None, :, :]
    h2 = np.exp(-np.sum(dx**2, -1) / SX**2 - np.sum(dt**2, -1) / ST**2)
    wx = -4.0 / SX**2 * (h2.sum(1)[:, None] * x - h2 @ x)
    g = jax.grad(lambda a: _ffi.hadamard_sq_frobenius(a, t, SX, ST))(x)
    np.testing.assert_allclose(g, wx, rtol=1e-10, atol=1e-10)
    eps = 1e-6
    fd = (ref.hadamard_sq_frobenius(x, t, kernel="gaussian", sigma_x=SX + eps, sigma_t=ST)
          - ref.hadamard_sq_frobenius(x, t, kernel="gaussian", sigma_x=SX - eps, sigma_t=ST)) / (2 * eps)
    assert float(jax.grad(lambda s: _ffi.hadamard_sq_frobenius(x, t, s, ST))(SX)) == pytest.approx(fd, rel=1e-7)


def test_vmap_equals_a_loop():
    x, t = pairs(50, seed=9)
    xs, ts, s = np.stack([x, 1.5 * x]), np.stack([t, t - 0.3]), jnp.asarray([0.9, 1.7])
    loop = [float(_ffi.hadamard_sq_frobenius(a, b, c, ST)) for a, b, c in zip(xs, ts, s)]
    np.testing.assert_array_equal(jax.vmap(lambda a, b, c: _ffi.hadamard_sq_frobenius(a, b, c, ST))(xs, ts, s), loop)
    loop = [float(_ffi.hadamard_sq_frobenius(a, b, kernel="cosine")) for a, b in zip(xs, ts)]
    np.testing.assert_array_equal(jax.vmap(lambda a, b: _ffi.hadamard_sq_frobenius(a, b, kernel="cosine"))(xs, ts),
                                  loop)
