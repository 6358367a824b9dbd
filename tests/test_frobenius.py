"""clipcore.frobenius: the exact ‖K‖_F² = Σ_ij k(x_i, x_j)² (Gaussian: symmetric tiles, the cross term, panels
of rows; cosine: the d×d covariance) and the streamed RKE n² / ‖K‖_F², against the dense float64 kernel of
tests/reference/nystrom_numpy.py."""

from __future__ import annotations

import numpy as np
import pytest

import clipcore
from clipcore import _ffi
from clipcore import frobenius as FR
from reference import nystrom_numpy as ref

needs_ext = pytest.mark.skipif(not _ffi.available(), reason=f"compiled core: {_ffi.unavailable_reason()}")
BACKENDS = [pytest.param("ffi", marks=needs_ext), "jax"]


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
        f = FR.kernel_sq_frobenius(x, sigma=sigma, backend=backend, tile_rows=tile)
        assert abs(f / f_ref - 1) < tol, tile
    r = FR.rke_streamed(x, sigma=sigma, backend=backend)
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
        f = FR.kernel_sq_frobenius(x, y=y, sigma=4.0, backend=backend, tile_rows=tile)
        assert abs(f / ref.sq_frobenius(x, 4.0, y) - 1) < tol, tile
    assert FR.kernel_sq_frobenius(x, y=y[:0], sigma=4.0, backend=backend) == 0.0
    xn = x / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    yn = y / np.linalg.norm(y.astype(np.float64), axis=1, keepdims=True)
    c = FR.kernel_sq_frobenius(x, y=y, kernel="cosine", backend=backend)
    assert abs(c / np.sum((xn @ yn.T) ** 2) - 1) < 1e-12
    with pytest.raises(ValueError, match=r"y: expected \[p, 16\] rows like x"):
        FR.kernel_sq_frobenius(x, y=y[:, :5], sigma=4.0, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sq_frobenius_panels_equal_the_whole(backend):
    """Σ_P ‖K_PP‖² + 2 Σ_{P<Q} ‖K_PQ‖² over panels of any size (one row, uneven, one panel) is ‖K‖_F²,
    and the pairs it reports cover i ≤ j once."""
    x = ref.clustered(610, 8, clusters=4, noise=0.4, seed=23, dtype=np.float64)
    want = ref.sq_frobenius(x, 3.0)
    for panel in ((1, 97, 610, 5000) if backend == "ffi" else (97, 610)):
        pairs = []
        got = FR.sq_frobenius_panels(lambda a, b: x[a:b], 610, 3.0, panel_rows=panel, backend=backend,
                                     on_pairs=pairs.append)
        assert abs(got / want - 1) < 1e-12, panel
        assert sum(pairs) == 610 * 611 // 2
    with pytest.raises(ValueError, match="panel_rows"):
        FR.sq_frobenius_panels(lambda a, b: x[a:b], 610, 3.0, panel_rows=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rke_streamed_matches_clipcore_rke(backend):
    x = ref.clustered(400, 12, seed=13, dtype=np.float64)
    exact = clipcore.rke(x, kernel="gaussian", sigma=2.0)
    r = FR.rke_streamed(x, sigma=2.0, backend=backend)
    assert abs(r.score / exact.score - 1) < 1e-9  # the clamp at 1e-10 adds ≤ n·1e-20 to Σλ²
    c = FR.rke_streamed(x, kernel="cosine", backend=backend)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = xn @ xn.T
    assert abs(c.frobenius_sq / np.sum(cos * cos) - 1) < 1e-12
    assert abs(c.score / clipcore.rke(x, kernel="cosine").score - 1) < 1e-9


def test_rke_rejects_bad_input():
    with pytest.raises(ValueError, match="kernel"):
        FR.rke_streamed(np.ones((3, 2)), kernel="laplace")
    with pytest.raises(ValueError, match="sigma"):
        FR.rke_streamed(np.ones((3, 2)), sigma=None)
    with pytest.raises(ValueError, match="non-zero rows"):
        FR.rke_streamed(np.zeros((3, 2)), kernel="cosine")


def test_device_and_host_rows_give_the_same_sum():
    """A jax.Array and the same rows on the host: one ‖K‖_F² (the entry takes either)."""
    import jax.numpy as jnp

    x = ref.clustered(300, 8, clusters=4, noise=0.4, seed=24, dtype=np.float64)
    want = ref.sq_frobenius(x, 2.0)
    assert FR.kernel_sq_frobenius(jnp.asarray(x), sigma=2.0) == pytest.approx(want, rel=1e-12)
    assert FR.kernel_sq_frobenius(x, sigma=2.0) == pytest.approx(want, rel=1e-12)
    r = FR.rke_streamed(x, kernel="cosine")
    assert r.sigma is None and r.kernel == "cosine" and r.n == 300 and r.score == pytest.approx(300**2 / r.frobenius_sq)


@pytest.mark.parametrize("call, match", [
    (lambda x: FR.kernel_sq_frobenius(x), "sigma: the Gaussian bandwidth is needed"),
    (lambda x: FR.kernel_sq_frobenius(x, sigma=-1.0), "sigma: the Gaussian bandwidth must be a finite positive"),
    (lambda x: FR.kernel_sq_frobenius(x, sigma=np.inf), "sigma: the Gaussian bandwidth must be a finite positive"),
    (lambda x: FR.kernel_sq_frobenius(x, kernel="laplace"), "kernel: expected 'gaussian' or 'cosine'"),
    (lambda x: FR.kernel_sq_frobenius(x[0], sigma=1.0), r"x: expected a \[n, d\] array"),
    (lambda x: FR.kernel_sq_frobenius(x.astype(np.int32), sigma=1.0), "x: dtype must be float32 or float64"),
    (lambda x: FR.kernel_sq_frobenius(x, y=x[:, :1], sigma=1.0), r"y: expected \[p, 3\] rows like x"),
    (lambda x: FR.sq_frobenius_panels(lambda a, b: x[a:b], 5, None, panel_rows=2), "sigma: the Gaussian bandwidth"),
    (lambda x: FR.rke_streamed(x, kernel="cosine", backend="cuda"), "backend: expected one of"),
])
def test_refusals_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call(np.ones((5, 3)))
