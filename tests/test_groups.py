"""Per-group scores (clipcore.groups; ``groups=`` of clipcore.vendi / rke / conditional_vendi; issue 19).

Each group's Vendi equals the Vendi of that group's rows alone, computed by the independent float64 NumPy
reference (tests/reference/sce_numpy.py: scipy's cdist kernel, numpy eigvalsh) at the pooled call's σ, to
1e-9 relative; the mean is the unweighted mean of the groups; files (each group's rows read alone) equal
arrays; Conditional Vendi's groups equal tests/reference/cond_vendi_numpy.py on each group's pairs; bad
``groups`` (wrong length, NaN, a one-row group, an iterator that cannot be read again) are refused naming
``groups``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import clipcore
from clipcore.groups import GroupedScores, check_groups, per_group

try:
    from reference import cond_vendi_numpy as CR
    from reference import sce_numpy as R
except ImportError:  # tests/ collected as a package
    from tests.reference import cond_vendi_numpy as CR
    from tests.reference import sce_numpy as R

pytestmark = pytest.mark.filterwarnings("ignore::clipcore._validate.DimensionMismatchWarning")

RTOL = 1e-9  # same formula, float64 both sides


def rows(n=180, d=6, seed=0):
    """Three prompt clusters of different spread (so the groups' scores differ)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.array(["cat", "dog", "owl"]), n // 3)
    scale = {"cat": 0.3, "dog": 1.0, "owl": 2.0}
    x = np.stack([rng.normal(size=d) * scale[k] for k in g]) + 3.0 * (g[:, None] == "dog")
    perm = rng.permutation(n)  # groups interleaved, not contiguous
    return x[perm], g[perm]


def ref_vendi(x, kernel, sigma, order):
    if kernel == "gaussian":
        return R.vendi_of_kernel(R.gaussian_kernel(x, x, sigma), order)
    return R.vendi_of_features(R.cosine_features(x), order)  # d < rows: the d×d primal spectrum (SPEC.md)


@pytest.mark.parametrize("kernel", ["gaussian", "cosine"])
@pytest.mark.parametrize("order", [1.0, 2.0, 0.5, float("inf")])
def test_vendi_groups_match_the_numpy_reference(kernel, order):
    x, g = rows()
    r = clipcore.vendi(x, kernel=kernel, order=order, groups=g, dtype="float64")
    assert isinstance(r.groups, GroupedScores)
    assert r.groups.ids == ["cat", "dog", "owl"] and r.groups.sizes.tolist() == [60, 60, 60]
    sigma = r.sigma if kernel == "gaussian" else None
    if kernel == "gaussian":
        assert sigma == clipcore.median_sigma(x)  # the pooled σ, for every group
    for k, gid in enumerate(r.groups.ids):
        want = ref_vendi(x[g == gid], kernel, sigma, order)
        assert r.groups.scores[k] == pytest.approx(want, rel=RTOL), gid
        assert float(r.groups.results[k]) == r.groups.scores[k]
    assert r.groups.mean == pytest.approx(np.mean([ref_vendi(x[g == i], kernel, sigma, order) for i in r.groups.ids]),
                                          rel=RTOL)
    # the pooled score is the score of all rows, groups or not
    assert r.score == pytest.approx(ref_vendi(x, kernel, sigma, order), rel=RTOL)
    assert r.score == clipcore.vendi(x, kernel=kernel, order=order, dtype="float64").score
    assert len(set(np.round(r.groups.scores, 6))) == 3


def test_given_sigma_integer_ids_rke_and_summary():
    x, g = rows(seed=1)
    ids = np.searchsorted(["cat", "dog", "owl"], g) * 10  # 0, 10, 20
    r = clipcore.rke(x, kernel="gaussian", sigma=1.7, groups=ids, dtype="float64")
    assert r.groups.ids == [0, 10, 20]
    for k, gid in enumerate(r.groups.ids):
        sel = x[ids == gid]
        assert r.groups.scores[k] == pytest.approx(R.rke_frobenius(R.gaussian_kernel(sel, sel, 1.7)), rel=RTOL)
        assert r.groups.results[k].sigma == 1.7
    s = r.summary()
    json.dumps(s)
    assert s["groups"]["ids"] == [0, 10, 20] and s["groups"]["mean"] == r.groups.mean and "pooled" not in s["groups"]
    assert "groups=3" in repr(r) and "\n" not in repr(r)
    assert clipcore.vendi(x).groups is None and clipcore.vendi(x).summary()["groups"] is None


@pytest.mark.filterwarnings("ignore::clipcore.ApproximationWarning")
def test_rff_groups_use_the_pooled_features():
    x, g = rows(seed=2)
    r = clipcore.vendi(x, kernel="gaussian", rff_features=64, key=3, groups=g, dtype="float64")
    for k, gid in enumerate(r.groups.ids):
        alone = clipcore.vendi(x[g == gid], kernel="gaussian", sigma=r.sigma, rff_features=64, key=3, dtype="float64")
        assert r.groups.scores[k] == pytest.approx(alone.score, rel=1e-12)


def test_files_equal_arrays(tmp_path, monkeypatch):
    x, g = rows(seed=3)
    np.save(tmp_path / "x.npy", x)
    mem = clipcore.vendi(x, kernel="cosine", groups=g, dtype="float64")
    monkeypatch.setattr("clipcore._pipeline.inputs.IN_MEMORY_ROWS", 50)  # the file streams; groups read by rows
    files = clipcore.vendi(str(tmp_path / "x.npy"), kernel="cosine", groups=g, dtype="float64", block_size=64)
    assert files.method == mem.method
    np.testing.assert_allclose(files.groups.scores, mem.groups.scores, rtol=1e-12)
    assert files.groups.ids == mem.groups.ids


def test_per_group_of_a_row_source_needs_the_pooled_result():
    from clipcore.sources import row_source

    x, g = rows(seed=4)
    src = row_source(x, "x")
    with pytest.raises(ValueError, match="pooled"):
        per_group(clipcore.vendi, src, g)
    pooled = clipcore.vendi(x, dtype="float64")
    out = per_group(clipcore.vendi, src, g, pooled=pooled, dtype="float64")
    np.testing.assert_allclose(out.scores, clipcore.vendi(x, groups=g, dtype="float64").groups.scores, rtol=1e-12)


def test_conditional_vendi_groups_match_the_numpy_reference():
    x, g = rows(seed=5)
    rng = np.random.default_rng(5)
    t = x[:, :4] + 0.5 * rng.normal(size=(x.shape[0], 4))
    r = clipcore.conditional_vendi(x, t, groups=g, order=1.0, dtype="float64")
    assert r.groups.ids == ["cat", "dog", "owl"]
    for k, gid in enumerate(r.groups.ids):
        want = CR.entropies(x[g == gid], t[g == gid], sigma_x=r.sigma_images, sigma_t=r.sigma_texts, order=1)
        assert r.groups.conditional_vendi[k] == pytest.approx(want["cond_vendi"], rel=RTOL)
        assert r.groups.information_vendi[k] == pytest.approx(want["info_vendi"], rel=RTOL)
        assert r.groups.joint_entropy[k] == pytest.approx(want["H_XT"], rel=RTOL, abs=RTOL)
    assert r.groups.mean_information_vendi == pytest.approx(r.groups.information_vendi.mean(), rel=1e-15)


def _bad_cases(n):
    return [
        (np.arange(n - 1) % 3, r"groups: expected one id per row, an \[%d\] array, got shape \[%d\]" % (n, n - 1)),
        (np.zeros((n, 1)), r"groups: expected one id per row"),
        (np.where(np.arange(n) == 7, np.nan, np.arange(n) % 3), r"groups: row 7 has a non-finite id"),
        (np.where(np.arange(n) == 0, 99, np.arange(n) % 3), r"groups: id 99 has a single row"),
        (np.arange(n), r"groups: ids 0, 1, 2, 3, 4 and %d more have a single row" % (n - 5)),
        (np.array([1 + 2j] * n), r"groups: expected integer or string ids"),
    ]


@pytest.mark.parametrize("case", range(6))
@pytest.mark.parametrize("score", ["vendi", "rke", "conditional_vendi"])
def test_bad_groups_are_refused_naming_groups(case, score):
    x, _ = rows(n=60)
    bad, match = _bad_cases(60)[case]
    with pytest.raises(ValueError, match=match):
        if score == "conditional_vendi":
            clipcore.conditional_vendi(x, x[:, :3], groups=bad)
        else:
            getattr(clipcore, score)(x, groups=bad)


def test_an_iterator_cannot_be_grouped():
    x, g = rows(n=60)
    with pytest.raises(ValueError, match="groups: .*not an iterator"):
        clipcore.vendi(iter([x[:30], x[30:]]), groups=g)


def test_check_groups_returns_sorted_ids_and_the_row_index():
    ids, inverse = check_groups(["b", "a", "b", "a", "c", "c"], 6)
    assert ids.tolist() == ["a", "b", "c"] and inverse.tolist() == [1, 0, 1, 0, 2, 2]
