"""clipcore.compare: one shared kernel, bootstrap intervals over prompts, a ranking that knows ties."""

from __future__ import annotations

import json

import numpy as np
import pytest

import clipcore
from clipcore.comparison import compare
from clipcore.kernels import median_sigma

try:
    from reference import cond_vendi_numpy as CR
except ImportError:  # tests/ collected as a package
    from tests.reference import cond_vendi_numpy as CR

P, K, D = 40, 8, 16


def model(prompts, spread, seed):
    """K images per prompt: the prompt's direction plus isotropic noise of the given spread (unit rows)."""
    r = np.random.default_rng(seed)
    t = np.repeat(prompts, K, axis=0)
    x = t + spread * r.standard_normal(t.shape)
    return x / np.linalg.norm(x, axis=1, keepdims=True), t / np.linalg.norm(t, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def prompts():
    return np.random.default_rng(0).standard_normal((P, D))


@pytest.fixture(scope="module")
def sets(prompts):
    return {"wide": model(prompts, 1.0, 1), "mid": model(prompts, 0.6, 2), "narrow": model(prompts, 0.3, 3)}


@pytest.fixture(scope="module")
def result(sets):
    return compare(sets, bootstrap=60, progress=False)


def test_known_ranking_and_separation(result):
    assert [e.name for e in result.ranking] == ["wide", "mid", "narrow"]
    assert all(e.separable_from_next for e in result.ranking[:-1])
    assert result.ranking[-1].separable_from_next is None


def test_shared_sigma_is_the_pooled_median_and_scores_equal_sce_at_it(sets, result):
    pooled = np.concatenate([x for x, _ in sets.values()])
    assert result.sigma == median_sigma(pooled)
    for name, (x, t) in sets.items():
        ref = clipcore.sce(x, t, kernel="gaussian", sigma=result.sigma)
        assert result[name].sce == ref.sce and result[name].image_score == ref.image_score
        assert result[name].clip_score == clipcore.clip_score(x, t).score
        assert result[name].prompts == P and result[name].n == P * K


def test_intervals_bracket_the_point_estimates(result):
    for m in result.models.values():
        for s in ("sce", "text_score", "image_score", "clip_score"):
            lo, hi = m.intervals[s]
            assert lo <= getattr(m, s) <= hi and lo < hi


def test_two_draws_of_one_model_are_rarely_separable(prompts):
    """Two draws of one generator differ only by chance: at the 90 % level the difference's interval
    should exclude 0 in about 10 % of pairs; measured 1 of 10 here (seeds 20–39, cosine kernel)."""
    separable = 0
    for s in range(20, 40, 2):
        r = compare({"a": model(prompts, 0.6, s), "b": model(prompts, 0.6, s + 1)}, kernel="cosine",
                    bootstrap=100, progress=False)
        separable += bool(r.ranking[0].separable_from_next)
        lo, hi = r.ranking[0].difference_interval
        assert r.ranking[0].separable_from_next == (lo > 0 or hi < 0)
    assert separable <= 3


def test_bootstrap_is_seeded(sets):
    a = compare(sets, bootstrap=20, key=5, progress=False)
    b = compare(sets, bootstrap=20, key=5, progress=False)
    assert a["mid"].intervals == b["mid"].intervals


def test_rff_and_cosine_share_one_feature_map(sets):
    r = compare(sets, kernel="gaussian", sigma=0.9, rff_features=64, bootstrap=10, progress=False)
    omegas = [m.result.omega for m in r.models.values()]
    assert all(np.array_equal(omegas[0], o) for o in omegas[1:])
    c = compare(sets, kernel="cosine", bootstrap=10, progress=False)
    assert c["wide"].sce == clipcore.sce(*sets["wide"]).sce


def test_table_json_and_png(result, tmp_path):
    text = result.table()
    assert "ranking by SCE: wide > mid > narrow" in text and "90% interval" in text
    result.to_json(tmp_path / "c.json")
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["models"]["mid"]["sce"] == result["mid"].sce
    assert data["settings"]["sigma"] == result.sigma
    result.plot(tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(repr(result)) < 300 and "wide > mid > narrow" in repr(result)


@pytest.mark.parametrize("bad,name", [({"only": None}, "sets"), ("notamapping", "sets")])
def test_refusals(bad, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        compare(bad)


def test_refuses_sets_of_two_models(sets):
    x, t = sets["mid"]
    with pytest.raises(ValueError, match="sets: the embedding dimensions differ"):
        compare({"a": (x, t), "b": (x[:, :8], t[:, :8])})
    with pytest.raises(ValueError, match="^level:"):
        compare(sets, level=1.5)


def test_conditional_and_information_vendi_at_the_shared_sigma(sets, result, tmp_path):
    """Every set's Conditional / Information Vendi at the comparison's one σ (images and texts), equal to the
    float64 NumPy reference and to clipcore.conditional_vendi at that σ; in the table, JSON and plot."""
    for name, (x, t) in sets.items():
        m = result[name]
        want = CR.entropies(x, t, sigma_x=result.sigma, sigma_t=result.sigma, order=1)
        assert m.conditional_vendi == pytest.approx(want["cond_vendi"], rel=1e-9)
        assert m.information_vendi == pytest.approx(want["info_vendi"], rel=1e-9)
        assert m.conditional.sigma_images == m.conditional.sigma_texts == result.sigma
        assert m.conditional_vendi == clipcore.conditional_vendi(x, t, sigma=result.sigma).conditional_vendi
    # wider images given the same prompts: more diverse given the prompts, less dependent on them
    assert result["wide"].conditional_vendi > result["mid"].conditional_vendi > result["narrow"].conditional_vendi
    assert result["wide"].information_vendi < result["narrow"].information_vendi
    assert "conditional_vendi" in result.table() and "information_vendi" in result.table()
    result.to_json(tmp_path / "c.json")
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["models"]["mid"]["conditional_vendi"] == result["mid"].conditional_vendi
    assert data["models"]["mid"]["conditional_provenance"]["sigma_texts"] == result.sigma
    assert data["settings"]["conditional"] is True


def test_conditional_vendi_with_one_feature_draw_cosine_and_off(sets):
    r = compare(sets, kernel="gaussian", sigma=0.9, rff_features=64, key=4, bootstrap=0, progress=False)
    for name, (x, t) in sets.items():
        want = clipcore.conditional_vendi(x, t, sigma=0.9, rff_features=64, key=4)
        assert r[name].conditional.method == "rff"
        assert r[name].conditional_vendi == want.conditional_vendi
    c = compare(sets, kernel="cosine", bootstrap=0, progress=False)
    x, t = sets["narrow"]
    want = CR.entropies(x, t, kernel="cosine", order=1, rank_cutoff=True)
    assert c["narrow"].conditional_vendi == pytest.approx(want["cond_vendi"], rel=1e-9)
    off = compare(sets, kernel="cosine", bootstrap=0, progress=False, conditional=False)
    assert off["narrow"].conditional_vendi is None and off["narrow"].conditional is None
    assert "conditional_vendi" not in off.table() and off.summary()["models"]["narrow"]["conditional_vendi"] is None
