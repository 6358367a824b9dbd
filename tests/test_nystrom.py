"""clipcore.nystrom against independent float64 NumPy references (tests/reference/nystrom_numpy.py).

Features, whitening, Gram (single and paired), block-size independence,
float32 vs float64, ffi vs the pure-JAX twin, landmark selection (pivoted
Cholesky vs a dense textbook one: same pivots, same factor), the exact RKE
streamed vs dense, and the float32-accumulation pitfall of SPEC.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import clipcore
from clipcore import _ffi
from clipcore import nystrom as ny
from reference import nystrom_numpy as ref

needs_ext = pytest.mark.skipif(not _ffi.available(), reason=f"compiled core: {_ffi.unavailable_reason()}")
BACKENDS = [pytest.param("ffi", marks=needs_ext), "jax"]
STRATEGIES = ["kernel", "whiten"]


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.fixture(scope="module")
def data():
    x = ref.clustered(3000, 24, clusters=8, noise=0.4, seed=1, dtype=np.float64)
    sigma = 3.0
    lm = ny.select_landmarks(x, 200, method="uniform", key=3)
    nmap = ny.nystrom_map(lm, sigma)
    return x, sigma, lm, nmap


# --------------------------------------------------------------------------- the map


def test_whitening_matches_reference(data):
    x, sigma, lm, nmap = data
    L = np.asarray(lm.points)
    W_ref, lam_ref = ref.whitening(L, sigma, ny.DEFAULT_RTOL)
    assert nmap.rank == W_ref.shape[1] and nmap.num_dropped == 200 - nmap.rank
    np.testing.assert_allclose(nmap.eigenvalues, lam_ref, rtol=1e-9, atol=1e-12 * lam_ref[0])
    # W Wᵀ is the cut pseudo-inverse of K_mm (sign-free comparison); Wᵀ K W = I.
    np.testing.assert_allclose(nmap.whitening @ nmap.whitening.T, W_ref @ W_ref.T,
                               atol=1e-7 * np.abs(W_ref @ W_ref.T).max())
    K = ref.gaussian(L, L, sigma)
    np.testing.assert_allclose(nmap.whitening.T @ K @ nmap.whitening, np.eye(nmap.rank), atol=1e-7)


def test_cutoff_drops_small_eigenvalues():
    x = ref.clustered(400, 4, clusters=3, noise=0.05, seed=2, dtype=np.float64)  # ill-conditioned K_mm
    nm_default = ny.nystrom_map(x[:150], 2.0)
    nm_loose = ny.nystrom_map(x[:150], 2.0, rtol=1e-3)
    lam = ref.whitening(x[:150], 2.0, 0.0)[1]
    assert nm_default.rank == int(np.sum(lam > ny.DEFAULT_RTOL * lam[0]))
    assert nm_loose.rank == int(np.sum(lam > 1e-3 * lam[0])) < nm_default.rank
    assert np.all(nm_loose.eigenvalues > 1e-3 * nm_loose.eigenvalues[0])


def test_features_match_reference(data):
    x, sigma, lm, nmap = data
    P_ref = ref.gaussian(x, lm.points, sigma) @ nmap.whitening
    np.testing.assert_allclose(ny.nystrom_features(x, nmap), P_ref, atol=1e-9 * np.abs(P_ref).max())
    p32 = ny.nystrom_features(x.astype(np.float32), nmap)
    assert p32.dtype == jnp.float32
    assert _rel(p32, P_ref) < 2e-3  # float32 kernel tile amplified by W (≤ 1/√λ_min)
    # Φ(x)·Φ(y) is the Nyström kernel k(x, L) K_mm⁺ k(L, y)
    Kinv = ref.nystrom_kernel_inverse(np.asarray(lm.points), sigma, ny.DEFAULT_RTOL)
    kxl = ref.gaussian(x[:50], lm.points, sigma)
    np.testing.assert_allclose(P_ref[:50] @ P_ref[:50].T, kxl @ Kinv @ kxl.T, atol=1e-9)


def test_map_is_a_pytree_through_jit(data):
    x, sigma, lm, nmap = data
    leaves, tree = jax.tree_util.tree_flatten(nmap)
    assert len(leaves) == 4
    back = jax.tree_util.tree_unflatten(tree, leaves)
    assert back.rtol == nmap.rtol and back.rank == nmap.rank

    @jax.jit
    def f(m, a):
        return ny._features(a, m.landmarks, m.whitening, m.sigma)

    out = f(nmap, jnp.asarray(x[:10]))
    np.testing.assert_allclose(out, ref.gaussian(x[:10], lm.points, sigma) @ nmap.whitening, atol=1e-10)


def test_empty_and_single_landmark():
    x = ref.clustered(50, 5, seed=4, dtype=np.float64)
    nm0 = ny.nystrom_map(np.zeros((0, 5)), 1.0)
    assert nm0.rank == 0
    assert ny.nystrom_gram(x, nm0, backend="jax").shape == (0, 0)
    nm1 = ny.nystrom_map(x[:1], 1.0)
    assert nm1.rank == 1
    g = np.asarray(ny.nystrom_gram(x, nm1, backend="jax"))
    np.testing.assert_allclose(g, ref.gram(x, x[:1], 1.0, 0.0), rtol=1e-12)


# --------------------------------------------------------------------------- the Gram


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_gram_matches_reference_float64(data, backend, strategy):
    x, sigma, lm, nmap = data
    g_ref = ref.gram(x, np.asarray(lm.points), sigma, ny.DEFAULT_RTOL)
    g = ny.nystrom_gram(x, nmap, backend=backend, strategy=strategy, block_size=700)
    assert g.dtype == jnp.float64 and g.shape == (nmap.rank, nmap.rank)
    assert _rel(g, g_ref) < 1e-9
    c = ny.nystrom_covariance(x, nmap, backend=backend, strategy=strategy)
    assert _rel(c, g_ref / len(x)) < 1e-9
    tr, missing = ny.captured_trace(c)
    assert 0 < tr <= 1 + 1e-9 and abs(tr + missing - 1) < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_gram_float32_inputs(data, backend, strategy):
    """float32 kernel tiles (and whitening): same matrix to float32-tile accuracy, same trace."""
    x, sigma, lm, nmap = data
    g_ref = ref.gram(x.astype(np.float32), np.asarray(lm.points, np.float32), sigma, ny.DEFAULT_RTOL)
    nm32 = ny.nystrom_map(np.asarray(lm.points, np.float32), sigma)
    g = ny.nystrom_gram(x.astype(np.float32), nm32, backend=backend, strategy=strategy, block_size=1000)
    assert g.dtype == jnp.float64
    assert _rel(g, g_ref) < 1e-5
    assert abs(np.trace(g) - np.trace(g_ref)) / np.trace(g_ref) < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_block_size_independence(data, backend, strategy, dtype):
    x, sigma, lm, nmap = data
    x = x.astype(dtype)
    nm = ny.nystrom_map(np.asarray(lm.points, dtype), sigma)
    outs = [np.asarray(ny.nystrom_gram(x, nm, backend=backend, strategy=strategy, block_size=b))
            for b in (1, 97, 1000, 2999, None)]
    tol = 1e-12 if dtype == np.float64 else 2e-6
    for o in outs[1:]:
        assert _rel(o, outs[0]) < tol
    # the spectrum (what the entropies use) is block-size independent too
    ev = [np.linalg.eigvalsh(o) for o in outs]
    for e in ev[1:]:
        assert np.max(np.abs(e - ev[0])) < tol * ev[0].max()


@needs_ext
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_ffi_matches_jax_twin(data, strategy, dtype):
    x, sigma, lm, nmap = data
    x = x.astype(dtype)
    nm = ny.nystrom_map(np.asarray(lm.points, dtype), sigma)
    a = ny.nystrom_gram(x, nm, backend="ffi", strategy=strategy)
    b = ny.nystrom_gram(x, nm, backend="jax", strategy=strategy)
    assert _rel(a, b) < (1e-12 if dtype == np.float64 else 1e-5)


def test_float32_and_float64_agree_on_the_spectrum(data):
    x, sigma, lm, nmap = data
    c64 = np.asarray(ny.nystrom_covariance(x, nmap))
    c32 = np.asarray(ny.nystrom_covariance(x.astype(np.float32), ny.nystrom_map(np.asarray(lm.points, np.float32), sigma)))
    e64, e32 = np.linalg.eigvalsh(c64)[::-1], np.linalg.eigvalsh(c32)[::-1]
    assert abs(e64.sum() - e32.sum()) < 1e-6
    assert np.max(np.abs(e64 - e32)) < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_joint_covariances_match_reference(data, backend, strategy):
    x, sigma, lm, nmap = data
    t = ref.clustered(3000, 24, clusters=8, noise=0.4, seed=9, dtype=np.float64)
    g_ref = ref.joint_gram(t, x, np.asarray(lm.points), sigma, ny.DEFAULT_RTOL) / len(x)
    cov = ny.nystrom_joint_covariances(t, x, nmap, backend=backend, strategy=strategy, block_size=1234)
    r = nmap.rank
    assert _rel(cov.tt, g_ref[:r, :r]) < 1e-9
    assert _rel(cov.tx, g_ref[:r, r:]) < 1e-9
    assert _rel(cov.xx, g_ref[r:, r:]) < 1e-9
    # the image block equals the single-set covariance
    assert _rel(cov.xx, ny.nystrom_covariance(x, nmap, backend=backend, strategy=strategy)) < 1e-9
    g = ny.nystrom_joint_gram(t, x, nmap, backend=backend, strategy=strategy)
    assert g.shape == (2 * r, 2 * r)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("paired", [False, True])
def test_streaming_update_equals_one_shot(data, backend, paired):
    x, sigma, lm, nmap = data
    t = x[::-1].copy()
    G = ny.nystrom_init(nmap, paired=paired, backend=backend)
    for i in range(0, len(x), 800):
        G = ny.nystrom_update(G, t[i : i + 800] if paired else x[i : i + 800], nmap,
                              images=x[i : i + 800] if paired else None, backend=backend)
    g = ny.nystrom_finalize(G, nmap, paired=paired, backend=backend)
    one = ny.nystrom_joint_gram(t, x, nmap, backend=backend) if paired else ny.nystrom_gram(x, nmap, backend=backend)
    assert _rel(g, one) < 1e-10


def test_float32_accumulation_pitfall():
    """SPEC.md: Σ k(B,L)ᵀ k(B,L) accumulated in float32 then whitened gives a wrong trace.

    On ill-conditioned clustered data (λ_min/λ_max ~ 1e-10) the naive float32
    route is off by > 1e-3; clipcore's float32 paths (kernel: float64
    products; whiten: whitening before the float32 syrk) stay within 1e-5.
    """
    x = ref.clustered(6000, 16, clusters=20, noise=0.1, norm=10.0, seed=1, dtype=np.float32)
    sigma = 14.0
    lm = ny.select_landmarks(x, 400, method="uniform", key=0)
    L = np.asarray(lm.points)
    W, _ = ref.whitening(L, sigma, 0.0)
    K64 = ref.gaussian(x, L, sigma)
    truth = np.trace(W.T @ (K64.T @ K64) @ W) / len(x)
    K32 = K64.astype(np.float32)
    M32 = np.zeros((400, 400))
    for i in range(0, len(x), 4096):  # float32 block products summed in float64
        M32 += (K32[i : i + 4096].T @ K32[i : i + 4096]).astype(np.float64)
    naive = np.trace(W.T @ M32 @ W) / len(x)
    assert abs(naive - truth) > 1e-3
    nm = ny.nystrom_map(L, sigma, rtol=0.0)  # no cutoff: the hardest case
    for backend in ["jax"] + (["ffi"] if _ffi.available() else []):
        for strategy in STRATEGIES:
            c = ny.nystrom_covariance(x, nm, backend=backend, strategy=strategy)
            assert abs(float(np.trace(c)) - truth) < 1e-5, (backend, strategy)


# --------------------------------------------------------------------------- landmarks


def test_uniform_landmarks_are_seeded_sorted_distinct():
    x = ref.clustered(500, 8, seed=5)
    a = ny.select_landmarks(x, 50, key=7)
    b = ny.select_landmarks(x, 50, key=7)
    c = ny.select_landmarks(x, 50, key=8)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices)
    assert np.all(np.diff(a.indices) > 0) and len(a.indices) == 50
    np.testing.assert_array_equal(np.asarray(a.points), x[a.indices])
    assert ny.select_landmarks(x, 10_000).indices.shape == (500,)


def test_kmeanspp_is_seeded_and_spreads_over_clusters():
    rng = np.random.default_rng(0)
    centres = np.eye(4, 6) * 50.0
    x = (centres[rng.integers(0, 4, 2000)] + 0.1 * rng.standard_normal((2000, 6))).astype(np.float32)
    a = ny.select_landmarks(x, 4, sigma=1.0, method="kmeans++", key=1)
    b = ny.select_landmarks(x, 4, sigma=1.0, method="kmeans++", key=1)
    np.testing.assert_array_equal(a.indices, b.indices)
    # kernel distance 2 − 2k: one landmark per far-apart cluster
    cluster = np.argmax(x[a.indices] @ centres.T, axis=1)
    assert sorted(cluster) == [0, 1, 2, 3]
    more = ny.select_landmarks(x, 40, sigma=1.0, method="kmeans++", key=2)
    assert len(np.unique(more.indices)) == len(more.indices) == 40


def test_kmeanspp_stops_when_every_row_is_a_landmark():
    x = np.repeat(np.eye(3, 5), 10, axis=0)  # 3 distinct rows
    lm = ny.select_landmarks(x, 8, sigma=1.0, method="kmeans++", key=0)
    assert len(lm.indices) == 3
    assert len({tuple(r) for r in np.asarray(lm.points)}) == 3


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_pivoted_cholesky_landmarks_match_dense_reference(backend, dtype):
    x = ref.clustered(600, 10, clusters=6, noise=0.5, seed=6, dtype=dtype)
    sigma = 2.5
    piv, L, traces = ref.pivoted_cholesky(ref.gaussian(x, x, sigma), 120)
    lm = ny.select_landmarks(x, 120, sigma=sigma, method="pivoted-cholesky", backend=backend)
    np.testing.assert_array_equal(lm.indices, piv)
    np.testing.assert_allclose(lm.residual_trace, traces, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(lm.captured, 1 - traces / 600, atol=1e-11)
    assert lm.pool_size == 600 and np.all(np.diff(lm.captured) > 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pivoted_cholesky_tolerance(backend):
    x = ref.clustered(500, 6, clusters=4, noise=0.3, seed=8, dtype=np.float64)
    sigma = 3.0
    piv, _, traces = ref.pivoted_cholesky(ref.gaussian(x, x, sigma), 400, trace_tol=0.02 * 500)
    lm = ny.select_landmarks(x, 400, sigma=sigma, method="pivoted-cholesky", tol=0.02, backend=backend)
    np.testing.assert_array_equal(lm.indices, piv)
    assert len(piv) < 400 and traces[-1] <= 0.02 * 500 < traces[-2]
    assert lm.captured[-1] >= 0.98


def test_pivoted_cholesky_nystrom_trace_equals_captured():
    """tr C of the Nyström map on the pivots = the captured fraction of tr K (same approximation)."""
    x = ref.clustered(1500, 12, seed=10, dtype=np.float64)
    lm = ny.select_landmarks(x, 100, sigma=3.0, method="pivoted-cholesky")
    nm = ny.nystrom_map(lm, 3.0, rtol=0.0)
    tr, _ = ny.captured_trace(ny.nystrom_covariance(x, nm, backend="jax"))
    assert abs(tr - lm.captured[-1]) < 1e-8


def test_pool_subsample_is_seeded():
    x = ref.clustered(3000, 8, seed=11)
    a = ny.select_landmarks(x, 20, sigma=3.0, method="pivoted-cholesky", pool=500, key=1)
    b = ny.select_landmarks(x, 20, sigma=3.0, method="pivoted-cholesky", pool=500, key=1)
    c = ny.select_landmarks(x, 20, sigma=3.0, method="pivoted-cholesky", pool=500, key=2)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices) and a.pool_size == 500
    np.testing.assert_array_equal(np.asarray(a.points), x[a.indices])
    assert ny.default_pool(10_000, 100) == 10_000
    assert ny.default_pool(10**7, 2000) == (1 << 24) // 2000 == 8388


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(m=0), "m: expected an integer >= 1"),
        (dict(m=5, method="random"), "method: expected one of"),
        (dict(m=5, method="kmeans++"), "sigma: method='kmeans\\+\\+' needs"),
        (dict(m=5, method="pivoted-cholesky", sigma=-1.0), "sigma: expected a positive finite"),
        (dict(m=5, method="pivoted-cholesky", sigma=1.0, tol=-0.1), "tol: expected a finite number"),
        (dict(m=5, method="pivoted-cholesky", sigma=1.0, pool=0), "pool: expected an integer"),
        (dict(m=5, backend="cuda", method="pivoted-cholesky", sigma=1.0), "backend: expected one of"),
    ],
)
def test_select_landmarks_rejects_bad_options(kwargs, match):
    x = ref.clustered(50, 4, seed=0)
    with pytest.raises(ValueError, match=match):
        ny.select_landmarks(x, **kwargs)


def test_bad_map_and_gram_options(data):
    x, sigma, lm, nmap = data
    with pytest.raises(ValueError, match="sigma"):
        ny.nystrom_map(lm, 0.0)
    with pytest.raises(ValueError, match="rtol"):
        ny.nystrom_map(lm, 1.0, rtol=2.0)
    with pytest.raises(ValueError, match="landmarks: contain NaN"):
        ny.nystrom_map(np.full((3, 2), np.nan), 1.0)
    with pytest.raises(ValueError, match="strategy"):
        ny.nystrom_gram(x, nmap, strategy="fast")
    with pytest.raises(ValueError, match="dimension 5 differs"):
        ny.nystrom_gram(x[:, :5], nmap)
    with pytest.raises(ValueError, match="block_size"):
        ny.nystrom_gram(x, nmap, block_size=0)
    with pytest.raises(ValueError, match="images: shape"):
        ny.nystrom_joint_gram(x, x[:10], nmap)


# --------------------------------------------------------------------------- exact RKE, streamed


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_rke_streamed_matches_dense(backend, dtype):
    x = ref.clustered(700, 16, clusters=5, noise=0.5, seed=12, dtype=dtype)
    sigma = 4.0
    f_ref = ref.sq_frobenius(x, sigma)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    for tile in (1, 64, 333, 700, None):
        if backend == "jax" and tile == 1:
            continue  # 245k tile pairs in a fori_loop: slow, the ffi case covers it
        f = ny.kernel_sq_frobenius(x, sigma=sigma, backend=backend, tile_rows=tile)
        assert abs(f / f_ref - 1) < tol, tile
    r = ny.rke_streamed(x, sigma=sigma, backend=backend)
    assert abs(r.score / ref.rke_dense(x, sigma) - 1) < max(tol, 1e-10)
    assert r.n == 700 and r.kernel == "gaussian" and r.sigma == sigma
    assert abs(r.entropy - np.log(r.score)) < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_cross_sq_frobenius_matches_dense(backend, dtype):
    """Σ_ij k(x_i, y_j)² (the cross term the panel loop of the exact RKE adds) against the dense float64
    kernel, for the Gaussian (compiled core on host rows, or the JAX twin; tiles that do not divide the
    sets; rows shared by both sets) and the cosine kernel ⟨X̂ᵀX̂, ŶᵀŶ⟩_F."""
    x = ref.clustered(530, 16, clusters=5, noise=0.5, seed=21, dtype=dtype)
    y = np.concatenate([ref.clustered(200, 16, clusters=3, noise=0.5, seed=22, dtype=dtype), x[:17]])
    tol = 1e-12 if dtype == np.float64 else 1e-6
    for tile in (64, 333, None):
        f = ny.kernel_sq_frobenius(x, y=y, sigma=4.0, backend=backend, tile_rows=tile)
        assert abs(f / ref.sq_frobenius(x, 4.0, y) - 1) < tol, tile
    assert ny.kernel_sq_frobenius(x, y=y[:0], sigma=4.0, backend=backend) == 0.0
    xn = x / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    yn = y / np.linalg.norm(y.astype(np.float64), axis=1, keepdims=True)
    c = ny.kernel_sq_frobenius(x, y=y, kernel="cosine", backend=backend)
    assert abs(c / np.sum((xn @ yn.T) ** 2) - 1) < 1e-12
    with pytest.raises(ValueError, match=r"y: expected \[p, 16\] rows like x"):
        ny.kernel_sq_frobenius(x, y=y[:, :5], sigma=4.0, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sq_frobenius_panels_equal_the_whole(backend):
    """Σ_P ‖K_PP‖² + 2 Σ_{P<Q} ‖K_PQ‖² over panels of any size (one row, uneven, one panel) is ‖K‖_F²,
    and the pairs it reports cover i ≤ j once."""
    x = ref.clustered(610, 8, clusters=4, noise=0.4, seed=23, dtype=np.float64)
    want = ref.sq_frobenius(x, 3.0)
    for panel in ((1, 97, 610, 5000) if backend == "ffi" else (97, 610)):
        pairs = []
        got = ny.sq_frobenius_panels(lambda a, b: x[a:b], 610, 3.0, panel_rows=panel, backend=backend,
                                     on_pairs=pairs.append)
        assert abs(got / want - 1) < 1e-12, panel
        assert sum(pairs) == 610 * 611 // 2
    with pytest.raises(ValueError, match="panel_rows"):
        ny.sq_frobenius_panels(lambda a, b: x[a:b], 610, 3.0, panel_rows=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rke_streamed_matches_clipcore_rke(backend):
    x = ref.clustered(400, 12, seed=13, dtype=np.float64)
    exact = clipcore.rke(x, kernel="gaussian", sigma=2.0)
    r = ny.rke_streamed(x, sigma=2.0, backend=backend)
    assert abs(r.score / exact.score - 1) < 1e-9  # the clamp at 1e-10 adds ≤ n·1e-20 to Σλ²
    c = ny.rke_streamed(x, kernel="cosine", backend=backend)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = xn @ xn.T
    assert abs(c.frobenius_sq / np.sum(cos * cos) - 1) < 1e-12
    assert abs(c.score / clipcore.rke(x, kernel="cosine").score - 1) < 1e-9


def test_rke_rejects_bad_input():
    with pytest.raises(ValueError, match="kernel"):
        ny.rke_streamed(np.ones((3, 2)), kernel="laplace")
    with pytest.raises(ValueError, match="sigma"):
        ny.rke_streamed(np.ones((3, 2)), sigma=None)
    with pytest.raises(ValueError, match="non-zero rows"):
        ny.rke_streamed(np.zeros((3, 2)), kernel="cosine")
