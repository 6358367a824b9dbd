"""Gaussian SCE / Vendi / RKE at large n: Nyström through the public API, the exact streamed RKE.

References: tests/reference/large_n_numpy.py (float64 NumPy, every tail
materialised), tests/reference/sce_numpy.py (exact dual SCE), vendi-score's
``score_K``-equivalent dense Rényi-2.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import clipcore
from clipcore import _ffi
from clipcore import _large_n as LN
from clipcore import scores as S
from reference import large_n_numpy as lref
from reference import nystrom_numpy as nref
from reference import sce_numpy as ref

needs_ext = pytest.mark.skipif(not _ffi.available(), reason=f"compiled core: {_ffi.unavailable_reason()}")


@pytest.fixture(scope="module")
def pairs():
    d = clipcore.synthetic_pairs(600, 16, num_prompts=6, num_modes=3, seed=4)
    return d.images.astype(np.float64), d.texts.astype(np.float64)


def _sample_rows(n, s, seed):
    return LN.pool_rows(n, min(s, n), seed + 1)


# ------------------------------------------------------------- entropies with a flat tail
@pytest.mark.parametrize("order", [1.0, 2.0, 0.5, np.inf])
@pytest.mark.parametrize("clamp", [1e-10, None])
def test_entropy_with_flat_tail_equals_materialised(order, clamp):
    rng = np.random.default_rng(0)
    explicit = np.concatenate([rng.uniform(0, 0.1, 30), [0.0, 0.0]])
    count, value = 500, 1e-4
    full = np.concatenate([explicit, np.full(count, value)])
    sp = LN.Spectrum(explicit, float(count), value)
    assert LN.renyi_entropy_tail(sp, order, clamp) == pytest.approx(ref.log_renyi(full, order, clamp), rel=1e-12)
    if order == 1.0 and clamp is not None:
        assert LN.matrix_entropy_tail(sp, clamp) == pytest.approx(ref.log_code_score(full, clamp), rel=1e-12)


# ------------------------------------------------------------- SCE with given landmarks vs NumPy
@pytest.mark.parametrize("backend", [pytest.param("ffi", marks=needs_ext), "jax"])
def test_nystrom_sce_matches_numpy_reference(pairs, backend):
    x, t = pairs
    sigma = 0.9
    L = np.concatenate([t[::20], x[::20]])  # 60 given landmarks from both modalities
    res = clipcore.sce(x, t, kernel="gaussian", sigma=sigma, landmarks=L, residual_sample=200, key=3,
                       backend=backend)
    want, cap = lref.nystrom_sce(t, x, L, sigma, _sample_rows(x.shape[0], 200, 3))
    info = res.nystrom
    assert res.method == "primal/nystrom" and info["estimate"] == "residual"
    assert info["captured_trace"] == pytest.approx(cap, rel=1e-10)
    assert info["missing_mass"] == pytest.approx(1 - cap, rel=1e-8)
    for kind, (ls, lt, li) in want.items():
        got = info["estimates"][kind]
        assert got["log_sce"] == pytest.approx(ls, rel=1e-7), kind
        assert got["log_text_score"] == pytest.approx(lt, rel=1e-7), kind
        assert got["log_image_score"] == pytest.approx(li, rel=1e-7), kind
    assert res.log_sce == info["estimates"]["residual"]["log_sce"]
    # the tail goes to S and C_XX: their traces are 1 and tr S + tr R = 1 as for the exact kernel
    e = info["estimates"]["missing-mass"]
    assert e["trace_image"] == pytest.approx(1.0, abs=1e-9)
    assert e["trace_complement"] + e["trace_text"] == pytest.approx(1.0, abs=1e-7)


def test_nystrom_estimate_selects_the_reported_scores(pairs):
    x, t = pairs
    a = clipcore.sce(x, t, kernel="gaussian", landmarks=80, estimate="missing-mass")
    b = clipcore.sce(x, t, kernel="gaussian", landmarks=80, estimate="renormalised")
    # every estimate is reported either way (two runs: the compiled core's threads may sum chunks
    # in another order, so equal to float64 rounding, not bit for bit)
    for kind, est in a.nystrom["estimates"].items():
        assert est == pytest.approx(b.nystrom["estimates"][kind], rel=1e-10)
    assert a.sce == pytest.approx(a.nystrom["estimates"]["missing-mass"]["sce"])
    assert b.sce == pytest.approx(b.nystrom["estimates"]["renormalised"]["sce"])
    assert a.sce != pytest.approx(b.sce, rel=1e-3)


def test_all_rows_as_landmarks_is_the_exact_kernel(pairs):
    """m = 2n landmarks (every text and image): nothing is missed and every estimate equals the exact dual.

    The pseudo-inverse cutoff is set (rtol=1e-4) for both: the text part
    depends on it (SPEC.md), and the defaults differ (n·eps32 on K_T in the
    dual, r·eps32 on C_TT here).
    """
    x, t = pairs[0][:150], pairs[1][:150]
    sigma = 1.1
    res = clipcore.sce(x, t, kernel="gaussian", sigma=sigma, landmarks=300, landmark_method="uniform",
                       residual_sample=50, rtol=1e-4)
    assert res.nystrom["captured_trace"] == pytest.approx(1.0, abs=1e-6)
    exact = ref.sce_exact_gaussian(t, x, sigma, rtol=1e-4)
    for kind, e in res.nystrom["estimates"].items():
        assert e["log_image_score"] == pytest.approx(ref.log_renyi(exact.image, 1.0), rel=1e-5), kind
        assert e["log_text_score"] == pytest.approx(ref.log_code_score(exact.text), rel=1e-4), kind
        assert e["log_sce"] == pytest.approx(ref.log_code_score(exact.complement), rel=1e-4), kind


def test_nystrom_converges_to_exact_with_m(pairs):
    """The default estimate's error on the image entropy shrinks as m grows (a real trend, not a constant)."""
    x, t = pairs
    sigma = 0.8
    truth = ref.log_renyi(np.linalg.eigvalsh(nref.gaussian(x, x, sigma) / x.shape[0]), 1.0)
    errs = []
    for m in (25, 100, 400):
        r = clipcore.vendi(x, kernel="gaussian", sigma=sigma, landmarks=m, key=0)
        errs.append(abs(r.log_score / truth - 1))
    assert errs[2] < errs[1] < errs[0]
    assert errs[2] < 0.02


@pytest.mark.parametrize("order", [1.0, 2.0])
def test_nystrom_vendi_matches_numpy_reference(pairs, order):
    x, _ = pairs
    sigma = 0.9
    L = x[::10]
    res = clipcore.vendi(x, kernel="gaussian", sigma=sigma, order=order, landmarks=L, residual_sample=100, key=2)
    want = lref.nystrom_vendi(x, L, sigma, _sample_rows(x.shape[0], 100, 2), order)
    for kind, v in want.items():
        assert res.nystrom["estimates"][kind]["log_score"] == pytest.approx(v, rel=1e-7), kind


def test_nystrom_streamed_equals_in_memory(pairs, tmp_path):
    x, t = pairs
    clipcore.write_shards(tmp_path / "emb", x, t, shard_rows=128)
    kw = dict(kernel="gaussian", sigma=0.9, landmarks=64, key=5, residual_sample=100, progress=False)
    a = clipcore.sce(x, t, **kw)
    old = S.IN_MEMORY_ROWS
    S.IN_MEMORY_ROWS = 100  # force the streamed path on this small set
    try:
        b = clipcore.sce(str(tmp_path / "emb"), block_size=97, **kw)
        vb = clipcore.vendi(str(tmp_path / "emb" / "images-*.npy"), order=2, **kw)
    finally:
        S.IN_MEMORY_ROWS = old
    va = clipcore.vendi(x, order=2, **kw)
    assert b.n == a.n
    for k in ("log_sce", "log_text_score", "log_image_score"):
        assert getattr(b, k) == pytest.approx(getattr(a, k), rel=1e-9)
    assert vb.log_score == pytest.approx(va.log_score, rel=1e-9)


def test_nystrom_float32_agrees_with_float64(pairs):
    x, t = pairs
    kw = dict(kernel="gaussian", sigma=0.9, landmarks=64, key=1)
    a = clipcore.sce(x, t, **kw)
    b = clipcore.sce(x.astype(np.float32), t.astype(np.float32), dtype="float32", **kw)
    assert b.log_sce == pytest.approx(a.log_sce, rel=1e-4)
    assert b.nystrom["captured_trace"] == pytest.approx(a.nystrom["captured_trace"], rel=1e-5)


@pytest.mark.parametrize("method", ["uniform", "kmeans++", "pivoted-cholesky"])
def test_landmark_methods_are_seeded(pairs, method):
    x, t = pairs
    kw = dict(kernel="gaussian", landmarks=40, landmark_method=method)
    a = clipcore.sce(x, t, key=7, **kw)
    b = clipcore.sce(x, t, key=7, **kw)
    # same landmarks (seeded); the sums equal to float64 rounding (threaded chunk order)
    assert a.sce == pytest.approx(b.sce, rel=1e-10) and a.nystrom["landmark_method"] == method
    assert a.nystrom["selected"] == b.nystrom["selected"] and a.nystrom["rank"] == b.nystrom["rank"]
    assert 0 < a.nystrom["captured_trace"] <= 1 + 1e-9


def test_nystrom_summary_is_json_ready(pairs):
    import json

    x, t = pairs
    r = clipcore.sce(x, t, kernel="gaussian", landmarks=30)
    json.dumps(r.summary())
    json.dumps(clipcore.vendi(x, kernel="gaussian", landmarks=30).summary())


def test_low_capture_warns_when_one_modality_takes_every_landmark():
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((4, 16))
    x = centres[rng.integers(0, 4, 400)] + 0.05 * rng.standard_normal((400, 16))  # images: 4 tight clusters
    t = 10.0 * rng.standard_normal((400, 16))  # texts: isolated points (≈ 56 apart at sigma = 1)
    # pivoted Cholesky on the joint pool [texts; images]: every text keeps residual 1, so all 40 landmarks are
    # texts and the images' features capture almost nothing of their kernel trace
    with pytest.warns(clipcore.LowCaptureWarning) as rec:
        r = clipcore.sce(x, t, kernel="gaussian", sigma=1.0, landmarks=40)
    # both warn: 40 landmarks hold 40 of the 400 isolated texts (0.1), and none of the images
    assert sorted(str(w.message).split("' kernel")[0].split()[-1] for w in rec) == ["images", "texts"]
    assert r.nystrom["captured_trace_texts"] == pytest.approx(0.1, abs=1e-6)
    cap = r.nystrom["captured_trace"]
    # independently: the images' trace captured by 40 text landmarks, tr(K_xL K_LL^+ K_Lx) / n
    L = t[:40]
    want = np.trace(nref.gaussian(x, L, 1.0) @ np.linalg.pinv(nref.gaussian(L, L, 1.0)) @ nref.gaussian(L, x, 1.0))
    assert cap < S.LOW_CAPTURE and cap == pytest.approx(want / x.shape[0], abs=1e-9)
    # the images alone are well captured by 40 landmarks: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", clipcore.LowCaptureWarning)
        v = clipcore.vendi(x, kernel="gaussian", sigma=1.0, landmarks=40)
    assert v.nystrom["captured_trace"] > 0.9


def test_no_low_capture_warning_on_ordinary_data(pairs):
    x, t = pairs
    with warnings.catch_warnings():
        warnings.simplefilter("error", clipcore.LowCaptureWarning)
        r = clipcore.sce(x, t, kernel="gaussian", landmarks=30)
    assert r.nystrom["captured_trace"] >= S.LOW_CAPTURE


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kernel="cosine", landmarks=10), "landmarks"),
        (dict(kernel="gaussian", landmarks=10, rff_features=20), "not both"),
        (dict(kernel="gaussian", landmarks=0), "landmarks"),
        (dict(kernel="gaussian", landmarks=10, estimate="best"), "estimate"),
        (dict(kernel="gaussian", landmarks=10, landmark_method="random"), "landmark_method"),
        (dict(kernel="gaussian", landmarks=10, method="dual"), "method"),
        (dict(kernel="gaussian", landmarks=10, residual_sample=0), "residual_sample"),
        (dict(kernel="gaussian", landmarks=np.ones((5, 3))), "dimension"),
        (dict(kernel="gaussian", landmarks=np.full((5, 16), np.nan)), "NaN"),
        (dict(kernel="gaussian", landmarks=10, key=1.5), "key"),
    ],
)
def test_nystrom_bad_options(pairs, kwargs, match):
    x, t = pairs
    with pytest.raises(ValueError, match=match):
        clipcore.sce(x, t, **kwargs)


# ------------------------------------------------------------- exact RKE through ‖K‖_F²
@pytest.mark.parametrize("backend", [pytest.param("ffi", marks=needs_ext), "jax"])
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
    monkeypatch.setattr(S, "FROBENIUS_ROWS", 100)
    r = clipcore.rke(x, kernel="gaussian", sigma=0.7)
    assert r.method == "frobenius/exact"
    monkeypatch.setattr(S, "FROBENIUS_ROWS", 10_000)
    assert clipcore.rke(x, kernel="gaussian", sigma=0.7).method == "dual/exact"
    # a host array above IN_MEMORY_ROWS (> FROBENIUS_ROWS) is read by blocks (memory) but is in memory:
    # order 2 stays exact, not Nyström
    monkeypatch.setattr(S, "FROBENIUS_ROWS", 100)
    monkeypatch.setattr(S, "IN_MEMORY_ROWS", 200)
    big = clipcore.rke(np.asarray(x), kernel="gaussian", sigma=0.7, progress=False)
    assert big.method == "frobenius/exact" and big.score == pytest.approx(r.score, rel=1e-12)


def test_frobenius_errors(pairs, tmp_path):
    x, t = pairs
    with pytest.raises(ValueError, match="frobenius"):
        clipcore.rke(x, kernel="gaussian", rff_features=10, method="frobenius")
    with pytest.raises(ValueError, match="frobenius"):
        clipcore.vendi(x, kernel="gaussian", order=1, method="frobenius")


@pytest.mark.parametrize("backend", [pytest.param("ffi", marks=needs_ext), "jax"])
def test_exact_rke_from_files_by_panels(pairs, tmp_path, monkeypatch, capsys, backend):
    """rke(files, method="frobenius"): the exact ‖K‖_F² streamed panel against panel (two panels in
    memory) from shards, equal to the dense kernel's; a progress bar counts pairs; a bad row names its
    shard; an iterator (read once) is refused. Rows in memory go through the same panels."""
    x, _ = pairs
    monkeypatch.setattr(S, "IN_MEMORY_ROWS", 0)  # stream these small files
    monkeypatch.setattr(S, "FROBENIUS_PANEL_VALUES", 130 * x.shape[1])  # 512-row panels: several
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


def test_cli_score_with_landmarks(tmp_path, pairs):
    import json

    from clipcore import cli

    x, t = pairs
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    out = tmp_path / "o.json"
    rc = cli.main(["score", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"),
                   "--kernel", "gaussian", "--sigma", "0.9", "--landmarks", "50", "--estimate", "missing-mass",
                   "--seed", "2", "--json", str(out), "--quiet"])
    assert rc == 0
    got = json.loads(out.read_text())
    want = clipcore.sce(x, t, kernel="gaussian", sigma=0.9, landmarks=50, estimate="missing-mass", key=2)
    assert got["scores"]["sce"] == pytest.approx(want.sce, rel=1e-12)
    assert got["result"]["nystrom"]["estimate"] == "missing-mass"
    assert set(got["result"]["nystrom"]["estimates"]) == {"residual", "missing-mass", "renormalised"}
    v = clipcore.vendi(x, kernel="gaussian", sigma=0.9, order=2, landmarks=50, estimate="missing-mass", key=2)
    assert got["scores"]["vendi"]["2.0"] == pytest.approx(v.score, rel=1e-12)


@pytest.mark.parametrize("ridge", [None, 1e-3])
def test_schur_from_gram_host_equals_jitted(ridge):
    """The host Schur solve of the Nyström SCE (g consumed in place) against the jitted schur_primal path and
    against a float64 NumPy evaluation of SPEC.md's R = C_TXᵀ C_TT⁺ C_TX, S = C_XX − R, with a rank-deficient
    C_TT so the pseudo-inverse cut matters."""
    rng = np.random.default_rng(21)
    r, n = 60, 500
    T = rng.standard_normal((n, 40)) @ rng.standard_normal((40, r))  # C_TT of rank 40 < r
    X = 0.5 * T + rng.standard_normal((n, r))
    Z = np.concatenate([T, X], 1)
    g = Z.T @ Z
    rtol = 1e-9
    want = LN.schur_from_gram(jnp.asarray(g), n, r, rtol, ridge)  # the jitted path (a device array)
    got = LN.schur_from_gram(g.copy(), n, r, rtol, ridge)  # the host path
    for a, b in zip(got[:3], want[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12 * b.max())
    assert got[3] == want[3] == (r if ridge is not None else 40)
    assert got[4] == pytest.approx(want[4], rel=1e-13) and got[5] == pytest.approx(want[5], rel=1e-13)
    # independent NumPy: eigenvalues of R and S
    c = g / n
    ctt, ctx, cxx = c[:r, :r], c[:r, r:], c[r:, r:]
    w, v = np.linalg.eigh(ctt)
    if ridge is None:
        keep = np.abs(w + 1e-12) > rtol * np.max(np.abs(w + 1e-12))
        inv = np.where(keep, 1 / (w + 1e-12), 0)
    else:
        inv = 1 / (np.maximum(w, 0) + ridge)
    Rm = ctx.T @ v @ np.diag(inv) @ v.T @ ctx
    text = np.maximum(np.linalg.eigvalsh(Rm)[::-1], 0)
    comp = np.maximum(np.linalg.eigvalsh(cxx - Rm)[::-1], 0)
    np.testing.assert_allclose(got[1], text, rtol=1e-8, atol=1e-10 * text.max())
    np.testing.assert_allclose(got[2], comp, rtol=1e-8, atol=1e-10 * comp.max())
    np.testing.assert_allclose(got[0], np.linalg.eigvalsh(cxx)[::-1], rtol=1e-10)
