"""The independent NumPy reference (tests/reference/sce_numpy.py) reproduces
the shared fixtures (/work/shared/reference, see its README).

Tolerances are the README's (SCE / text rel 1e-3, cosine rel 1e-5, correction
abs 1e-4) against the float32 torch outputs, and ~1e-8 relative against the
float64 columns of spec_check.json.  Nothing here imports clipcore.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

try:
    from reference import fixtures as F
    from reference import sce_numpy as R
except ImportError:  # tests/ collected as a package
    from tests.reference import fixtures as F
    from tests.reference import sce_numpy as R


def rel(a, b):
    return abs(a / b - 1.0)


@functools.lru_cache(maxsize=None)
def _rff(ref_dir, tag):
    om = F.omega(ref_dir, tag)
    return R.rff_features(F.texts(ref_dir), om), R.rff_features(F.images(ref_dir), om)


@functools.lru_cache(maxsize=None)
def _dual(ref_dir, tag, rtol=None, size=None, ridge=0.0):
    phi_t, phi_x = _rff(ref_dir, tag)
    return R.sce_dual(phi_t, phi_x, rtol=rtol, size=size, ridge=ridge)


# ---------------------------------------------------------------------------
# reference self-consistency (no fixtures)
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(7)
    t = rng.standard_normal((40, 6))
    x = 0.6 * t + 0.8 * rng.standard_normal((40, 6))
    return t, x


def test_pinv_matches_scipy_and_cutoff():
    rng = np.random.default_rng(0)
    b = rng.standard_normal((8, 5))
    a = b @ b.T  # rank 5
    inv, rank = R.pinv_psd(a, return_rank=True)
    assert rank == 5
    np.testing.assert_allclose(inv, np.linalg.pinv(a, rcond=1e-10, hermitian=True), atol=1e-10)
    # a relative cutoff above the 2nd largest eigenvalue keeps one direction
    w = np.linalg.eigvalsh(a)[::-1]
    _, rank1 = R.pinv_psd(a, rtol=(w[1] / w[0]) * 1.0001, return_rank=True)
    assert rank1 == 1
    assert R.default_rtol(400) == 400 * np.finfo(np.float32).eps


def test_rff_unit_norm_and_kernel_approximation():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 5)) * 0.5
    sigma = 1.3
    om = rng.standard_normal((5, 20000)) / sigma
    phi = R.rff_features(x, om)
    assert phi.shape == (30, 40000)
    np.testing.assert_allclose(np.sum(phi**2, 1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(phi @ phi.T, R.gaussian_kernel(x, x, sigma), atol=0.03)


def test_schur_traces_and_psd(toy):
    t, x = toy
    c_tt, c_tx, c_xx = R.covariances(R.cosine_features(t), R.cosine_features(x))
    s, r, rank = R.schur(c_tt, c_tx, c_xx)
    assert rank == 6
    np.testing.assert_allclose(np.trace(s) + np.trace(r), np.trace(c_xx), rtol=1e-12)
    np.testing.assert_allclose(np.trace(c_xx), 1.0, rtol=1e-12)
    assert np.linalg.eigvalsh(s).min() > -1e-12 and np.linalg.eigvalsh(r).min() > -1e-12


def test_primal_equals_dual_with_padding(toy):
    # n = 40 > 2D = 12 and n = 40 < 2D = 80: same spectrum either way.  ridge=0:
    # the dual has no ridge, and ε = 1e-12 moves the primal S by ~5e-10 here
    # (C_TT has kept eigenvalues near the cutoff, ~1e-5 of the largest).
    t, x = toy
    rng = np.random.default_rng(3)
    for big_d in (6, 40):
        om = rng.standard_normal((6, big_d)) / 2.0
        pt, px = R.rff_features(t, om), R.rff_features(x, om)
        p = R.sce_primal(pt, px, ridge=0.0)
        d = R.sce_dual(pt, px, size=2 * big_d)
        assert p.rank == d.rank
        np.testing.assert_allclose(p.complement, d.complement, atol=1e-12)
        np.testing.assert_allclose(p.text, d.text, atol=1e-12)
        np.testing.assert_allclose(p.image, d.image, atol=1e-12)
        assert rel(p.sce, d.sce) < 1e-9 and rel(p.text_score, d.text_score) < 1e-9
        # with the ridge on both sides
        p = R.sce_primal(pt, px)
        d = R.sce_dual(pt, px, size=2 * big_d, ridge=R.RIDGE)
        np.testing.assert_allclose(p.complement, d.complement, atol=1e-12)
        assert rel(p.sce, d.sce) < 1e-9 and rel(p.text_score, d.text_score) < 1e-9


def test_exact_gaussian_dual_equals_explicit_feature_dual(toy):
    # K = Φ Φᵀ for Φ a Cholesky factor of the kernel: the dual only sees K
    t, x = toy
    sigma = 2.0
    k = R.gaussian_kernel(np.vstack([t, x]), np.vstack([t, x]), sigma)
    chol = np.linalg.cholesky(k + 1e-12 * np.eye(80))
    e = R.sce_exact_gaussian(t, x, sigma)
    d = R.sce_dual(chol[:40], chol[40:], rtol=R.default_rtol(40), size=40)
    np.testing.assert_allclose(e.complement, d.complement, atol=1e-10)
    np.testing.assert_allclose(e.text, d.text, atol=1e-10)


def test_scores_basic_identities():
    lam = np.array([0.5, 0.25, 0.25, 0.0, -1e-14])
    # code score with clamp: zeros and negatives become 1e-10
    lc = np.maximum(lam, 1e-10)
    assert rel(R.code_score(lam), np.exp(-np.sum(lc * np.log(lc / lc.sum())))) < 1e-14
    # without clamp: Rényi of the positive part
    assert rel(R.renyi(lam, 1, clamp=None), np.exp(-(0.5 * np.log(0.5) + 0.5 * np.log(0.25)))) < 1e-14
    assert rel(R.renyi(lam, 2, clamp=None), 1 / (0.25 + 2 * 0.0625)) < 1e-14
    assert rel(R.renyi(lam, np.inf, clamp=None), 2.0) < 1e-14
    assert R.renyi(lam, "inf") == R.renyi(lam, np.inf)
    # order → 1 is continuous
    assert rel(R.renyi(lam, 1 + 1e-7, clamp=None), R.renyi(lam, 1, clamp=None)) < 1e-6
    # uniform spectrum of trace 1: every order gives the count
    u = np.full(7, 1 / 7)
    for q in (0.5, 1, 2, 3.5, np.inf):
        assert rel(R.renyi(u, q, clamp=None), 7.0) < 1e-12
    assert rel(R.code_score(u), 7.0) < 1e-12
    assert np.isclose(np.log(R.code_score(lam)), R.log_code_score(lam))
    with pytest.raises(ValueError):
        R.renyi(lam, 0)


def test_rke_is_order2_and_frobenius(toy):
    t, _ = toy
    k = R.gaussian_kernel(t, t, 1.5)
    assert rel(R.rke_frobenius(k), R.vendi_of_kernel(k, 2, clamp=None)) < 1e-10


def test_vendi_package_score_K_orders(toy):
    vendi = pytest.importorskip("vendi_score.vendi")
    t, _ = toy
    k = R.gaussian_kernel(t, t, 1.5)
    for q, ours in ((1, 1), (2, 2), ("inf", np.inf), (0.5, 0.5)):
        assert rel(R.vendi_of_kernel(k, ours, clamp=None), vendi.score_K(k, q=q)) < 1e-10


def test_editing_identities(toy):
    t, x = toy
    pt, px = R.cosine_features(t), R.cosine_features(x)
    co = R.fit_edit_coefficients(*R.covariances(pt, px))
    # full-rank C_TT: the text→text coefficient is the identity
    np.testing.assert_allclose(co.t2t, np.eye(6), atol=1e-9)
    np.testing.assert_allclose(R.nullify_t2t(pt[:3], pt[3:6], co), pt[:3] - pt[3:6], atol=1e-9)
    # A* is the least-squares map from text features to image features
    lstsq = np.linalg.lstsq(pt, px, rcond=None)[0]
    np.testing.assert_allclose(co.t2i, lstsq, atol=1e-9)
    lstsq_i2t = np.linalg.lstsq(px, pt, rcond=None)[0]
    np.testing.assert_allclose(co.i2t, lstsq_i2t, atol=1e-9)
    e0 = R.edit(px[:2], pt[:2], co.t2i, 0.0)
    e1 = R.edit(px[:2], pt[:2], co.t2i, 1.0)
    e2 = R.edit(px[:2], pt[:2], co.t2i, 2.0)
    np.testing.assert_allclose(e0, px[:2])
    np.testing.assert_allclose(e2 - e1, e1 - e0, atol=1e-12)


# ---------------------------------------------------------------------------
# cosine (the code's column-cosine "clip-dissection" convention)
# ---------------------------------------------------------------------------
def test_cosine_clip_dissection_reference_scores(ref_dir):
    ref = F.reference_scores(ref_dir)["cosine"]
    spec = R.sce_primal(covs=R.clip_dissection_covariances(F.texts(ref_dir), F.images(ref_dir)))
    assert spec.complement.size == ref["matrix_dim"] == 64
    assert rel(spec.sce, ref["SCE"]) < F.RTOL_COSINE
    assert rel(spec.text_score, ref["text_component"]) < F.RTOL_COSINE
    assert rel(spec.trace_complement, ref["trace_complement"]) < F.RTOL_COSINE
    assert rel(spec.trace_text, ref["trace_textpart"]) < F.RTOL_COSINE


def test_cosine_spec_check_float64(ref_dir):
    sc = F.spec_check(ref_dir)["cosine"]
    t, x = F.texts(ref_dir), F.images(ref_dir)
    code = R.sce_primal(covs=R.clip_dissection_covariances(t, x))
    paper = R.sce_primal(R.cosine_features(t), R.cosine_features(x))
    for spec, key in ((code, "numpy_float64_colcos(code)"),
                      (paper, "ALTERNATIVE_paper_linear_kernel_rownorm_C=X^TX/n")):
        want = sc[key]
        assert spec.rank == want["rank_kept"]
        assert rel(spec.sce, want["SCE"]) < F.RTOL_FLOAT64
        assert rel(spec.text_score, want["text_component"]) < F.RTOL_FLOAT64
        assert rel(spec.trace_complement, want["trace_S"]) < F.RTOL_FLOAT64
        lam = spec.complement
        # "vendi_normalized": Vendi-1 of S / tr S, zeros dropped (no clamp)
        assert rel(R.renyi(lam / lam.sum(), 1, clamp=None), want["SCE_vendi_normalized"]) < F.RTOL_FLOAT64
        # "unnormalized_vn": exp(−Σ λ log λ) of S itself, no clamp
        assert rel(R.renyi(lam, 1, clamp=None), want["SCE_unnormalized_vn"]) < F.RTOL_FLOAT64
    # the two conventions really differ (so a test can tell them apart)
    assert rel(code.sce, paper.sce) > 0.05


def test_cosine_eigs_files(ref_dir):
    spec = R.sce_primal(covs=R.clip_dissection_covariances(F.texts(ref_dir), F.images(ref_dir)))
    for part, ours in (("complement", spec.complement), ("textpart", spec.text)):
        theirs = F.eigs(ref_dir, "cosine", part)
        # float32 torch eigh: abs error up to ~5e-6 of the largest eigenvalue (measured 4.4e-6)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * theirs.max())
        np.testing.assert_allclose(ours[:10], theirs[:10], rtol=F.RTOL_COSINE)


# ---------------------------------------------------------------------------
# Gaussian RFF with the saved ω
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("tag", sorted(F.RFF_TAGS))
def test_rff_dual_reference_scores(ref_dir, tag):
    """Dual form (500×500), zero-padded to the primal size 2D: fast for all configs."""
    sigma, big_d = F.RFF_TAGS[tag]
    ref = F.reference_scores(ref_dir)[tag]
    assert ref["sigma"] == sigma and ref["rff_dim"] == big_d and ref["matrix_dim"] == 2 * big_d
    spec = _dual(ref_dir, tag, size=2 * big_d)
    assert spec.complement.size == 2 * big_d
    assert rel(spec.sce, ref["SCE"]) < F.RTOL_SCE
    assert rel(spec.text_score, ref["text_component"]) < F.RTOL_SCE
    assert abs(spec.trace_complement - ref["trace_complement"]) < 1e-5
    assert abs(spec.trace_text - ref["trace_textpart"]) < 1e-5
    np.testing.assert_allclose(spec.trace_complement + spec.trace_text, 1.0, rtol=1e-12)


DUAL_KEYS = [
    ("numpy_float64_dual_rtol=2D*eps32", None),
    ("numpy_float64_dual_rtol=2D*eps64", "eps64"),
    ("numpy_float64_dual_rtol=1e-3", 1e-3),
    ("numpy_float64_dual_rtol=1e-2", 1e-2),
]


@pytest.mark.parametrize("tag", sorted(F.RFF_TAGS))
@pytest.mark.parametrize("key,rtol", DUAL_KEYS, ids=[k for k, _ in DUAL_KEYS])
def test_rff_dual_spec_check_float64(ref_dir, tag, key, rtol):
    """spec_check's dual columns: eigenvalues padded to max(n, 2D) (for D=200,
    n=500 > 400, all 500 dual eigenvalues are kept, hence its primal/dual
    difference of 2e-7: 100 extra clamped zeros)."""
    sigma, big_d = F.RFF_TAGS[tag]
    if rtol == "eps64":
        rtol = 2 * big_d * np.finfo(np.float64).eps
    want = F.spec_check(ref_dir)[tag][key]
    spec = _dual(ref_dir, tag, rtol=rtol)
    assert spec.complement.size == max(F.N, 2 * big_d)
    assert spec.rank == want["rank_kept"]
    assert rel(spec.sce, want["SCE"]) < F.RTOL_FLOAT64
    assert rel(spec.text_score, want["text_component"]) < F.RTOL_FLOAT64
    assert abs(spec.trace_complement - want["trace_S"]) < 1e-12
    lam_s, lam_r = spec.complement, spec.text
    if want["trace_S"] > 1e-12:
        assert rel(R.renyi(lam_s / lam_s.sum(), 1, clamp=None), want["SCE_vendi_normalized"]) < F.RTOL_FLOAT64
    # else S = 0 up to rounding (tr S ~ 1e-30): S / tr S is rounding noise, so its
    # normalised Vendi (244.5 / 3.55 in spec_check) cannot be reproduced — not a check.
    assert rel(R.renyi(lam_r / lam_r.sum(), 1, clamp=None), want["text_vendi_normalized"]) < F.RTOL_FLOAT64
    assert rel(R.renyi(lam_s, 1, clamp=None), want["SCE_unnormalized_vn"]) < F.RTOL_FLOAT64


def test_rff_primal_small_spec_check_and_reference(ref_dir):
    tag = "gauss_s0.5_D200"
    ref = F.reference_scores(ref_dir)[tag]
    sc = F.spec_check(ref_dir)[tag]
    phi_t, phi_x = _rff(ref_dir, tag)
    spec = R.sce_primal(phi_t, phi_x)
    assert spec.complement.size == 400
    for key in ("numpy_float64_primal_rtol=2D*eps32", "numpy_float64_primal_rtol=2D*eps64(default)"):
        want = sc[key]
        assert spec.rank == want["rank_kept"]
        assert rel(spec.sce, want["SCE"]) < F.RTOL_FLOAT64
        assert rel(spec.text_score, want["text_component"]) < F.RTOL_FLOAT64
        assert rel(spec.trace_complement, want["trace_S"]) < F.RTOL_FLOAT64
    assert rel(spec.sce, ref["SCE"]) < F.RTOL_SCE
    assert rel(spec.text_score, ref["text_component"]) < F.RTOL_SCE
    # spec_check's float32 re-derivation is within the README's SCE tolerance
    f32 = sc["numpy_float32_primal_rtol=2D*eps32"]
    assert rel(spec.sce, f32["SCE"]) < F.RTOL_SCE and rel(spec.text_score, f32["text_component"]) < F.RTOL_SCE
    # primal (2D = 400 eigenvalues) == dual truncated to 400, with the same ridge
    # ε = 1e-12 (SPEC's ridge-free dual P differs by 1.6e-8 relative here)
    dual = _dual(ref_dir, tag, size=400, ridge=R.RIDGE)
    assert rel(spec.sce, dual.sce) < 1e-10
    assert rel(spec.text_score, dual.text_score) < 1e-10
    plain = _dual(ref_dir, tag, size=400)
    assert rel(spec.sce, plain.sce) < 1e-7


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["gauss_s3.5_D2500", "gauss_s0.5_D2500"])
def test_rff_primal_large(ref_dir, tag):
    """5000×5000 primal (~1-2 min on 2 cores); the dual tests above cover these configs fast."""
    ref = F.reference_scores(ref_dir)[tag]
    phi_t, phi_x = _rff(ref_dir, tag)
    spec = R.sce_primal(phi_t, phi_x)
    assert spec.complement.size == 5000
    assert rel(spec.sce, ref["SCE"]) < F.RTOL_SCE
    assert rel(spec.text_score, ref["text_component"]) < F.RTOL_SCE
    dual = _dual(ref_dir, tag, size=5000, ridge=R.RIDGE)
    assert spec.rank == dual.rank
    assert rel(spec.sce, dual.sce) < F.RTOL_FLOAT64
    assert rel(spec.text_score, dual.text_score) < F.RTOL_FLOAT64
    f32 = F.spec_check(ref_dir)[tag]["numpy_float32_primal_rtol=2D*eps32"]
    assert spec.rank == f32["rank_kept"]
    assert rel(spec.sce, f32["SCE"]) < F.RTOL_SCE


@pytest.mark.parametrize("tag", sorted(F.RFF_TAGS))
def test_rff_exact_kernel_spec_check(ref_dir, tag):
    """spec_check's exact-kernel (no RFF) columns: dual with the true Gram
    matrices, cutoff rtol = 2D·eps32 (D of the config) or 1e-3, eigenvalues
    padded to max(n, 2D) ("pad400" for n = 500 > 400 means no padding)."""
    sigma, big_d = F.RFF_TAGS[tag]
    sc = F.spec_check(ref_dir)[tag]
    for suffix, rtol in (("rtol=2D*eps32", 2 * big_d * R.EPS32), ("rtol=1e-3", 1e-3)):
        want = sc[f"exact_kernel_float64_dual_{suffix}_pad{2 * big_d}"]
        spec = R.sce_exact_gaussian(F.texts(ref_dir), F.images(ref_dir), sigma, rtol=rtol,
                                    size=max(F.N, 2 * big_d))
        assert spec.rank == want["rank_kept"]
        assert rel(spec.sce, want["SCE"]) < F.RTOL_FLOAT64
        assert rel(spec.text_score, want["text_component"]) < F.RTOL_FLOAT64
        assert abs(spec.trace_complement - want["trace_S"]) < 1e-12


@pytest.mark.parametrize("tag", sorted(F.RFF_TAGS))
def test_rff_eigs_files(ref_dir, tag):
    sigma, big_d = F.RFF_TAGS[tag]
    ref = F.reference_scores(ref_dir)[tag]
    spec = _dual(ref_dir, tag, size=2 * big_d)
    for part, ours in (("complement", spec.complement), ("textpart", spec.text)):
        theirs = F.eigs(ref_dir, tag, part)
        assert theirs.size == 2 * big_d
        # fixture self-consistency: counts and traces quoted in reference_scores.json
        short = "complement" if part == "complement" else "textpart"
        assert int(np.sum(theirs > 1e-10)) == ref[f"n_{short}_eigs_gt_1em10"]
        assert abs(theirs.sum() - ref[f"trace_{short}"]) < 1e-5
        if tag in F.DEGENERATE and part == "complement":
            # S ≈ 0: the reference's eigenvalues are pure float32 noise, ours ~1e-17
            assert np.abs(theirs).max() < 1e-7 and np.abs(ours).max() < 1e-12
            continue
        # float32 noise of torch's eigh: ≤ ~5e-4 of the largest eigenvalue (measured
        # 3.6e-4 for the D=200 complement), so abs 1e-3·max; the leading ones rel 1e-4
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-3 * theirs.max())
        np.testing.assert_allclose(ours[:10], theirs[:10], rtol=1e-4)


@pytest.mark.parametrize("tag", sorted(F.RFF_TAGS) + ["cosine"])
def test_rescore_reference_eigs(ref_dir, tag):
    """The score functions applied to the reference's own eigenvalues."""
    want = F.spec_check(ref_dir)[tag]["rescore_reference_eigs"]
    ref = F.reference_scores(ref_dir)[tag]
    lam_s, lam_r = F.eigs(ref_dir, tag, "complement"), F.eigs(ref_dir, tag, "textpart")
    assert rel(R.code_score(lam_s), want["code_formula"]) < 1e-10
    assert rel(R.code_score(lam_r), want["code_formula_text"]) < 1e-10
    # the torch float32 evaluation of the same formula
    assert rel(R.code_score(lam_s), ref["SCE"]) < 1e-6
    assert rel(R.code_score(lam_r), ref["text_component"]) < 1e-6
    # "vendi_normalized(S/trS)": negatives dropped, then normalised by the positive sum
    for lam, key in ((lam_s, "vendi_normalized(S/trS)"), (lam_r, "vendi_normalized(R/trR)")):
        pos = lam[lam > 0]
        assert rel(R.renyi(pos / pos.sum(), 1, clamp=None), want[key]) < F.RTOL_FLOAT64
    assert rel(R.renyi(lam_s, 1, clamp=None), want["unnormalized_exp(-sum l log l)"]) < F.RTOL_FLOAT64


# ---------------------------------------------------------------------------
# embedding correction
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cosine_code_coeffs(ref_dir):
    return R.fit_edit_coefficients(*R.clip_dissection_covariances(F.texts(ref_dir), F.images(ref_dir)))


def test_correction_t2i_cosine(ref_dir, cosine_code_coeffs):
    tq, xq = F.text_queries(ref_dir), F.image_queries(ref_dir)
    np.testing.assert_allclose(cosine_code_coeffs.t2i, F.npy(ref_dir, "correction/t2i_cosine_Astar.npy"),
                               rtol=0, atol=F.ATOL_CORRECTION)
    # the code applies A* to the raw query (no feature map under clip-dissection)
    out = R.nullify_t2i(xq, tq, cosine_code_coeffs)
    np.testing.assert_allclose(out, F.npy(ref_dir, "correction/t2i_cosine_corrected.npy"),
                               rtol=0, atol=F.ATOL_CORRECTION)
    info = F.correction(ref_dir)["t2i_cosine"]
    cos = lambda a, b: np.sum(R.l2_normalize_rows(a) * R.l2_normalize_rows(b), 1)  # noqa: E731
    np.testing.assert_allclose(cos(xq, tq), info["cos_sim_query_before"], atol=F.ATOL_CORRECTION)
    np.testing.assert_allclose(cos(out, tq), info["cos_sim_query_after_code"], atol=F.ATOL_CORRECTION)


def test_correction_i2t_cosine(ref_dir, cosine_code_coeffs):
    tq, xq = F.text_queries(ref_dir), F.image_queries(ref_dir)
    out = R.nullify_i2t(tq, xq, cosine_code_coeffs)
    np.testing.assert_allclose(out, F.npy(ref_dir, "correction/i2t_cosine_corrected.npy"),
                               rtol=0, atol=F.ATOL_CORRECTION)


def test_correction_paper_style_alternative(ref_dir):
    t, x = F.texts(ref_dir), F.images(ref_dir)
    tq, xq = F.text_queries(ref_dir), F.image_queries(ref_dir)
    co = R.fit_edit_coefficients(*R.covariances(R.cosine_features(t), R.cosine_features(x)))
    np.testing.assert_allclose(co.t2i, F.npy(ref_dir, "correction/t2i_linear_rownorm_Gamma_ALTERNATIVE.npy"),
                               rtol=0, atol=F.ATOL_CORRECTION)
    out = R.nullify_t2i(R.cosine_features(xq), R.cosine_features(tq), co)
    np.testing.assert_allclose(out, F.npy(ref_dir, "correction/t2i_linear_rownorm_corrected_ALTERNATIVE.npy"),
                               rtol=0, atol=F.ATOL_CORRECTION)
    code = F.npy(ref_dir, "correction/t2i_cosine_corrected.npy")
    want = F.correction(ref_dir)["t2i_cosine"]["alternative_paper_style"]["max_abs_diff_vs_code"]
    assert abs(np.abs(out - code).max() - want) < 1e-6


def _rff_coeffs(ref_dir, om):
    t, x = F.texts(ref_dir), F.images(ref_dir)
    return R.fit_edit_coefficients(*R.covariances(R.rff_features(t, om), R.rff_features(x, om)))


def test_correction_gaussian_draws(ref_dir):
    # the first draw after seed 0 is the saved omegas file (same torch call)
    np.testing.assert_array_equal(F.correction_omega(ref_dir, 0),
                                  F.omega(ref_dir, "gauss_s0.5_D200").astype(np.float64))


def test_correction_gaussian_code_behaviour(ref_dir):
    """The code's output, frequencies mismatched: φ_{W1}(image) − φ_{W0}(text) A*_{W2}."""
    w = [F.correction_omega(ref_dir, k) for k in range(3)]
    xq, tq = F.image_queries(ref_dir)[:1], F.text_queries(ref_dir)[:1]
    out = R.rff_features(xq, w[1]) - R.rff_features(tq, w[0]) @ _rff_coeffs(ref_dir, w[2]).t2i
    np.testing.assert_allclose(out, F.npy(ref_dir, "correction/t2i_gauss_s0.5_D200_corrected.npy"),
                               rtol=0, atol=F.ATOL_CORRECTION)


def test_correction_gaussian_consistent_alternative(ref_dir):
    """One ω for queries and A*: the third draw (randn_2 / σ, the A* draw)."""
    want = F.npy(ref_dir, "correction/t2i_gauss_s0.5_D200_corrected_CONSISTENT_OMEGAS_ALTERNATIVE.npy")
    xq, tq = F.image_queries(ref_dir)[:1], F.text_queries(ref_dir)[:1]
    errs = {}
    for k in range(3):
        om = F.correction_omega(ref_dir, k)
        out = R.nullify_t2i(R.rff_features(xq, om), R.rff_features(tq, om), _rff_coeffs(ref_dir, om))
        errs[k] = np.abs(out - want).max()
    assert errs[F.CONSISTENT_DRAW] < F.ATOL_CORRECTION
    assert all(e > 0.1 for k, e in errs.items() if k != F.CONSISTENT_DRAW), errs


# ---------------------------------------------------------------------------
# companion scores (Vendi / RKE / FKEA-style / conditional Vendi)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["image", "text"])
def test_companion_vendi_package(ref_dir, who):
    v = F.companion(ref_dir)["vendi_score_pkg"]
    a = F.images(ref_dir) if who == "image" else F.texts(ref_dir)
    # cosine: the package ran in float32 (float32 inputs), hence the cosine tolerance
    phi = R.cosine_features(a)
    ours = R.vendi_of_features(phi, 1, clamp=None)
    assert rel(ours, v[f"{who}_score_dual_cosine_q1"]) < F.RTOL_COSINE
    assert rel(ours, v[f"{who}_score_X_cosine_q1"]) < F.RTOL_COSINE
    assert rel(R.vendi_of_kernel(phi @ phi.T, 1, clamp=None), ours) < 1e-10
    # gaussian: float64 kernel matrices
    for sigma in (0.5, 3.5):
        k = R.gaussian_kernel(a, a, sigma)
        for q, order in (("1", 1), ("2", 2), ("inf", np.inf)):
            want = v[f"{who}_score_K_gauss_sigma{sigma}_q{q}"]
            assert rel(R.vendi_of_kernel(k, order, clamp=None), want) < 1e-10
            # the 1e-10 clamp changes nothing here (n = primal size, K well conditioned)
            assert rel(R.vendi_of_kernel(k, order), want) < 1e-8
        assert rel(R.rke_frobenius(k), v[f"{who}_score_K_gauss_sigma{sigma}_q2"]) < 1e-10


def test_companion_rke_package(ref_dir):
    rk = F.companion(ref_dir)["rke_score_pkg"]
    x = F.images(ref_dir)
    for sigma in (0.5, 3.5):
        k = R.gaussian_kernel(x, x, sigma)
        assert rel(np.mean(k**2), rk[f"image_sigma{sigma}_mean_k2"]) < 1e-10
        assert rel(R.rke_frobenius(k), rk[f"image_sigma{sigma}_RKE_MC=1/mean_k2"]) < 1e-10


FKEA_ORDERS = (("1.0", 1.0), ("1.5", 1.5), ("2", 2), ("2.5", 2.5), ("inf", np.inf))


@pytest.mark.parametrize("sigma", [0.5, 3.5])
def test_companion_fkea_style(ref_dir, sigma):
    """CLIP-DISSECTION calculate_stats: clamp 1e-10, unnormalised, rounded to 2 decimals."""
    fk = F.companion(ref_dir)["fkea_style_clip_dissection"]
    x = F.images(ref_dir)
    exact = R.eigvals_desc(R.gaussian_kernel(x, x, sigma) / F.N)
    phi = R.rff_features(x, F.omega(ref_dir, f"gauss_s{sigma}_D2500"))
    # RFF covariance spectrum via the 500×500 Gram, padded to the primal 5000
    rff = R.pad_zeros(R.eigvals_desc(phi @ phi.T / F.N), 5000)
    for lam, key in ((exact, f"image_sigma{sigma}_exact_kernel(non_fourier_scores)"),
                     (rff, f"image_sigma{sigma}_rff2500_seed0(fourier_scores)")):
        for name, order in FKEA_ORDERS:
            assert abs(R.renyi(lam, order) - fk[key][f"VENDI-{name}"]) <= 0.005 + 1e-9, (key, name)


@pytest.mark.parametrize("name", ["gaussian_sigma0.5", "gaussian_sigma3.5", "cosine"])
@pytest.mark.parametrize("order", [1, 2])
def test_companion_conditional_vendi(ref_dir, name, order):
    """mjalali/conditional-vendi (float32): joint kernel K_X ∘ K_T, entropies of K/n
    with zeros dropped; H(X|T) = H(X,T) − H(T), I(X;T) = H(X) + H(T) − H(X,T).
    Tolerance: abs 1e-4 on entropies (float32 noise), so rel ~1e-4 on their exps."""
    want = F.companion(ref_dir)["conditional_vendi_repo"][f"{name}_order{order}"]
    t, x = F.texts(ref_dir), F.images(ref_dir)
    if name == "cosine":
        kx = R.cosine_features(x) @ R.cosine_features(x).T
        kt = R.cosine_features(t) @ R.cosine_features(t).T
    else:
        sigma = float(name.split("sigma")[1])
        kx, kt = R.gaussian_kernel(x, x, sigma), R.gaussian_kernel(t, t, sigma)
    h = {k: R.log_renyi(R.eigvals_desc(m / F.N), order, clamp=None)
         for k, m in (("X", kx), ("T", kt), ("joint", kx * kt))}
    for key, val in (("H_X", h["X"]), ("H_T", h["T"]), ("H_joint", h["joint"]),
                     ("H_X_given_T", h["joint"] - h["T"]), ("I_X_T", h["X"] + h["T"] - h["joint"])):
        assert abs(val - want[key]) < 1e-4, key
    assert rel(np.exp(h["joint"] - h["T"]), want["Conditional_Vendi"]) < 1e-4
    assert rel(np.exp(h["X"] + h["T"] - h["joint"]), want["Information_Vendi"]) < 1e-4
    assert rel(np.exp(h["X"]), want["Vendi_X"]) < 1e-4
