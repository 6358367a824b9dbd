"""clipcore.sce / vendi / rke against the float64 NumPy reference
(tests/reference/sce_numpy.py), the shared fixtures (README tolerances:
SCE / text rel 1e-3, cosine rel 1e-5) and the vendi-score package.

Against the reference, the same formula computed in float64 by clipcore must
agree to rounding: scores rel 1e-9, eigenvalues abs 1e-12 (×max).  Where the
two compute the same number by different routes (primal vs dual) the ridge
ε = 1e-12 that SPEC puts into (C_TT + εI)⁺ may move a score by ~2e-8
relative; those comparisons say so.  A second call with new values of the same
shapes compiles nothing.  The entropy and Schur building blocks are tested in
test_entropy.py / test_schur.py, the Nyström and Frobenius paths in
tests/_pipeline/.
"""

from __future__ import annotations

import contextlib
import functools
import warnings

import numpy as np
import pytest

clipcore = pytest.importorskip("clipcore")
jax = pytest.importorskip("jax")

try:
    from reference import fixtures as F
    from reference import sce_numpy as R
except ImportError:  # tests/ collected as a package
    from tests.reference import fixtures as F
    from tests.reference import sce_numpy as R

from jax._src import dispatch  # noqa: E402  (the compile event's name; jax, not clipcore)

RTOL_SAME = 1e-9      # same formula, float64, both sides
ATOL_EIG = 1e-12      # eigenvalues (the spectra have trace ≤ 1)


def rel(a, b):
    return abs(float(a) / float(b) - 1.0)


def quiet_sce(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clipcore.DegenerateWarning)
        return clipcore.sce(*args, **kwargs)


@functools.lru_cache(maxsize=None)
def _ref_rff(ref_dir, tag):
    om = F.omega(ref_dir, tag)
    return R.rff_features(F.texts(ref_dir), om), R.rff_features(F.images(ref_dir), om)


@functools.lru_cache(maxsize=None)
def _ref_dual(ref_dir, tag, ridge=R.RIDGE):
    _, big_d = F.RFF_TAGS[tag]
    pt, px = _ref_rff(ref_dir, tag)
    return R.sce_dual(pt, px, size=2 * big_d, ridge=ridge)


@functools.lru_cache(maxsize=None)
def _api_rff(ref_dir, tag, method="auto", convention="clip-dissection", dtype=None):
    return quiet_sce(F.images(ref_dir), F.texts(ref_dir), kernel="gaussian", omega=F.omega(ref_dir, tag),
                     method=method, convention=convention, dtype=dtype)


def assert_spectrum(result, spec, *, scores_rtol=RTOL_SAME):
    """clipcore's SCEResult vs a reference SchurSpectrum of the same size."""
    for got, want in ((result.complement_eigenvalues, spec.complement),
                      (result.text_eigenvalues, spec.text),
                      (result.image_eigenvalues, spec.image)):
        got = np.asarray(got)
        assert got.shape == want.shape
        # clipcore clips tiny negatives to 0; the reference keeps them (|λ| ~ 1e-17)
        np.testing.assert_allclose(got, np.clip(want, 0, None), rtol=0, atol=ATOL_EIG * max(1.0, want.max()))
    assert result.rank_kept == spec.rank
    assert rel(result.sce, spec.sce) < scores_rtol
    assert rel(result.text_score, spec.text_score) < scores_rtol
    assert rel(result.image_score, R.renyi(spec.image)) < scores_rtol
    assert abs(result.trace_complement - spec.trace_complement) < 1e-12
    assert abs(result.trace_text - spec.trace_text) < 1e-12


# ---------------------------------------------------------------------------
# the shared fixtures, convention="clip-dissection", saved ω
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["auto", "primal", "dual"])
def test_fixture_cosine_clip_dissection(ref_dir, method):
    want = F.reference_scores(ref_dir)["cosine"]
    t, x = F.texts(ref_dir), F.images(ref_dir)
    res = clipcore.sce(x, t, convention="clip-dissection", method=method, dtype="float64")
    assert rel(res.sce, want["SCE"]) < F.RTOL_COSINE
    assert rel(res.text_score, want["text_component"]) < F.RTOL_COSINE
    assert abs(res.trace_complement - want["trace_complement"]) < 1e-5
    assert abs(res.trace_text - want["trace_textpart"]) < 1e-5
    spec = R.sce_primal(covs=R.clip_dissection_covariances(t, x))
    assert_spectrum(res, spec)
    assert res.convention == "clip-dissection" and res.kernel == "cosine"
    assert res.num_features == 64 and res.n == 500
    assert rel(res.rtol, 64 * R.EPS32) < 1e-12
    sc = F.spec_check(ref_dir)["cosine"]["numpy_float64_colcos(code)"]
    assert rel(res.sce, sc["SCE"]) < F.RTOL_FLOAT64
    assert rel(res.text_score, sc["text_component"]) < F.RTOL_FLOAT64


@pytest.mark.parametrize("tag", sorted(F.RFF_TAGS))
def test_fixture_rff_clip_dissection(ref_dir, tag):
    """method="auto": primal for 2D = 400 ≤ n = 500, dual (500×500) for 2D = 5000."""
    sigma, big_d = F.RFF_TAGS[tag]
    want = F.reference_scores(ref_dir)[tag]
    res = _api_rff(ref_dir, tag, dtype="float64")
    assert rel(res.sce, want["SCE"]) < F.RTOL_SCE
    assert rel(res.text_score, want["text_component"]) < F.RTOL_SCE
    assert abs(res.trace_complement - want["trace_complement"]) < 1e-5
    assert abs(res.trace_text - want["trace_textpart"]) < 1e-5
    assert res.num_features == 2 * big_d == want["matrix_dim"]
    assert res.rff_features == big_d
    assert res.method.startswith("primal" if 2 * big_d <= F.N else "dual")
    # the default cutoff is the torch one the fixtures need: 2D · eps(float32)
    assert rel(res.rtol, 2 * big_d * R.EPS32) < 1e-12
    np.testing.assert_array_equal(np.asarray(res.omega), F.omega(ref_dir, tag))
    assert_spectrum(res, _ref_dual(ref_dir, tag))


@pytest.mark.parametrize("tag", sorted(F.RFF_TAGS))
def test_fixture_rff_spec_check_float64(ref_dir, tag):
    sc = F.spec_check(ref_dir)[tag]
    res = _api_rff(ref_dir, tag, method="dual", dtype="float64")
    want = sc["numpy_float64_dual_rtol=2D*eps32"]
    # spec_check's dual keeps max(n, 2D) eigenvalues and has no ridge: rescore ours that way
    size = max(F.N, res.num_features)
    assert res.rank_kept == want["rank_kept"]
    assert rel(R.code_score(R.pad_zeros(res.complement_eigenvalues, size)), want["SCE"]) < 1e-7
    assert rel(R.code_score(R.pad_zeros(res.text_eigenvalues, size)), want["text_component"]) < 1e-7
    for key in ("numpy_float64_dual_rtol=1e-3", "numpy_float64_dual_rtol=1e-2"):
        rtol = float(key.split("=")[1])
        r = quiet_sce(F.images(ref_dir), F.texts(ref_dir), kernel="gaussian", omega=F.omega(ref_dir, tag),
                      method="dual", rtol=rtol, dtype="float64")
        assert r.rank_kept == sc[key]["rank_kept"]
        assert r.rtol == rtol
        assert rel(R.code_score(R.pad_zeros(r.complement_eigenvalues, size)), sc[key]["SCE"]) < 1e-7
        assert rel(R.code_score(R.pad_zeros(r.text_eigenvalues, size)), sc[key]["text_component"]) < 1e-7


def test_fixture_rff_primal_small(ref_dir):
    tag = "gauss_s0.5_D200"
    res = _api_rff(ref_dir, tag, method="primal")
    assert res.method.startswith("primal")
    pt, px = _ref_rff(ref_dir, tag)
    assert_spectrum(res, R.sce_primal(pt, px))
    want = F.spec_check(ref_dir)[tag]["numpy_float64_primal_rtol=2D*eps32"]
    assert rel(res.sce, want["SCE"]) < F.RTOL_FLOAT64
    assert rel(res.text_score, want["text_component"]) < F.RTOL_FLOAT64
    assert rel(res.sce, F.reference_scores(ref_dir)[tag]["SCE"]) < F.RTOL_SCE


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["gauss_s3.5_D2500", "gauss_s0.5_D2500"])
def test_fixture_rff_primal_large(ref_dir, tag):
    """5000×5000 primal; the dual test above covers these configs fast."""
    want = F.reference_scores(ref_dir)[tag]
    res = _api_rff(ref_dir, tag, method="primal")
    assert res.method.startswith("primal")
    assert rel(res.sce, want["SCE"]) < F.RTOL_SCE
    assert rel(res.text_score, want["text_component"]) < F.RTOL_SCE
    assert_spectrum(res, _ref_dual(ref_dir, tag), scores_rtol=1e-8)


def test_degenerate_config_warns(ref_dir):
    tag = "gauss_s0.5_D2500"  # n = 500 < 2D: S ≈ 0
    with pytest.warns(clipcore.DegenerateWarning):
        res = clipcore.sce(F.images(ref_dir), F.texts(ref_dir), kernel="gaussian", omega=F.omega(ref_dir, tag))
    assert res.rank_kept == F.N
    # S = 0 up to the ridge: tr S = Σ ε/(w+ε)·… ≈ 2.2e-9 (spec_check's primal: 2.2e-9 too)
    assert res.trace_complement < 1e-8
    # and never negative (the torch code reports -2.2e-7): it is the ε-ridge
    # residue, the same number the independent primal NumPy run of
    # spec_check.json finds with ε = 1e-12 (2.2009828e-9)
    assert res.trace_complement > 0 and (res.complement_eigenvalues >= 0).all()
    want = F.spec_check(ref_dir)[tag]["numpy_float32_primal_rtol=2D*eps32"]["trace_S"]
    assert rel(res.trace_complement, want) < 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("error", clipcore.DegenerateWarning)
        _ = clipcore.sce(F.images(ref_dir), F.texts(ref_dir), kernel="gaussian",
                         omega=F.omega(ref_dir, "gauss_s3.5_D2500"))


# ---------------------------------------------------------------------------
# the paper convention vs the reference
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["primal", "dual"])
def test_paper_cosine(ref_dir, method):
    t, x = F.texts(ref_dir), F.images(ref_dir)
    res = clipcore.sce(x, t, method=method, dtype="float64")
    assert res.convention == "paper"
    spec = R.sce_primal(R.cosine_features(t), R.cosine_features(x))
    assert_spectrum(res, spec)
    alt = F.spec_check(ref_dir)["cosine"]["ALTERNATIVE_paper_linear_kernel_rownorm_C=X^TX/n"]
    assert rel(res.sce, alt["SCE"]) < F.RTOL_FLOAT64
    assert rel(res.text_score, alt["text_component"]) < F.RTOL_FLOAT64
    np.testing.assert_allclose(res.trace_image, 1.0, rtol=1e-12)


def test_paper_cosine_unnormalised_inputs_and_dims():
    """φ normalises rows: scaling rows changes nothing; d_t ≠ d_x is allowed for the cosine kernel."""
    rng = np.random.default_rng(11)
    t = rng.standard_normal((120, 12))
    x = np.hstack([t @ rng.standard_normal((12, 20)), rng.standard_normal((120, 20))])  # d_x = 40
    scale = rng.uniform(0.1, 10, size=(120, 1))
    res = clipcore.sce(x * scale, t)
    spec = R.sce_primal(R.cosine_features(t), R.cosine_features(x))
    assert res.complement_eigenvalues.shape == (40,)
    assert_spectrum(res, spec)
    cd = clipcore.sce(x, t, convention="clip-dissection")
    assert_spectrum(cd, R.sce_primal(covs=R.clip_dissection_covariances(t, x)))


@pytest.mark.parametrize("sigma", [0.5, 3.5])
def test_paper_exact_gaussian(ref_dir, sigma):
    t, x = F.texts(ref_dir), F.images(ref_dir)
    res = quiet_sce(x, t, kernel="gaussian", sigma=sigma)
    assert res.method.startswith("dual")
    assert res.sigma == sigma and res.rff_features is None
    assert res.num_features == F.N
    # default cutoff: (primal dim = n) · eps32
    assert rel(res.rtol, F.N * R.EPS32) < 1e-12
    assert_spectrum(res, R.sce_exact_gaussian(t, x, sigma, rtol=res.rtol, ridge=R.RIDGE))
    # SPEC's ridge-free dual: the ridge moves scores by < 2e-8
    plain = R.sce_exact_gaussian(t, x, sigma, rtol=res.rtol)
    assert rel(res.sce, plain.sce) < 1e-7 and rel(res.text_score, plain.text_score) < 1e-7


@pytest.mark.parametrize("sigma", [0.5, 3.5])
def test_exact_gaussian_spec_check(ref_dir, sigma):
    """spec_check exact-kernel columns (cutoff 1e-3, padded to 2D = 5000 eigenvalues)."""
    want = F.spec_check(ref_dir)[f"gauss_s{sigma}_D2500"]["exact_kernel_float64_dual_rtol=1e-3_pad5000"]
    res = quiet_sce(F.images(ref_dir), F.texts(ref_dir), kernel="gaussian", sigma=sigma, rtol=1e-3)
    assert res.rank_kept == want["rank_kept"]
    assert rel(R.code_score(R.pad_zeros(res.complement_eigenvalues, 5000)), want["SCE"]) < 1e-7
    assert rel(R.code_score(R.pad_zeros(res.text_eigenvalues, 5000)), want["text_component"]) < 1e-7


def test_paper_rff_equals_clip_dissection_for_gaussian(ref_dir):
    """The conventions differ for the cosine kernel only."""
    a = _api_rff(ref_dir, "gauss_s0.5_D200", convention="paper")
    b = _api_rff(ref_dir, "gauss_s0.5_D200", convention="clip-dissection")
    assert rel(a.sce, b.sce) < 1e-12 and rel(a.text_score, b.text_score) < 1e-12


def test_key_seed_reproducible_and_omega_recorded(ref_dir):
    t, x = F.texts(ref_dir)[:200], F.images(ref_dir)[:200]
    a = clipcore.sce(x, t, kernel="gaussian", sigma=1.0, rff_features=50, key=3)
    b = clipcore.sce(x, t, kernel="gaussian", sigma=1.0, rff_features=50, key=3)
    c = clipcore.sce(x, t, kernel="gaussian", sigma=1.0, rff_features=50, key=4)
    assert a.sce == b.sce and a.sce != c.sce
    assert a.seed == 3
    om = np.asarray(a.omega)
    assert om.shape == (64, 50)
    # ω ~ N(0, 1/σ²) with σ = 1 (loose: 3200 draws)
    assert abs(om.std() - 1.0) < 0.05
    # the recorded ω reproduces the number (provenance)
    assert_spectrum(a, R.sce_primal(R.rff_features(t, om), R.rff_features(x, om)))
    # a jax PRNG key works too
    k = clipcore.sce(x, t, kernel="gaussian", sigma=1.0, rff_features=50, key=jax.random.key(3))
    assert np.isfinite(k.sce)


def test_default_sigma_is_median_distance(ref_dir):
    from scipy.spatial.distance import pdist

    x, t = F.images(ref_dir), F.texts(ref_dir)
    res = quiet_sce(x, t, kernel="gaussian", rff_features=100)
    med = float(np.median(pdist(x.astype(np.float64))))
    # "median pairwise distance of a sample of the image embeddings": allow the sampling
    assert res.sigma is not None and abs(res.sigma / med - 1) < 0.05


@pytest.mark.parametrize("call", ["sce-exact", "sce-rff", "vendi", "rke", "sce-file"])
def test_default_sigma_is_exactly_the_median_distance_without_sampling(ref_dir, tmp_path, call):
    """n = 500 ≤ 2000: no sampling, so the default σ is THE median pairwise distance of the images (an odd
    count of pairs, 124 750: no averaging of two middle values), to rounding (1e-9); the root-mean-square distance
    (what the 5 % test above lets pass) is 2.2 % away."""
    from scipy.spatial.distance import pdist

    x, t = F.images(ref_dir), F.texts(ref_dir)
    d = pdist(x.astype(np.float64))
    med, rms = float(np.median(d)), float(np.sqrt(np.mean(d ** 2)))
    assert abs(rms / med - 1) > 0.01
    if call == "sce-file":
        np.save(tmp_path / "x.npy", x)
        np.save(tmp_path / "t.npy", t)
        sigma = quiet_sce(str(tmp_path / "x.npy"), str(tmp_path / "t.npy"), kernel="gaussian").sigma
    elif call.startswith("sce"):
        sigma = quiet_sce(x, t, kernel="gaussian", **({"rff_features": 64} if call == "sce-rff" else {})).sigma
    else:
        sigma = getattr(clipcore, call)(x, kernel="gaussian").sigma
    assert sigma == pytest.approx(med, rel=1e-9)  # the Gram form ‖x‖² + ‖y‖² − 2x·y rounds at ~2e-12 here


@pytest.mark.parametrize("sigma", [0.37, 4.2])
def test_rff_frequencies_are_scaled_by_one_over_sigma(sigma):
    """ω = N(0, 1)/σ (SPEC.md): at σ ≠ 1 the frequencies divide by σ (they would multiply by σ if the scaling
    were inverted, which σ = 1 cannot tell apart); checked against the seed's own normal draw."""
    x = np.random.default_rng(0).standard_normal((80, 5))
    res = quiet_sce(x, x + 0.1, kernel="gaussian", sigma=sigma, rff_features=50, key=3)
    want = np.asarray(jax.random.normal(jax.random.key(3), (5, 50), dtype=np.float32)) / np.float32(sigma)
    np.testing.assert_allclose(res.omega, want, rtol=1e-6)
    assert np.std(res.omega) == pytest.approx(1.0 / sigma, rel=0.15)


# ---------------------------------------------------------------------------
# primal vs dual
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["cosine-paper", "cosine-clip", "rff-n>2D", "rff-n<2D"])
def test_primal_dual_agree(ref_dir, case):
    t, x = F.texts(ref_dir), F.images(ref_dir)
    kw = {}
    if case == "cosine-clip":
        kw = dict(convention="clip-dissection")
    elif case.startswith("rff"):
        kw = dict(kernel="gaussian", omega=F.omega(ref_dir, "gauss_s0.5_D200"))
        if case == "rff-n<2D":
            t, x = t[:150], x[:150]
    p = quiet_sce(x, t, method="primal", dtype="float64", **kw)
    d = quiet_sce(x, t, method="dual", dtype="float64", **kw)
    assert p.method.startswith("primal") and d.method.startswith("dual")
    assert p.complement_eigenvalues.shape == d.complement_eigenvalues.shape
    for a, b in ((p.complement_eigenvalues, d.complement_eigenvalues),
                 (p.text_eigenvalues, d.text_eigenvalues), (p.image_eigenvalues, d.image_eigenvalues)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert p.rank_kept == d.rank_kept
    assert rel(p.sce, d.sce) < 1e-8 and rel(p.text_score, d.text_score) < 1e-8
    assert rel(p.image_score, d.image_score) < 1e-8


# ---------------------------------------------------------------------------
# exact Gaussian vs RFF with growing D
# ---------------------------------------------------------------------------
@pytest.mark.slow  # 15 s: CI's time limit; bench/accuracy.py measures RFF convergence at large n
def test_rff_converges_to_exact_gaussian(ref_dir):
    """σ = 3.5 (non-degenerate), cutoff 1e-3 (in a spectral gap of C_TT, so the
    kept rank is 10 for the exact kernel and every RFF draw).  Mean relative
    error over 3 seeds of SCE and image Vendi shrinks with D (Monte Carlo ~ D^-1/2):
    measured SCE 5.3e-3 → 1.7e-3 → 6.9e-4, Vendi 1.3e-2 → 3.6e-3 → 1.9e-3."""
    t, x = F.texts(ref_dir), F.images(ref_dir)
    sigma, rtol = 3.5, 1e-3
    exact = clipcore.sce(x, t, kernel="gaussian", sigma=sigma, rtol=rtol)
    exact_v = clipcore.vendi(x, kernel="gaussian", sigma=sigma)
    assert exact.rank_kept == 10
    errs = {}
    for big_d in (250, 1000, 4000):
        e = []
        for seed in range(3):
            r = clipcore.sce(x, t, kernel="gaussian", sigma=sigma, rff_features=big_d, key=seed, rtol=rtol)
            v = clipcore.vendi(x, kernel="gaussian", sigma=sigma, rff_features=big_d, key=seed)
            assert r.rank_kept == exact.rank_kept
            e.append((rel(r.sce, exact.sce), rel(v.score, exact_v.score)))
        errs[big_d] = np.mean(e, axis=0)
    for k in range(2):
        assert errs[4000][k] < errs[1000][k] < errs[250][k], errs
        assert errs[4000][k] < 0.5 * errs[250][k], errs
    assert errs[4000][0] < 2e-3 and errs[4000][1] < 5e-3


# ---------------------------------------------------------------------------
# Vendi / RKE vs the vendi-score package and the reference
# ---------------------------------------------------------------------------
VENDI_ORDERS = [(1, 1.0), (2, 2.0), ("inf", float("inf"))]


@pytest.mark.parametrize("who", ["image", "text"])
@pytest.mark.parametrize("sigma", [0.5, 3.5])
@pytest.mark.parametrize("q,order", VENDI_ORDERS, ids=["q1", "q2", "qinf"])
def test_vendi_exact_gaussian_vs_package(ref_dir, who, sigma, q, order):
    vendi_pkg = pytest.importorskip("vendi_score.vendi")
    a = F.images(ref_dir) if who == "image" else F.texts(ref_dir)
    k = R.gaussian_kernel(a, a, sigma)
    res = clipcore.vendi(a, kernel="gaussian", sigma=sigma, order=order, clamp=None)
    assert res.order == order
    assert rel(res.score, vendi_pkg.score_K(k, q=q)) < RTOL_SAME
    assert rel(res.score, F.companion(ref_dir)["vendi_score_pkg"][f"{who}_score_K_gauss_sigma{sigma}_q{q}"]) < RTOL_SAME
    assert abs(res.log_score - np.log(res.score)) < 1e-12
    assert float(res) == res.score
    # clamped (the code's convention) vs the reference
    clamped = clipcore.vendi(a, kernel="gaussian", sigma=sigma, order=order)
    assert rel(clamped.score, R.vendi_of_kernel(k, order)) < RTOL_SAME
    np.testing.assert_allclose(res.eigenvalues, np.clip(R.eigvals_desc(k / F.N), 0, None), atol=1e-12)


@pytest.mark.parametrize("q,order", VENDI_ORDERS, ids=["q1", "q2", "qinf"])
def test_vendi_cosine_vs_package(ref_dir, q, order):
    vendi_pkg = pytest.importorskip("vendi_score.vendi")
    x = F.images(ref_dir).astype(np.float64)
    for method in ("primal", "dual"):
        res = clipcore.vendi(x, order=order, clamp=None, method=method)
        assert rel(res.score, vendi_pkg.score_dual(x, q=q)) < RTOL_SAME
        phi = R.cosine_features(x)
        assert rel(res.score, vendi_pkg.score_K(phi @ phi.T, q=q)) < RTOL_SAME
    if q == 1:
        # score_X ignores its q argument (always order 1); compare order 1 only
        assert rel(res.score, vendi_pkg.score_X(x)) < RTOL_SAME
        assert rel(res.score, F.companion(ref_dir)["vendi_score_pkg"]["image_score_dual_cosine_q1"]) < F.RTOL_COSINE


@pytest.mark.parametrize("kind", ["cosine", "rff"])
def test_vendi_primal_dual_agree_with_clamp(ref_dir, kind):
    """Same spectrum, same length (the primal dimension: d = 64 / 2D = 400 < n = 500),
    so the clamped score agrees too; n − d extra clamped zeros would add
    ~(n − d)·2.3e-9 to the order-1 entropy."""
    x = F.images(ref_dir)
    kw = {} if kind == "cosine" else dict(kernel="gaussian", omega=F.omega(ref_dir, "gauss_s0.5_D200"))
    dim = 64 if kind == "cosine" else 400
    p = clipcore.vendi(x, method="primal", dtype="float64", **kw)
    d = clipcore.vendi(x, method="dual", dtype="float64", **kw)
    assert p.eigenvalues.shape == (dim,)
    assert d.eigenvalues.shape == (dim,)
    assert rel(p.score, d.score) < RTOL_SAME


@pytest.mark.parametrize("order", [0.5, 1.0, 1.5, 2.0, 2.5, float("inf")])
def test_vendi_rff_vs_reference_any_order(ref_dir, order):
    om = F.omega(ref_dir, "gauss_s0.5_D200")
    x = F.images(ref_dir)
    lam = R.eigvals_desc(R.covariances(R.rff_features(x, om), R.rff_features(x, om))[2])
    for clamp in (1e-10, None):
        res = clipcore.vendi(x, kernel="gaussian", omega=om, order=order, clamp=clamp, dtype="float64")
        assert res.eigenvalues.shape == (400,)
        assert rel(res.score, R.renyi(lam, order, clamp)) < RTOL_SAME


@pytest.mark.parametrize("sigma", [0.5, 3.5])
def test_fkea_style_companion_numbers(ref_dir, sigma):
    """CLIP-DISSECTION's calculate_stats (clamp 1e-10), rounded to 2 decimals."""
    fk = F.companion(ref_dir)["fkea_style_clip_dissection"]
    x = F.images(ref_dir)
    for name, order in (("1.0", 1.0), ("1.5", 1.5), ("2", 2.0), ("2.5", 2.5), ("inf", float("inf"))):
        ex = clipcore.vendi(x, kernel="gaussian", sigma=sigma, order=order)
        rf = clipcore.vendi(x, kernel="gaussian", omega=F.omega(ref_dir, f"gauss_s{sigma}_D2500"), order=order)
        assert rf.eigenvalues.shape == (5000,)
        assert abs(ex.score - fk[f"image_sigma{sigma}_exact_kernel(non_fourier_scores)"][f"VENDI-{name}"]) <= 0.005 + 1e-9
        assert abs(rf.score - fk[f"image_sigma{sigma}_rff2500_seed0(fourier_scores)"][f"VENDI-{name}"]) <= 0.005 + 1e-9


@pytest.mark.parametrize("kind", ["cosine", "gaussian", "rff"])
def test_rke_is_vendi2_and_frobenius(ref_dir, kind):
    x = F.images(ref_dir)
    if kind == "cosine":
        kw, phi = {}, R.cosine_features(x)
        k = phi @ phi.T
    elif kind == "gaussian":
        kw, k = dict(kernel="gaussian", sigma=0.5), R.gaussian_kernel(x, x, 0.5)
    else:
        om = F.omega(ref_dir, "gauss_s0.5_D200")
        kw, phi = dict(kernel="gaussian", omega=om), R.rff_features(x, om)
        k = phi @ phi.T
    r = clipcore.rke(x, clamp=None, dtype="float64", **kw)
    v = clipcore.vendi(x, order=2, clamp=None, dtype="float64", **kw)
    assert r.order == 2
    assert rel(r.score, v.score) < 1e-12
    assert rel(r.score, R.rke_frobenius(k)) < RTOL_SAME
    if kind == "gaussian":
        assert rel(r.score, F.companion(ref_dir)["rke_score_pkg"]["image_sigma0.5_RKE_MC=1/mean_k2"]) < RTOL_SAME
    # with the default clamp the zero eigenvalues add (1e-10)² each: negligible
    assert rel(clipcore.rke(x, dtype="float64", **kw).score, r.score) < 1e-9


# ---------------------------------------------------------------------------
# result fields
# ---------------------------------------------------------------------------
def test_result_fields_and_logs(ref_dir):
    res = _api_rff(ref_dir, "gauss_s0.5_D200")
    for val, log in ((res.sce, res.log_sce), (res.text_score, res.log_text_score), (res.image_score, res.log_image_score)):
        assert abs(np.log(val) - log) < 1e-12
    for eig in (res.complement_eigenvalues, res.text_eigenvalues, res.image_eigenvalues):
        eig = np.asarray(eig)
        assert np.all(np.diff(eig) <= 0), "descending"
        assert eig.min() >= 0, "clipped at 0"
    assert abs(res.trace_complement + res.trace_text - res.trace_image) < 1e-10
    assert abs(res.trace_image - 1.0) < 1e-10
    assert res.n == 500 and res.kernel == "gaussian" and res.dtype == "float64"
    # image_score = Vendi of C_XX (order 1, clamp 1e-10)
    v = clipcore.vendi(F.images(ref_dir), kernel="gaussian", omega=F.omega(ref_dir, "gauss_s0.5_D200"),
                       dtype="float64")
    assert rel(res.image_score, v.score) < RTOL_SAME


def test_clamp_none_score(ref_dir):
    """clamp=None: −Σ λ log(λ/s) over λ > 0 (zeros dropped)."""
    t, x = F.texts(ref_dir), F.images(ref_dir)
    res = clipcore.sce(x, t, convention="clip-dissection", clamp=None, dtype="float64")
    spec = R.sce_primal(covs=R.clip_dissection_covariances(t, x))
    for got, lam in ((res.sce, spec.complement), (res.text_score, spec.text)):
        pos = lam[lam > 0]
        assert rel(got, np.exp(-np.sum(pos * np.log(pos / pos.sum())))) < RTOL_SAME
    assert res.clamp is None


# ---------------------------------------------------------------------------
# float32 vs float64
# ---------------------------------------------------------------------------
def test_float32_matches_float64_cosine(ref_dir):
    """dtype="float32": float32 features/GEMMs, float64 accumulation.  Tolerance:
    the README's cosine tolerance rel 1e-5 (measured ~1e-7)."""
    t, x = F.texts(ref_dir), F.images(ref_dir)
    for conv in ("paper", "clip-dissection"):
        a = clipcore.sce(x, t, convention=conv, dtype="float32")
        b = clipcore.sce(x, t, convention=conv, dtype="float64")
        assert a.dtype == "float32" and b.dtype == "float64"
        assert rel(a.sce, b.sce) < F.RTOL_COSINE and rel(a.text_score, b.text_score) < F.RTOL_COSINE
        np.testing.assert_allclose(a.complement_eigenvalues, b.complement_eigenvalues, atol=1e-6 * b.complement_eigenvalues.max())
    va = clipcore.vendi(x, dtype="float32")
    vb = clipcore.vendi(x, dtype="float64")
    assert rel(va.score, vb.score) < F.RTOL_COSINE


@pytest.mark.parametrize("tag", sorted(F.RFF_TAGS))
def test_float32_matches_float64_rff(ref_dir, tag):
    """Tolerance: the README's SCE rel 1e-3 (measured 3e-5 for D = 200, whose
    small S eigenvalues feel float32 features); float32 also stays within
    1e-3 of the float32 torch fixtures."""
    a = _api_rff(ref_dir, tag, dtype="float32")
    b = _api_rff(ref_dir, tag, dtype="float64")
    assert a.rank_kept == b.rank_kept
    assert rel(a.sce, b.sce) < F.RTOL_SCE and rel(a.text_score, b.text_score) < F.RTOL_SCE
    want = F.reference_scores(ref_dir)[tag]
    assert rel(a.sce, want["SCE"]) < F.RTOL_SCE and rel(a.text_score, want["text_component"]) < F.RTOL_SCE


def test_float32_matches_float64_exact_gaussian(ref_dir):
    t, x = F.texts(ref_dir), F.images(ref_dir)
    a = clipcore.sce(x, t, kernel="gaussian", sigma=3.5, rtol=1e-3, dtype="float32")
    b = clipcore.sce(x, t, kernel="gaussian", sigma=3.5, rtol=1e-3, dtype="float64")
    assert rel(a.sce, b.sce) < F.RTOL_SCE and rel(a.text_score, b.text_score) < F.RTOL_SCE


def test_float32_input_and_float64_input_agree(ref_dir):
    """Precision follows the input (issue 18): by default float32 rows compute in float32 (float64
    accumulation) within 1e-6 of float64, float64 rows stay float64; dtype="float64" computes in float64
    whatever the input dtype, so float32 and float64 inputs then agree to rounding."""
    t, x = F.texts(ref_dir), F.images(ref_dir)
    assert x.dtype == np.float32 and t.dtype == np.float32
    a = clipcore.sce(x, t, convention="clip-dissection")
    b = clipcore.sce(x.astype(np.float64), t.astype(np.float64), convention="clip-dissection")
    assert a.dtype == "float32" and b.dtype == "float64"
    assert rel(a.sce, b.sce) < 1e-6 and rel(a.text_score, b.text_score) < 1e-6
    c = clipcore.sce(x, t, convention="clip-dissection", dtype="float64")
    assert c.dtype == "float64"
    assert rel(c.sce, b.sce) < 1e-12


# ---------------------------------------------------------------------------
# backends, streaming blocks, normalize
# ---------------------------------------------------------------------------
def _ffi_available():
    try:
        from clipcore import _ffi
    except ImportError:
        return False
    return bool(_ffi.available())


@pytest.mark.parametrize("backend", ["jax", "ffi"])
@pytest.mark.parametrize("config", ["cosine-paper", "cosine-clip", "rff"])
def test_primal_backends_and_blocks(ref_dir, backend, config):
    """The primal Φᵀ Φ accumulation (pure JAX or the compiled core), in uneven
    row blocks, gives the reference spectrum."""
    if backend == "ffi" and not _ffi_available():
        pytest.skip("compiled core not available")
    t, x = F.texts(ref_dir), F.images(ref_dir)
    if config == "cosine-paper":
        kw, spec = {}, R.sce_primal(R.cosine_features(t), R.cosine_features(x))
    elif config == "cosine-clip":
        kw, spec = dict(convention="clip-dissection"), R.sce_primal(covs=R.clip_dissection_covariances(t, x))
    else:
        kw = dict(kernel="gaussian", omega=F.omega(ref_dir, "gauss_s0.5_D200"))
        spec = R.sce_primal(*_ref_rff(ref_dir, "gauss_s0.5_D200"))
    for block_size in (None, 37):
        res = clipcore.sce(x, t, method="primal", backend=backend, block_size=block_size, dtype="float64", **kw)
        assert res.backend == backend
        assert_spectrum(res, spec, scores_rtol=1e-8)
    if config != "cosine-clip":  # vendi has no convention (its C_XX is the paper's)
        v = clipcore.vendi(x, method="primal", backend=backend, block_size=64, dtype="float64", **kw)
        assert rel(v.score, R.renyi(spec.image)) < 1e-8


def test_normalize_rows_gaussian(ref_dir):
    """normalize=True L2-normalises rows before the Gaussian kernel."""
    rng = np.random.default_rng(5)
    t, x = F.texts(ref_dir)[:300], F.images(ref_dir)[:300]
    s_t, s_x = rng.uniform(5, 15, (300, 1)), rng.uniform(5, 15, (300, 1))
    res = quiet_sce(x * s_x, t * s_t, kernel="gaussian", sigma=0.7, normalize=True, rtol=1e-3)
    spec = R.sce_exact_gaussian(R.l2_normalize_rows(t), R.l2_normalize_rows(x), 0.7, rtol=1e-3, ridge=R.RIDGE)
    assert_spectrum(res, spec, scores_rtol=1e-8)
    om = F.omega(ref_dir, "gauss_s0.5_D200")
    res = quiet_sce(x * s_x, t * s_t, kernel="gaussian", omega=om, normalize=True)
    spec = R.sce_primal(R.rff_features(R.l2_normalize_rows(t), om), R.rff_features(R.l2_normalize_rows(x), om))
    assert_spectrum(res, spec, scores_rtol=1e-8)


# ---------------------------------------------------------------------------
# compilation: a second call with new values compiles nothing (moved from test_jit.py)
# ---------------------------------------------------------------------------
@contextlib.contextmanager
def count_compiles():
    """Count XLA backend compilations (jit and op-by-op) inside the block."""
    events = []

    def listener(event, duration, **kwargs):
        if event == dispatch.BACKEND_COMPILE_EVENT:
            events.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield events
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


@pytest.fixture(scope="module")
def synthetic():
    d = clipcore.synthetic_pairs(n=300, d=16, num_modes=3, seed=5)
    return d.images, d.texts


@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(kernel="gaussian", rff_features=64, key=1), dict(kernel="gaussian", sigma=3.0),
     dict(dtype="float32"), dict(convention="clip-dissection")],
)
def test_second_call_does_not_recompile(synthetic, kwargs):
    images, texts = synthetic
    first = clipcore.sce(images, texts, **kwargs)
    rng = np.random.default_rng(0)
    images2 = (images + 0.01 * rng.standard_normal(images.shape)).astype(np.float32)
    with count_compiles() as events:
        second = clipcore.sce(images2, texts, **kwargs)
    assert events == [], f"{len(events)} compilations on the second call"
    assert second.sce != first.sce  # it really recomputed


def test_vendi_second_call_does_not_recompile(synthetic):
    images, _ = synthetic
    clipcore.vendi(images, order=2.0)
    with count_compiles() as events:
        clipcore.vendi(images * 2.0, order=2.0)
    assert events == []


def test_compile_counter_sees_compilations():
    # positive control for count_compiles: a fresh shape must compile
    with count_compiles() as events:
        jax.jit(lambda a: a * 3.0 + 1.0)(jax.numpy.ones((7, 3)))
    assert len(events) >= 1


def test_folders_of_other_tools_score_with_their_pairing_recorded(tmp_path):
    """A clip-retrieval folder (shards paired by number) scores like the same rows in memory; with a
    missing text shard it stops naming it, or with skip_incomplete=True scores the complete pairs and
    records what it skipped in result.pairing (and its JSON)."""
    import json
    import os

    rng = np.random.default_rng(7)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    t = (x + rng.standard_normal((300, 8))).astype(np.float32)
    clipcore.write_shards(tmp_path / "cr", x, t, layout="clip-retrieval", shard_rows=100)
    r = clipcore.sce(str(tmp_path / "cr"))
    assert r.sce == pytest.approx(clipcore.sce(x, t).sce, rel=1e-12)
    assert r.pairing["complete"] and r.pairing["shards"] == 3
    assert clipcore.sce(x, t).pairing is None
    os.remove(tmp_path / "cr" / "manifest.json")
    os.remove(tmp_path / "cr" / "text_emb" / "text_emb_1.npy")
    with pytest.raises(ValueError, match="text_emb_1.npy missing"):
        clipcore.sce(str(tmp_path / "cr"))
    r = clipcore.sce(str(tmp_path / "cr"), skip_incomplete=True)
    keep = np.r_[0:100, 200:300]
    assert r.sce == pytest.approx(clipcore.sce(x[keep], t[keep]).sce, rel=1e-12)
    assert r.pairing["complete"] is False and r.pairing["skipped_rows"] == 100
    assert json.loads(json.dumps(r.summary()))["pairing"]["skipped_rows"] == 100


@pytest.mark.parametrize("kw,name", [(dict(images_key="img"), "images_key"), (dict(texts_key=3), "texts_key"),
                                     (dict(skip_incomplete="yes"), "skip_incomplete")])
def test_file_options_are_validated_for_arrays_too(kw, name):
    x = np.random.default_rng(1).standard_normal((30, 4))
    with pytest.raises(ValueError, match=f"^{name}:"):
        clipcore.sce(x, x + 1.0, **kw)
