"""The compiled Nyström / Gaussian-kernel FFI targets (clipcore._ffi.kernel) against float64 NumPy.

nystrom_accumulate (whitened / kernel, single / paired) and
gaussian_sq_frobenius: results vs independent references, their pure-JAX
twins, jit / loops / aliasing, options that must not change the result,
errors with shapes at the Python and the raw FFI entry points, and a
hypothesis fuzz of each raw entry point (odd shapes, dtypes, zero rows,
m = 0/1, σ = 1e-30 / 1e30 / invalid, NaN): no crash, a clear error or a
correct result. (Pivoted Cholesky: test_cholesky.py; host entries: test_host.py.)
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipcore import _ffi
from reference import nystrom_numpy as ref

pytestmark = pytest.mark.skipif(not _ffi.available(), reason=f"compiled core: {_ffi.unavailable_reason()}")

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
I32, F16 = np.dtype(np.int32), np.dtype(np.float16)


def _gauss(a, b, sigma):
    """Reference kernel on the inputs as given (float64 of the same values)."""
    return ref.gaussian(np.asarray(a, np.float64), np.asarray(b, np.float64), sigma)


def _acc_reference(G, B, L, W, sigma, B2=None):
    blocks = [B] + ([B2] if B2 is not None else [])
    feats = []
    absf = []
    for blk in blocks:
        K = _gauss(blk, L, sigma)
        if W is None:
            feats.append(K)
            absf.append(np.abs(K))
        else:
            W64 = np.asarray(W, np.float64)
            feats.append(K @ W64)
            absf.append(np.abs(K) @ np.abs(W64))
    Z = np.concatenate(feats, axis=1)
    A = np.concatenate(absf, axis=1)
    return np.asarray(G, np.float64) + Z.T @ Z, A.T @ A + np.abs(np.asarray(G, np.float64))


def _assert_acc(out, G, B, L, W, sigma, B2=None):
    out = np.asarray(out)
    assert out.dtype == G.dtype and out.shape == G.shape
    want, scale = _acc_reference(G, B, L, W, sigma, B2)
    low = B.dtype == F32 or G.dtype == F32
    tol = (2e-4 if low else 1e-9) * scale + 1e-30
    err = np.abs(out.astype(np.float64) - want)
    assert np.all(err <= tol), f"max excess {np.max(err - tol):.3e}"


def _data(b, d, m, r, dtype, seed=0):
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((b, d)).astype(dtype)
    B2 = rng.standard_normal((b, d)).astype(dtype)
    L = np.concatenate([B[: m // 2], rng.standard_normal((m - min(m // 2, b), d))]).astype(dtype)[:m]
    W = (rng.standard_normal((m, r)) / max(m, 1)).astype(dtype)
    return B, B2, L, W



# --------------------------------------------------------------------------- results


@pytest.mark.parametrize("whiten", [True, False], ids=["whiten", "kernel"])
@pytest.mark.parametrize("paired", [False, True], ids=["single", "paired"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("g_dtype", [F32, F64], ids=["G32", "G64"])
@pytest.mark.parametrize("b,d,m,r", [(0, 5, 7, 3), (1, 3, 1, 1), (777, 17, 40, 29), (5000, 64, 130, 100)])
def test_accumulate_matches_reference(whiten, paired, dtype, g_dtype, b, d, m, r):
    B, B2, L, W = _data(b, d, m, r, dtype, seed=b + d)
    R = (2 if paired else 1) * (r if whiten else m)
    G = np.random.default_rng(1).standard_normal((R, R)).astype(g_dtype)
    sigma = 2.5
    out = _ffi.nystrom_accumulate(G, B, L, W if whiten else None, sigma, B2=B2 if paired else None)
    _assert_acc(out, G, B, L, W if whiten else None, sigma, B2 if paired else None)
    twin = _ffi.nystrom_accumulate_jax(G, B, L, W if whiten else None, sigma, B2=B2 if paired else None)
    _assert_acc(twin, G, B, L, W if whiten else None, sigma, B2 if paired else None)


@pytest.mark.parametrize(
    "opts",
    [dict(block_rows=1), dict(block_rows=7, tile_rows=3), dict(block_rows=100, num_threads=3),
     dict(num_threads=1), dict(tile_rows=1000), dict(block_rows=5000, tile_rows=64, num_threads=2)],
    ids=repr,
)
@pytest.mark.parametrize("whiten", [True, False], ids=["whiten", "kernel"])
def test_options_do_not_change_the_result(opts, whiten):
    B, B2, L, W = _data(3001, 33, 50, 40, F32, seed=2)
    R = 40 if whiten else 50
    G = np.zeros((R, R))
    base = np.asarray(_ffi.nystrom_accumulate(G, B, L, W if whiten else None, 3.0))
    out = np.asarray(_ffi.nystrom_accumulate(G, B, L, W if whiten else None, 3.0, **opts))
    _assert_acc(out, G, B, L, W if whiten else None, 3.0)
    assert np.max(np.abs(out - base)) <= 1e-6 * np.max(np.abs(base))


def test_accumulate_is_exactly_symmetric_and_reuses_buffers():
    for seed, (b, m, r) in enumerate([(4000, 300, 280), (2000, 290, 100), (10, 5, 5), (4000, 300, 280)]):
        B, _, L, W = _data(b, 20, m, r, F32, seed=seed)
        out = np.asarray(_ffi.nystrom_accumulate(np.zeros((r, r), np.float32), B, L, W, 2.0))
        np.testing.assert_array_equal(out, out.T)
        _assert_acc(out, np.zeros((r, r), np.float32), B, L, W, 2.0)


def test_extreme_sigma():
    B, _, L, W = _data(300, 6, 20, 20, F64, seed=3)  # half the landmarks are rows of B
    # σ → 0: k = 1 exactly for identical points, else 0
    K = np.asarray(_ffi.nystrom_accumulate(np.zeros((20, 20)), B, L, None, 1e-30))
    hits = (ref.sq_dists(B, L) == 0).astype(float)
    np.testing.assert_array_equal(K, hits.T @ hits)
    # σ → ∞: k = 1 everywhere
    K = np.asarray(_ffi.nystrom_accumulate(np.zeros((20, 20)), B.astype(F32), L.astype(F32), None, 1e30))
    np.testing.assert_allclose(K, np.full((20, 20), 300.0), rtol=1e-12)
    f = float(_ffi.gaussian_sq_frobenius(B, 1e-30))
    assert f == 300.0
    assert float(_ffi.gaussian_sq_frobenius(B.astype(F32), 1e30)) == 300.0**2


def test_sigma_may_be_traced():
    B, _, L, W = _data(500, 8, 30, 30, F32, seed=4)

    @jax.jit
    def f(sig):
        g = _ffi.nystrom_accumulate(jnp.zeros((30, 30)), B, L, W, sig)
        return g, _ffi.gaussian_sq_frobenius(B, sig)

    for s in (0.7, 3.0):
        g, fro = f(jnp.asarray(s))
        _assert_acc(g, np.zeros((30, 30)), B, L, W, s)
        assert abs(float(fro) / ref.sq_frobenius(B, s) - 1) < 1e-6
    assert f._cache_size() == 1


def test_lowers_to_aliased_custom_calls():
    B, B2, L, W = _data(16, 4, 5, 3, F32)
    for w, b2, target in [(W, None, _ffi.NYSTROM_TARGET), (W, B2, _ffi.NYSTROM_PAIRED_TARGET),
                          (None, None, _ffi.KERNEL_ACC_TARGET), (None, B2, _ffi.KERNEL_ACC_PAIRED_TARGET)]:
        R = (2 if b2 is not None else 1) * (3 if w is not None else 5)
        text = jax.jit(lambda g: _ffi.nystrom_accumulate(g, B, L, w, 1.0, B2=b2)).lower(jnp.zeros((R, R))).as_text()
        assert target in text and "output_operand_alias" in text


@pytest.mark.parametrize("whiten", [True, False], ids=["whiten", "kernel"])
def test_fori_loop_over_row_blocks(whiten):
    blocks, rows, d, m = 5, 640, 24, 60
    B, B2, L, W = _data(blocks * rows, d, m, 50, F32, seed=5)
    R = 2 * (50 if whiten else m)

    @jax.jit
    def total(b, b2):
        def body(i, g):
            sl = lambda a: jax.lax.dynamic_slice_in_dim(a, i * rows, rows, axis=0)
            return _ffi.nystrom_accumulate(g, sl(b), L, W if whiten else None, 2.0, B2=sl(b2))

        return jax.lax.fori_loop(0, blocks, body, jnp.zeros((R, R)))

    _assert_acc(total(B, B2), np.zeros((R, R)), B, L, W if whiten else None, 2.0, B2)


def test_sq_frobenius_tiles_and_threads():
    x = ref.clustered(1500, 20, seed=6)
    want = ref.sq_frobenius(x, 3.0)
    for opts in (dict(tile_rows=1), dict(tile_rows=100, num_threads=3), dict(tile_rows=1499), dict(num_threads=1)):
        if opts.get("tile_rows") == 1:
            x1 = x[:200]
            assert abs(float(_ffi.gaussian_sq_frobenius(x1, 3.0, **opts)) / ref.sq_frobenius(x1, 3.0) - 1) < 1e-6
            continue
        assert abs(float(_ffi.gaussian_sq_frobenius(x, 3.0, **opts)) / want - 1) < 1e-6
    # independent of the thread count exactly (unit sums added in order)
    a = float(_ffi.gaussian_sq_frobenius(x, 3.0, num_threads=1))
    b = float(_ffi.gaussian_sq_frobenius(x, 3.0, num_threads=4))
    assert a == b


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: _ffi.nystrom_accumulate(np.zeros((3, 3)), np.zeros((5, 4), F32), np.zeros((6, 4), F32), np.zeros((6, 2), F32), 1.0),
         r"nystrom_accumulate: G must be \[R, R\] with R = r = 2, got \[3, 3\]"),
        (lambda: _ffi.nystrom_accumulate(np.zeros((3, 3)), np.zeros((5, 4), F32), np.zeros((6, 4), F32), np.zeros((6, 2), F32), 1.0, B2=np.zeros((5, 4), F32)),
         r"nystrom_accumulate: G must be \[R, R\] with R = 2 \* r = 4, got \[3, 3\]"),
        (lambda: _ffi.nystrom_accumulate(np.zeros((6, 6)), np.zeros((5, 4), F32), np.zeros((6, 3), F32), None, 1.0),
         r"kernel_accumulate: landmarks must be float32 \[m, d\] with d = B.shape\[1\] = 4, got float32 \[6, 3\]"),
        (lambda: _ffi.nystrom_accumulate(np.zeros((2, 2)), np.zeros((5, 4), F32), np.zeros((6, 4), F64), np.zeros((6, 2), F32), 1.0),
         r"landmarks must be float32 \[m, d\]"),
        (lambda: _ffi.nystrom_accumulate(np.zeros((2, 2)), np.zeros((5, 4), F32), np.zeros((6, 4), F32), np.zeros((5, 2), F32), 1.0),
         r"whitening must be float32 \[m, r\] with m = landmarks.shape\[0\] = 6, got float32 \[5, 2\]"),
        (lambda: _ffi.nystrom_accumulate(np.zeros((2, 2)), np.zeros((5, 4), I32), np.zeros((6, 4), I32), np.zeros((6, 2), I32), 1.0),
         r"B dtype must be float32 or float64, got int32"),
        (lambda: _ffi.nystrom_accumulate(np.zeros((4, 4)), np.zeros((5, 4), F32), np.zeros((6, 4), F32), np.zeros((6, 2), F32), 1.0, B2=np.zeros((4, 4), F32)),
         r"B2 must have B's dtype and shape \(float32 \[5, 4\]\), got float32 \[4, 4\]"),
        (lambda: _ffi.nystrom_accumulate(np.zeros((2, 2)), np.zeros((5, 4), F32), np.zeros((6, 4), F32), np.zeros((6, 2), F32), 0.0),
         r"sigma must be a positive finite number, got 0.0"),
        (lambda: _ffi.nystrom_accumulate(np.zeros((2, 2)), np.zeros((5, 4), F32), np.zeros((6, 4), F32), np.zeros((6, 2), F32), 1.0, block_rows=0),
         r"block_rows must be >= 1"),
        (lambda: _ffi.gaussian_sq_frobenius(np.zeros((3,)), 1.0), r"x must be rank 2 \[n, d\], got float64 \[3\]"),
        (lambda: _ffi.gaussian_sq_frobenius(np.zeros((3, 2)), float("nan")), r"sigma must be a positive finite number"),
    ],
)
def test_python_entry_rejects_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _raw(target, operands, outs, **attrs):
    return jax.ffi.ffi_call(target, outs)(*[jnp.asarray(o) for o in operands], **attrs)


@pytest.mark.parametrize(
    "target,operands,outs,attrs,match",
    [
        (_ffi.NYSTROM_TARGET, [np.zeros((2, 2)), np.zeros((5, 4), F32), np.zeros((6, 4), F32), np.zeros((6, 3), F32), np.float64(1)],
         jax.ShapeDtypeStruct((2, 2), F64), {},
         "nystrom_accumulate: G must be [R, R] with R = r = 3 (B float32 [5, 4], landmarks float32 [6, 4], whitening float32 [6, 3]), got [2, 2]"),
        (_ffi.NYSTROM_TARGET, [np.zeros((3, 3)), np.zeros((5, 4), F32), np.zeros((6, 4), F32), np.zeros((6, 3), F32), np.zeros(2)],
         jax.ShapeDtypeStruct((3, 3), F64), {},
         "nystrom_accumulate: sigma must be one float32 or float64 value (shape []), got float64 [2]"),
        (_ffi.NYSTROM_PAIRED_TARGET, [np.zeros((6, 6)), np.zeros((5, 4), F32), np.zeros((5, 4), F64), np.zeros((6, 4), F32), np.zeros((6, 3), F32), np.float64(1)],
         jax.ShapeDtypeStruct((6, 6), F64), {},
         "nystrom_accumulate_paired: B2 must have B's dtype and shape (float32 [5, 4]), got float64 [5, 4]"),
        (_ffi.KERNEL_ACC_TARGET, [np.zeros((6, 6)), np.zeros((5, 4), F32), np.zeros((6, 4), F32), np.float64(1)],
         jax.ShapeDtypeStruct((6, 6), F32), {},
         "kernel_accumulate: output must have G's dtype and shape (float64 [6, 6]), got float32 [6, 6]"),
        (_ffi.KERNEL_ACC_TARGET, [np.zeros((6, 6)), np.zeros((5, 4), F32), np.zeros((6, 4), F32), np.float64(1)],
         jax.ShapeDtypeStruct((6, 6), F64), {"foo": np.int64(1)},
         "kernel_accumulate: unknown attribute 'foo' (known: block_rows, tile_rows, num_threads)"),
        (_ffi.KERNEL_ACC_TARGET, [np.zeros((6, 6)), np.zeros((5, 4), F32), np.zeros((6, 4), F32), np.float64(1)],
         jax.ShapeDtypeStruct((6, 6), F64), {"tile_rows": np.int64(-2)},
         "kernel_accumulate: attribute 'tile_rows' must be >= 0, got -2"),
        (_ffi.KERNEL_ACC_TARGET, [np.zeros((6, 6)), np.full((5, 4), np.nan, F32), np.zeros((6, 4), F32), np.float64(1)],
         jax.ShapeDtypeStruct((6, 6), F64), {},
         "kernel_accumulate: B has a non-finite value (NaN or Inf) in row 0 (B float32 [5, 4], landmarks float32 [6, 4], G float64 [6, 6])"),
        (_ffi.KERNEL_ACC_TARGET, [np.zeros((6, 6)), np.zeros((5, 4), F32), np.full((6, 4), 1e20, F32), np.float64(1)],
         jax.ShapeDtypeStruct((6, 6), F64), {},
         "kernel_accumulate: landmarks row 0 has squared norm 4e+40, too large for float32 kernel tiles (limit 1e+36)"),
        (_ffi.NYSTROM_TARGET, [np.zeros((3, 3)), np.zeros((5, 4)), np.zeros((6, 4)), np.full((6, 3), np.inf), np.float64(1)],
         jax.ShapeDtypeStruct((3, 3), F64), {},
         "nystrom_accumulate: whitening has a non-finite value (NaN or Inf) at [0, 0]"),
        (_ffi.SQ_FROBENIUS_TARGET, [np.zeros((5, 4), I32), np.float64(1)], jax.ShapeDtypeStruct((), F64), {},
         "gaussian_sq_frobenius: x dtype must be float32 or float64, got int32"),
        (_ffi.SQ_FROBENIUS_TARGET, [np.zeros((5, 4)), np.float64(1)], jax.ShapeDtypeStruct((1,), F64), {},
         "gaussian_sq_frobenius: output must be a float32 or float64 scalar [], got float64 [1]"),
        (_ffi.SQ_FROBENIUS_TARGET, [np.array([[1.0, np.nan], [0.0, 0.0]]), np.float64(1)], jax.ShapeDtypeStruct((), F64), {},
         "gaussian_sq_frobenius: x has a non-finite value (NaN or Inf) in row 0 (x float64 [2, 2])"),
        (_ffi.SQ_FROBENIUS_TARGET, [np.zeros((5, 4)), np.float32(-1)], jax.ShapeDtypeStruct((), F64), {},
         "gaussian_sq_frobenius: sigma must be a positive finite number, got -1"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_raw_targets_report_errors_with_shapes(target, operands, outs, attrs, match):
    with pytest.raises(Exception, match=re.escape(match)) as info:
        jax.block_until_ready(_raw(target, operands, outs, **attrs))
    assert "INVALID_ARGUMENT" in str(info.value)


# --------------------------------------------------------------------------- fuzz

_DTYPES = [F32, F64, I32, F16]
_SIGMAS = [1e-30, 1e-3, 0.5, 3.0, 1e30, 0.0, -1.0, float("nan"), float("inf")]


def _valid_sigma(s):
    return np.isfinite(s) and s > 0


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    b=st.integers(0, 300),
    d=st.integers(0, 12),
    m=st.integers(0, 20),
    r=st.integers(0, 22),
    paired=st.booleans(),
    whiten=st.booleans(),
    dtype=st.sampled_from(_DTYPES),
    g_dtype=st.sampled_from(_DTYPES),
    bad_g=st.booleans(),
    sigma=st.sampled_from(_SIGMAS),
    nan_in=st.sampled_from([None, "B", "L", "W"]),
    block_rows=st.one_of(st.none(), st.integers(1, 400)),
    tile_rows=st.one_of(st.none(), st.integers(1, 300)),
    seed=st.integers(0, 2**31 - 1),
)
def test_fuzz_accumulate(b, d, m, r, paired, whiten, dtype, g_dtype, bad_g, sigma, nan_in, block_rows, tile_rows, seed):
    rng = np.random.default_rng(seed)
    r = min(r, m + 2)  # r > m is allowed by the target (W is any [m, r] matrix)
    B = rng.standard_normal((b, d)).astype(dtype)
    B2 = rng.standard_normal((b, d)).astype(dtype)
    L = np.concatenate([B[: m // 2].astype(np.float64), rng.standard_normal((m, d))])[:m].astype(dtype)
    W = (rng.standard_normal((m, r)) / max(m, 1)).astype(dtype)
    poisoned = False
    if nan_in is not None:
        arr = {"B": B, "L": L, "W": W if whiten else None}[nan_in]
        if arr is not None and arr.size and dtype in (F32, F64, F16):
            arr.flat[rng.integers(arr.size)] = np.nan
            poisoned = True
    R = (2 if paired else 1) * (r if whiten else m)
    g_shape = (R + 1, R) if bad_g else (R, R)
    G = rng.standard_normal(g_shape).astype(g_dtype)
    target = {(True, False): _ffi.NYSTROM_TARGET, (True, True): _ffi.NYSTROM_PAIRED_TARGET,
              (False, False): _ffi.KERNEL_ACC_TARGET, (False, True): _ffi.KERNEL_ACC_PAIRED_TARGET}[(whiten, paired)]
    operands = [G, B] + ([B2] if paired else []) + [L] + ([W] if whiten else []) + [np.float64(sigma)]
    attrs = {k: np.int64(v) for k, v in (("block_rows", block_rows), ("tile_rows", tile_rows)) if v is not None}
    out_t = jax.ShapeDtypeStruct(G.shape, G.dtype)
    valid = (dtype in (F32, F64) and g_dtype in (F32, F64) and not bad_g and _valid_sigma(sigma))
    name = target.replace("clipcore_", "") + ": "
    try:
        out = jax.block_until_ready(_raw(target, operands, out_t, **attrs))
    except Exception as exc:  # noqa: BLE001 - the message is checked
        assert "INVALID_ARGUMENT: " + name in str(exc), str(exc)
        assert not valid or poisoned, str(exc)
        return
    if G.size == 0:
        return  # XLA may skip a custom call whose only output is empty
    assert valid, "an invalid call returned a result"
    if poisoned:
        assert b == 0 or m == 0, "NaN input gave a result"
        np.testing.assert_array_equal(np.asarray(out), G)
        return
    _assert_acc(out, G, B, L, W if whiten else None, sigma, B2 if paired else None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 160),
    d=st.integers(0, 10),
    dtype=st.sampled_from(_DTYPES),
    sigma=st.sampled_from(_SIGMAS),
    dup=st.booleans(),
    nan=st.booleans(),
    tile_rows=st.one_of(st.none(), st.integers(1, 200)),
    seed=st.integers(0, 2**31 - 1),
)
def test_fuzz_sq_frobenius(n, d, dtype, sigma, dup, nan, tile_rows, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    if dup and n > 3:
        x[n // 2 :] = x[: n - n // 2]
    x = x.astype(dtype)
    poisoned = nan and x.size > 0 and dtype != I32
    if poisoned:
        x.flat[rng.integers(x.size)] = np.inf
    attrs = {} if tile_rows is None else {"tile_rows": np.int64(tile_rows)}
    valid = dtype in (F32, F64) and _valid_sigma(sigma) and not poisoned
    try:
        out = float(jax.block_until_ready(
            _raw(_ffi.SQ_FROBENIUS_TARGET, [x, np.float64(sigma)], jax.ShapeDtypeStruct((), F64), **attrs)))
    except Exception as exc:  # noqa: BLE001
        assert "INVALID_ARGUMENT: gaussian_sq_frobenius: " in str(exc), str(exc)
        assert not valid, str(exc)
        with pytest.raises(ValueError, match="gaussian_sq_frobenius_host: "):  # the host entry refuses it too
            _ffi.gaussian_sq_frobenius_host(x, float(sigma), y=x, tile_rows=tile_rows)
        return
    assert valid
    want = ref.sq_frobenius(x, sigma)
    assert abs(out - want) <= (1e-5 if dtype == F32 else 1e-10) * max(want, 1.0)
    # the host entry's cross term over a split of the rows gives the same sum (panels of the exact RKE)
    k = int(rng.integers(0, n + 1))
    a, b = np.ascontiguousarray(x[:k]), np.ascontiguousarray(x[k:])
    host = lambda u, v=None: _ffi.gaussian_sq_frobenius_host(u, float(sigma), y=v, tile_rows=tile_rows)  # noqa: E731
    split = host(a) + host(b) + 2.0 * host(a, b)
    assert abs(split - want) <= (1e-5 if dtype == F32 else 1e-10) * max(want, 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_near_duplicates_at_tiny_sigma_are_not_merged(dtype):
    """Rows 1e-3 apart (below float32's rounding floor of the GEMM distance form) and exact duplicates, with
    σ so small that only exact duplicates have k = 1: the compiled ‖K‖_F², the kernel-form accumulation (device
    and host entries) and pivoted Cholesky recompute such pairs from the rows and agree with float64 NumPy
    (which sees the true distances). Before, the float32 core took the near pairs as duplicates (k = 1)."""
    from clipcore import nystrom as N

    rng = np.random.default_rng(5)
    base = rng.standard_normal((6, 3)) * 3.0
    x = np.concatenate([base, base[:2] + 1e-3, base[:2]]).astype(dtype)  # 2 near pairs, 2 exact duplicates
    sigma = 1e-5
    # ‖K‖_F²: n ones on the diagonal + 4 (2 exact duplicate pairs, each counted as (i, j) and (j, i))
    want = ref.sq_frobenius(x, sigma)
    assert want == pytest.approx(len(x) + 4.0)  # the reference: only the exact duplicates count
    got = float(N.kernel_sq_frobenius(jnp.asarray(x), sigma=sigma, backend="ffi"))
    assert got == pytest.approx(want, rel=1e-12)
    # Σ k(x, L)ᵀ k(x, L) with the near rows as landmarks
    L = x[:8]
    K = ref.gaussian(x, L, sigma)
    nm = N.nystrom_map(L.astype(np.float64), sigma)
    M = N.nystrom_update_host(np.zeros((8, 8)), x, nm, dtype=dtype)
    np.testing.assert_allclose(M, K.T @ K, rtol=0, atol=1e-12)
    G = _ffi.nystrom_accumulate(jnp.zeros((8, 8)), jnp.asarray(x), jnp.asarray(L), None, jnp.float64(sigma))
    np.testing.assert_allclose(np.asarray(G), K.T @ K, rtol=0, atol=1e-12)
    # pivoted Cholesky sees 8 distinct points among the 10 rows (the 2 exact duplicates add nothing)
    lm = N.select_landmarks(x, 10, sigma=sigma, method="pivoted-cholesky", key=0, backend="ffi")
    assert lm.points.shape[0] == 8


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigma_so_small_that_gamma_overflows(dtype):
    """σ = 1e-160: γ = 1/(2σ²) is inf in float64. Exact duplicates still give k = 1 and every other pair 0 (the
    near-pair pass once computed inf · 0 = NaN for them): ‖K‖_F², the kernel accumulation, pivoted Cholesky."""
    from clipcore import nystrom as N

    rng = np.random.default_rng(6)
    base = rng.standard_normal((6, 3))
    x = np.concatenate([base, base[:2]]).astype(dtype)  # rows 6, 7 duplicate rows 0, 1
    sigma = 1e-160
    got = float(N.kernel_sq_frobenius(jnp.asarray(x), sigma=sigma, backend="ffi"))
    assert got == len(x) + 4.0
    L = x[:6]
    K = (np.abs(x[:, None, :] - L[None, :, :]).sum(-1) == 0).astype(np.float64)  # 1 for identical rows only
    nm = N.NystromMap(L.astype(np.float64), np.float64(sigma), np.eye(6), np.ones(6), 1e-7, 0)
    M = N.nystrom_update_host(np.zeros((6, 6)), x, nm, dtype=dtype)
    np.testing.assert_array_equal(M, K.T @ K)
    piv, count, trace = _ffi.pivoted_cholesky_host(x, sigma, 8)
    assert count == 6 and not np.any(np.isnan(trace[:count])) and trace[count - 1] == 0.0


@pytest.mark.parametrize("seed", [53113, 1, 2])
def test_pairs_just_above_the_rounding_floor_at_small_sigma(seed):
    """Hypothesis found (seed 53113): float32, σ = 1e-3, n = 32, d = 2. One pair ~2.6e-3 apart has k² = e^-7 from
    the rows; its GEMM-form squared distance is above the rounding floor, so it was not recomputed, yet the form's
    error moved the exponent by ~1.5. Where the bandwidth makes the rounding matter, every pair whose kernel is not
    certainly flushed is now recomputed from the rows: ‖K‖_F², the tiles and pivoted Cholesky agree with float64."""
    from clipcore import nystrom as N

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 2))
    x[5] = x[3] + [2.6e-3, 0.0]  # a near pair above the float32 floor at every seed
    x = x.astype(F32)
    sigma = 1e-3
    want = ref.sq_frobenius(x, sigma)
    got = float(N.kernel_sq_frobenius(jnp.asarray(x), sigma=sigma, backend="ffi"))
    assert abs(got - want) <= 1e-5 * want
    L = x[:8]
    K = ref.gaussian(x, L, sigma)
    nm = N.nystrom_map(L.astype(np.float64), sigma)
    M = N.nystrom_update_host(np.zeros((8, 8)), x, nm, dtype=F32)
    np.testing.assert_allclose(M, K.T @ K, rtol=1e-5, atol=1e-7)


def test_jax_twins_recompute_tiles_where_rounding_matters():
    """The pure-JAX twins (backend="jax", and the GPU fallback without the CUDA build) on the same float32 case:
    a tile whose bandwidth makes the GEMM form's rounding matter is formed in float64, so ‖K‖_F² and k(x, L)ᵀk(x, L)
    agree with float64 NumPy; at an ordinary σ nothing changes (the float32 tile, against NumPy at float32 accuracy)."""
    from clipcore import nystrom as N

    rng = np.random.default_rng(53113)
    x = rng.standard_normal((32, 2))
    x[5] = x[3] + [2.6e-3, 0.0]
    x = x.astype(F32)
    for sigma, tol in ((1e-3, 1e-9), (1.5, 2e-6)):
        want = ref.sq_frobenius(x, sigma)
        got = float(N.kernel_sq_frobenius(jnp.asarray(x), sigma=sigma, backend="jax"))
        assert abs(got - want) <= tol * want, (sigma, got, want)
        L = x[:8]
        K = ref.gaussian(x, L, sigma)
        G = _ffi.nystrom_accumulate_jax(jnp.zeros((8, 8)), jnp.asarray(x), jnp.asarray(L), None, jnp.float64(sigma))
        # the twin's tiles are in the rows' dtype: each kernel value carries float32 rounding (the exponent is right)
        np.testing.assert_allclose(np.asarray(G), K.T @ K, rtol=2e-6, atol=2e-7)


# --------------------------------------------------------------------------- transformations: grad, jvp, vjp, vmap

_FORMS = [(True, False), (True, True), (False, False), (False, True)]
_FORM_IDS = ["whiten-single", "whiten-paired", "kernel-single", "kernel-paired"]


def _grad_case(whiten, paired, seed=0, b=30, d=3, m=6, r=4):
    B, B2, L, W = _data(b, d, m, r, F64, seed=seed)
    R = (2 if paired else 1) * (r if whiten else m)
    G = np.random.default_rng(seed + 1).standard_normal((R, R))
    return G, B, (B2 if paired else None), L, (W if whiten else None), jnp.float64(1.7)


def _acc_fn(fn, W, B2):
    """fn as a function of its array operands only (W / B2 absent when None)."""
    def f(G, B, L, sigma, *rest):
        rest = list(rest)
        w = rest.pop(0) if W is not None else None
        b2 = rest.pop(0) if B2 is not None else None
        return fn(G, B, L, w, sigma, B2=b2)
    return f


def _args(G, B, B2, L, W, sigma):
    return (G, B, L, sigma) + ((W,) if W is not None else ()) + ((B2,) if B2 is not None else ())


@pytest.mark.parametrize("whiten,paired", _FORMS, ids=_FORM_IDS)
def test_accumulate_check_grads_fwd_and_rev(whiten, paired):
    """With respect to every operand: G, the rows, the landmarks, W and σ (float64)."""
    from jax.test_util import check_grads

    G, B, B2, L, W, sigma = _grad_case(whiten, paired)
    check_grads(_acc_fn(_ffi.nystrom_accumulate, W, B2), _args(G, B, B2, L, W, sigma), order=1, modes=("fwd", "rev"))


@pytest.mark.parametrize("whiten,paired", _FORMS, ids=_FORM_IDS)
def test_accumulate_jvp_and_vjp_equal_the_twins(whiten, paired):
    G, B, B2, L, W, sigma = _grad_case(whiten, paired, seed=3)
    args = _args(G, B, B2, L, W, sigma)
    rng = np.random.default_rng(4)
    dots = tuple(jnp.asarray(rng.standard_normal(np.shape(a))) for a in args)
    f, twin = _acc_fn(_ffi.nystrom_accumulate, W, B2), _acc_fn(_ffi.nystrom_accumulate_jax, W, B2)
    (o, t), (o_t, t_t) = jax.jvp(f, args, dots), jax.jvp(twin, args, dots)
    np.testing.assert_allclose(o, o_t, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t, t_t, rtol=1e-11, atol=1e-11 * np.abs(np.asarray(t_t)).max())
    ct = rng.standard_normal(G.shape)
    for u, v in zip(jax.vjp(f, *args)[1](ct), jax.vjp(twin, *args)[1](ct)):
        np.testing.assert_allclose(u, v, rtol=1e-11, atol=1e-11 * max(np.abs(np.asarray(v)).max(), 1))


def test_accumulate_gradient_in_sigma_matches_float64_numpy():
    """d/dσ Σ_ab (k(B, L)ᵀ k(B, L))_ab with k = exp(−‖b − l‖²/(2σ²)): dk/dσ = k ‖b − l‖²/σ³ (closed form)."""
    B, _, L, _ = _data(40, 4, 7, 7, F64, seed=5)
    sigma = 2.2
    K = ref.gaussian(B, L, sigma)
    dK = K * ref.sq_dists(B, L) / sigma**3
    want = np.sum(dK.T @ K + K.T @ dK)
    got = jax.grad(lambda s: jnp.sum(_ffi.nystrom_accumulate(jnp.zeros((7, 7)), B, L, None, s)))(jnp.float64(sigma))
    assert float(got) == pytest.approx(want, rel=1e-12)


def test_sq_frobenius_derivatives():
    from jax.test_util import check_grads

    x = ref.clustered(45, 3, seed=6, dtype=np.float64)
    f = lambda a, s: _ffi.gaussian_sq_frobenius(a, s, tile_rows=8)  # noqa: E731
    twin = lambda a, s: _ffi.gaussian_sq_frobenius_jax(a, s, tile_rows=8)  # noqa: E731
    s = jnp.float64(1.3)
    check_grads(f, (x, s), order=1, modes=("fwd", "rev"))
    dots = (np.cos(x), jnp.float64(0.3))
    np.testing.assert_allclose(jax.jvp(f, (x, s), dots)[1], jax.jvp(twin, (x, s), dots)[1], rtol=1e-12)
    for u, v in zip(jax.grad(f, argnums=(0, 1))(x, s), jax.grad(twin, argnums=(0, 1))(x, s)):
        np.testing.assert_allclose(u, v, rtol=1e-11, atol=1e-12)
    # closed form (float64 NumPy): ∂/∂x_i Σ_jk k_jk² = Σ_j 2 · 2 k_ij² · (−2γ)(x_i − x_j), γ = 1/(2σ²)
    K2 = ref.gaussian(x, x, float(s)) ** 2
    gamma = 1 / (2 * float(s) ** 2)
    want = -8 * gamma * (K2.sum(1)[:, None] * x - K2 @ x)
    np.testing.assert_allclose(jax.grad(f)(x, s), want, rtol=1e-10, atol=1e-10)


def test_sq_frobenius_gradient_is_finite_with_duplicate_rows():
    x = ref.clustered(20, 3, seed=7, dtype=np.float64)
    x = np.concatenate([x, x[:5]])
    g = jax.grad(lambda a: _ffi.gaussian_sq_frobenius(a, 1.0))(x)
    g_t = jax.grad(lambda a: _ffi.gaussian_sq_frobenius_jax(a, 1.0))(x)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, g_t, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("whiten,paired", _FORMS, ids=_FORM_IDS)
def test_accumulate_vmap_equals_a_loop(whiten, paired):
    G, B, B2, L, W, _ = _grad_case(whiten, paired, seed=8)
    Bs = np.stack([B, B + 0.1, B - 0.2])
    sig = jnp.asarray([1.0, 1.5, 2.5])
    f = lambda g, b, s: _ffi.nystrom_accumulate(g, b, L, W, s, B2=B2)  # noqa: E731
    want = np.stack([np.asarray(f(G, b, s)) for b, s in zip(Bs, sig)])
    np.testing.assert_array_equal(jax.vmap(f, in_axes=(None, 0, 0))(G, Bs, sig), want)
    np.testing.assert_array_equal(jax.jit(jax.vmap(f, in_axes=(None, 0, 0)))(G, Bs, sig), want)
    Gs = np.stack([G, 2 * G, 3 * G])
    want = np.stack([np.asarray(f(g, B, 1.5)) for g in Gs])
    np.testing.assert_array_equal(jax.vmap(lambda g: f(g, B, 1.5))(Gs), want)


def test_sq_frobenius_vmap_equals_a_loop():
    x = ref.clustered(30, 3, seed=9, dtype=np.float64)
    xs, sig = np.stack([x, 2 * x]), jnp.asarray([0.7, 1.9])
    want = [float(_ffi.gaussian_sq_frobenius(a, s)) for a, s in zip(xs, sig)]
    np.testing.assert_array_equal(jax.vmap(_ffi.gaussian_sq_frobenius)(xs, sig), want)
    np.testing.assert_array_equal(jax.vmap(lambda a: _ffi.gaussian_sq_frobenius(a, 0.7))(xs),
                                  [float(_ffi.gaussian_sq_frobenius(a, 0.7)) for a in xs])


def test_forward_pass_is_the_ffi_call_alone():
    """The rules act only under differentiation: the jitted forward holds the custom calls and no twin."""
    G, B, B2, L, W, s = _grad_case(True, True, seed=10)
    text = jax.jit(lambda g: _ffi.nystrom_accumulate(g, B, L, W, s, B2=B2)).lower(G).as_text()
    assert _ffi.NYSTROM_PAIRED_TARGET in text and "dot_general" not in text and "exponential" not in text
    text = jax.jit(lambda a: _ffi.gaussian_sq_frobenius(a, 1.0)).lower(B).as_text()
    assert _ffi.SQ_FROBENIUS_TARGET in text and "while" not in text and "exponential" not in text
