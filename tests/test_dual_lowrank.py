"""clipcore.dual_lowrank: the exact dual Schur spectra through the kept subspace of K_T equal the dense
float64 form (SPEC.md, "Primal and dual"), whatever the kept rank."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from clipcore.dual_lowrank import MAX_KEPT_FRACTION, SUBSPACE_KEPT_FRACTION, schur_dual_lowrank

EPS32 = float(np.finfo(np.float32).eps)


def dense(k_t, k_x, rtol, eps=1e-12):
    """The dense dual form in NumPy float64: eigh of K_T, the filter, both n×n spectra."""
    w, u = np.linalg.eigh(k_t)
    sh = w + eps
    keep = np.abs(sh) > rtol * np.abs(sh).max()
    f = np.clip(np.where(keep, w / np.where(keep, sh, 1.0), 0.0), 0.0, 1.0)
    m = u.T @ k_x @ u
    sf, sc = np.sqrt(f), np.sqrt(1.0 - f)
    spec = [np.maximum(np.linalg.eigvalsh(a)[::-1], 0.0)
            for a in (sf[:, None] * m * sf[None, :], sc[:, None] * m * sc[None, :], k_x)]
    return (*spec, int(keep.sum()))


def grams(kind, n=600, d=12, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "few prompts":  # 10 distinct prompts: kept rank ≤ n/50 (the subspace iteration)
        t = np.repeat(rng.standard_normal((10, d)), n // 10, axis=0)
        sigma = 3.0
    elif kind == "repeated prompts":  # K_T of rank = the number of prompts (the tridiagonal route)
        t = np.repeat(rng.standard_normal((40, d)), n // 40, axis=0)
        sigma = 3.0
    elif kind == "smooth":  # distinct prompts, a wide kernel: fast decay, small kept rank
        t = rng.standard_normal((n, d))
        sigma = 6.0
    else:  # "sharp": a narrow kernel, slow decay: many kept directions (the tridiagonal route)
        t = rng.standard_normal((n, d))
        sigma = 1.0
    x = t + 0.8 * rng.standard_normal(t.shape)
    g = lambda a: np.exp(-cdist(a, a, "sqeuclidean") / (2 * sigma ** 2)) / n  # noqa: E731
    return g(t), g(x)


ROUTES = {"few prompts": "subspace iteration", "repeated prompts": "tridiagonal", "smooth": "tridiagonal",
          "sharp": "dense"}


@pytest.mark.parametrize("kind", list(ROUTES))
def test_equals_the_dense_form(kind):
    k_t, k_x = grams(kind)
    n = k_t.shape[0]
    rtol = n * EPS32
    text, comp, image, rank = dense(k_t, k_x, rtol)
    route = ("dense" if rank > MAX_KEPT_FRACTION * n else
             "tridiagonal" if rank > SUBSPACE_KEPT_FRACTION * n else "subspace iteration")
    assert route == ROUTES[kind]  # every route is exercised
    sp = schur_dual_lowrank(k_t, k_x, rtol)
    if route == "dense":  # most directions kept: the kept-subspace form declines, the caller goes dense
        assert sp is None
        return
    assert sp.rank == rank
    scale = image.max()
    np.testing.assert_allclose(sp.text, text, atol=1e-13 * scale)
    np.testing.assert_allclose(sp.complement, comp, atol=1e-13 * scale)
    np.testing.assert_allclose(sp.image, image, atol=1e-13 * scale)


def test_exact_sce_keeping_most_directions_equals_the_dense_form():
    """Above LOWRANK_ROWS a K_T that keeps most directions goes back to the dense dual form: the spectra of
    clipcore.sce still equal NumPy's dense float64 computation."""
    import clipcore

    rng = np.random.default_rng(0)
    n, d, sigma = 600, 12, 1.0
    t = rng.standard_normal((n, d))
    x = t + 0.8 * rng.standard_normal(t.shape)
    g = lambda a: np.exp(-cdist(a, a, "sqeuclidean") / (2 * sigma ** 2)) / n  # noqa: E731
    text, comp, image, rank = dense(g(t), g(x), n * EPS32)
    assert rank > MAX_KEPT_FRACTION * n
    r = clipcore.sce(x, t, kernel="gaussian", sigma=sigma, dtype="float64", progress=False)
    assert r.rank_kept == rank
    scale = image.max()
    np.testing.assert_allclose(np.asarray(r.complement_eigenvalues), comp, atol=1e-13 * scale)
    np.testing.assert_allclose(np.asarray(r.text_eigenvalues), text, atol=1e-13 * scale)


def test_texts_that_explain_nothing_are_declined_to_the_dense_form():
    """K_T = 0: every |w + ε| = ε passes the cutoff (as in the dense form) with f = 0, so every direction is
    kept: the kept-subspace form declines (None) and the dense form gives R = 0, S = K_X."""
    k_t, k_x = grams("smooth", n=300)
    assert schur_dual_lowrank(k_t * 0.0, k_x, 1e-3) is None
    text, comp, image, rank = dense(k_t * 0.0, k_x, 1e-3)
    assert rank == 300 and not text.any()
    np.testing.assert_allclose(comp, image, atol=1e-15)


@pytest.mark.parametrize("kind", ["repeated prompts", "smooth", "sharp"])
def test_primal_equals_the_dense_schur_primal(kind):
    """The primal form through the kept subspace of C_TT equals clipcore.schur.schur_primal (dense eigh of
    C_TT and three eigvalsh) on random-Fourier-feature covariances of the three kinds of data."""
    import jax.numpy as jnp

    from clipcore.dual_lowrank import schur_primal_lowrank
    from clipcore.schur import schur_primal

    rng = np.random.default_rng(5)
    n, d, D = 900, 12, 300
    t = (np.repeat(rng.standard_normal((30, d)), 30, axis=0) if kind == "repeated prompts"
         else rng.standard_normal((n, d)))
    x = t + 0.8 * rng.standard_normal(t.shape)
    sigma = {"repeated prompts": 3.0, "smooth": 6.0, "sharp": 1.0}[kind]
    om = rng.standard_normal((d, D)) / sigma
    phi = lambda a: np.concatenate([np.cos(a @ om), np.sin(a @ om)], 1) / np.sqrt(D)  # noqa: E731
    pt, px = phi(t), phi(x)
    c_tt, c_tx, c_xx = pt.T @ pt / n, pt.T @ px / n, px.T @ px / n
    rtol = 2 * D * EPS32
    want = schur_primal(jnp.asarray(c_tt), jnp.asarray(c_tx), jnp.asarray(c_xx), rtol)
    got = schur_primal_lowrank(c_tt, c_tx, c_xx, rtol)
    if int(want.rank) > MAX_KEPT_FRACTION * 2 * D:  # most directions kept: declined, the caller goes dense
        assert kind == "sharp" and got is None
        return
    assert got.rank == int(want.rank)
    scale = float(np.max(want.image))
    for a, b in ((got.text, want.text), (got.complement, want.complement), (got.image, want.image)):
        np.testing.assert_allclose(a, np.asarray(b), atol=1e-12 * scale)


def _dense_kept(k_t, rtol):
    """NumPy's eigh, descending, and how many eigenvalues pass |w + ε| > rtol · max |w + ε|."""
    w, v = np.linalg.eigh(k_t)
    sh = w[::-1] + 1e-12
    return w[::-1], v[:, ::-1], int((np.abs(sh) > rtol * np.abs(sh).max()).sum())


def _route(monkeypatch, two_stage: bool) -> list:
    """Sends tridiagonal_kept_pairs through the two-stage reduction (the compiled core; skipped without it) or
    the one-stage ?sytrd; returns the list that counts the two-stage calls."""
    from clipcore import _ffi
    from clipcore import dual_lowrank as DL

    if two_stage and not _ffi.band_available():
        pytest.skip("the compiled core is not loaded")
    monkeypatch.setattr(DL, "TWO_STAGE_ROWS", 64 if two_stage else 10 ** 9)
    calls, real = [], _ffi.band_eigenvectors
    monkeypatch.setattr(_ffi, "band_eigenvectors", lambda *a: calls.append(1) or real(*a))
    return calls


@pytest.mark.parametrize("two_stage", [False, True])
@pytest.mark.parametrize("kind", list(ROUTES))
@pytest.mark.parametrize("layout", ["C", "F"])
def test_tridiagonal_kept_pairs_are_the_dense_kept_pairs(kind, layout, two_stage, monkeypatch):
    """One tridiagonalisation (?sytrd, ?sterf for the count, ?stebz/?stein for the vectors, ?ormqr on the
    reflectors without a copy) or the two-stage reduction (the compiled core: band, spectrum, inverse iteration
    on the band, the reflectors) gives exactly NumPy's kept eigenpairs, at several cutoffs, from C- or
    Fortran-ordered input, with the input kept; None above a third of n."""
    from clipcore.dual_lowrank import tridiagonal_kept_pairs

    calls = _route(monkeypatch, two_stage)
    k_t, _ = grams(kind)
    n = k_t.shape[0]
    w_all, v_all, _ = _dense_kept(k_t, 0.3)
    for rtol in (n * EPS32, 1e-3, 1e-2, 0.3):
        k = _dense_kept(k_t, rtol)[2]
        a = np.asfortranarray(k_t) if layout == "F" else k_t.copy()
        got = tridiagonal_kept_pairs(a, rtol)
        np.testing.assert_array_equal(a, k_t)
        if k > MAX_KEPT_FRACTION * n:
            assert got is None, (kind, rtol)
            continue
        w, u = got
        assert w.size == k and u.shape == (n, k), (kind, rtol)
        np.testing.assert_allclose(w, w_all[:k], rtol=1e-10, atol=1e-14 * w_all[0])
        assert np.linalg.norm(u.T @ u - np.eye(k)) < 1e-10
        assert np.linalg.norm(k_t @ u - u * w[None, :]) < 1e-12 * w_all[0]
        v = v_all[:, :k]
        assert np.linalg.norm(u @ u.T - v @ v.T) < 1e-8, (kind, rtol)
    assert bool(calls) == (two_stage and kind != "sharp")  # "sharp" keeps more than a third at every cutoff
    if calls:  # and the two-stage vectors were accepted (not the one-stage route after them)
        from clipcore import dual_lowrank as DL
        assert DL.two_stage_kept_pairs(k_t, n * EPS32) is not DL.INSEPARABLE


def test_band_eigenvectors_and_residuals_are_the_band_matrix_s():
    """The compiled stages against NumPy: band_reduce's spectrum is K's, its band B has K's spectrum, and
    band_eigenvectors' vectors and residuals ‖B z − λ z‖ are those of the dense B."""
    from clipcore import _ffi

    if not _ffi.band_available():
        pytest.skip("the compiled core is not loaded")
    k_t, _ = grams("smooth", n=300)
    kd = 8
    w, ab, tau = _ffi.band_reduce(k_t.copy(), kd)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(k_t), rtol=0, atol=1e-14 * np.abs(w).max())
    b = np.zeros_like(k_t)
    for r in range(kd + 1):
        i = np.arange(300 - r)
        b[i + r, i] = b[i, i + r] = ab[r, :300 - r]
    np.testing.assert_allclose(np.linalg.eigvalsh(b), w, rtol=0, atol=1e-14 * np.abs(w).max())
    lams = w[::-1][:20].copy()
    z, res = _ffi.band_eigenvectors(ab, lams)
    assert res.max() < 1e-14 * w.max()
    off = lams + 1e-8 * w.max()  # shifts off the eigenvalues: residuals well above rounding, as NumPy's
    zo, ro = _ffi.band_eigenvectors(ab, off)
    np.testing.assert_allclose(ro, np.linalg.norm(b @ zo - zo * off[None, :], axis=0), rtol=1e-6)
    assert ro.min() > 1e-9 * w.max()
    np.testing.assert_allclose(z.T @ z, np.eye(20), atol=1e-12)
    q = _ffi.apply_reflectors(_reflectors(k_t, kd), tau, kd, np.asfortranarray(z))
    np.testing.assert_allclose(np.linalg.norm(k_t @ q - q * lams[None, :], axis=0), 0, atol=1e-14 * w.max())


def _reflectors(k_t, kd):
    """band_reduce's overwritten input (the reflectors) for k_t."""
    from clipcore import _ffi

    a = k_t.copy()
    _ffi.band_reduce(a, kd)
    return a


def test_two_stage_declines_equal_eigenvalues(monkeypatch):
    """A K with every eigenvalue doubled (two equal blocks): inverse iteration cannot tell a pair's vectors
    apart, the two-stage route declines and the one-stage route gives NumPy's kept subspace."""
    import scipy.linalg

    from clipcore import dual_lowrank as DL

    calls = _route(monkeypatch, True)
    t = np.random.default_rng(5).standard_normal((150, 6))
    b = np.exp(-cdist(t, t, "sqeuclidean") / (2 * 3.0 ** 2)) / 300
    k_t = scipy.linalg.block_diag(b, b)
    w_all, v_all, k = _dense_kept(k_t, 1e-3)
    assert 0 < k < MAX_KEPT_FRACTION * k_t.shape[0]
    assert DL.two_stage_kept_pairs(k_t, 1e-3) is DL.INSEPARABLE
    w, u = DL.tridiagonal_kept_pairs(k_t, 1e-3)
    assert len(calls) == 2  # tried (above) and tried again inside, then the one-stage route
    np.testing.assert_allclose(w, w_all[:k], rtol=1e-10, atol=1e-14 * w_all[0])
    assert np.linalg.norm(u.T @ u - np.eye(k)) < 1e-10
    assert np.linalg.norm(k_t @ u - u * w[None, :]) < 1e-12 * w_all[0]
    assert np.linalg.norm(u @ u.T - v_all[:, :k] @ v_all[:, :k].T) < 1e-8


def test_tridiagonal_kept_pairs_fall_back_to_mrrr(monkeypatch):
    """Where inverse iteration (?stein) reports failure the vectors come from MRRR (?stemr), the same pairs."""
    import scipy.linalg.lapack

    from clipcore.dual_lowrank import tridiagonal_kept_pairs

    k_t, _ = grams("repeated prompts")
    want = tridiagonal_kept_pairs(k_t, 1e-3)
    monkeypatch.setattr(scipy.linalg.lapack, "dstein", lambda *a: (np.zeros((k_t.shape[0], 0)), 1))
    w, u = tridiagonal_kept_pairs(k_t, 1e-3)
    np.testing.assert_allclose(w, want[0], rtol=1e-12)
    assert np.linalg.norm(u @ u.T - want[1] @ want[1].T) < 1e-10


@pytest.mark.parametrize("blocks", [1, 3])
def test_tridiagonal_kept_pairs_with_and_without_splits(monkeypatch, blocks):
    """A T that does not split takes ?stein at ?sterf's eigenvalues (no bisection); a block-diagonal K (its T
    splits at the blocks: the reduction is a Lanczos run from e_1) takes ?stebz first. Both give NumPy's kept
    pairs."""
    import scipy.linalg
    import scipy.linalg.lapack

    from clipcore.dual_lowrank import tridiagonal_kept_pairs

    rng = np.random.default_rng(3)
    parts = []
    for _ in range(blocks):
        t = rng.standard_normal((200, 8))
        parts.append(np.exp(-cdist(t, t, "sqeuclidean") / (2 * 4.0 ** 2)) / (200 * blocks))
    k_t = scipy.linalg.block_diag(*parts)
    calls = []
    stebz = scipy.linalg.lapack.dstebz
    monkeypatch.setattr(scipy.linalg.lapack, "dstebz", lambda *a: calls.append(1) or stebz(*a))
    w_all, v_all, k = _dense_kept(k_t, 1e-3)
    assert 0 < k < MAX_KEPT_FRACTION * k_t.shape[0]
    w, u = tridiagonal_kept_pairs(k_t, 1e-3)
    assert len(calls) == (blocks > 1)
    np.testing.assert_allclose(w, w_all[:k], rtol=1e-10, atol=1e-14 * w_all[0])
    assert np.linalg.norm(u.T @ u - np.eye(k)) < 1e-10
    assert np.linalg.norm(k_t @ u - u * w[None, :]) < 1e-12 * w_all[0]
    assert np.linalg.norm(u @ u.T - v_all[:, :k] @ v_all[:, :k].T) < 1e-8


@pytest.mark.parametrize("kind", list(ROUTES))
def test_kept_eigenpairs_are_the_dense_kept_pairs(kind):
    """kept_eigenpairs (subspace iteration + a Cholesky certificate, or the subset solver) returns exactly
    the eigenpairs NumPy's eigh keeps under the dense cutoff, at several cutoffs; None above a third of n."""
    from clipcore.dual_lowrank import kept_eigenpairs

    k_t, _ = grams(kind)
    n = k_t.shape[0]
    w_all, v_all = np.linalg.eigh(k_t)
    w_all, v_all = w_all[::-1], v_all[:, ::-1]
    for rtol in (n * EPS32, 1e-3, 1e-2, 0.3):
        sh = w_all + 1e-12
        k = int((np.abs(sh) > rtol * np.abs(sh).max()).sum())
        got = kept_eigenpairs(k_t, rtol)
        if k > MAX_KEPT_FRACTION * n:
            assert got is None, (kind, rtol)
            continue
        w, u = got
        assert w.size == k, (kind, rtol)
        np.testing.assert_allclose(w, w_all[:k], rtol=1e-10, atol=1e-14 * w_all[0])
        v = v_all[:, :k]
        assert np.linalg.norm(u @ u.T - v @ v.T) < 1e-8, (kind, rtol)


def test_certify_counts_the_eigenvalues_above_the_cut():
    from clipcore.dual_lowrank import certify

    k_t, _ = grams("smooth", n=300)
    w, v = np.linalg.eigh(k_t)
    w, v = w[::-1], v[:, ::-1]
    k = 7
    cut = 0.5 * (w[k - 1] + w[k])
    assert certify(k_t, w[:k], v[:, :k], cut)
    assert not certify(k_t, w[:k - 1], v[:, :k - 1], cut)  # one eigenvalue above the cut left in
    assert not certify(k_t, w[:k], v[:, :k], 0.5 * (w[k] + w[k + 1]))  # the cut below the next one


@pytest.mark.parametrize("n", [1, 2, 10, 63, 64, 65])
def test_tridiagonal_kept_pairs_on_small_matrices(n):
    """Few rows (one dense eigh below SMALL_ROWS, LAPACK's tridiagonal route from it on): the pairs of a
    rank-one K, and None where the one kept direction is more than a third of n."""
    from clipcore.dual_lowrank import tridiagonal_kept_pairs

    v = np.random.default_rng(n).standard_normal(n)
    k_t = np.outer(v, v)
    got = tridiagonal_kept_pairs(k_t, 1e-6)
    if 1 > MAX_KEPT_FRACTION * n:
        assert got is None
        return
    w, u = got
    np.testing.assert_allclose(w, [v @ v], rtol=1e-12)
    np.testing.assert_allclose(np.abs(u[:, 0]), np.abs(v) / np.linalg.norm(v), atol=1e-12)


@pytest.mark.parametrize("counts", ["equal", "ragged"])
@pytest.mark.parametrize("rtol", [n * EPS32 for n in (600,)] + [1e-2])
def test_repeated_prompts_take_the_distinct_prompts_problem(counts, rtol):
    """K_T of prompts repeated (ten images each, or 1 to 20 each): the kept pairs from the u×u problem of the
    distinct prompts (repeated_kept_pairs) give the dense float64 form's spectra, as NumPy's eigh of K_T does."""
    from clipcore.dual_lowrank import repeated_kept_pairs

    rng = np.random.default_rng(11)
    d, sigma = 12, 3.0
    reps = np.full(60, 10) if counts == "equal" else rng.integers(1, 21, size=60)
    prompts = rng.standard_normal((60, d))
    order = rng.permutation(int(reps.sum()))  # prompts' rows interleaved, not in blocks
    t = np.repeat(prompts, reps, axis=0)[order]
    x = t + 0.8 * rng.standard_normal(t.shape)
    n = t.shape[0]
    g = lambda a: np.exp(-cdist(a, a, "sqeuclidean") / (2 * sigma ** 2)) / n  # noqa: E731
    k_t, k_x = g(t), g(x)
    _, first, inverse = np.unique(t, axis=0, return_index=True, return_inverse=True)
    w, u = repeated_kept_pairs(k_t, first, inverse.reshape(-1), rtol)
    w_all, v_all, k = _dense_kept(k_t, rtol)
    assert w.size == k
    np.testing.assert_allclose(w, w_all[:k], rtol=1e-10, atol=1e-14 * w_all[0])
    assert np.linalg.norm(u.T @ u - np.eye(k)) < 1e-10
    assert np.linalg.norm(k_t @ u - u * w[None, :]) < 1e-12 * w_all[0]
    text, comp, image, rank = dense(k_t, k_x, rtol)
    sp = schur_dual_lowrank(k_t, k_x, rtol, pairs=(w, u))
    assert sp.rank == rank
    for a, b in ((sp.text, text), (sp.complement, comp), (sp.image, image)):
        np.testing.assert_allclose(a, b, atol=1e-12 * image[0])


def test_repeated_prompts_keep_every_direction_when_the_cutoff_is_below_eps():
    """rtol · max < ε: the dense form keeps K_T's zero eigenvalues too (|0 + ε| passes): declined (None)."""
    from clipcore.dual_lowrank import repeated_kept_pairs

    t = np.repeat(np.random.default_rng(0).standard_normal((5, 4)), 4, axis=0)
    k_t = np.exp(-cdist(t, t, "sqeuclidean") / 2.0) / 20
    _, first, inverse = np.unique(t, axis=0, return_index=True, return_inverse=True)
    assert repeated_kept_pairs(k_t, first, inverse.reshape(-1), 1e-14) is None
    assert repeated_kept_pairs(k_t, first, inverse.reshape(-1), 1e-3) is not None


@pytest.mark.parametrize("sigma", [1.0, 3.0])
def test_repeated_feature_pairs_are_the_dense_kept_pairs(sigma):
    """C_TT = Φ_Tᵀ Φ_T / n of prompts repeated 1 to 9 times: its kept pairs from the distinct prompts' u×u
    problem equal NumPy's eigh of the D×D C_TT under the same cutoff (eigenvalues, the kept subspace)."""
    from clipcore.dual_lowrank import repeated_feature_pairs

    rng = np.random.default_rng(4)
    d, D, u = 10, 200, 80
    prompts = rng.standard_normal((u, d))
    counts = rng.integers(1, 10, size=u)
    om = rng.standard_normal((d, D)) / sigma
    phi = lambda a: np.concatenate([np.cos(a @ om), np.sin(a @ om)], 1) / np.sqrt(D)  # noqa: E731
    pt = phi(np.repeat(prompts, counts, axis=0))
    n = pt.shape[0]
    c_tt = pt.T @ pt / n
    rtol = 2 * D * EPS32
    w, v = repeated_feature_pairs(phi(prompts), counts, n, rtol)
    w_all, v_all, k = _dense_kept(c_tt, rtol)
    assert w.size == k > 0
    np.testing.assert_allclose(w, w_all[:k], rtol=1e-9, atol=1e-13 * w_all[0])
    assert np.linalg.norm(v.T @ v - np.eye(k)) < 1e-8
    assert np.linalg.norm(c_tt @ v - v * w[None, :]) < 1e-12 * w_all[0]
