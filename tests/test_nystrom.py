"""clipcore.nystrom against independent float64 NumPy references (tests/reference/nystrom_numpy.py).

Features, whitening, Gram (single and paired), block-size independence,
float32 vs float64, ffi vs the pure-JAX twin, the host accumulator and its
finalisation, and the float32-accumulation pitfall of SPEC.md. Landmark
selection is tested in test_landmarks.py, the exact ‖K‖_F² in
test_frobenius.py (both still importable from clipcore.nystrom).
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
        return ny.nystrom_features(a, m)

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


def test_bad_map_and_gram_options(data):
    x, sigma, lm, nmap = data
    with pytest.raises(ValueError, match="sigma"):
        ny.nystrom_map(lm, 0.0)
    with pytest.raises(ValueError, match="rtol"):
        ny.nystrom_map(lm, 1.0, rtol=2.0)
    with pytest.raises(ValueError, match="landmarks: contains NaN at row 0"):
        ny.nystrom_map(np.full((3, 2), np.nan), 1.0)
    with pytest.raises(ValueError, match="strategy"):
        ny.nystrom_gram(x, nmap, strategy="fast")
    with pytest.raises(ValueError, match="dimension 5 differs"):
        ny.nystrom_gram(x[:, :5], nmap)
    with pytest.raises(ValueError, match="block_size"):
        ny.nystrom_gram(x, nmap, block_size=0)
    with pytest.raises(ValueError, match="images: shape"):
        ny.nystrom_joint_gram(x, x[:10], nmap)


# --------------------------------------------------------------------------- the pieces the pipeline composes


def test_moved_names_are_still_importable_from_nystrom():
    """Landmarks and the exact ‖K‖_F² moved out (clipcore.landmarks, clipcore.frobenius); the documented import
    paths through clipcore.nystrom still give the same objects."""
    from clipcore import frobenius, landmarks

    for name in ("Landmarks", "LANDMARK_METHODS", "select_landmarks", "default_pool"):
        assert getattr(ny, name) is getattr(landmarks, name), name
    for name in ("kernel_sq_frobenius", "sq_frobenius_panels", "StreamedRKE", "rke_streamed"):
        assert getattr(ny, name) is getattr(frobenius, name), name


@pytest.mark.parametrize("n", [1, 255, 256, 300, 700])
def test_symmetrise_in_place_equals_the_mean_with_the_transpose(n):
    a = np.random.default_rng(n).standard_normal((n, n))
    want = 0.5 * (a + a.T)
    out = a  # in place: the same storage
    ny.symmetrise(out, block=64 if n > 1 else 256)
    assert out is a
    np.testing.assert_allclose(a, want, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(a, a.T)


@pytest.mark.parametrize("paired", [False, True])
def test_finalize_host_and_finalize_gram_equal_the_reference(data, paired):
    """Wᵀ M W of the kernel-form accumulator M = Σ k(B, L)ᵀ k(B, L) (built here in NumPy), on the host (M consumed,
    the result in M's storage) and jitted, equals the float64 reference Gram of the Nyström features."""
    x, sigma, lm, nmap = data
    Lp = np.asarray(lm.points)
    t = x[::-1].copy()
    kx = ref.gaussian(x, Lp, sigma)
    if paired:
        kz = np.concatenate([ref.gaussian(t, Lp, sigma), kx], axis=1)
        want = ref.joint_gram(t, x, Lp, sigma, ny.DEFAULT_RTOL)
    else:
        kz = kx
        want = ref.gram(x, Lp, sigma, ny.DEFAULT_RTOL)
    M = np.ascontiguousarray(kz.T @ kz)
    jitted = ny.finalize_gram(jnp.asarray(M), jnp.asarray(nmap.whitening), strategy="kernel", paired=paired)
    host = ny.finalize_host(M.copy(), nmap, paired=paired)
    r = nmap.rank * (2 if paired else 1)
    assert host.shape == (r, r) and host.flags.c_contiguous
    assert _rel(host, want) < 1e-9 and _rel(jitted, want) < 1e-9
    np.testing.assert_array_equal(host, host.T)
    with pytest.raises(ValueError, match="finalize_host: M must be a C-contiguous float64 array"):
        ny.finalize_host(M.astype(np.float32), nmap, paired=paired)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_accumulator_folded_over_blocks_then_finalised(data, backend, strategy):
    """nystrom_accumulator (the per-device body of the sharded pass) over ragged blocks, finalised once."""
    x, sigma, lm, nmap = data
    L_, W, sig = ny.cast_map(nmap, jnp.float64)
    G = ny.nystrom_accumulator((jnp.asarray(x),), L_, W, sig, block=777, strategy=strategy, backend=backend)
    per = nmap.num_landmarks if strategy == "kernel" else nmap.rank
    assert G.shape == (per, per) and G.dtype == jnp.float64
    g = ny.finalize_gram(G, jnp.asarray(nmap.whitening), strategy=strategy, paired=False)
    assert _rel(g, ref.gram(x, np.asarray(lm.points), sigma, ny.DEFAULT_RTOL)) < 1e-9


def test_cast_map_default_block_and_strategy_rules(data):
    x, sigma, lm, nmap = data
    L32, W32, s = ny.cast_map(nmap, jnp.float32)
    assert L32.dtype == W32.dtype == jnp.float32 and s.dtype == jnp.float64 and float(s) == sigma
    assert L32.shape == (200, 24) and W32.shape == (200, nmap.rank)
    assert ny.default_block(123_456, "ffi", 2000) == 123_456  # the core chunks itself
    assert ny.default_block(0, "ffi", 2000) == 1
    assert ny.default_block(10**6, "jax", 2000) == (1 << 23) // 2000  # ≈ 32 MB float32 tiles
    assert ny.default_block(100, "jax", 2000) == 256
    assert ny.resolve_strategy("auto", "ffi") == "kernel" and ny.resolve_strategy("auto", "jax") == "whiten"
    assert ny.resolve_strategy("whiten", "ffi") == "whiten"
    with pytest.raises(ValueError, match="strategy: expected one of"):
        ny.resolve_strategy("fast", "ffi")
    assert ny.host_update_available("jax") is False


@needs_ext
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("paired", [False, True])
def test_host_update_equals_the_device_accumulator(data, dtype, paired):
    """nystrom_update_host (the compiled core on host rows, in place, over two calls) then finalize_host equals
    the jitted kernel-form path."""
    x, sigma, lm, nmap = data
    t = x[::-1].copy()
    R = (2 if paired else 1) * nmap.num_landmarks
    M = np.zeros((R, R))
    for i in (slice(0, 1234), slice(1234, None)):
        out = ny.nystrom_update_host(M, t[i] if paired else x[i], nmap, images=x[i] if paired else None,
                                     dtype=dtype)
        assert out is M
    host = ny.finalize_host(M, nmap, paired=paired)
    one = (ny.nystrom_joint_gram(t.astype(dtype), x.astype(dtype), nmap, backend="ffi", strategy="kernel")
           if paired else ny.nystrom_gram(x.astype(dtype), nmap, backend="ffi", strategy="kernel"))
    assert _rel(host, one) < (1e-11 if dtype == np.float64 else 1e-5)
    with pytest.raises(ValueError, match="dtype: float32 or float64"):
        ny.nystrom_update_host(np.zeros((200, 200)), x, nmap, dtype=np.float16)
