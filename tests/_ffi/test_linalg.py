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
