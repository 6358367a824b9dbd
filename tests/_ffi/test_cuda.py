"""CUDA handlers (csrc/cuda) against float64 NumPy and the CPU handlers, where a GPU and a CUDA build exist.

Skipped on CPU-only machines (CI): build with
``pip install . -Ccmake.define.CLIPCORE_ENABLE_CUDA=ON`` and a CUDA jaxlib.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clipcore import _ffi
from reference import nystrom_numpy as nref

pytestmark = pytest.mark.gpu


def _gpu():
    try:
        return jax.devices("gpu")[0]
    except RuntimeError:
        return None


needs_cuda = pytest.mark.skipif(
    _gpu() is None or not _ffi.cuda_available(), reason="needs an NVIDIA GPU and a CLIPCORE_ENABLE_CUDA build"
)


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_accumulate_on_gpu(dtype):
    rng = np.random.default_rng(0)
    phi = rng.standard_normal((10_000, 96)).astype(dtype)
    G = rng.standard_normal((96, 96))
    dev = _gpu()
    got = jax.jit(_ffi.gram_accumulate)(jax.device_put(G, dev), jax.device_put(phi, dev))
    want = G + phi.astype(np.float64).T @ phi.astype(np.float64)
    tol = 2e-6 if dtype == np.float32 else 1e-12
    assert np.max(np.abs(np.asarray(got) - want)) <= tol * np.max(np.abs(want))


@needs_cuda
@pytest.mark.parametrize("whiten", [True, False])
@pytest.mark.parametrize("paired", [True, False])
def test_nystrom_accumulate_on_gpu(whiten, paired):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3000, 16))
    x2 = rng.standard_normal((3000, 16))
    L = x[:200]
    sigma = 3.0
    W, _ = nref.whitening(L, sigma, 1.2e-7)
    dev = _gpu()
    m, r = L.shape[0], W.shape[1]
    R = (2 if paired else 1) * (r if whiten else m)
    G = np.zeros((R, R))
    got = _ffi.nystrom_accumulate(jax.device_put(G, dev), jax.device_put(x, dev), jax.device_put(L, dev),
                                  jax.device_put(W, dev) if whiten else None, sigma,
                                  B2=jax.device_put(x2, dev) if paired else None)
    f = (lambda a: nref.gaussian(a, L, sigma) @ W) if whiten else (lambda a: nref.gaussian(a, L, sigma))
    Z = np.concatenate([f(x), f(x2)], axis=1) if paired else f(x)
    want = Z.T @ Z
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-9 * np.max(np.abs(want)))


# --------------------------------------------------------------------------- Gaussian tiles, |K|_F^2, pivoted Cholesky

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


def _cpu():
    return jax.devices("cpu")[0]


def _on_cpu(fn, *args, **kw):
    """The CPU handler on the same inputs (the reference implementation of the compiled core)."""
    with jax.default_device(_cpu()):
        return fn(*[jax.device_put(np.asarray(a), _cpu()) for a in args], **kw)


def _on_gpu(fn, *args, **kw):
    return fn(*[jax.device_put(np.asarray(a), _gpu()) for a in args], **kw)


def _gauss(a, b, sigma):
    return nref.gaussian(np.asarray(a, np.float64), np.asarray(b, np.float64), sigma)


def _near_rows(dtype):
    """6 rows, 2 of them repeated 1e-3 apart (under float32's GEMM rounding floor) and 2 exactly."""
    base = np.random.default_rng(5).standard_normal((6, 3)) * 3.0
    return np.concatenate([base, base[:2] + 1e-3, base[:2]]).astype(dtype)


@needs_cuda
@pytest.mark.parametrize("target", [_ffi.SQ_FROBENIUS_TARGET, _ffi.PIVOTED_CHOLESKY_TARGET])
def test_new_targets_lower_to_the_cuda_handler(target):
    x = jax.device_put(np.ones((10, 3)), _gpu())
    fn = {_ffi.SQ_FROBENIUS_TARGET: lambda a: _ffi.gaussian_sq_frobenius(a, 1.0),
          _ffi.PIVOTED_CHOLESKY_TARGET: lambda a: _ffi.pivoted_cholesky(a, 1.0, 4)}[target]
    assert target in jax.jit(fn).lower(x).as_text()  # not the pure-JAX twin


@needs_cuda
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("tile_rows", [None, 1, 100, 1499])
def test_sq_frobenius_on_gpu(dtype, tile_rows):
    x = nref.clustered(1500 if tile_rows != 1 else 150, 20, seed=6, dtype=dtype)
    want = nref.sq_frobenius(x, 3.0)
    got = float(_on_gpu(_ffi.gaussian_sq_frobenius, x, 3.0, tile_rows=tile_rows))
    cpu = float(_on_cpu(_ffi.gaussian_sq_frobenius, x, 3.0, tile_rows=tile_rows))
    tol = 1e-6 if dtype == F32 else 1e-11
    assert abs(got / want - 1) < tol
    assert abs(got / cpu - 1) < tol
    # deterministic: fixed-order partial sums, no floating-point atomics
    assert float(_on_gpu(_ffi.gaussian_sq_frobenius, x, 3.0, tile_rows=tile_rows)) == got


@needs_cuda
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("sigma", [1e-5, 1e-30, 1e-200])
def test_sq_frobenius_tiny_sigma_near_duplicates_on_gpu(dtype, sigma):
    """Only the exact duplicates count at tiny σ (n + 4); 1e-200: γ = 1/(2σ²) overflows to inf."""
    x = _near_rows(dtype)
    want = nref.sq_frobenius(x, max(sigma, 1e-30))  # NumPy: σ² = 0 would give NaN
    assert want == pytest.approx(len(x) + 4.0)
    got = float(_on_gpu(_ffi.gaussian_sq_frobenius, x, sigma, tile_rows=3))
    assert got == pytest.approx(want, rel=1e-12)
    assert got == float(_on_cpu(_ffi.gaussian_sq_frobenius, x, sigma, tile_rows=3))


@needs_cuda
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("sigma", [1e-5, 1e-30, 1e-200])
@pytest.mark.parametrize("paired", [False, True])
def test_nystrom_tile_tiny_sigma_near_duplicates_on_gpu(dtype, sigma, paired):
    """The Nyström tile kernel: near-duplicates keep their true k (≈ 0 here), exact duplicates k = 1,
    no NaN from γ = inf (before: a float32 γ, floor 4·eps, near pairs snapped to 1)."""
    x = _near_rows(dtype)
    L = x[:8]
    x2 = x[::-1].copy()
    K = _gauss(x, L, max(sigma, 1e-30))  # NumPy: σ² = 0 would give NaN
    Z = np.concatenate([K, _gauss(x2, L, max(sigma, 1e-30))], axis=1) if paired else K
    R = Z.shape[1]
    got = _on_gpu(lambda g, b, l, b2: _ffi.nystrom_accumulate(g, b, l, None, sigma, B2=b2 if paired else None),
                  np.zeros((R, R)), x, L, x2)
    np.testing.assert_allclose(np.asarray(got), Z.T @ Z, rtol=0, atol=1e-12)


@needs_cuda
@pytest.mark.parametrize("dtype", [F32, F64])
def test_nystrom_tile_near_pairs_at_moderate_sigma_on_gpu(dtype):
    """σ where the near pairs' true k is neither 0 nor 1: k(x, x + 1e-3·u) = exp(-|1e-3 u|²/(2σ²))."""
    x = _near_rows(dtype)
    sigma = 1e-3
    K = _gauss(x, x[:8], sigma)
    assert 0.01 < K[6, 0] < 0.99  # a near pair with a value of its own
    got = _on_gpu(lambda g, b, l: _ffi.nystrom_accumulate(g, b, l, None, sigma), np.zeros((8, 8)), x, x[:8])
    # float32: the pair is under the rounding floor, recomputed from the rows (before: snapped to k = 1);
    # float64: above it, the GEMM form's cancellation (≈ eps·|x|²/|Δ|² ≈ 1e-9 relative) remains
    np.testing.assert_allclose(np.asarray(got), K.T @ K, rtol=1e-6, atol=1e-12)


def _pc_check(res, x, sigma, m, trace_tol=0.0, min_pivot=_ffi.MIN_PIVOT, atol=1e-9):
    piv, L, traces = nref.pivoted_cholesky(_gauss(x, x, sigma), m, trace_tol=trace_tol, min_pivot=min_pivot)
    c = int(res.count)
    assert c == len(piv)
    np.testing.assert_array_equal(np.asarray(res.pivots)[:c], piv)
    np.testing.assert_allclose(np.asarray(res.residual_trace)[:c], traces, rtol=1e-9, atol=atol)
    np.testing.assert_allclose(np.asarray(res.pivot_factor)[:c, :c], L[piv], atol=atol)
    assert np.all(np.asarray(res.pivot_factor)[c:] == 0) and np.all(np.asarray(res.pivot_factor)[:, c:] == 0)
    assert np.all(np.asarray(res.pivots)[c:] == -1) and np.all(np.isnan(np.asarray(res.residual_trace)[c:]))
    if res.factor.shape[0]:
        np.testing.assert_allclose(np.asarray(res.factor)[:, :c], L, atol=atol)
        assert np.all(np.asarray(res.factor)[:, c:] == 0)
    return c


@needs_cuda
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("return_factor", [True, False])
def test_pivoted_cholesky_on_gpu(dtype, return_factor):
    x = nref.clustered(700, 8, clusters=5, noise=0.6, seed=7, dtype=dtype)
    got = _on_gpu(lambda a: _ffi.pivoted_cholesky(a, 2.0, 150, return_factor=return_factor), x)
    cpu = _on_cpu(lambda a: _ffi.pivoted_cholesky(a, 2.0, 150, return_factor=return_factor), x)
    assert _pc_check(got, x, 2.0, 150) == 150
    np.testing.assert_array_equal(np.asarray(got.pivots), np.asarray(cpu.pivots))
    np.testing.assert_allclose(np.asarray(got.residual_trace)[:150], np.asarray(cpu.residual_trace)[:150], rtol=1e-10)
    np.testing.assert_allclose(np.asarray(got.pivot_factor), np.asarray(cpu.pivot_factor), atol=1e-10)
    assert got.pivots.dtype == cpu.pivots.dtype and got.count.dtype == cpu.count.dtype
    assert got.factor.shape == cpu.factor.shape and got.factor.dtype == cpu.factor.dtype


@needs_cuda
@pytest.mark.parametrize("m", [10, 150, 400])
def test_pivoted_cholesky_trace_tol_stop_on_gpu(m):
    """trace_tol stops after a few dozen steps (past the host's polling interval of 32 for m ≥ 150)."""
    x = nref.clustered(500, 6, clusters=4, noise=0.4, seed=11, dtype=np.float64)
    tol = 0.02 * 500
    got = _on_gpu(lambda a: _ffi.pivoted_cholesky(a, 1.5, m, trace_tol=tol, return_factor=True), x)
    cpu = _on_cpu(lambda a: _ffi.pivoted_cholesky(a, 1.5, m, trace_tol=tol), x)
    c = _pc_check(got, x, 1.5, m, trace_tol=tol)
    assert c == int(cpu.count) and (c == m or float(np.asarray(got.residual_trace)[c - 1]) <= tol)
    np.testing.assert_array_equal(np.asarray(got.pivots), np.asarray(cpu.pivots))
    np.testing.assert_allclose(np.asarray(got.residual_trace)[:c], np.asarray(cpu.residual_trace)[:c], rtol=1e-10)


@needs_cuda
@pytest.mark.parametrize("sigma", [1e-30, 1e-200, 0.3, 1.5])
def test_pivoted_cholesky_min_pivot_stop_and_duplicates_on_gpu(sigma):
    """40 distinct rows and 30 exact duplicates, m > n: the residuals run out (min_pivot) at ≤ 40 pivots;
    σ → 0 (also 1e-200, where γ = 1/(2σ²) = inf): K = I on the distinct rows, pivots 0..39 in order."""
    base = np.random.default_rng(8).standard_normal((40, 5))
    x = np.concatenate([base, base[:10], base[5:15]])
    got = _on_gpu(lambda a: _ffi.pivoted_cholesky(a, sigma, 90, return_factor=True), x)
    cpu = _on_cpu(lambda a: _ffi.pivoted_cholesky(a, sigma, 90), x)
    piv, L, traces = nref.pivoted_cholesky(_gauss(x, x, max(sigma, 1e-30)), 90)  # NumPy: σ² = 0 gives NaN
    c = int(got.count)
    assert c == int(cpu.count) == len(piv) <= 40
    # exact duplicates tie exactly in exact arithmetic: compare the chosen points
    np.testing.assert_array_equal(x[np.asarray(got.pivots)[:c]], x[piv])
    np.testing.assert_array_equal(x[np.asarray(got.pivots)[:c]], x[np.asarray(cpu.pivots)[:c]])
    np.testing.assert_allclose(np.asarray(got.factor)[:, :c], L, atol=1e-9)
    np.testing.assert_allclose(np.asarray(got.residual_trace)[:c], traces, rtol=1e-9, atol=1e-9)
    assert np.all(np.asarray(got.pivots)[c:] == -1) and np.all(np.isnan(np.asarray(got.residual_trace)[c:]))
    if sigma < 1e-10:
        np.testing.assert_array_equal(np.asarray(got.pivots)[:c], np.arange(40))


@needs_cuda
def test_pivoted_cholesky_near_duplicates_on_gpu():
    """Near-duplicates at tiny σ are distinct points (8 pivots among the 10 rows), exact duplicates are not."""
    for dtype in (F32, F64):
        x = _near_rows(dtype)
        got = _on_gpu(lambda a: _ffi.pivoted_cholesky(a, 1e-5, 10), x)
        assert int(got.count) == 8
        np.testing.assert_array_equal(np.asarray(got.pivots)[:8], np.arange(8))


@needs_cuda
@pytest.mark.parametrize(
    "target,operands,outs,match",
    [
        (_ffi.SQ_FROBENIUS_TARGET, [np.array([[1.0, np.nan], [0.0, 0.0]]), np.float64(1)], jax.ShapeDtypeStruct((), F64),
         "gaussian_sq_frobenius: x has a non-finite value (NaN or Inf) in row 0 (x float64 [2, 2])"),
        (_ffi.SQ_FROBENIUS_TARGET, [np.zeros((5, 4)), np.float32(-1)], jax.ShapeDtypeStruct((), F64),
         "gaussian_sq_frobenius: sigma must be a positive finite number, got -1"),
        (_ffi.SQ_FROBENIUS_TARGET, [np.zeros((3, 4), F32), np.float32(1)], jax.ShapeDtypeStruct((1,), F64),
         "gaussian_sq_frobenius: output must be a float32 or float64 scalar [], got float64 [1]"),
        (_ffi.PIVOTED_CHOLESKY_TARGET, [np.concatenate([np.zeros((2, 4)), np.full((3, 4), 1e20)]).astype(F32), np.float64(1)],
         (jax.ShapeDtypeStruct((3,), np.int64), jax.ShapeDtypeStruct((), np.int64), jax.ShapeDtypeStruct((3,), F64),
          jax.ShapeDtypeStruct((3, 3), F64), jax.ShapeDtypeStruct((0, 3), F64)),
         "pivoted_cholesky: x row 2 has squared norm 4e+40, too large for float32 kernel tiles (limit 1e+36) (x float32 [5, 4], m = 3)"),
        (_ffi.PIVOTED_CHOLESKY_TARGET, [np.zeros((5, 4)), np.float64(1)],
         (jax.ShapeDtypeStruct((3,), np.int64), jax.ShapeDtypeStruct((), np.int64), jax.ShapeDtypeStruct((3,), F64),
          jax.ShapeDtypeStruct((3, 3), F64), jax.ShapeDtypeStruct((4, 3), F64)),
         "pivoted_cholesky: factor output must be float32|float64 [n, m] or [0, m] with n = 5, m = 3, got float64 [4, 3]"),
    ],
)
def test_gpu_targets_report_errors_with_shapes(target, operands, outs, match):
    dev = _gpu()
    call = jax.ffi.ffi_call(target, outs)
    with pytest.raises(Exception, match=re.escape(match)) as info:
        jax.block_until_ready(jax.jit(call)(*[jax.device_put(o, dev) for o in operands]))
    assert "INVALID_ARGUMENT" in str(info.value)


# --------------------------------------------------------------------------- review fixes (csrc/cuda)


def _call_on(dev, target, outs, *operands, **attrs):
    """jit(ffi_call) on `dev` (no input/output aliasing): ("ok", outputs) or ("error", message)."""
    call = jax.ffi.ffi_call(target, outs)
    try:
        res = jax.jit(lambda *ops: call(*ops, **attrs))(*[jax.device_put(np.asarray(o), dev) for o in operands])
        return "ok", jax.block_until_ready(res)
    except Exception as e:  # noqa: BLE001 - the XLA error type depends on the jaxlib
        return "error", str(e)


def _bad_row_cases():
    rng = np.random.default_rng(12)
    L = rng.standard_normal((4, 3))
    B = rng.standard_normal((6, 3))
    B[3, 1] = np.nan
    B2 = rng.standard_normal((6, 3))
    B2[2, 0] = np.inf
    W = rng.standard_normal((4, 3))
    W[1, 2] = np.nan
    big = L.astype(F32)
    big[2] = 1e20
    return [
        (_ffi.KERNEL_ACC_TARGET, jax.ShapeDtypeStruct((4, 4), F64), [np.zeros((4, 4)), B, L, np.float64(1)],
         "kernel_accumulate: B has a non-finite value (NaN or Inf) in row 3 (B float64 [6, 3], landmarks float64 [4, 3], G float64 [4, 4])"),
        (_ffi.KERNEL_ACC_PAIRED_TARGET, jax.ShapeDtypeStruct((8, 8), F64),
         [np.zeros((8, 8)), rng.standard_normal((6, 3)), B2, L, np.float64(1)],
         "kernel_accumulate_paired: B2 (second block) has a non-finite value (NaN or Inf) in row 2"),
        (_ffi.NYSTROM_TARGET, jax.ShapeDtypeStruct((3, 3), F64), [np.zeros((3, 3)), rng.standard_normal((6, 3)), L, W, np.float64(1)],
         "nystrom_accumulate: whitening has a non-finite value (NaN or Inf) at [1, 2]"),
        (_ffi.KERNEL_ACC_TARGET, jax.ShapeDtypeStruct((4, 4), F32),
         [np.zeros((4, 4), F32), rng.standard_normal((6, 3)).astype(F32), big, np.float32(1)],
         "kernel_accumulate: landmarks row 2 has squared norm 3e+40, too large for float32 kernel tiles (limit 1e+36)"),
        (_ffi.GRAM_TARGET, jax.ShapeDtypeStruct((3, 3), F32), [np.zeros((3, 3)), np.ones((5, 3))],
         "gram_accumulate: output must have G's dtype and shape (float64 [3, 3]), got float32 [3, 3]"),
    ]


@needs_cuda
@pytest.mark.parametrize("case", range(5))
def test_nystrom_targets_refuse_bad_rows_like_the_cpu_on_gpu(case):
    """Before: the CUDA Nyström handlers did not check rows (a NaN row became k = 1: exact_sq_dist NaN,
    pair_exponent(NaN) = 0), nor G_out's dtype (a float32 output of a float64 G was written as float64)."""
    target, outs, operands, match = _bad_row_cases()[case]
    gpu = _call_on(_gpu(), target, outs, *operands)
    cpu = _call_on(_cpu(), target, outs, *operands)
    assert gpu[0] == cpu[0] == "error"
    assert match in gpu[1] and match in cpu[1]
    tail = lambda s: s[s.index(match.split(":")[0] + ":"):].splitlines()[0]  # noqa: E731
    assert tail(gpu[1]) == tail(cpu[1])


@needs_cuda
@pytest.mark.parametrize("target", [_ffi.NYSTROM_TARGET, _ffi.GRAM_TARGET])
def test_unchanged_g_is_copied_without_aliasing_on_gpu(target):
    """m = 0 landmarks with W [0, 2] (and gram with b = 0): G_out = G_in also when XLA does not alias them
    (before: the Nyström handler returned without writing G_out)."""
    G = np.random.default_rng(13).standard_normal((2, 2))
    if target == _ffi.NYSTROM_TARGET:
        operands = [G, np.ones((6, 3)), np.zeros((0, 3)), np.zeros((0, 2)), np.float64(1)]
    else:
        operands = [G, np.zeros((0, 2))]
    status, got = _call_on(_gpu(), target, jax.ShapeDtypeStruct((2, 2), F64), *operands)
    assert status == "ok"
    np.testing.assert_array_equal(np.asarray(got), G)


@needs_cuda
@pytest.mark.parametrize("dtype", [F32, F64])
def test_pivoted_cholesky_m0_float64_factor_on_gpu(dtype):
    """m = 0 with a float64 factor [n, 0]: before, the handler zeroed n float64 values of the empty output
    (L taken in place with ldl = 1): an out-of-bounds write."""
    x = np.random.default_rng(14).standard_normal((50, 3)).astype(dtype)
    got = _on_gpu(lambda a: _ffi.pivoted_cholesky(a, 1.0, 0, return_factor=True), x)
    assert got.factor.shape == (50, 0) and got.factor.dtype == F64
    assert int(got.count) == 0 and got.pivots.shape == (0,)
    # the device is still usable and the next call correct
    res = _on_gpu(lambda a: _ffi.pivoted_cholesky(a, 1.0, 5, return_factor=True), x)
    _pc_check(res, x, 1.0, 5)


@needs_cuda
def test_large_row_count_rows_checked_across_chunks_on_gpu():
    """A bad row in a later row chunk (block_rows = 64) is reported with its global index."""
    rng = np.random.default_rng(15)
    B = rng.standard_normal((1000, 4)).astype(F32)
    B[777, 3] = np.nan
    L = B[:8].copy()
    for dev in (_gpu(), _cpu()):
        got = _call_on(dev, _ffi.KERNEL_ACC_TARGET, jax.ShapeDtypeStruct((8, 8), F32), np.zeros((8, 8), F32), B, L,
                       np.float32(1), block_rows=np.int64(64))
        assert got[0] == "error" and "B has a non-finite value (NaN or Inf) in row 777" in got[1]
