"""The in-memory primal RFF path without C_TX (issue 18): C_TT and C_XX by their own Grams, C_TT's kept pairs,
then B = U_kᵀ C_TX = (Φ_T U_k)ᵀ Φ_X / n from the features (``passes.projected_primal_schur``). Its scores equal
the float64 NumPy reference built from the whole covariances, and its ± (the frequency groups' blocks of C_TX
formed in the same pass) equals the one recomputed from the rows by the dual path."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import clipcore
from clipcore._pipeline import errors as E
from clipcore._pipeline import passes as P

try:
    from reference import sce_numpy as ref
except ImportError:  # tests/ collected as a package
    from tests.reference import sce_numpy as ref

SCORES = ("sce", "text_score", "image_score")
D = 128  # 2D = 256 features: passes.LOWRANK_FEATURES lowered to it below (2048 by default), so n stays small


def data(kind, n=900, d=12, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "repeated prompts":  # 26 prompts: C_TT's kept pairs from their 26×26 problem
        t, sigma = np.repeat(rng.standard_normal((26, d)), n // 26, axis=0), 3.0
    elif kind == "four per prompt":  # 225 prompts, four rows each, interleaved: a 225×225 problem
        t, sigma = np.repeat(rng.standard_normal((n // 4, d)), 4, axis=0)[rng.permutation(n)], 12.0
    elif kind == "smooth":  # more kept directions (the tridiagonal route)
        t, sigma = rng.standard_normal((n, d)), 12.0
    elif kind == "smoother":  # each ± group keeps fewer than a third of its 64 features (15–18)
        t, sigma = rng.standard_normal((n, d)), 30.0
    else:  # "sharp": C_TT keeps most directions, the path forms C_TX and takes the dense form
        t, sigma = rng.standard_normal((n, d)), 0.4
    x = t + 0.8 * rng.standard_normal(t.shape)
    return x, t, rng.standard_normal((d, D)) / sigma


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setattr(P, "LOWRANK_FEATURES", 2 * D)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", E.ApproximationWarning)
        yield


@pytest.mark.parametrize("group_features", [512, 16])
@pytest.mark.parametrize("kind", ["repeated prompts", "four per prompt", "smooth", "smoother", "sharp"])
def test_projected_primal_equals_the_reference_and_the_dual(kind, group_features, monkeypatch):
    x, t, omega = data(kind)
    groups = _spy_group_pairs(monkeypatch, group_features)
    seen, repeated = [], []
    real, real_rep = P.projected_primal_schur, P.repeated_feature_pairs
    monkeypatch.setattr(P, "projected_primal_schur", lambda *a, **k: seen.append(1) or real(*a, **k))
    monkeypatch.setattr(P, "repeated_feature_pairs", lambda *a, **k: repeated.append(1) or real_rep(*a, **k))
    got = clipcore.sce(x, t, kernel="gaussian", omega=omega, progress=False)
    assert seen and got.method == "primal/rff"
    assert bool(repeated) == (kind in ("repeated prompts", "four per prompt"))
    phi = lambda a: ref.rff_features(a, omega)  # noqa: E731
    want = ref.sce_primal(phi(t), phi(x), rtol=ref.default_rtol(2 * D))
    assert got.rank_kept == want.rank
    if kind == "sharp":
        assert want.rank > 2 * D / 3  # the dense form
    else:
        assert want.rank < 2 * D / 3
    assert got.sce == pytest.approx(want.sce, rel=1e-9)
    assert got.text_score == pytest.approx(want.text_score, rel=1e-9)
    assert got.image_score == pytest.approx(ref.renyi(want.image), rel=1e-9)
    # the ± from the groups' blocks of C_TX formed beside B equals the dual path's, recomputed from the rows
    dual = clipcore.sce(x, t, kernel="gaussian", omega=omega, method="dual", progress=False)
    assert dual.sce == pytest.approx(want.sce, rel=1e-9)
    np.testing.assert_allclose(got.error, dual.error, rtol=1e-7)
    print(kind, group_features, len(groups))


def _spy_group_pairs(monkeypatch, group_features):
    """GROUP_LOWRANK_FEATURES set; returns the list that counts the groups scored from their pairs and B_g."""
    monkeypatch.setattr(E, "GROUP_LOWRANK_FEATURES", group_features)
    calls, real = [], E.schur_projected
    monkeypatch.setattr(E, "schur_projected", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


@pytest.mark.parametrize("group_features", [512, 16])
@pytest.mark.parametrize("with_tx", [False, True])
def test_projected_primal_error_is_the_groups_rule(group_features, with_tx, monkeypatch):
    """The ± by hand: each frequency group's NumPy float64 scores (its D/4 frequencies alone) combined by the
    documented rule |mean − point| / (√G − 1) + t₀.₉₅,₃ · sd / √G. Groups of GROUP_LOWRANK_FEATURES or more
    features (lowered here to 16 of their 64) take their kept pairs from their block of C_TT and the run forms
    B_g = U_gᵀ C_TX^g instead of the block of C_TX (or, on the primal path that forms C_TX, ``with_tx``, B_g from
    its block): the same ±."""
    x, t, omega = data("smoother")
    if with_tx:  # the in-memory primal path with C_TX, not the projected one
        monkeypatch.setattr(P, "LOWRANK_FEATURES", 10 ** 9)
    calls = _spy_group_pairs(monkeypatch, group_features)
    got = clipcore.sce(x, t, kernel="gaussian", omega=omega, progress=False)
    assert len(calls) == (4 if group_features == 16 else 0)
    q = D // 4
    vals = []
    for g in range(4):
        om = omega[:, g * q:(g + 1) * q]
        sp = ref.sce_primal(ref.rff_features(t, om), ref.rff_features(x, om), rtol=ref.default_rtol(2 * q))
        vals.append([sp.sce, sp.text_score, ref.renyi(sp.image)])
    vals = np.array(vals)
    for i, s in enumerate(SCORES):
        want = abs(vals[:, i].mean() - getattr(got, s)) / (np.sqrt(4) - 1) + 2.353363434801823 * vals[:, i].std(
            ddof=1) / 2
        assert got.error[i] == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("group_features", [512, 16])
@pytest.mark.parametrize("kind", ["four per prompt", "smoother", "sharp"])
def test_features_formed_block_by_block_give_the_same_scores(kind, group_features, monkeypatch):
    """Above passes.FEATURE_BYTES the features are formed again in each pass, block by block (a ragged last
    block here): the same scores and ± as with the features kept."""
    x, t, omega = data(kind)
    monkeypatch.setattr(E, "GROUP_LOWRANK_FEATURES", group_features)
    kept = clipcore.sce(x, t, kernel="gaussian", omega=omega, progress=False)
    monkeypatch.setattr(P, "FEATURE_BYTES", 0)
    blocked = clipcore.sce(x, t, kernel="gaussian", omega=omega, block_size=250, progress=False)
    assert blocked.rank_kept == kept.rank_kept
    for s in SCORES:
        assert getattr(blocked, s) == pytest.approx(getattr(kept, s), rel=1e-10)
    np.testing.assert_allclose(blocked.error, kept.error, rtol=1e-8)
