"""clipcore.models.dec_eval (k-means, AE + k-means and DEC side by side) against the float64 NumPy
metrics of tests/reference/dec_numpy.py and the blobs' true labels."""

from __future__ import annotations

import numpy as np
import pytest

from clipcore.models.dec_eval import METHODS, evaluate_dec, tsne_embedding
from reference import dec_numpy as ref

from .helpers import blobs

SMALL = dict(hidden=(32, 32, 64), embed_dim=4, pretrain_steps=300, max_steps=300, update_interval=20,
             progress=False)


@pytest.fixture(scope="module")
def evaluation():
    x, y = blobs(seed=5)  # the DEC tests' shapes and options: their compiled loops are reused
    return x, y, evaluate_dec(x, y, k=4, n_init=5, seed=0, **SMALL)


def test_three_methods_scored_by_the_reference_metrics(evaluation):
    x, y, ev = evaluation
    assert tuple(ev.labels) == METHODS == ("k-means", "AE + k-means", "DEC")
    np.testing.assert_array_equal(ev.labels["DEC"], ev.dec.labels_)
    np.testing.assert_array_equal(ev.labels["AE + k-means"], ev.dec.history.init_labels)
    for name in METHODS:
        lab = ev.labels[name]
        assert lab.shape == y.shape
        m = ev.metrics[name]
        assert m.acc == pytest.approx(ref.accuracy_bruteforce(y, lab), abs=1e-15)
        assert m.ari == pytest.approx(ref.ari(y, lab), rel=1e-12)
        assert m.nmi == pytest.approx(ref.nmi(y, lab), rel=1e-12)
        assert m.fmi == pytest.approx(ref.fmi(y, lab), rel=1e-12)
        assert ev.seconds[name] > 0
    # four blobs 4σ apart: k-means on the inputs finds them; DEC keeps them
    assert ev.metrics["k-means"].acc == 1.0 and ev.metrics["DEC"].acc >= 0.95
    res = ev.results()
    assert list(res) == list(METHODS)
    for name in METHODS:
        assert res[name]["cluster_sizes"] == [int(np.sum(ev.labels[name] == c)) for c in range(4)]
        assert res[name]["acc"] == ev.metrics[name].acc and res[name]["seconds"] == ev.seconds[name]


def test_without_labels_no_metrics(evaluation):
    x, _, _ = evaluation
    ev = evaluate_dec(x[:60], k=3, n_init=2, seed=1, **{**SMALL, "pretrain_steps": 20, "max_steps": 20})
    assert ev.metrics is None
    assert set(ev.results()["DEC"]) == {"seconds", "cluster_sizes"}
    assert sum(ev.results()["k-means"]["cluster_sizes"]) == 60


def test_errors_name_the_input():
    x, y = blobs(n=40, seed=6)
    with pytest.raises(ValueError, match=r"^k: 41 clusters but embeddings has only 40 rows"):
        evaluate_dec(x, k=41, **SMALL)
    with pytest.raises(ValueError, match=r"^labels: 39 labels but embeddings has 40 rows"):
        evaluate_dec(x, y[:-1], k=4, **SMALL)
    bad = x.copy()
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match=r"^embeddings: contains Inf at row 3"):
        evaluate_dec(bad, k=4, **SMALL)
    with pytest.raises(ValueError, match=r"^pretrain: expected one of"):
        evaluate_dec(x, k=4, pretrain="greedy")


def test_tsne_embedding_is_a_seeded_subsample():
    x, _ = blobs(n=120, d=6, seed=2)
    idx, emb = tsne_embedding(x, 50, seed=3)
    assert emb.shape == (50, 2) and np.all(np.diff(idx) > 0) and idx.max() < 120
    np.testing.assert_array_equal(idx, np.sort(np.random.default_rng(3).choice(120, size=50, replace=False)))
    again_idx, again = tsne_embedding(x, 50, seed=3)
    np.testing.assert_array_equal(idx, again_idx)
    np.testing.assert_allclose(emb, again)
    all_idx, all_emb = tsne_embedding(x, 500, seed=3)
    np.testing.assert_array_equal(all_idx, np.arange(120))
    # well-separated blobs stay apart in the picture: each point's nearest shown neighbour shares its blob
    _, y = blobs(n=120, d=6, seed=2)
    d2 = ((all_emb[:, None] - all_emb[None]) ** 2).sum(-1) + np.diag(np.full(120, np.inf))
    assert np.mean(y[np.argmin(d2, axis=1)] == y) > 0.95
