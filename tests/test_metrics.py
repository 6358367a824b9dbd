"""clipcore.cluster_metrics against brute force and textbook references (tests/reference/dec_numpy.py),
and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

import clipcore
from clipcore.metrics import clustering_accuracy
from reference import dec_numpy as ref


def test_permuted_labelling_scores_one():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, size=200)
    perm = rng.permutation(7)
    m = clipcore.cluster_metrics(y, perm[y] + 100)  # renamed clusters, different values
    assert m.acc == 1.0
    for v in (m.ari, m.ami, m.nmi, m.fmi):
        assert v == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("k_true,k_pred", [(4, 4), (3, 5), (5, 3)])
def test_acc_matches_bruteforce(k_true, k_pred):
    rng = np.random.default_rng(k_true * 10 + k_pred)
    for _ in range(5):
        t = rng.integers(0, k_true, size=60)
        c = np.where(rng.random(60) < 0.6, t % k_pred, rng.integers(0, k_pred, size=60))
        assert clustering_accuracy(t, c) == pytest.approx(ref.accuracy_bruteforce(t, c), abs=1e-15)


def test_indices_match_textbook_definitions():
    rng = np.random.default_rng(3)
    t = rng.integers(0, 4, size=80)
    c = np.where(rng.random(80) < 0.5, t, rng.integers(0, 5, size=80))
    m = clipcore.cluster_metrics(t, c)
    assert m.ari == pytest.approx(ref.ari(t, c), rel=1e-12)
    assert m.fmi == pytest.approx(ref.fmi(t, c), rel=1e-12)
    assert m.nmi == pytest.approx(ref.nmi(t, c), rel=1e-12)
    # AMI, arithmetic averaging: against the float64 sum of Vinh, Epps & Bailey's expected mutual information
    # (not the scikit-learn call the code makes)
    assert m.ami == pytest.approx(ref.ami(t, c), rel=1e-12)
    assert m.ami < m.nmi  # chance-adjusted


def test_known_small_values():
    # hand-computed: t = [0,0,1,1], c = [0,0,1,2]: 1 pair together in both, 1 only in t, 0 only in c
    t, c = [0, 0, 1, 1], [0, 0, 1, 2]
    m = clipcore.cluster_metrics(t, c)
    assert m.acc == 0.75
    assert m.fmi == pytest.approx(1 / np.sqrt(2), rel=1e-12)  # TP=1, TP+FP=1, TP+FN=2
    # Hubert–Arabie: expected together-in-both = 2·1/6 = 1/3; ARI = (1 − 1/3)/((2 + 1)/2 − 1/3) = 4/7
    assert m.ari == pytest.approx(4 / 7, rel=1e-12)
    # AMI by hand: I = ln 2, H(T) = ln 2, H(C) = 1.5 ln 2; E[I] = 2·(½ ln 2)·(1/6) + 4·(¼ ln 2)·(½) = ⅔ ln 2;
    # AMI = (1 − ⅔)/(1.25 − ⅔) = 4/7
    assert m.ami == pytest.approx(4 / 7, rel=1e-12)
    assert m.nmi == pytest.approx(1 / 1.25, rel=1e-12)


def test_string_labels_and_integer_floats():
    t = np.array(["cat", "cat", "dog", "dog"])
    assert clipcore.cluster_metrics(t, np.array([1.0, 1.0, 0.0, 0.0])).acc == 1.0


@pytest.mark.parametrize(
    "t,c,match",
    [
        ([0, 1, 1], [0, 1], "labels_pred: 2 labels but labels_true has 3"),
        ([], [], "labels_true: empty"),
        ([[0, 1]], [[0, 1]], "labels_true: expected a 1-D"),
        ([0, 1], [0.0, np.nan], "labels_pred: contains NaN"),
        ([0, 1], [0.5, 1.0], "labels_pred: labels must be integers"),
        (None, [0], "labels_true: expected a 1-D"),
    ],
)
def test_bad_labels(t, c, match):
    with pytest.raises(ValueError, match=match):
        clipcore.cluster_metrics(t, c)
