"""The compiled core's host entries (clipcore._ffi.host): the same C++ on NumPy rows, outside XLA.

joint_gram_host, nystrom_host, pivoted_cholesky_host against float64 NumPy
and the XLA targets; their argument checks (an in-place accumulator is
checked, never converted); and the host-memory paths of covariance / nystrom
/ scores that run on them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clipcore import _ffi
from reference import nystrom_numpy as ref

needs_ext = pytest.mark.skipif(not _ffi.available(), reason=f"compiled core: {_ffi.unavailable_reason()}")


def _joint_ref(G, A, B, normalize):
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    if normalize:
        na, nb = np.linalg.norm(A, axis=1, keepdims=True), np.linalg.norm(B, axis=1, keepdims=True)
        A = np.divide(A, na, out=np.zeros_like(A), where=na > 0)
        B = np.divide(B, nb, out=np.zeros_like(B), where=nb > 0)
    Z = np.concatenate([A, B], axis=1)
    return np.asarray(G, np.float64) + Z.T @ Z


TOL = {np.float32: 2e-6, np.float64: 1e-13}


# --------------------------------------------------------------------------- availability


def test_host_entries_are_available_with_the_core():
    for name in _ffi.host.HOST_ENTRIES:
        assert _ffi.host_entry_available(name) == _ffi.available()
    with pytest.raises(ValueError, match="name: expected one of"):
        _ffi.host_entry_available("no_such_entry")


@needs_ext
def test_release_buffers_returns_the_bytes_freed():
    _ffi.gram_accumulate(jnp.zeros((64, 64)), jnp.ones((5000, 64), jnp.float32))
    assert _ffi.release_buffers() >= 0
    assert _ffi.release_buffers() == 0  # nothing left to free


# --------------------------------------------------------------------------- joint Gram


@needs_ext
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_host_entry_matches_reference_and_errors(dtype):
    """The host twin (streamed host blocks) is the same core: same numbers, clear errors."""
    rng = np.random.default_rng(4)
    A = rng.standard_normal((5000, 17)).astype(dtype)
    B = rng.standard_normal((5000, 9)).astype(dtype)
    G = rng.standard_normal((26, 26))
    want = _joint_ref(G, A, B, True)
    assert _ffi.joint_gram_host(G, A, B, True) is G  # in place
    assert np.max(np.abs(G - want)) <= TOL[dtype] * np.max(np.abs(want))
    with pytest.raises(ValueError, match="paired"):
        _ffi.joint_gram_host(np.zeros((26, 26)), A, B[:10], True)
    with pytest.raises(ValueError, match=r"\[26, 26\]"):
        _ffi.joint_gram_host(np.zeros((5, 5)), A, B, True)
    with pytest.raises(ValueError, match="share"):
        _ffi.joint_gram_host(np.zeros((26, 26)), A.astype(np.float32), B.astype(np.float64), True)


@needs_ext
@pytest.mark.parametrize(
    "G",
    [np.zeros((5, 5)).tolist(), np.zeros((5, 5), np.float32), np.asfortranarray(np.ones((5, 5)) + np.eye(5)),
     np.zeros((5, 5))[::-1], np.zeros((5, 5))],
    ids=["list", "float32", "fortran", "strided", "read-only"],
)
def test_accumulators_are_checked_never_converted(G):
    """An accumulator that would have to be converted (a copy) is refused: the update would be lost."""
    if isinstance(G, np.ndarray) and G.flags.c_contiguous and G.dtype == np.float64:
        G.flags.writeable = False
    A, B = np.ones((4, 3)), np.ones((4, 2))
    for call in (lambda: _ffi.joint_gram_host(G, A, B, True),
                 lambda: _ffi.nystrom_host(G, A[:, :2], None, np.ones((5, 2)), 1.0)):
        with pytest.raises(ValueError, match=r"G must be a writeable C-contiguous \[5, 5\] float64"):
            call()


@needs_ext
def test_host_entries_check_their_options():
    G, x, L = np.zeros((3, 3)), np.ones((4, 2)), np.ones((3, 2))
    for sigma in (0.0, -1.0, float("nan"), float("inf"), None, True):
        with pytest.raises(ValueError, match="nystrom_host: sigma"):
            _ffi.nystrom_host(G, x, None, L, sigma)
    with pytest.raises(ValueError, match="num_threads must be >= 0, got -1"):
        _ffi.nystrom_host(G, x, None, L, 1.0, -1)
    with pytest.raises(ValueError, match="num_threads must be an integer"):
        _ffi.joint_gram_host(np.zeros((4, 4)), x, x, True, num_threads=1.5)
    with pytest.raises(ValueError, match=r"landmarks must be \[m, d\], got \[3\]"):
        _ffi.nystrom_host(G, x, None, np.ones(3), 1.0)
    with pytest.raises(ValueError, match="m must be >= 0"):
        _ffi.pivoted_cholesky_host(x, 1.0, -1)
    with pytest.raises(ValueError, match="min_pivot must be finite and >= 0"):
        _ffi.pivoted_cholesky_host(x, 1.0, 2, min_pivot=-1.0)
    with pytest.raises(ValueError, match="trace_tol must not be NaN"):
        _ffi.pivoted_cholesky_host(x, 1.0, 2, trace_tol=float("nan"))
    with pytest.raises(ValueError, match="gaussian_sq_frobenius_host: sigma"):
        _ffi.gaussian_sq_frobenius_host(x, 0.0)
    assert np.array_equal(G, np.zeros((3, 3)))


def test_streamed_cosine_uses_the_host_core_and_agrees(monkeypatch):
    """Large host inputs (streamed) give the same covariances as the in-memory JAX path."""
    import clipcore
    from clipcore._pipeline import inputs

    d = clipcore.synthetic_pairs(3000, 20, seed=2)
    # (synthetic_pairs gives float32 rows, whose default precision is float32 now: float64 asked for)
    a = clipcore.sce(d.images, d.texts, backend="jax", dtype="float64")
    monkeypatch.setattr(inputs, "IN_MEMORY_ROWS", 100)  # host arrays above this are streamed
    b = clipcore.sce(d.images, d.texts, backend="ffi", block_size=777, progress=False, dtype="float64")
    c = clipcore.sce(d.images, d.texts, backend="ffi", dtype="float32", progress=False)
    assert b.log_sce == pytest.approx(a.log_sce, rel=1e-12)
    assert c.log_sce == pytest.approx(a.log_sce, rel=1e-6)


# --------------------------------------------------------------------------- Nyström and pivoted Cholesky


@pytest.mark.parametrize("paired", [False, True])
@pytest.mark.parametrize("m,r", [(7, 7), (7, 4), (300, 290)])  # 300: several symmetrising row blocks
def test_finalize_host_in_place_equals_dense(paired, m, r):
    """finalize_host writes Wᵀ M W (block-diagonal W when paired) into M's own storage; with dropped directions
    (r < m) the [2r, 2r] corner is moved to the front of M's buffer. Against dense float64 NumPy."""
    from clipcore import nystrom as N

    rng = np.random.default_rng(8)
    R = (2 if paired else 1) * m
    A = rng.standard_normal((3 * R, R))
    M = A.T @ A
    W = rng.standard_normal((m, r))
    nmap = N.NystromMap(np.zeros((m, 3)), np.float64(1.0), W, np.ones(r), 1e-7, m - r)
    Wb = np.kron(np.eye(2), W) if paired else W
    want = Wb.T @ M @ Wb
    want = 0.5 * (want + want.T)
    buf = M.copy()
    got = N.finalize_host(buf, nmap, paired=paired)
    assert got.shape == want.shape and got.flags.c_contiguous and np.shares_memory(got, buf)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    assert np.array_equal(got, got.T)
    with pytest.raises(ValueError, match="C-contiguous float64"):
        N.finalize_host(np.asfortranarray(M[:, ::-1]), nmap, paired=paired)



@needs_ext
@pytest.mark.parametrize("paired", [False, True])
@pytest.mark.parametrize("symmetric", [True, False])
def test_nystrom_update_host_in_place_keeps_g_in(paired, symmetric):
    """The host entry adds the caller thread's sums straight into a symmetric G (one [R, R] accumulator fewer);
    a non-symmetric G takes the buffered path. Either way G_out = G_in + ZᵀZ exactly as float64 NumPy, over
    several threads and chunks; and a NaN row in a late chunk raises and leaves G untouched."""
    from clipcore import nystrom as N

    rng = np.random.default_rng(12)
    x = rng.standard_normal((3000, 24))
    t = rng.standard_normal((3000, 24))
    L = x[:40]
    sigma = 4.0
    nm = N.nystrom_map(L, sigma)
    R = 80 if paired else 40
    A = rng.standard_normal((R, R))
    G0 = A @ A.T if symmetric else A
    Z = np.concatenate([ref.gaussian(t, L, sigma), ref.gaussian(x, L, sigma)], 1) if paired else \
        ref.gaussian(x, L, sigma)
    want = G0 + Z.T @ Z
    for threads in (1, 2, 3):
        G = G0.copy()
        N.nystrom_update_host(G, t if paired else x, nm, images=x if paired else None, num_threads=threads)
        np.testing.assert_allclose(G, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
        if symmetric:
            assert np.array_equal(G, G.T)
    # any chunking (block_rows of the core) gives the same sums
    G = G0.copy()
    _ffi.nystrom_host(G, t if paired else x, x if paired else None, L, sigma, 2, block_rows=37)
    np.testing.assert_allclose(G, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    with pytest.raises(ValueError, match="block_rows must be >= 0, got -1"):
        _ffi.nystrom_host(G0.copy(), x, None, L, sigma, 0, block_rows=-1)
    bad = x.copy()
    bad[2900, 3] = np.nan
    G = G0.copy()
    with pytest.raises(ValueError, match="non-finite"):
        N.nystrom_update_host(G, t if paired else bad, nm, images=bad if paired else None, num_threads=2)
    assert np.array_equal(G, G0)



@needs_ext
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tol", [0.0, 0.3])
def test_pivoted_cholesky_host_entry_equals_reference(dtype, tol):
    """The host entry (landmark selection on NumPy rows: no device copy, no pivot factor) takes the sequential
    definition's pivots and residual traces (float64 NumPy on the dense kernel) and the XLA target's."""
    x = ref.clustered(700, 12, seed=3).astype(dtype)
    sigma, m = 2.0, 60
    K = ref.gaussian(x.astype(np.float64), x.astype(np.float64), sigma)
    piv_ref, L_ref, tr_ref = ref.pivoted_cholesky(K, m, trace_tol=tol * len(x))
    piv, count, trace = _ffi.pivoted_cholesky_host(x, sigma, m, tol * len(x), _ffi.MIN_PIVOT, 0)
    assert count == len(piv_ref) and (tol == 0.0) == (count == m), (count, tol)
    np.testing.assert_array_equal(piv[:count], piv_ref)
    np.testing.assert_allclose(trace[:count], tr_ref, atol=1e-8 * len(x))
    assert np.all(piv[count:] == -1) and np.all(np.isnan(trace[count:]))
    with jax.enable_x64(True):
        xla = _ffi.pivoted_cholesky(jnp.asarray(x), sigma, m, trace_tol=tol * len(x))
    np.testing.assert_array_equal(piv, np.asarray(xla.pivots))
    np.testing.assert_array_equal(trace[:count], np.asarray(xla.residual_trace)[:count])


@needs_ext
def test_pivoted_cholesky_host_entry_errors():
    x = np.ones((5, 3), np.float32)
    raw = _ffi.registration.extension().pivoted_cholesky_host  # the compiled entry's own refusals
    for entry in (raw, _ffi.pivoted_cholesky_host):
        with pytest.raises(ValueError, match=r"x must be \[n, d\], got \[5\]"):
            entry(np.ones(5, np.float32), 1.0, 2)
        with pytest.raises(ValueError, match="C-contiguous float32 or float64"):
            entry(x.astype(np.int32), 1.0, 2)
        bad = x.copy()
        bad[3, 1] = np.inf
        with pytest.raises(ValueError, match="non-finite"):
            entry(bad, 1.0, 2)
        with pytest.raises(ValueError, match=r"the factor n x m = 100000 x 100000 float64 values is too large"):
            entry(np.zeros((100_000, 1), np.float32), 1.0, 100_000)
    with pytest.raises(ValueError, match="C-contiguous"):
        raw(np.asfortranarray(np.ones((5, 3))), 1.0, 2)
    with pytest.raises(ValueError, match=r"sigma.*\(x \[5, 3\], m = 2\)"):
        raw(x, -1.0, 2)
    # the public entry checks σ itself (the one σ check) and makes the rows C-contiguous
    with pytest.raises(ValueError, match="pivoted_cholesky_host: sigma"):
        _ffi.pivoted_cholesky_host(x, -1.0, 2)
    y = ref.clustered(50, 3, seed=1)
    a = _ffi.pivoted_cholesky_host(np.asfortranarray(y), 1.0, 6)
    b = _ffi.pivoted_cholesky_host(y, 1.0, 6)
    assert a[1] == b[1] == 6 and np.array_equal(a[0], b[0]) and np.array_equal(a[2], b[2])
