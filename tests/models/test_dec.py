"""clipcore.models.dec (DEC) against independent float64 NumPy references (tests/reference/dec_numpy.py).

Small networks and few steps keep the whole file to a few seconds of training;
the published architecture is checked by shape only.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import clipcore
from clipcore.models import DEC, Autoencoder
from reference import dec_numpy as ref

from .helpers import blobs as _blobs

SMALL = dict(hidden=(32, 32, 64), embed_dim=4, pretrain_steps=300, max_steps=300, update_interval=20,
             n_init=5, progress=False)


def test_published_architecture():
    from flax import nnx

    ae = nnx.eval_shape(lambda: Autoencoder(784, rngs=nnx.Rngs(0)))  # shapes only, no weights drawn
    enc = [(l.in_features, l.out_features) for l in ae.encoder.layers]
    dec = [(l.in_features, l.out_features) for l in ae.decoder.layers]
    assert enc == [(784, 500), (500, 500), (500, 2000), (2000, 10)]
    assert dec == [(10, 2000), (2000, 500), (500, 500), (500, 784)]
    cfg = DEC().config
    assert (cfg.n_clusters, cfg.alpha, cfg.batch_size, cfg.lr, cfg.momentum, cfg.tol, cfg.n_init) == (
        10, 1.0, 256, 0.01, 0.9, 1e-3, 20)


# ------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def fitted():
    x, y = _blobs()
    return x, y, DEC(4, seed=0, **SMALL).fit(x)


def test_dec_separates_well_separated_blobs(fitted):
    x, y, dec = fitted
    m = clipcore.cluster_metrics(y, dec.labels_)
    assert m.acc >= 0.95
    h = dec.history
    assert h.steps > 0 and h.label_change.shape == h.kl.shape
    assert h.init_labels.shape == y.shape
    assert h.pretrain_loss[-1] < h.pretrain_loss[0]


def test_predict_soft_assign_consistent(fitted):
    x, _, dec = fitted
    q = dec.soft_assign(x)
    assert q.shape == (x.shape[0], 4)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(dec.predict(x), dec.labels_)
    # soft_assign is eq. 1 on the learnt embedding and centres (float32 network; float64 reference)
    np.testing.assert_allclose(q, ref.soft_assignment(dec.transform(x), dec.centers), rtol=1e-4, atol=1e-6)


def test_deterministic_with_seed(fitted):
    x, _, dec = fitted
    again = DEC(4, seed=0, **SMALL).fit(x)
    np.testing.assert_array_equal(again.labels_, dec.labels_)
    np.testing.assert_array_equal(again.centers, dec.centers)


def test_save_load_roundtrip(fitted, tmp_path):
    x, _, dec = fitted
    path = tmp_path / "dec.npz"
    dec.save(path)
    back = DEC.load(path)
    assert back.config == dec.config and back.scale == dec.scale
    np.testing.assert_array_equal(back.soft_assign(x), dec.soft_assign(x))


def test_labels_survive_save_and_load(fitted, tmp_path):
    """A loaded model keeps the training data's labels (the README's save / load / cluster_metrics example);
    files written before labels were saved still load, with labels_ None and predict giving them."""
    x, y, dec = fitted
    dec.save(tmp_path / "dec.npz")
    back = DEC.load(tmp_path / "dec.npz")
    assert back.labels_ is not None and back.labels_.dtype == np.int64
    np.testing.assert_array_equal(back.labels_, dec.labels_)
    np.testing.assert_array_equal(back.labels_, back.predict(x))
    assert clipcore.cluster_metrics(y, back.labels_) == clipcore.cluster_metrics(y, dec.labels_)
    # a file without labels (as written before they were saved; also the earlier .npz format)
    from safetensors.numpy import load_file, save_file
    from safetensors import safe_open

    with safe_open(str(tmp_path / "dec.npz"), framework="numpy") as f:
        meta = f.metadata()
    tensors = load_file(str(tmp_path / "dec.npz"))
    del tensors["labels"]
    save_file(tensors, str(tmp_path / "old.npz"), metadata=meta)
    old = DEC.load(tmp_path / "old.npz")
    assert old.labels_ is None
    np.testing.assert_array_equal(old.predict(x), dec.labels_)
    # an unfitted-then-loaded model never had labels: save writes none
    fresh = DEC.load(tmp_path / "old.npz")
    fresh.save(tmp_path / "again.npz")
    assert DEC.load(tmp_path / "again.npz").labels_ is None


def test_bad_input(fitted):
    x, _, dec = fitted
    with pytest.raises(ValueError, match=r"n_clusters: 5 clusters but x has only 3 rows"):
        DEC(5, **SMALL).fit(x[:3])
    bad = x.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match="x: contains NaN at row 7"):
        DEC(4, **SMALL).fit(bad)
    with pytest.raises(ValueError, match="x: dimension 5 differs from the 16"):
        dec.predict(x[:, :5])
    with pytest.raises(ValueError, match="not fitted"):
        DEC(4).predict(x)
    with pytest.raises(ValueError, match="unknown option"):
        DEC(4, learning_rate=0.1)
    with pytest.raises(ValueError, match="pretrain_dropout"):
        DEC(4, pretrain_dropout=1.5)
    with pytest.raises(ValueError, match="n_clusters: expected a positive integer"):
        DEC(0)
    with pytest.raises(ValueError, match="labels_pred: 239 labels but labels_true has 240"):
        clipcore.cluster_metrics(np.zeros(240, int), dec.labels_[:-1])
    with pytest.raises(FileNotFoundError):
        DEC.load("/nonexistent/dec.npz")


def test_layerwise_pretraining_then_dec():
    # the paper's greedy denoising stage (tiny schedule), then fine-tuning, then the KL stage
    x, y = _blobs(seed=7)
    opts = {**SMALL, "pretrain_steps": 100}
    dec = DEC(4, pretrain="layerwise", layerwise_steps=150, sgd_lr_drop_every=100, seed=1, **opts).fit(x)
    assert clipcore.cluster_metrics(y, dec.labels_).acc >= 0.95
    # the stacked autoencoder reconstructs better than the best constant (the mean row)
    xs = x * dec.scale
    rec = np.asarray(dec.autoencoder(jnp.asarray(xs)))
    assert np.mean((rec - xs) ** 2) < 0.5 * np.mean((xs - xs.mean(axis=0)) ** 2)
    with pytest.raises(ValueError, match="pretrain: expected one of"):
        DEC(4, pretrain="greedy")


@pytest.mark.slow
def test_dec_beats_kmeans_on_digits():
    # bench/bench_dec.py's digits case (a few minutes on 2 cores): DEC above k-means (n_init 20) on all five
    from sklearn.cluster import KMeans

    d = clipcore.digits()
    x = (d.images.reshape(len(d.images), -1) / 16.0).astype(np.float32)
    km = clipcore.cluster_metrics(d.labels, KMeans(10, n_init=20, random_state=0).fit(x.astype(np.float64)).labels_)
    fit = DEC(10, pretrain_steps=2000, max_steps=5000, progress=False).fit(x)
    dec = clipcore.cluster_metrics(d.labels, fit.labels_)
    for f in km._fields:
        assert getattr(dec, f) > getattr(km, f), f


def test_progress_follows_the_convention():
    from clipcore.models import DECConfig

    assert DECConfig().progress is None  # a bar once a stage has lasted 2 s
    assert DEC(4, progress=True).config.progress is True
    with pytest.raises(ValueError, match=r"^progress: expected None"):
        DEC(4, progress="yes")
    with pytest.raises(ValueError, match=r"^scale_inputs: expected True or False"):
        DEC(4, scale_inputs=1)


def _moons(seed, n=600, d=16):
    """Two interleaved half-moons (scikit-learn) rotated into d dimensions, plus a little isotropic noise:
    curved clusters that k-means (on the autoencoder's embedding) splits with a straight cut."""
    from sklearn.datasets import make_moons

    rng = np.random.default_rng(seed)
    p, y = make_moons(n, noise=0.08, random_state=seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, 2)))
    return (p @ q.T + 0.05 * rng.standard_normal((n, d))).astype(np.float32), y


def test_kl_stage_moves_and_improves_on_curved_clusters():
    """The clustering stage itself: KL(P‖Q) falls, labels leave the AE + k-means start, and agree better with
    the moons. Without the KL updates the labels would be the k-means start and every gain 0."""
    gains, ari_gains = [], []
    for seed in range(4):
        x, y = _moons(seed)
        dec = DEC(2, seed=seed, **{**SMALL, "embed_dim": 2, "pretrain_steps": 500, "max_steps": 2000}).fit(x)
        h = dec.history
        assert h.steps > 0 and h.kl[-1] < 0.95 * h.kl[0], h.kl
        moved = np.mean(dec.labels_ != h.init_labels)
        assert moved >= 0.01, moved
        start, end = clipcore.cluster_metrics(y, h.init_labels), clipcore.cluster_metrics(y, dec.labels_)
        assert end.acc >= start.acc - 0.01, (seed, start, end)
        gains.append(end.acc - start.acc)
        ari_gains.append(end.ari - start.ari)
        # the KL stage's own quantities, recomputed from the fitted model (float64 NumPy reference)
        q = ref.soft_assignment(dec.transform(x), dec.centers)
        np.testing.assert_array_equal(np.argmax(q, axis=1), dec.labels_)
        assert h.kl[-1] == pytest.approx(ref.kl(ref.target_distribution(q), q) / len(x), rel=1e-3)  # a row mean
    assert np.mean(gains) >= 0.02 and np.mean(ari_gains) >= 0.03, (gains, ari_gains)
