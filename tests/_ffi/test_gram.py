"""The compiled core's XLA FFI Gram accumulations (clipcore._ffi.gram) against float64 NumPy.

G_out = G_in + Φᵀ Φ for Φ [b, D] float32|float64 and G [D, D] float32|float64,
eagerly, under jit, in a fori_loop over row blocks, against its pure-JAX twin,
with bad inputs at the Python and at the raw FFI entry points, and fuzzed; and
the packed joint Gram G + [f(A) | f(B)]ᵀ [f(A) | f(B)] likewise.
"""

from __future__ import annotations

import concurrent.futures
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

jax.config.update("jax_enable_x64", True)

from clipcore import _ffi  # noqa: E402

needs_ext = pytest.mark.skipif(
    not _ffi.available(), reason=f"compiled extension unavailable: {_ffi.unavailable_reason()}"
)

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


def _data(b, d, phi_dtype, g_dtype, seed=0, symmetric=False):
    rng = np.random.default_rng(seed)
    phi = rng.standard_normal((b, d)).astype(phi_dtype)
    g = rng.standard_normal((d, d))
    if symmetric:
        g = g + g.T
    return g.astype(g_dtype), phi


def _reference(g, phi):
    p = phi.astype(np.float64)
    return g.astype(np.float64) + p.T @ p


def _tolerance(g, phi, out_dtype):
    """Elementwise bound: rounding of the products (scale |Φ|ᵀ|Φ|) + final rounding to G's dtype."""
    a = np.abs(phi.astype(np.float64))
    scale = a.T @ a + np.abs(g.astype(np.float64))
    # float32 Φ: products rounded in float32 inside one sub-block (<= 4096 rows,
    # random signs: far below the worst case 4096·eps); float64 Φ: dsyrk.
    prod_eps = 64 * EPS32 if phi.dtype == F32 else 64 * EPS64
    out_eps = EPS32 if np.dtype(out_dtype) == F32 else EPS64
    ref = np.abs(_reference(g, phi))
    return prod_eps * scale + 2 * out_eps * ref + 1e-30


def _assert_close(out, g, phi):
    out = np.asarray(out)
    assert out.dtype == g.dtype
    assert out.shape == g.shape
    err = np.abs(out.astype(np.float64) - _reference(g, phi))
    tol = _tolerance(g, phi, g.dtype)
    worst = np.unravel_index(np.argmax(err - tol), err.shape) if err.size else None
    assert np.all(err <= tol), f"max excess at {worst}: err {err[worst]:.3e} > tol {tol[worst]:.3e}"


def _raw_call(g, phi, out_shape=None, out_dtype=None, **attrs):
    """The FFI target called directly (no Python-side validation)."""
    out = jax.ShapeDtypeStruct(
        g.shape if out_shape is None else out_shape, g.dtype if out_dtype is None else out_dtype
    )
    # jax itself refuses to alias buffers of different types
    alias = {0: 0} if (out.shape, out.dtype) == (g.shape, g.dtype) else {}
    call = jax.ffi.ffi_call(_ffi.GRAM_TARGET, out, input_output_aliases=alias)
    return call(jnp.asarray(g), jnp.asarray(phi), **attrs)


# --------------------------------------------------------------------------- correctness


@needs_ext
@pytest.mark.parametrize("b", [0, 1, 7, 1000, 10007])
@pytest.mark.parametrize("d", [1, 3, 64, 257])
@pytest.mark.parametrize("phi_dtype", [F32, F64], ids=["phi32", "phi64"])
@pytest.mark.parametrize("g_dtype", [F32, F64], ids=["G32", "G64"])
def test_matches_float64_reference(b, d, phi_dtype, g_dtype):
    g, phi = _data(b, d, phi_dtype, g_dtype, seed=b * 1000 + d)
    out = _ffi.gram_accumulate(jnp.asarray(g), jnp.asarray(phi))
    _assert_close(out, g, phi)


@needs_ext
@pytest.mark.parametrize(
    "opts",
    [
        dict(block_rows=1),
        dict(block_rows=7),
        dict(block_rows=100, num_threads=3),
        dict(num_threads=1),
        dict(num_threads=2),
        dict(num_threads=5, block_rows=300),
        dict(strategy="blas"),
        dict(strategy="blas", num_threads=2, block_rows=512),
        dict(strategy="rows"),
    ],
    ids=repr,
)
def test_options_do_not_change_the_result(opts):
    g, phi = _data(3001, 65, F32, F64, seed=5)
    out = _ffi.gram_accumulate(jnp.asarray(g), jnp.asarray(phi), **opts)
    _assert_close(out, g, phi)


@needs_ext
def test_output_is_exactly_symmetric_for_symmetric_g():
    g, phi = _data(5000, 130, F32, F32, seed=3, symmetric=True)
    out = np.asarray(_ffi.gram_accumulate(jnp.asarray(g), jnp.asarray(phi)))
    np.testing.assert_array_equal(out, out.T)


@needs_ext
def test_non_symmetric_g_is_added_as_given():
    g, phi = _data(500, 17, F64, F64, seed=4)
    out = np.asarray(_ffi.gram_accumulate(jnp.asarray(g), jnp.asarray(phi)))
    np.testing.assert_allclose(out - g, (out - g).T, rtol=0, atol=1e-12)
    _assert_close(out, g, phi)


@needs_ext
def test_zero_rows_returns_g():
    g, phi = _data(0, 33, F32, F64, seed=1)
    out = _ffi.gram_accumulate(jnp.asarray(g), jnp.asarray(phi))
    np.testing.assert_array_equal(np.asarray(out), g)


@needs_ext
def test_zero_width():
    out = _ffi.gram_accumulate(jnp.zeros((0, 0)), jnp.zeros((5, 0), jnp.float32))
    assert out.shape == (0, 0)


@needs_ext
def test_float32_blocks_beat_naive_float32_summation():
    """10^5+ rows of CLIP-like (positive-mean) float32 features into a float32 G.

    Naive float32 summation (a running float32 sum of per-row outer products)
    loses digits as the sum grows; the core's float32 sub-blocks summed in
    float64 stay at float32 rounding of the final result.
    """
    b, d = 131_072, 6
    rng = np.random.default_rng(11)
    phi = (1.0 + 0.25 * rng.standard_normal((b, d))).astype(np.float32)
    g = np.zeros((d, d), np.float32)
    ref = _reference(g, phi)

    outer = phi[:, :, None] * phi[:, None, :]  # per-row outer products, float32
    naive = np.cumsum(outer, axis=0, dtype=np.float32)[-1]  # sequential float32 sum
    err_naive = np.max(np.abs(naive - ref) / np.abs(ref))

    ours = np.asarray(_ffi.gram_accumulate(jnp.asarray(g), jnp.asarray(phi)))
    err_ours = np.max(np.abs(ours.astype(np.float64) - ref) / np.abs(ref))

    assert err_ours <= 4 * EPS32, (err_ours, err_naive)
    assert err_naive > 30 * err_ours, (err_ours, err_naive)


@needs_ext
def test_reused_buffers_never_leak_into_results():
    """Accumulator buffers are cached between calls; stale contents must not matter."""
    cases = [
        _data(6000, 300, F32, F64, seed=30),
        _data(3000, 290, F64, F32, seed=31),  # fits in the previous buffers
        _data(5000, 300, F32, F32, seed=32),
        _data(10, 150, F32, F64, seed=33),
    ]
    for _ in range(2):
        for g, phi in cases:
            _assert_close(_ffi.gram_accumulate(jnp.asarray(g), jnp.asarray(phi)), g, phi)
    assert _ffi.release_buffers() >= 0
    g, phi = cases[0]
    _assert_close(_ffi.gram_accumulate(jnp.asarray(g), jnp.asarray(phi)), g, phi)


# --------------------------------------------------------------------------- jit & loops


@needs_ext
def test_under_jit_without_recompiling():
    traces = []

    @jax.jit
    def step(g, phi):
        traces.append(1)
        return _ffi.gram_accumulate(g, phi)

    g, phi = _data(2048, 96, F32, F64, seed=8)
    out1 = step(jnp.asarray(g), jnp.asarray(phi))
    _assert_close(out1, g, phi)
    g2, phi2 = _data(2048, 96, F32, F64, seed=9)
    out2 = step(jnp.asarray(g2), jnp.asarray(phi2))
    _assert_close(out2, g2, phi2)
    assert len(traces) == 1
    assert step._cache_size() == 1


@needs_ext
def test_lowers_to_an_aliased_custom_call():
    g, phi = _data(16, 8, F32, F32)
    text = jax.jit(_ffi.gram_accumulate).lower(jnp.asarray(g), jnp.asarray(phi)).as_text()
    assert _ffi.GRAM_TARGET in text
    assert "output_operand_alias" in text


@needs_ext
def test_donated_g_is_updated_in_place():
    g, phi = _data(300, 40, F32, F64, seed=2)
    gj = jnp.asarray(g)
    out = jax.jit(_ffi.gram_accumulate, donate_argnums=0)(gj, jnp.asarray(phi))
    assert gj.is_deleted()
    _assert_close(out, g, phi)


@needs_ext
@pytest.mark.parametrize("g_dtype", [F32, F64], ids=["G32", "G64"])
def test_fori_loop_over_row_blocks(g_dtype):
    blocks, rows, d = 6, 1024, 72
    _, phi = _data(blocks * rows, d, F32, F64, seed=12)
    g0 = np.zeros((d, d), g_dtype)
    traces = []

    @jax.jit
    def total(phi):
        traces.append(1)

        def body(i, g):
            blk = jax.lax.dynamic_slice_in_dim(phi, i * rows, rows, axis=0)
            return _ffi.gram_accumulate(g, blk)

        return jax.lax.fori_loop(0, blocks, body, jnp.asarray(g0))

    out = total(jnp.asarray(phi))
    assert out.dtype == g_dtype
    _assert_close(out, g0, phi)
    _, phi2 = _data(blocks * rows, d, F32, F64, seed=13)
    _assert_close(total(jnp.asarray(phi2)), g0, phi2)
    assert len(traces) == 1 and total._cache_size() == 1


@needs_ext
def test_concurrent_calls_from_python_threads():
    fn = jax.jit(_ffi.gram_accumulate)
    cases = [_data(4000 + 100 * i, 48, F32, F64, seed=20 + i) for i in range(6)]

    def run(case):
        g, phi = case
        return np.asarray(fn(jnp.asarray(g), jnp.asarray(phi)))

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(run, cases))
    for (g, phi), out in zip(cases, outs):
        _assert_close(out, g, phi)


# --------------------------------------------------------------------------- the twin


@needs_ext
@pytest.mark.parametrize(
    "phi_dtype,g_dtype", [(F32, F32), (F32, F64), (F64, F64), (F64, F32)], ids=str
)
def test_ffi_and_pure_jax_twin_agree(phi_dtype, g_dtype):
    g, phi = _data(3000, 50, phi_dtype, g_dtype, seed=6)
    a = np.asarray(jax.jit(_ffi.gram_accumulate)(jnp.asarray(g), jnp.asarray(phi)))
    b = np.asarray(jax.jit(_ffi.gram_accumulate_jax)(jnp.asarray(g), jnp.asarray(phi)))
    assert a.dtype == b.dtype == g_dtype
    _assert_close(a, g, phi)
    _assert_close(b, g, phi)


def test_pure_jax_twin_matches_reference():
    g, phi = _data(777, 31, F64, F64, seed=7)
    out = _ffi.gram_accumulate_jax(jnp.asarray(g), jnp.asarray(phi))
    _assert_close(out, g, phi)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "g_shape,phi_shape,g_dtype,phi_dtype,match",
    [
        ((3, 5), (10, 64), F32, F32, r"G must be \[D, D\] with D = phi.shape\[1\] = 64, got \[3, 5\]"),
        ((63, 63), (10, 64), F64, F32, r"D = phi.shape\[1\] = 64, got \[63, 63\]"),
        ((4, 4), (10, 4, 1), F64, F32, r"phi must be rank 2"),
        ((4, 4), (4,), F64, F32, r"phi must be rank 2"),
        ((4, 4), (10, 4), F64, np.dtype(np.int32), r"phi dtype must be float32 or float64, got int32"),
        ((4, 4), (10, 4), np.dtype(np.int32), F32, r"G dtype must be float32 or float64, got int32"),
        ((4, 4), (10, 4), F64, np.dtype(np.float16), r"phi dtype .* got float16"),
    ],
)
@pytest.mark.parametrize("fn", ["gram_accumulate", "gram_accumulate_jax"])
def test_python_entry_rejects_bad_input(g_shape, phi_shape, g_dtype, phi_dtype, match, fn):
    g = jnp.zeros(g_shape, g_dtype)
    phi = jnp.zeros(phi_shape, phi_dtype)
    with pytest.raises(ValueError, match=match):
        getattr(_ffi, fn)(g, phi)


@needs_ext
@pytest.mark.parametrize(
    "opts,match",
    [
        (dict(block_rows=0), "block_rows must be >= 1"),
        (dict(num_threads=0), "num_threads must be >= 1"),
        (dict(strategy="openmp"), "strategy must be one of"),
    ],
)
def test_python_entry_rejects_bad_options(opts, match):
    with pytest.raises(ValueError, match=match):
        _ffi.gram_accumulate(jnp.zeros((4, 4)), jnp.zeros((2, 4)), **opts)


@needs_ext
@pytest.mark.parametrize(
    "g,phi,out_shape,out_dtype,attrs,match",
    [
        (np.zeros((3, 5), F32), np.zeros((10, 64), F32), None, None, {},
         "gram_accumulate: G must be [D, D] with D = phi.shape[1] = 64, got [3, 5]"),
        (np.zeros((4, 4), F32), np.zeros((10, 4), np.int32), None, None, {},
         "gram_accumulate: phi dtype must be float32 or float64, got int32"),
        (np.zeros((4, 4), np.int32), np.zeros((10, 4), F32), None, None, {},
         "gram_accumulate: G dtype must be float32 or float64, got int32"),
        (np.zeros((4, 4), F32), np.zeros((2, 3, 4), F32), None, None, {},
         "gram_accumulate: phi must be rank 2 [b, D], got shape [2, 3, 4] (rank 3)"),
        (np.zeros((4, 4), F32), np.zeros((10, 4), F32), (4, 4), F64, {},
         "gram_accumulate: output must have G's dtype and shape (float32 [4, 4]), got float64 [4, 4]"),
        (np.zeros((4, 4), F32), np.zeros((10, 4), F32), None, None, {"foo": 1},
         "gram_accumulate: unknown attribute 'foo'"),
        (np.zeros((4, 4), F32), np.zeros((10, 4), F32), None, None, {"block_rows": -3},
         "gram_accumulate: attribute 'block_rows' must be >= 0, got -3"),
        (np.zeros((4, 4), F32), np.zeros((10, 4), F32), None, None, {"strategy": 7},
         "gram_accumulate: attribute 'strategy' must be 0"),
        (np.zeros((4, 4), F32), np.zeros((10, 4), F32), None, None, {"num_threads": 2.5},
         "gram_accumulate: attribute 'num_threads' must be an integer"),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_raw_ffi_target_reports_errors_as_exceptions(g, phi, out_shape, out_dtype, attrs, match):
    with pytest.raises(Exception, match=re.escape(match)) as info:
        jax.block_until_ready(_raw_call(g, phi, out_shape, out_dtype, **attrs))
    assert "INVALID_ARGUMENT" in str(info.value)


@needs_ext
def test_raw_ffi_target_without_attributes_uses_defaults():
    g, phi = _data(900, 20, F32, F64, seed=14)
    _assert_close(_raw_call(g, phi), g, phi)


# --------------------------------------------------------------------------- fuzz

_DTYPES = [F32, F64, np.dtype(np.int32), np.dtype(np.float16)]


@needs_ext
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    b=st.integers(0, 600),
    d=st.integers(0, 40),
    g_shape=st.one_of(st.none(), st.tuples(st.integers(0, 41), st.integers(0, 41))),
    phi_dtype=st.sampled_from(_DTYPES),
    g_dtype=st.sampled_from(_DTYPES),
    block_rows=st.one_of(st.none(), st.integers(1, 700)),
    num_threads=st.one_of(st.none(), st.integers(1, 4)),
    seed=st.integers(0, 2**31 - 1),
)
def test_fuzz_raw_entry_point(b, d, g_shape, phi_dtype, g_dtype, block_rows, num_threads, seed):
    rng = np.random.default_rng(seed)
    g_shape = (d, d) if g_shape is None else g_shape
    phi = (rng.standard_normal((b, d)) * 3).astype(phi_dtype)
    g = (rng.standard_normal(g_shape) * 3).astype(g_dtype)
    attrs = {}
    if block_rows is not None:
        attrs["block_rows"] = np.int64(block_rows)
    if num_threads is not None:
        attrs["num_threads"] = np.int64(num_threads)
    valid = g_shape == (d, d) and phi_dtype in (F32, F64) and g_dtype in (F32, F64)
    if valid:
        out = _raw_call(g, phi, **attrs)
        _assert_close(out, g, phi)
    elif g.size == 0:
        # XLA does not run a custom call whose only output is empty, so an
        # invalid call with an empty G may return the empty G unchecked.
        try:
            out = jax.block_until_ready(_raw_call(g, phi, **attrs))
        except Exception as exc:
            assert "INVALID_ARGUMENT: gram_accumulate: " in str(exc)
        else:
            assert out.shape == g.shape
    else:
        with pytest.raises(Exception, match="INVALID_ARGUMENT: gram_accumulate: "):
            jax.block_until_ready(_raw_call(g, phi, **attrs))


# --------------------------------------------------------------------------- the joint (packed) Gram


def _joint_ref(G, A, B, normalize):
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    if normalize:
        na, nb = np.linalg.norm(A, axis=1, keepdims=True), np.linalg.norm(B, axis=1, keepdims=True)
        A = np.divide(A, na, out=np.zeros_like(A), where=na > 0)
        B = np.divide(B, nb, out=np.zeros_like(B), where=nb > 0)
    Z = np.concatenate([A, B], axis=1)
    return np.asarray(G, np.float64) + Z.T @ Z


JOINT_TOL = {np.float32: 2e-6, np.float64: 1e-13}


@needs_ext
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("g_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("normalize", [True, False])
def test_joint_matches_reference(dtype, g_dtype, normalize):
    rng = np.random.default_rng(1)
    A = (3 * rng.standard_normal((9000, 33))).astype(dtype)
    B = rng.standard_normal((9000, 20)).astype(dtype)
    A[5] = 0.0  # a zero row stays zero
    G = rng.standard_normal((53, 53)).astype(g_dtype)
    got = np.asarray(jax.jit(lambda g, a, b: _ffi.joint_gram_accumulate(g, a, b, normalize=normalize))(G, A, B))
    want = _joint_ref(G, A, B, normalize)
    assert got.dtype == g_dtype
    tol = max(JOINT_TOL[dtype], JOINT_TOL[g_dtype])
    assert np.max(np.abs(got - want)) <= tol * np.max(np.abs(want))
    twin = np.asarray(_ffi.joint_gram_accumulate_jax(G, A, B, normalize=normalize))
    assert np.max(np.abs(twin - want)) <= tol * np.max(np.abs(want))


@needs_ext
def test_joint_options_and_zero_rows():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3000, 8))
    B = rng.standard_normal((3000, 5))
    G = np.zeros((13, 13))
    want = _joint_ref(G, A, B, True)
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
def test_joint_bad_input_errors(G, A, B, match):
    with pytest.raises(ValueError, match=match):
        _ffi.joint_gram_accumulate(G, A, B, normalize=True)


@needs_ext
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    b=st.integers(0, 700), da=st.integers(1, 40), db=st.integers(1, 40),
    dtype=st.sampled_from([np.float32, np.float64]), normalize=st.booleans(),
    scale=st.sampled_from([1e-30, 1e-3, 1.0, 1e20]), seed=st.integers(0, 2**16),
)
@example(b=1, da=1, db=1, dtype=np.float32, normalize=False, scale=1e20, seed=0)  # 1.26e19² = 1.6e38: finite
def test_joint_fuzz(b, da, db, dtype, normalize, scale, seed):
    rng = np.random.default_rng(seed)
    A = (scale * rng.standard_normal((b, da))).astype(dtype)
    B = rng.standard_normal((b, db)).astype(dtype)
    G = np.zeros((da + db, da + db))
    got = np.asarray(_ffi.joint_gram_accumulate(G, A, B, normalize=normalize))
    want = _joint_ref(G, A, B, normalize)
    if dtype == np.float32 and not normalize and b and scale > 1e19:
        # float32 products of raw values near 1e20 overflow (1e40 > 3.4e38): that is the float32 contract of
        # the syrk, reported as Inf, never a crash or a silent finite value. Whether they do depends on the
        # draw (one value 1.26e19 squares to 1.6e38, finite): a Gram entry past float32's range must be
        # non-finite; where no entry's sum of |products| reaches it, the checks below hold; in between, partial
        # sums may or may not overflow
        a = np.abs(A.astype(np.float64))
        top = np.finfo(np.float32).max
        if np.max(np.abs(want)) > top:
            assert not np.all(np.isfinite(got))
            return
        if np.max(a.T @ a) >= top:
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
    hlo = jax.jit(lambda t, x: C.joint_sums(t, x, None, fmap=FeatureMap("cosine"), block=2000,
                                             feature_dtype=jnp.float64, acc_dtype=jnp.float64,
                                             backend="ffi")).lower(t, x).as_text()
    assert _ffi.JOINT_GRAM_TARGET in hlo


# --------------------------------------------------------------------------- transformations: grad, jvp, vjp, vmap


def _grad_data(seed=0, b=40, d=6):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((d, d)), rng.standard_normal((b, d))


@needs_ext
def test_gram_check_grads_fwd_and_rev():
    """The rule's derivatives against finite differences of the call itself (float64)."""
    from jax.test_util import check_grads

    g, phi = _grad_data()
    check_grads(_ffi.gram_accumulate, (g, phi), order=1, modes=("fwd", "rev"))


@needs_ext
@pytest.mark.parametrize("phi_dtype,g_dtype", [(F64, F64), (F32, F64), (F32, F32)], ids=str)
def test_gram_jvp_and_vjp_equal_the_twins(phi_dtype, g_dtype):
    g, phi = _grad_data(1)
    g, phi = jnp.asarray(g, g_dtype), jnp.asarray(phi, phi_dtype)
    dg, dphi = jnp.asarray(np.ones_like(g), g_dtype), jnp.asarray(np.cos(np.asarray(phi)), phi_dtype)
    rtol = 1e-12 if phi_dtype == g_dtype == F64 else 1e-5
    out, tan = jax.jvp(_ffi.gram_accumulate, (g, phi), (dg, dphi))
    out_t, tan_t = jax.jvp(_ffi.gram_accumulate_jax, (g, phi), (dg, dphi))
    assert tan.dtype == g_dtype
    np.testing.assert_allclose(out, out_t, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(tan, tan_t, rtol=rtol, atol=rtol * np.abs(np.asarray(tan_t, F64)).max())
    ct = jnp.asarray(np.random.default_rng(2).standard_normal(g.shape), g_dtype)
    got = jax.vjp(_ffi.gram_accumulate, g, phi)[1](ct)
    want = jax.vjp(_ffi.gram_accumulate_jax, g, phi)[1](ct)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(np.asarray(b, F64)).max())


@needs_ext
def test_gram_grad_of_a_loss_matches_float64_numpy():
    """d/dΦ Σ (G + ΦᵀΦ) ∘ C = Φ (C + Cᵀ): an independent closed form."""
    g, phi = _grad_data(3)
    c = np.random.default_rng(4).standard_normal(g.shape)
    grad = jax.grad(lambda p: jnp.sum(_ffi.gram_accumulate(jnp.asarray(g), p) * c))(jnp.asarray(phi))
    np.testing.assert_allclose(grad, phi @ (c + c.T), rtol=1e-12)


@needs_ext
@pytest.mark.parametrize("normalize", [True, False])
def test_joint_gram_derivatives(normalize):
    from jax.test_util import check_grads

    rng = np.random.default_rng(5)
    g, a, b = rng.standard_normal((7, 7)), rng.standard_normal((30, 3)), rng.standard_normal((30, 4))
    fn = lambda g_, a_, b_: _ffi.joint_gram_accumulate(g_, a_, b_, normalize=normalize)  # noqa: E731
    twin = lambda g_, a_, b_: _ffi.joint_gram_accumulate_jax(g_, a_, b_, normalize=normalize)  # noqa: E731
    check_grads(fn, (g, a, b), order=1, modes=("fwd", "rev"))
    tangents = (np.ones_like(g), np.sin(a), np.cos(b))
    np.testing.assert_allclose(jax.jvp(fn, (g, a, b), tangents)[1], jax.jvp(twin, (g, a, b), tangents)[1],
                               rtol=1e-12, atol=1e-12)
    ct = rng.standard_normal(g.shape)
    for u, v in zip(jax.vjp(fn, g, a, b)[1](ct), jax.vjp(twin, g, a, b)[1](ct)):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-12)


@needs_ext
def test_joint_gram_gradient_is_finite_at_a_zero_row():
    """A zero row stays zero under normalisation; its gradient is 0 (the twin's where), not NaN."""
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
    a[4] = 0.0
    grad = jax.grad(lambda a_: jnp.sum(_ffi.joint_gram_accumulate(jnp.zeros((5, 5)), a_, b, normalize=True)))(a)
    assert np.all(np.isfinite(grad)) and np.all(np.asarray(grad)[4] == 0)


@needs_ext
def test_gram_vmap_equals_a_loop():
    rng = np.random.default_rng(7)
    gs, phis = rng.standard_normal((3, 5, 5)), rng.standard_normal((3, 50, 5)).astype(np.float32)
    want = np.stack([np.asarray(_ffi.gram_accumulate(g, p)) for g, p in zip(gs, phis)])
    np.testing.assert_array_equal(jax.vmap(_ffi.gram_accumulate)(gs, phis), want)
    np.testing.assert_array_equal(jax.jit(jax.vmap(_ffi.gram_accumulate))(gs, phis), want)
    # G shared, rows batched; and two levels of vmap
    shared = np.stack([np.asarray(_ffi.gram_accumulate(gs[0], p)) for p in phis])
    np.testing.assert_array_equal(jax.vmap(_ffi.gram_accumulate, in_axes=(None, 0))(gs[0], phis), shared)
    nested = jax.vmap(jax.vmap(_ffi.gram_accumulate, in_axes=(None, 0)), in_axes=(None, 0))(gs[0], phis[None])
    np.testing.assert_array_equal(nested[0], shared)
    # and the derivative of a vmapped call
    grads = jax.vmap(jax.grad(lambda p: jnp.sum(_ffi.gram_accumulate(gs[0], p))))(phis)
    for p, gr in zip(phis, grads):
        np.testing.assert_allclose(gr, jax.grad(lambda q: jnp.sum(_ffi.gram_accumulate_jax(gs[0], q)))(p), rtol=1e-5)


@needs_ext
@pytest.mark.parametrize("normalize", [True, False])
def test_joint_gram_vmap_equals_a_loop(normalize):
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((4, 60, 3)), rng.standard_normal((4, 60, 2))
    fn = lambda a_, b_: _ffi.joint_gram_accumulate(jnp.zeros((5, 5)), a_, b_, normalize=normalize)  # noqa: E731
    want = np.stack([np.asarray(fn(x, y)) for x, y in zip(a, b)])
    np.testing.assert_array_equal(jax.vmap(fn)(a, b), want)


@needs_ext
def test_forward_pass_is_the_ffi_call_alone():
    """The differentiation rule acts only under differentiation: the jitted forward lowers to the custom call and
    nothing of the tangent (no dot_general)."""
    g, phi = _grad_data(9)
    text = jax.jit(_ffi.gram_accumulate).lower(g, phi).as_text()
    assert _ffi.GRAM_TARGET in text and "dot_general" not in text
    text = jax.jit(lambda g_, a, b: _ffi.joint_gram_accumulate(g_, a, b, normalize=True)).lower(
        np.zeros((10, 10)), phi[:, :4], phi).as_text()
    assert _ffi.JOINT_GRAM_TARGET in text and "dot_general" not in text
