"""clipcore._pipeline.frobenius_run: the exact Gaussian RKE n² / ‖K‖_F² of one call (rows in memory by panels
or in one call of the target, rows streamed from files panel against panel), against the dense float64
‖K‖_F² of tests/reference/nystrom_numpy.py; and the auto rule's switch to it (clipcore._pipeline.plan)."""

from __future__ import annotations

import numpy as np
import pytest

import clipcore
from clipcore import _ffi
from clipcore._options import resolve_execution, resolve_precision
from clipcore._pipeline import frobenius_run as FRR
from clipcore._pipeline import inputs as PI
from clipcore._pipeline import plan as PL
from reference import nystrom_numpy as nref

needs_ext = pytest.mark.skipif(not _ffi.available(), reason=f"compiled core: {_ffi.unavailable_reason()}")
BACKENDS = [pytest.param("ffi", marks=needs_ext), "jax"]


@pytest.fixture(scope="module")
def pairs():
    d = clipcore.synthetic_pairs(600, 16, num_prompts=6, num_modes=3, seed=4)
    return d.images.astype(np.float64), d.texts.astype(np.float64)


def test_panel_rows_are_whole_tiles_bounded_by_memory():
    """Multiples of the core's 512-row tile: about 16 panels for rows in memory (at least 2048 rows), and two
    panels of ≤ 2²⁵ values (rounded up to a tile) for streamed rows."""
    assert FRR.panel_rows(100, 16, streamed=False) == 2048
    assert FRR.panel_rows(10**6, 16, streamed=False) == 62976  # ⌈10⁶ / 16⌉ = 62 500 → 123 tiles
    assert FRR.panel_rows(10**6, 512, streamed=True) == FRR.FROBENIUS_PANEL_VALUES // 512 == 65536
    assert FRR.panel_rows(10**6, 10**6, streamed=True) == 512
    for args in ((12345, 7, False), (12345, 700, True), (10**7, 3, True)):
        assert FRR.panel_rows(args[0], args[1], streamed=args[2]) % 512 == 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("normalize", [False, True])
def test_frobenius_sq_of_rows_in_memory(pairs, backend, normalize):
    x, _ = pairs
    inputs = PI.single_inputs(x, nonzero=normalize)
    f, n = FRR.frobenius_sq(inputs, 0.7, resolve_precision(None), resolve_execution(backend=backend, progress=False),
                            normalize)
    xx = x / np.linalg.norm(x, axis=1, keepdims=True) if normalize else x
    assert n == 600 and f == pytest.approx(nref.sq_frobenius(xx, 0.7), rel=1e-11)


# ------------------------------------------------------------- through rke / vendi (moved from test_large_n.py)
@pytest.mark.parametrize("backend", BACKENDS)
def test_rke_frobenius_equals_dense(pairs, backend):
    x, _ = pairs
    sigma = 0.7
    K = nref.gaussian(x, x, sigma) / x.shape[0]
    want = 1.0 / np.sum(K * K)  # exp(H2) = 1 / Σ λ² = n² / ‖K‖_F²
    r = clipcore.rke(x, kernel="gaussian", sigma=sigma, method="frobenius", backend=backend)
    assert r.score == pytest.approx(want, rel=1e-10)
    assert r.method == "frobenius/exact" and r.eigenvalues.size == 0
    # the eigenvalue path (clamp=None) gives the same number
    e = clipcore.rke(x, kernel="gaussian", sigma=sigma, clamp=None)
    assert e.score == pytest.approx(want, rel=1e-9)


def test_rke_auto_switches_to_frobenius_above_threshold(pairs, monkeypatch):
    x, _ = pairs
    monkeypatch.setattr(PL, "FROBENIUS_ROWS", 100)
    r = clipcore.rke(x, kernel="gaussian", sigma=0.7)
    assert r.method == "frobenius/exact"
    monkeypatch.setattr(PL, "FROBENIUS_ROWS", 10_000)
    assert clipcore.rke(x, kernel="gaussian", sigma=0.7).method == "dual/exact"
    # a host array above IN_MEMORY_ROWS (> FROBENIUS_ROWS) is read by blocks (memory) but is in memory:
    # order 2 stays exact, not Nyström
    monkeypatch.setattr(PL, "FROBENIUS_ROWS", 100)
    monkeypatch.setattr(PI, "IN_MEMORY_ROWS", 200)
    big = clipcore.rke(np.asarray(x), kernel="gaussian", sigma=0.7, progress=False)
    assert big.method == "frobenius/exact" and big.score == pytest.approx(r.score, rel=1e-12)


def test_frobenius_errors(pairs, tmp_path):
    x, t = pairs
    with pytest.raises(ValueError, match="frobenius"):
        clipcore.rke(x, kernel="gaussian", rff_features=10, method="frobenius")
    with pytest.raises(ValueError, match="frobenius"):
        clipcore.vendi(x, kernel="gaussian", order=1, method="frobenius")


@pytest.mark.parametrize("backend", BACKENDS)
def test_exact_rke_from_files_by_panels(pairs, tmp_path, monkeypatch, capsys, backend):
    """rke(files, method="frobenius"): the exact ‖K‖_F² streamed panel against panel (two panels in
    memory) from shards, equal to the dense kernel's; a progress bar counts pairs; a bad row names its
    shard; an iterator (read once) is refused. Rows in memory go through the same panels."""
    x, _ = pairs
    monkeypatch.setattr(PI, "IN_MEMORY_ROWS", 0)  # stream these small files
    monkeypatch.setattr(FRR, "FROBENIUS_PANEL_VALUES", 130 * x.shape[1])  # 512-row panels: several
    paths = []
    for k, (a, b) in enumerate([(0, 300), (300, 301), (301, x.shape[0])]):
        paths.append(str(tmp_path / f"x-{k}.npy"))
        np.save(paths[-1], x[a:b])
    sigma = 0.7
    want = x.shape[0] ** 2 / nref.sq_frobenius(x, sigma)
    r = clipcore.rke(paths, kernel="gaussian", sigma=sigma, method="frobenius", backend=backend, progress=True)
    assert r.score == pytest.approx(want, rel=1e-11) and r.method == "frobenius/exact" and r.n == x.shape[0]
    assert "pairs" in capsys.readouterr().err
    n = clipcore.rke(paths, kernel="gaussian", sigma=sigma, normalize=True, method="frobenius", backend=backend,
                     progress=False)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert n.score == pytest.approx(x.shape[0] ** 2 / nref.sq_frobenius(xn, sigma), rel=1e-11)
    mem = clipcore.rke(np.concatenate([x] * 3), kernel="gaussian", sigma=sigma, method="frobenius",
                       backend=backend, progress=False)  # rows in memory: panels of 2048 rows
    assert mem.score == pytest.approx(9 * x.shape[0] ** 2 / (9 * nref.sq_frobenius(x, sigma)), rel=1e-11)
    bad = x[301:].copy()
    bad[4, 2] = np.inf
    np.save(paths[2], bad)
    with pytest.raises(ValueError, match=r"x: contains Inf at row 305 \(x-2.npy, row 4\)"):
        clipcore.rke(paths, kernel="gaussian", sigma=sigma, method="frobenius", progress=False)
    with pytest.raises(ValueError, match="an iterator or a distributed source is read once"):
        clipcore.rke(iter([x[:100], x[100:]]), kernel="gaussian", sigma=sigma, method="frobenius")
