"""The packed joint Gram G + [f(A) | f(B)]ᵀ [f(A) | f(B)] (compiled core) against float64 NumPy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipcore import _ffi

needs_ext = pytest.mark.skipif(not _ffi.available(), reason=f"compiled core: {_ffi.unavailable_reason()}")


def _ref(G, A, B, normalize):
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    if normalize:
        na, nb = np.linalg.norm(A, axis=1, keepdims=True), np.linalg.norm(B, axis=1, keepdims=True)
        A = np.divide(A, na, out=np.zeros_like(A), where=na > 0)
        B = np.divide(B, nb, out=np.zeros_like(B), where=nb > 0)
    Z = np.concatenate([A, B], axis=1)
    return np.asarray(G, np.float64) + Z.T @ Z


TOL = {np.float32: 2e-6, np.float64: 1e-13}


@needs_ext
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("g_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_reference(dtype, g_dtype, normalize):
    rng = np.random.default_rng(1)
    A = (3 * rng.standard_normal((9000, 33))).astype(dtype)
    B = rng.standard_normal((9000, 20)).astype(dtype)
    A[5] = 0.0  # a zero row stays zero
    G = rng.standard_normal((53, 53)).astype(g_dtype)
    got = np.asarray(jax.jit(lambda g, a, b: _ffi.joint_gram_accumulate(g, a, b, normalize=normalize))(G, A, B))
    want = _ref(G, A, B, normalize)
    assert got.dtype == g_dtype
    tol = max(TOL[dtype], TOL[g_dtype])
    assert np.max(np.abs(got - want)) <= tol * np.max(np.abs(want))
    twin = np.asarray(_ffi.joint_gram_accumulate_jax(G, A, B, normalize=normalize))
    assert np.max(np.abs(twin - want)) <= tol * np.max(np.abs(want))


@needs_ext
def test_options_and_zero_rows():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3000, 8))
    B = rng.standard_normal((3000, 5))
    G = np.zeros((13, 13))
    want = _ref(G, A, B, True)
    for kw in (dict(block_rows=7), dict(num_threads=1), dict(num_threads=3, block_rows=1000)):
        got = np.asarray(_ffi.joint_gram_accumulate(G, A, B, normalize=True, **kw))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    empty = np.asarray(_ffi.joint_gram_accumulate(G + 1, A[:0], B[:0], normalize=True))
    np.testing.assert_array_equal(empty, G + 1)


@needs_ext
@pytest.mark.parametrize(
    "G, A, B, match",
    [
        (np.zeros((5, 5)), np.ones((4, 3)), np.ones((3, 2)), "same rows"),
        (np.zeros((4, 4)), np.ones((4, 3)), np.ones((4, 2)), r"\[5, 5\]"),
        (np.zeros((5, 5)), np.ones((4, 3), np.float32), np.ones((4, 2)), "share"),
        (np.zeros((5, 5)), np.ones((4, 3, 1)), np.ones((4, 2)), "rank 2"),
        (np.zeros((5, 5), np.int32), np.ones((4, 3)), np.ones((4, 2)), "G dtype"),
    ],
)
def test_bad_input_errors(G, A, B, match):
    with pytest.raises(ValueError, match=match):
        _ffi.joint_gram_accumulate(G, A, B, normalize=True)


@needs_ext
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    b=st.integers(0, 700), da=st.integers(1, 40), db=st.integers(1, 40),
    dtype=st.sampled_from([np.float32, np.float64]), normalize=st.booleans(),
    scale=st.sampled_from([1e-30, 1e-3, 1.0, 1e20]), seed=st.integers(0, 2**16),
)
def test_fuzz(b, da, db, dtype, normalize, scale, seed):
    rng = np.random.default_rng(seed)
    A = (scale * rng.standard_normal((b, da))).astype(dtype)
    B = rng.standard_normal((b, db)).astype(dtype)
    G = np.zeros((da + db, da + db))
    got = np.asarray(_ffi.joint_gram_accumulate(G, A, B, normalize=normalize))
    want = _ref(G, A, B, normalize)
    if dtype == np.float32 and not normalize and b and scale > 1e19:
        # float32 products of raw values near 1e20 overflow (1e40 > 3.4e38): that is the
        # float32 contract of the syrk, reported as Inf, never a crash or a silent finite value
        assert not np.all(np.isfinite(got))
        return
    assert np.all(np.isfinite(got)) == np.all(np.isfinite(want))
    if np.all(np.isfinite(want)) and b:
        assert np.max(np.abs(got - want)) <= 1e-5 * max(np.max(np.abs(want)), 1e-300)


def test_cosine_covariances_use_the_packed_core_and_agree():
    """joint_covariances (cosine, ffi) lowers to the packed target and matches the jax backend."""
    from clipcore import covariance as C
    from clipcore.kernels import FeatureMap

    rng = np.random.default_rng(3)
    t, x = rng.standard_normal((2000, 12)), rng.standard_normal((2000, 9))
    a = C.joint_covariances(t, x, FeatureMap("cosine"), feature_dtype=jnp.float64, backend="jax")
    if not _ffi.available():
        pytest.skip("compiled core missing")
    b = C.joint_covariances(t, x, FeatureMap("cosine"), feature_dtype=jnp.float64, backend="ffi")
    for u, v in zip(a, b):
        np.testing.assert_allclose(np.asarray(v), np.asarray(u), rtol=1e-12, atol=1e-15)
    hlo = jax.jit(lambda t, x: C._joint_sums(t, x, None, fmap=FeatureMap("cosine"), block=2000,
                                              feature_dtype=jnp.float64, acc_dtype=jnp.float64,
                                              backend="ffi")).lower(t, x).as_text()
    assert _ffi.JOINT_GRAM_TARGET in hlo


@needs_ext
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_host_entry_matches_reference_and_errors(dtype):
    """The host twin (streamed host blocks) is the same core: same numbers, clear errors."""
    rng = np.random.default_rng(4)
    A = rng.standard_normal((5000, 17)).astype(dtype)
    B = rng.standard_normal((5000, 9)).astype(dtype)
    G = rng.standard_normal((26, 26))
    want = _ref(G, A, B, True)
    _ffi._ext.joint_gram_host(G, A, B, True)  # in place
    assert np.max(np.abs(G - want)) <= TOL[dtype] * np.max(np.abs(want))
    with pytest.raises(ValueError, match="paired"):
        _ffi._ext.joint_gram_host(np.zeros((26, 26)), A, B[:10], True)
    with pytest.raises(ValueError, match=r"\[26, 26\]"):
        _ffi._ext.joint_gram_host(np.zeros((5, 5)), A, B, True)
    with pytest.raises(ValueError, match="share"):
        _ffi._ext.joint_gram_host(np.zeros((26, 26)), A.astype(np.float32), B.astype(np.float64), True)


def test_streamed_cosine_uses_the_host_core_and_agrees(tmp_path):
    """Large host inputs (streamed) give the same covariances as the in-memory JAX path."""
    import clipcore
    from clipcore import scores as S

    d = clipcore.synthetic_pairs(3000, 20, seed=2)
    a = clipcore.sce(d.images, d.texts, backend="jax")
    old = S.IN_MEMORY_ROWS
    S.IN_MEMORY_ROWS = 100
    try:
        b = clipcore.sce(d.images, d.texts, backend="ffi", block_size=777, progress=False)
        c = clipcore.sce(d.images, d.texts, backend="ffi", dtype="float32", progress=False)
    finally:
        S.IN_MEMORY_ROWS = old
    assert b.log_sce == pytest.approx(a.log_sce, rel=1e-12)
    assert c.log_sce == pytest.approx(a.log_sce, rel=1e-6)
