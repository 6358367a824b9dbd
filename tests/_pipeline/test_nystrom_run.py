"""clipcore._pipeline.nystrom_run: one Nyström call, SCE (paired) and Vendi (one set) alike — landmarks, map,
one pass (the compiled core's host entry or the XLA targets / JAX twins; arrays, files, iterators), spectra,
the "residual" tail and the entropies under every named estimate — against the float64 NumPy reference
(tests/reference/large_n_numpy.py, every tail materialised; tests/reference/sce_numpy.py, the exact dual).

The "residual" estimate has no closed form to copy into a reference: here its bookkeeping is checked (its tail
carries exactly the missing mass, R is as measured); its soundness against the exact spectra of the full n×n
kernel is tests/test_nystrom_spectra.py's.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import clipcore
from clipcore import _ffi
from clipcore._options import resolve_execution, resolve_numerics, resolve_nystrom
from clipcore._pipeline import inputs as PI
from clipcore._pipeline import nystrom_run as NR
from clipcore.entropy import matrix_entropy_tail, renyi_entropy_tail
from clipcore.nystrom_spectra import estimate_spectra
from reference import large_n_numpy as lref
from reference import nystrom_numpy as nref
from reference import sce_numpy as ref

needs_ext = pytest.mark.skipif(not _ffi.available(), reason=f"compiled core: {_ffi.unavailable_reason()}")
BACKENDS = [pytest.param("ffi", marks=needs_ext), "jax"]


@pytest.fixture(scope="module")
def pairs():
    d = clipcore.synthetic_pairs(600, 16, num_prompts=6, num_modes=3, seed=4)
    return d.images.astype(np.float64), d.texts.astype(np.float64)


def run(x, t, sigma, landmarks, *, backend="auto", residual_sample=200, key=3, block_size=None):
    """run_nystrom on in-memory rows, its options resolved as sce / vendi resolve them."""
    numerics = resolve_numerics()
    kopts = PI.resolve_kernel_options(kernel="gaussian", sigma=sigma, key=key)
    nys = resolve_nystrom(landmarks=landmarks, residual_sample=residual_sample)
    execution = resolve_execution(backend=backend, block_size=block_size, progress=False)
    with numerics.precision.context():
        inputs = (PI.single_inputs(x, nonzero=False) if t is None
                  else PI.paired_inputs(x, t, nonzero=False, same_dim=True))
        setup = PI.resolve_kernel(kopts, normalize=False, convention="paper", sample=inputs.sample,
                                  dim=inputs.d_images)
        return NR.run_nystrom(inputs, setup, numerics, nys, execution, kopts.seed, paired=t is not None,
                              nonzero=False, desc="test")


# ------------------------------------------------------------- the run itself
@pytest.mark.parametrize("backend", BACKENDS)
def test_run_spectra_equal_the_reference(pairs, backend):
    """Given landmarks from both modalities: the spectra of S, R and C_XX, the kept rank and the captured traces
    of the run (host entry on "ffi", the JAX twins on "jax") equal the materialised float64 reference; the
    entropies of the defined estimates too; the residual tail carries exactly the missing mass."""
    x, t = pairs
    sigma = 0.9
    L = np.concatenate([t[::20], x[::20]])
    r = run(x, t, sigma, L, backend=backend, block_size=170)
    comp, text, image, rank, cap, cap_t = lref.nystrom_sce_spectra(t, x, L, sigma)
    assert r.n == 600 and r.asked == 60 and r.landmarks.method == "given" and r.nmap.rank == image.shape[0]
    np.testing.assert_allclose(r.image, image, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(r.text, text, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(r.complement, comp, rtol=1e-8, atol=1e-12)
    assert r.rank_kept == rank
    assert r.captured == pytest.approx(cap, rel=1e-10) and r.captured_texts == pytest.approx(cap_t, rel=1e-10)
    assert r.rtol == pytest.approx(r.nmap.rank * float(np.finfo(np.float32).eps))
    assert r.seed == 3
    assert r.tail.total() == pytest.approx(1.0 - cap, rel=1e-9)
    assert len(r.tail.explicit) + r.tail.count == 600 - r.nmap.rank
    want, _ = lref.nystrom_sce(t, x, L, sigma)
    ests = NR.sce_entropies(r, 1e-10)
    assert set(ests) == {"projected", "residual", "missing-mass", "renormalised"}  # "projected": its own tests
    for kind, (ls, lt, li) in want.items():
        e = ests[kind]
        assert (e.log_complement, e.log_text, e.log_image) == pytest.approx((ls, lt, li), rel=1e-7), kind
    # the residual estimate: the tail goes to S and C_XX, R is as measured
    si, sc, st = estimate_spectra("residual", r.image, r.complement, r.text, r.captured, r.tail, r.n)
    e = ests["residual"]
    assert e.log_complement == matrix_entropy_tail(sc, 1e-10) and e.log_image == renyi_entropy_tail(si, 1.0, 1e-10)
    assert e.log_text == ests["missing-mass"].log_text
    assert e.trace_image == pytest.approx(1.0, abs=1e-9)
    assert e.trace_complement + e.trace_text == pytest.approx(1.0, abs=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("order", [1.0, 2.0, float("inf")])
def test_one_set_run_equals_the_reference(pairs, backend, order):
    x, _ = pairs
    L = x[::10]
    r = run(x, None, 0.9, L, backend=backend, residual_sample=100, key=2)
    assert r.text is None and r.complement is None and r.captured_texts is None and r.rank_kept == 0
    c = nref.gram(x, L, 0.9, float(np.finfo(np.float32).eps)) / 600
    np.testing.assert_allclose(r.image, np.maximum(ref.eigvals_desc(c), 0), rtol=1e-8, atol=1e-12)
    assert r.captured == pytest.approx(np.trace(c), rel=1e-10)
    ests = NR.vendi_entropies(r, order, 1e-10)
    for kind, v in lref.nystrom_vendi(x, L, 0.9, order).items():
        assert ests[kind].log_image == pytest.approx(v, rel=1e-7), kind


def test_landmarks_are_drawn_from_both_modalities_and_counted(pairs):
    x, t = pairs
    r = run(x, t, 0.9, 40, residual_sample=100)
    assert r.asked == 40 and r.landmarks.method == "pivoted-cholesky" and r.landmarks.points.shape[0] <= 40
    pool = np.concatenate([t, x])  # the pool of a paired call holds texts and images (all rows here)
    assert r.landmarks.pool_size == 1200
    np.testing.assert_array_equal(np.asarray(r.landmarks.points), pool[r.landmarks.indices])
    assert (r.landmarks.indices < 600).any() and (r.landmarks.indices >= 600).any()


# ------------------------------------------------------------- through sce / vendi (moved from test_large_n.py)
@pytest.mark.parametrize("backend", BACKENDS)
def test_nystrom_sce_matches_numpy_reference(pairs, backend):
    x, t = pairs
    sigma = 0.9
    L = np.concatenate([t[::20], x[::20]])  # 60 given landmarks from both modalities
    res = clipcore.sce(x, t, kernel="gaussian", sigma=sigma, landmarks=L, residual_sample=200, key=3,
                       backend=backend, estimate="residual")
    want, cap = lref.nystrom_sce(t, x, L, sigma)
    info = res.nystrom
    assert res.method == "primal/nystrom" and info["estimate"] == "residual"
    assert info["captured_trace"] == pytest.approx(cap, rel=1e-10)
    assert info["missing_mass"] == pytest.approx(1 - cap, rel=1e-8)
    for kind, (ls, lt, li) in want.items():  # the estimates SPEC.md defines
        got = info["estimates"][kind]
        assert got["log_sce"] == pytest.approx(ls, rel=1e-7), kind
        assert got["log_text_score"] == pytest.approx(lt, rel=1e-7), kind
        assert got["log_image_score"] == pytest.approx(li, rel=1e-7), kind
    assert res.log_sce == info["estimates"]["residual"]["log_sce"]
    # the tail goes to S and C_XX: their traces are 1 and tr S + tr R = 1 as for the exact kernel
    for kind in ("missing-mass", "residual"):
        e = info["estimates"][kind]
        assert e["trace_image"] == pytest.approx(1.0, abs=1e-9), kind
        assert e["trace_complement"] + e["trace_text"] == pytest.approx(1.0, abs=1e-7), kind
    assert info["estimates"]["residual"]["log_text_score"] == info["estimates"]["missing-mass"]["log_text_score"]


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
    res = clipcore.vendi(x, kernel="gaussian", sigma=sigma, order=order, landmarks=L, residual_sample=100, key=2,
                         estimate="residual")
    want = lref.nystrom_vendi(x, L, sigma, order)
    for kind, v in want.items():
        assert res.nystrom["estimates"][kind]["log_score"] == pytest.approx(v, rel=1e-7), kind
    assert res.log_score == res.nystrom["estimates"]["residual"]["log_score"]


def test_nystrom_streamed_equals_in_memory(pairs, tmp_path, monkeypatch):
    x, t = pairs
    clipcore.write_shards(tmp_path / "emb", x, t, shard_rows=128)
    # float64 arrays against float32 shards of the same values: both computed in float64
    kw = dict(kernel="gaussian", sigma=0.9, landmarks=64, key=5, residual_sample=100, progress=False,
              dtype="float64")
    a = clipcore.sce(x, t, **kw)
    va = clipcore.vendi(x, order=2, **kw)
    monkeypatch.setattr(PI, "IN_MEMORY_ROWS", 100)  # force the streamed path on this small set
    b = clipcore.sce(str(tmp_path / "emb"), block_size=97, **kw)
    vb = clipcore.vendi(str(tmp_path / "emb" / "images-*.npy"), order=2, **kw)
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
    low = [w for w in rec if issubclass(w.category, clipcore.LowCaptureWarning)]  # (the ± warns too)
    assert sorted(str(w.message).split("' kernel")[0].split()[-1] for w in low) == ["images", "texts"]
    assert r.nystrom["captured_trace_texts"] == pytest.approx(0.1, abs=1e-6)
    cap = r.nystrom["captured_trace"]
    # independently: the images' trace captured by 40 text landmarks, tr(K_xL K_LL^+ K_Lx) / n
    L = t[:40]
    want = np.trace(nref.gaussian(x, L, 1.0) @ np.linalg.pinv(nref.gaussian(L, L, 1.0)) @ nref.gaussian(L, x, 1.0))
    assert cap < NR.LOW_CAPTURE and cap == pytest.approx(want / x.shape[0], abs=1e-9)
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
    assert r.nystrom["captured_trace"] >= NR.LOW_CAPTURE


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
        (dict(kernel="gaussian", landmarks=np.full((5, 16), np.nan)), "landmarks: contains NaN at row 0"),
        (dict(kernel="gaussian", landmarks=10, key=1.5), "key"),
    ],
)
def test_nystrom_bad_options(pairs, kwargs, match):
    x, t = pairs
    with pytest.raises(ValueError, match=match):
        clipcore.sce(x, t, **kwargs)


def test_cli_score_with_landmarks(tmp_path, pairs):
    """`clipcore score --landmarks --estimate` reaches this run with the same options as sce / vendi."""
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
    assert set(got["result"]["nystrom"]["estimates"]) == {"projected", "residual", "missing-mass", "renormalised"}
    v = clipcore.vendi(x, kernel="gaussian", sigma=0.9, order=2, landmarks=50, estimate="missing-mass", key=2)
    assert got["scores"]["vendi"]["2.0"] == pytest.approx(v.score, rel=1e-12)
