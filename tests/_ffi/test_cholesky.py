"""Greedy pivoted Cholesky of the Gaussian kernel (clipcore._ffi.cholesky) against float64 NumPy.

The compiled target against the sequential definition on the dense kernel
(tests/reference/nystrom_numpy.py) and its pure-JAX twin: tuning options that
must not change the pivots, ties and duplicates, errors at the Python and the
raw FFI entry points, and a hypothesis fuzz of the raw entry point against the
host entry and the reference.
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

_DTYPES = [F32, F64, I32, F16]
_SIGMAS = [1e-30, 1e-3, 0.5, 3.0, 1e30, 0.0, -1.0, float("nan"), float("inf")]


def _gauss(a, b, sigma):
    """Reference kernel on the inputs as given (float64 of the same values)."""
    return ref.gaussian(np.asarray(a, np.float64), np.asarray(b, np.float64), sigma)


def _raw(target, operands, outs, **attrs):
    return jax.ffi.ffi_call(target, outs)(*[jnp.asarray(o) for o in operands], **attrs)


def _valid_sigma(s):
    return np.isfinite(s) and s > 0


# --------------------------------------------------------------------------- results

@pytest.mark.parametrize(
    "opts",
    [dict(), dict(panel=1), dict(panel=3, candidates=1), dict(panel=16, candidates=20),
     dict(panel=500, candidates=2000), dict(block_rows=7, num_threads=3)],
    ids=repr,
)
def test_pivoted_cholesky_options_give_the_same_pivots(opts):
    x = ref.clustered(700, 8, clusters=5, noise=0.6, seed=7, dtype=np.float64)
    piv, L, traces = ref.pivoted_cholesky(_gauss(x, x, 2.0), 150)
    res = _ffi.pivoted_cholesky(x, 2.0, 150, return_factor=True, **opts)
    c = int(res.count)
    assert c == len(piv)
    np.testing.assert_array_equal(np.asarray(res.pivots)[:c], piv)
    np.testing.assert_allclose(np.asarray(res.factor)[:, :c], L, atol=1e-9)
    np.testing.assert_allclose(np.asarray(res.pivot_factor)[:c, :c], L[piv], atol=1e-9)
    np.testing.assert_allclose(np.asarray(res.residual_trace)[:c], traces, rtol=1e-9, atol=1e-9)
    assert np.all(np.asarray(res.pivots)[c:] == -1) and np.all(np.isnan(np.asarray(res.residual_trace)[c:]))


def test_pivoted_cholesky_ties_and_duplicates():
    rng = np.random.default_rng(8)
    base = rng.standard_normal((40, 5))
    x = np.concatenate([base, base[:10], base[5:15]])  # duplicates: residual 0 after their twin
    for sigma in (1e-30, 0.3, 1.5, 1e30):
        piv, L, _ = ref.pivoted_cholesky(_gauss(x, x, sigma), 70)
        for fn in (_ffi.pivoted_cholesky, _ffi.pivoted_cholesky_jax):
            res = fn(x, sigma, 70, return_factor=True, **({"panel": 4, "candidates": 6} if fn is _ffi.pivoted_cholesky else {}))
            c = int(res.count)
            # exact duplicates tie exactly in exact arithmetic: compare the chosen points
            assert c == len(piv), f"{fn.__name__} σ={sigma}"
            np.testing.assert_array_equal(x[np.asarray(res.pivots)[:c]], x[piv], err_msg=f"{fn.__name__} σ={sigma}")
            np.testing.assert_allclose(np.asarray(res.factor)[:, :c], L, atol=1e-9)
    # σ → 0: K = I on the distinct rows: pivots 0..39 in order, then exhausted
    res = _ffi.pivoted_cholesky(x, 1e-30, 70)
    np.testing.assert_array_equal(np.asarray(res.pivots)[:int(res.count)], np.arange(40))


def test_pivoted_cholesky_twin_agrees_under_jit():
    x = ref.clustered(300, 6, seed=9, dtype=np.float64)
    f = jax.jit(lambda a: _ffi.pivoted_cholesky(a, 2.0, 50, trace_tol=3.0))
    g = jax.jit(lambda a: _ffi.pivoted_cholesky_jax(a, 2.0, 50, trace_tol=3.0))
    a, b = f(x), g(x)
    assert int(a.count) == int(b.count)
    np.testing.assert_array_equal(a.pivots, b.pivots)
    np.testing.assert_allclose(a.pivot_factor, b.pivot_factor, atol=1e-10)



# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: _ffi.pivoted_cholesky(np.zeros((3, 2), F16), 1.0, 2), r"x dtype must be float32 or float64, got float16"),
        (lambda: _ffi.pivoted_cholesky(np.zeros((3, 2)), 1.0, -1), r"m must be >= 0"),
        (lambda: _ffi.pivoted_cholesky(np.zeros((3, 2)), 1.0, 2, min_pivot=-1.0), r"min_pivot must be finite and >= 0"),
    ],
)
def test_python_entry_rejects_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "target,operands,outs,attrs,match",
    [
        (_ffi.PIVOTED_CHOLESKY_TARGET, [np.zeros((5, 4)), np.float64(1)],
         (jax.ShapeDtypeStruct((3,), np.int64), jax.ShapeDtypeStruct((), np.int64), jax.ShapeDtypeStruct((3,), F64),
          jax.ShapeDtypeStruct((3, 2), F64), jax.ShapeDtypeStruct((0, 3), F64)), {},
         "pivoted_cholesky: pivot_factor output must be float32|float64 [m, m] with m = 3, got float64 [3, 2]"),
        (_ffi.PIVOTED_CHOLESKY_TARGET, [np.zeros((5, 4)), np.float64(1)],
         (jax.ShapeDtypeStruct((3,), np.int64), jax.ShapeDtypeStruct((), np.int64), jax.ShapeDtypeStruct((3,), F64),
          jax.ShapeDtypeStruct((3, 3), F64), jax.ShapeDtypeStruct((4, 3), F64)), {},
         "pivoted_cholesky: factor output must be float32|float64 [n, m] or [0, m] with n = 5, m = 3, got float64 [4, 3]"),
        (_ffi.PIVOTED_CHOLESKY_TARGET, [np.full((5, 4), np.inf), np.float64(1)],
         (jax.ShapeDtypeStruct((3,), np.int64), jax.ShapeDtypeStruct((), np.int64), jax.ShapeDtypeStruct((3,), F64),
          jax.ShapeDtypeStruct((3, 3), F64), jax.ShapeDtypeStruct((0, 3), F64)), {},
         "pivoted_cholesky: x has a non-finite value (NaN or Inf) in row 0 (x float64 [5, 4], m = 3)"),
        (_ffi.PIVOTED_CHOLESKY_TARGET, [np.zeros((5, 4)), np.float64(1)],
         (jax.ShapeDtypeStruct((3,), np.int64), jax.ShapeDtypeStruct((), np.int64), jax.ShapeDtypeStruct((3,), F64),
          jax.ShapeDtypeStruct((3, 3), F64), jax.ShapeDtypeStruct((0, 3), F64)), {"trace_tol": np.int64(1)},
         "pivoted_cholesky: attribute 'trace_tol' must be a float"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_raw_targets_report_errors_with_shapes(target, operands, outs, attrs, match):
    with pytest.raises(Exception, match=re.escape(match)) as info:
        jax.block_until_ready(_raw(target, operands, outs, **attrs))
    assert "INVALID_ARGUMENT" in str(info.value)


# --------------------------------------------------------------------------- fuzz

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 70),
    d=st.integers(0, 6),
    m=st.integers(0, 90),
    dtype=st.sampled_from(_DTYPES),
    sigma=st.sampled_from(_SIGMAS),
    dup=st.booleans(),
    nan=st.booleans(),
    tol=st.sampled_from([0.0, 0.1, 0.5]),
    panel=st.one_of(st.none(), st.integers(1, 20)),
    candidates=st.one_of(st.none(), st.integers(1, 40)),
    seed=st.integers(0, 2**31 - 1),
)
def test_fuzz_pivoted_cholesky(n, d, m, dtype, sigma, dup, nan, tol, panel, candidates, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    if dup and n > 3:
        x[n // 2 :] = x[: n - n // 2]
    x = x.astype(dtype)
    poisoned = nan and x.size > 0 and dtype != I32
    if poisoned:
        x.flat[rng.integers(x.size)] = np.nan
    outs = (jax.ShapeDtypeStruct((m,), np.int64), jax.ShapeDtypeStruct((), np.int64),
            jax.ShapeDtypeStruct((m,), F64), jax.ShapeDtypeStruct((m, m), F64), jax.ShapeDtypeStruct((n, m), F64))
    attrs = {"trace_tol": np.float64(tol * n)}
    if panel is not None:
        attrs["panel"] = np.int64(panel)
    if candidates is not None:
        attrs["candidates"] = np.int64(candidates)
    valid = dtype in (F32, F64) and _valid_sigma(sigma)
    try:  # the host entry (landmarks from host rows) refuses exactly what the XLA target refuses
        host = _ffi.pivoted_cholesky_host(x, float(sigma), m, tol * n, _ffi.MIN_PIVOT, 0)
    except ValueError as exc:
        assert str(exc).startswith("pivoted_cholesky_host: "), str(exc)
        host = None
    try:
        piv, count, trace, pf, fac = jax.block_until_ready(
            _raw(_ffi.PIVOTED_CHOLESKY_TARGET, [x, np.float64(sigma)], outs, **attrs))
    except Exception as exc:  # noqa: BLE001
        assert "INVALID_ARGUMENT: pivoted_cholesky: " in str(exc), str(exc)
        assert not valid or poisoned, str(exc)
        assert host is None
        return
    assert valid and host is not None
    # ... and otherwise takes the same pivots (whatever the panel tuning) and residual traces. Exact
    # duplicate rows are interchangeable: the tuning changes which GEMM micro-tile updates a row, so two
    # copies' residuals may differ in the last bit and either copy may be taken (hypothesis: n = 39,
    # d = 1, rows 18 and 37 equal, candidates = 1). So the pivots are compared as points.
    assert host[1] == int(count)
    xs_ = np.asarray(x, np.float64)
    np.testing.assert_array_equal(xs_[np.asarray(host[0])[: host[1]]], xs_[np.asarray(piv)[: host[1]]])
    np.testing.assert_allclose(host[2][: host[1]], np.asarray(trace)[: host[1]], rtol=1e-12, atol=1e-12 * max(n, 1))
    if poisoned:
        assert n == 0 or m == 0 or int(count) == 0
        return
    piv_ref, L_ref, tr_ref = ref.pivoted_cholesky(_gauss(x, x, sigma), m, trace_tol=tol * n)
    c = int(count)
    got = np.asarray(piv)[:c]
    xs = np.asarray(x, np.float64)
    # The same points in the same order (exact duplicates tie exactly), unless
    # the two computations part at a near-tie or near a stopping threshold.
    k = 0
    while k < min(c, len(piv_ref)) and np.array_equal(xs[got[k]], xs[piv_ref[k]]):
        k += 1
    if k < min(c, len(piv_ref)):
        r = 1.0 - np.sum(L_ref[:, :k] ** 2, axis=1)
        assert abs(r[got[k]] - r[piv_ref[k]]) < 1e-9, (k, got[:k + 1], piv_ref[:k + 1])
        return
    if c != len(piv_ref):
        k = min(c, len(piv_ref))
        r = 1.0 - np.sum(L_ref[:, :k] ** 2, axis=1)
        trace_k = float(np.sum(np.maximum(r, 0)))
        near_tol = abs(trace_k - tol * n) < 1e-8 * max(n, 1)
        near_pivot = abs(np.max(r, initial=0.0) - _ffi.MIN_PIVOT) < 1e-9
        assert near_tol or near_pivot, (c, len(piv_ref), trace_k, tol * n)
        return
    np.testing.assert_allclose(np.asarray(fac)[:, :c], L_ref, atol=1e-8)
    np.testing.assert_allclose(np.asarray(pf)[:c, :c], L_ref[piv_ref], atol=1e-8)
    np.testing.assert_allclose(np.asarray(trace)[:c], tr_ref, atol=1e-8 * max(n, 1))
    assert np.all(np.asarray(fac)[:, c:] == 0) and np.all(np.asarray(piv)[c:] == -1)



def test_select_landmarks_host_rows_equal_device_rows():
    from clipcore import nystrom as N

    x = ref.clustered(3000, 16, seed=5).astype(np.float32)
    a = N.select_landmarks(x, 40, sigma=2.5, method="pivoted-cholesky", pool=1200, key=4, tol=0.01)
    b = N.select_landmarks(jnp.asarray(x), 40, sigma=2.5, method="pivoted-cholesky", pool=1200, key=4, tol=0.01)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.residual_trace, b.residual_trace, rtol=1e-10)
    np.testing.assert_array_equal(np.asarray(a.points), x[a.indices])


# --------------------------------------------------------------------------- transformations: grad, jvp, vjp, vmap


def _separated(seed=0, n=40, d=3):
    """Rows whose greedy pivots are stable under small perturbations (finite differences keep them)."""
    return np.random.default_rng(seed).standard_normal((n, d)) * 2.0


def _floats(res):
    return res.residual_trace, res.pivot_factor, res.factor


@pytest.mark.parametrize("return_factor", [True, False])
def test_float_outputs_check_grads_fwd_and_rev(return_factor):
    from jax.test_util import check_grads

    x = _separated(1)
    f = lambda a, s: _floats(_ffi.pivoted_cholesky(a, s, 7, return_factor=return_factor))  # noqa: E731
    check_grads(f, (x, jnp.float64(1.2)), order=1, modes=("fwd", "rev"))


def test_integer_outputs_have_zero_tangents_and_floats_equal_the_twins():
    x, s = _separated(2), jnp.float64(1.4)
    dx, ds = np.sin(x), jnp.float64(0.2)
    f = lambda a, t: _ffi.pivoted_cholesky(a, t, 8, return_factor=True)  # noqa: E731
    twin = lambda a, t: _ffi.pivoted_cholesky_jax(a, t, 8, return_factor=True)  # noqa: E731
    out, tan = jax.jvp(f, (x, s), (dx, ds))
    out_t, tan_t = jax.jvp(twin, (x, s), (dx, ds))
    assert tan.pivots.dtype == jax.dtypes.float0 and tan.count.dtype == jax.dtypes.float0
    np.testing.assert_array_equal(out.pivots, out_t.pivots)
    c = int(out.count)
    np.testing.assert_allclose(tan.residual_trace[:c], tan_t.residual_trace[:c], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(tan.pivot_factor, tan_t.pivot_factor, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(tan.factor, tan_t.factor, rtol=1e-9, atol=1e-10)
    # reverse mode: the same gradient as the twin's
    loss = lambda fn: lambda a, t: jnp.sum(fn(a, t).factor ** 3) + jnp.nansum(fn(a, t).residual_trace)  # noqa: E731
    for u, v in zip(jax.grad(loss(f), argnums=(0, 1))(x, s), jax.grad(loss(twin), argnums=(0, 1))(x, s)):
        np.testing.assert_allclose(u, v, rtol=1e-8, atol=1e-10)


def test_fixed_pivot_factors_are_the_calls_outputs():
    """The function the rule differentiates is the one the call computed (float64 NumPy reference too)."""
    x = ref.clustered(300, 5, seed=3, dtype=np.float64)
    res = _ffi.pivoted_cholesky(x, 2.0, 40, trace_tol=5.0, return_factor=True)
    rtrace, pf, fac = _ffi.cholesky.fixed_pivot_factors(x, 2.0, res.pivots, res.count, return_factor=True)
    c = int(res.count)
    assert 0 < c < 40
    np.testing.assert_allclose(rtrace[:c], res.residual_trace[:c], rtol=1e-9, atol=1e-9)
    assert np.all(np.isnan(np.asarray(rtrace)[c:]))
    np.testing.assert_allclose(pf, res.pivot_factor, atol=1e-9)
    np.testing.assert_allclose(fac, res.factor, atol=1e-9)
    piv, L, _ = ref.pivoted_cholesky(_gauss(x, x, 2.0), 40, trace_tol=5.0)
    np.testing.assert_allclose(np.asarray(fac)[:, :c], L, atol=1e-9)


def test_gradient_through_the_chosen_points():
    """Landmarks taken by index inside a differentiated function: the pivots are constants, x[pivots] is not."""
    x = _separated(4)

    def f(a):
        res = _ffi.pivoted_cholesky(a, 1.0, 5)
        return jnp.sum(a[res.pivots] ** 2)

    piv = np.asarray(_ffi.pivoted_cholesky(x, 1.0, 5).pivots)
    want = np.zeros_like(x)
    want[piv] = 2 * x[piv]
    np.testing.assert_allclose(jax.grad(f)(x), want, rtol=1e-12)


def test_vmap_equals_a_loop():
    xs = np.stack([_separated(5), _separated(6)])
    sig = jnp.asarray([1.0, 1.6])
    f = lambda a, s: _ffi.pivoted_cholesky(a, s, 6, return_factor=True)  # noqa: E731
    got = jax.vmap(f)(xs, sig)
    for k in range(2):
        want = f(xs[k], sig[k])
        for u, v in zip(got, want):
            np.testing.assert_array_equal(np.asarray(u)[k], v)
    grads = jax.vmap(jax.grad(lambda a, s: jnp.sum(f(a, s).pivot_factor)))(xs, sig)
    for k in range(2):
        np.testing.assert_allclose(grads[k], jax.grad(lambda a: jnp.sum(f(a, sig[k]).pivot_factor))(xs[k]),
                                   rtol=1e-12, atol=1e-14)


def test_forward_pass_is_the_ffi_call_alone():
    x = _separated(7)
    text = jax.jit(lambda a: _ffi.pivoted_cholesky(a, 1.0, 5, return_factor=True)).lower(x).as_text()
    assert _ffi.PIVOTED_CHOLESKY_TARGET in text and "cholesky" not in text.replace(_ffi.PIVOTED_CHOLESKY_TARGET, "")
    assert "while" not in text
