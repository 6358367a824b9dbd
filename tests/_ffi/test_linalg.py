"""The compiled LAPACK eigenvalue solver (XLA FFI) against NumPy float64 LAPACK."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipcore import _ffi

pytestmark = pytest.mark.skipif(not _ffi.available(), reason=f"compiled core: {_ffi.unavailable_reason()}")


def _sym(rng, n, dtype, batch=None):
    shape = (n, n) if batch is None else (batch, n, n)
    a = rng.standard_normal(shape)
    a = a + np.swapaxes(a, -1, -2)
    return a.astype(dtype)


TOL = {np.float64: 1e-12, np.float32: 2e-5}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 64, 300])
def test_eigvalsh_matches_numpy(dtype, n):
    a = _sym(np.random.default_rng(n), n, dtype)
    w = np.asarray(jax.jit(_ffi.eigvalsh)(a))
    assert w.dtype == dtype and w.shape == (n,)
    ref = np.linalg.eigvalsh(a.astype(np.float64))
    scale = max(1.0, float(np.abs(ref).max(initial=0)))
    np.testing.assert_allclose(w, ref, atol=TOL[dtype] * scale * max(n, 1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 3, 5])
def test_eigvalsh_batch_matches_numpy(dtype, batch):
    a = _sym(np.random.default_rng(batch), 40, dtype, batch=batch)
    w = np.asarray(jax.jit(_ffi.eigvalsh)(a))
    ref = np.linalg.eigvalsh(a.astype(np.float64))
    assert w.shape == (batch, 40)
    np.testing.assert_allclose(w, ref, atol=TOL[dtype] * np.abs(ref).max() * 40)


def test_eigvalsh_reads_the_upper_triangle():
    rng = np.random.default_rng(1)
    a = _sym(rng, 20, np.float64)
    garbage = a.copy()
    garbage[np.tril_indices(20, -1)] = 1e6  # lower triangle ignored
    np.testing.assert_allclose(_ffi.eigvalsh(garbage), np.linalg.eigvalsh(a), atol=1e-10)


def test_agrees_with_the_jax_fallback():
    a = _sym(np.random.default_rng(3), 50, np.float64)
    np.testing.assert_allclose(_ffi.eigvalsh(a), jnp.linalg.eigvalsh(a), atol=1e-11)


def test_no_recompile_on_second_call():
    f = jax.jit(_ffi.eigvalsh)
    a = _sym(np.random.default_rng(4), 16, np.float64)
    f(a)
    size = f._cache_size()
    f(a * 2)
    assert f._cache_size() == size


@pytest.mark.parametrize(
    "a, match",
    [
        (np.zeros((3, 4)), "expected a square"),
        (np.zeros(5), "expected a square"),
        (np.zeros((2, 3, 3, 3)), "expected a square"),
        (np.zeros((3, 3), np.int32), "dtype must be float32 or float64"),
    ],
)
def test_python_entry_rejects_bad_input(a, match):
    with pytest.raises(ValueError, match=match):
        _ffi.eigvalsh(a)


def test_non_finite_input_is_an_error_not_a_crash():
    a = np.eye(4)
    a[1, 2] = np.nan
    with pytest.raises(Exception, match=re.escape("eigvalsh: the matrix has a non-finite entry at [1, 2]")):
        np.asarray(_ffi.eigvalsh(a))
    a = np.eye(4)
    a[0, 3] = np.inf
    with pytest.raises(Exception, match=re.escape("eigvalsh: the matrix has a non-finite entry at [0, 3]")):
        np.asarray(_ffi.eigvalsh(a))


def test_raw_target_reports_shape_errors():
    call = jax.ffi.ffi_call(_ffi.EIGVALSH_TARGET, jax.ShapeDtypeStruct((5,), jnp.float64))
    with pytest.raises(Exception, match=re.escape("INVALID_ARGUMENT: eigvalsh: output must be float64 [n]")):
        np.asarray(call(jnp.eye(4)))
    call = jax.ffi.ffi_call(_ffi.EIGVALSH_TARGET, jax.ShapeDtypeStruct((3,), jnp.float64))
    with pytest.raises(Exception, match=re.escape("INVALID_ARGUMENT: eigvalsh: expected a square")):
        np.asarray(call(jnp.ones((3, 4))))


@settings(max_examples=40, deadline=None)
@given(
    batch=st.sampled_from([None, 1, 2, 4]),
    n=st.integers(0, 24),
    dtype=st.sampled_from([np.float32, np.float64]),
    scale=st.sampled_from([1e-30, 1e-8, 1.0, 1e8, 1e30]),
    seed=st.integers(0, 2**16),
)
def test_fuzz_eigvalsh(batch, n, dtype, scale, seed):
    a = _sym(np.random.default_rng(seed), n, np.float64, batch=batch) * scale
    if dtype == np.float32:
        a = np.clip(a, -1e37, 1e37)
    a = a.astype(dtype)
    w = np.asarray(_ffi.eigvalsh(a), np.float64)
    ref = np.linalg.eigvalsh(a.astype(np.float64))
    top = float(np.abs(ref).max(initial=0))
    np.testing.assert_allclose(w, ref, atol=TOL[dtype] * max(top, np.finfo(dtype).tiny) * max(n, 1) * 10)


# --------------------------------------------------------------------------- transformations: grad, jvp, vjp, vmap


def _spread(rng, n, batch=None):
    """Symmetric matrices with well separated eigenvalues (finite differences stay on one ordering)."""
    shape = (n, n) if batch is None else (batch, n, n)
    q, _ = np.linalg.qr(rng.standard_normal(shape))
    lam = np.arange(1.0, n + 1.0) * 1.5
    return (q * lam[..., None, :]) @ np.swapaxes(q, -1, -2)


@pytest.mark.parametrize("batch", [None, 3])
def test_check_grads_fwd_and_rev(batch):
    """Any direction (also non-symmetric: the solver reads the upper triangle, so does the rule)."""
    from jax.test_util import check_grads

    check_grads(_ffi.eigvalsh, (_spread(np.random.default_rng(1), 6, batch),), order=1, modes=("fwd", "rev"))


def test_jvp_and_vjp_equal_the_twins_on_symmetric_directions():
    rng = np.random.default_rng(2)
    a = _spread(rng, 8)
    d = rng.standard_normal((8, 8))
    d = d + d.T
    w, dw = jax.jvp(_ffi.eigvalsh, (a,), (d,))
    w_t, dw_t = jax.jvp(_ffi.eigvalsh_jax, (a,), (d,))
    np.testing.assert_allclose(w, w_t, atol=1e-12)
    np.testing.assert_allclose(dw, dw_t, atol=1e-11)
    # first-order perturbation theory: dλ_i = v_iᵀ D v_i (NumPy float64)
    lam, v = np.linalg.eigh(a)
    np.testing.assert_allclose(dw, np.einsum("ji,jk,ki->i", v, d, v), atol=1e-11)
    # the cotangent lands on what the solver reads (the upper triangle); on symmetric directions it acts as the
    # twin's symmetric cotangent does
    ct = rng.standard_normal(8)
    (g,) = jax.vjp(_ffi.eigvalsh, a)[1](ct)
    (g_t,) = jax.vjp(_ffi.eigvalsh_jax, a)[1](ct)
    assert np.all(np.tril(np.asarray(g), -1) == 0)
    np.testing.assert_allclose(np.sum(np.asarray(g) * d), np.sum(np.asarray(g_t) * d), rtol=1e-11)
    np.testing.assert_allclose(g, np.triu(g_t) + np.tril(g_t, -1).T, atol=1e-11)


def _entropy(w):
    w = jnp.clip(w, 1e-300, None)
    return jnp.sum(w * jnp.log(w))


@pytest.mark.parametrize("n", [2, 5, 12])
def test_repeated_eigenvalues_give_finite_exact_gradients(n):
    """A = I + u uᵀ has eigenvalue 1 repeated n − 1 times. The gradient of Σ λ log λ is finite there and equals
    the closed form log A + I (matrix logarithm, NumPy) and central finite differences along a rank-one
    direction v vᵀ and along a random symmetric direction."""
    rng = np.random.default_rng(n)
    u, v = rng.standard_normal(n), rng.standard_normal(n)
    a = np.eye(n) + np.outer(u, u)
    f = lambda m: _entropy(_ffi.eigvalsh(m))  # noqa: E731
    g = np.asarray(jax.grad(f)(a))
    assert np.all(np.isfinite(g))
    lam, q = np.linalg.eigh(a)
    closed = (q * (np.log(lam) + 1.0)) @ q.T  # d tr(A log A) = tr((log A + I) dA)
    s = rng.standard_normal((n, n))
    for d in (np.outer(v, v), s + s.T):
        h = 1e-6
        fd = (float(f(a + h * d)) - float(f(a - h * d))) / (2 * h)
        assert np.sum(g * d) == pytest.approx(fd, rel=1e-6, abs=1e-8)
        assert np.sum(g * d) == pytest.approx(np.sum(closed * d), rel=1e-10, abs=1e-12)
    # at A = I (all n eigenvalues equal) too: the gradient of Σ λ log λ is I
    np.testing.assert_allclose(jax.grad(f)(np.eye(n)), np.eye(n), atol=1e-12)
    # forward mode likewise
    _, t = jax.jvp(f, (a,), (np.outer(v, v),))
    assert float(t) == pytest.approx(np.sum(closed * np.outer(v, v)), rel=1e-10)


def test_vmap_equals_a_loop_and_solves_one_batch():
    rng = np.random.default_rng(3)
    a = _sym(rng, 12, np.float64, batch=6).reshape(2, 3, 12, 12)
    want = np.linalg.eigvalsh(a)
    np.testing.assert_allclose(jax.vmap(_ffi.eigvalsh)(a[0]), want[0], atol=1e-12)
    np.testing.assert_allclose(jax.vmap(jax.vmap(_ffi.eigvalsh))(a), want, atol=1e-12)
    np.testing.assert_allclose(jax.vmap(_ffi.eigvalsh)(a), want, atol=1e-12)  # a [b, n, n] per element
    np.testing.assert_allclose(jax.jit(jax.vmap(jax.vmap(_ffi.eigvalsh)))(a), want, atol=1e-12)
    # one custom call on the whole [2, 3, n, n] batch (the handler takes any leading batch dims), no loop
    text = jax.jit(jax.vmap(jax.vmap(_ffi.eigvalsh))).lower(a).as_text()
    assert text.count(_ffi.EIGVALSH_TARGET) == 1 and "while" not in text
    # vmap of the gradient equals the loop of gradients
    grads = jax.vmap(jax.grad(lambda m: jnp.sum(_ffi.eigvalsh(m) ** 2)))(a[0])
    for m, g in zip(a[0], grads):
        np.testing.assert_allclose(g, jax.grad(lambda m_: jnp.sum(_ffi.eigvalsh(m_) ** 2))(m), atol=1e-12)


def test_eigenvectors_only_under_differentiation():
    """The primal stays the no-vector LAPACK call: the jitted forward holds no eigh; the gradient does."""
    a = _spread(np.random.default_rng(4), 6)
    fwd = jax.jit(_ffi.eigvalsh).lower(a).as_text()
    assert _ffi.EIGVALSH_TARGET in fwd and "eigh" not in fwd.lower().replace(_ffi.EIGVALSH_TARGET, "")
    bwd = jax.jit(jax.grad(lambda m: jnp.sum(_ffi.eigvalsh(m)))).lower(a).as_text()
    assert "eigh" in bwd.lower().replace(_ffi.EIGVALSH_TARGET, "") or "syevd" in bwd.lower()
