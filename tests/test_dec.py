"""clipcore.models.DEC against independent float64 NumPy references (tests/reference/dec_numpy.py).

Small networks and few steps keep the whole file to a few seconds of training;
the published architecture is checked by shape only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import clipcore
from clipcore.models import DEC, Autoencoder, kl_divergence, soft_assignment, target_distribution
from clipcore.models.dec import input_scale
from reference import dec_numpy as ref

SMALL = dict(hidden=(32, 32, 64), embed_dim=4, pretrain_steps=300, max_steps=300, update_interval=20,
             n_init=5, progress=False)


def _blobs(n=240, d=16, k=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * 4.0
    y = rng.permutation(np.arange(n) % k)
    return (centers[y] + rng.standard_normal((n, d))).astype(np.float32), y


# ------------------------------------------------------------------ the math
@pytest.mark.parametrize("alpha", [1.0, 0.5, 3.0])
def test_soft_assignment_and_target_match_reference(alpha):
    rng = np.random.default_rng(1)
    z, mu = rng.standard_normal((30, 5)) * 2, rng.standard_normal((4, 5))
    q = np.asarray(soft_assignment(jnp.asarray(z), jnp.asarray(mu), alpha))
    q_ref = ref.soft_assignment(z, mu, alpha)
    np.testing.assert_allclose(q, q_ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(np.asarray(target_distribution(jnp.asarray(q))), ref.target_distribution(q_ref),
                               rtol=1e-12, atol=0)
    p = ref.target_distribution(q_ref)
    assert float(kl_divergence(jnp.asarray(p), jnp.asarray(q))) == pytest.approx(ref.kl(p, q_ref) / 30, rel=1e-12)


def test_target_sharpens_and_reweights():
    q = jnp.array([[0.6, 0.4], [0.6, 0.4], [0.5, 0.5]])
    p = np.asarray(target_distribution(q))
    assert (p[:2, 0] > 0.6).all()  # confident points get more confident
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-14)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_kl_gradient_finite_differences_and_closed_form(alpha):
    rng = np.random.default_rng(2)
    z, mu = rng.standard_normal((6, 3)), rng.standard_normal((3, 3))
    p = ref.target_distribution(ref.soft_assignment(z + 0.3 * rng.standard_normal(z.shape), mu, alpha))

    def loss(z_, mu_):  # the summed KL (eq. 2)
        return kl_divergence(jnp.asarray(p), soft_assignment(z_, mu_, alpha)) * z_.shape[0]

    gz, gmu = jax.grad(loss, argnums=(0, 1))(jnp.asarray(z), jnp.asarray(mu))
    # central finite differences of the float64 NumPy loss
    h = 1e-6
    fz, fmu = np.zeros_like(z), np.zeros_like(mu)
    for arr, out in ((z, fz), (mu, fmu)):
        for idx in np.ndindex(arr.shape):
            a, b = arr.copy(), arr.copy()
            a[idx] += h
            b[idx] -= h
            za, mua = (a, mu) if arr is z else (z, a)
            zb, mub = (b, mu) if arr is z else (z, b)
            out[idx] = (ref.kl(p, ref.soft_assignment(za, mua, alpha))
                        - ref.kl(p, ref.soft_assignment(zb, mub, alpha))) / (2 * h)
    np.testing.assert_allclose(np.asarray(gz), fz, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.asarray(gmu), fmu, rtol=1e-6, atol=1e-9)
    cz, cmu = ref.kl_gradients(z, mu, p, alpha)  # the paper's eqs. 4–5
    np.testing.assert_allclose(np.asarray(gz), cz, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(np.asarray(gmu), cmu, rtol=1e-10, atol=1e-13)


def test_input_scale():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((50, 12)) * 3
    s = input_scale(x)
    assert np.mean(np.sum((s * x) ** 2, axis=1)) / 12 == pytest.approx(1.0, rel=1e-12)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert input_scale(unit) == pytest.approx(np.sqrt(12), rel=1e-12)  # unit CLIP vectors × √d


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


# ------------------------------------------------------------------ CLI
def test_cli_cluster_table_json_and_plots(tmp_path, capsys):
    import json

    from clipcore.cli import main

    x, y = _blobs(seed=5)  # the fixture's shapes and options: its compiled loops are reused
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "c.json"
    rc = main(["cluster", "--embeddings", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--k", "4",
               "--hidden", "32,32,64", "--embed-dim", "4", "--pretrain-steps", "300", "--max-steps", "300",
               "--update-interval", "20", "--n-init", "5", "--tsne-samples", "80",
               "--plot-prefix", str(tmp_path / "p"), "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    for word in ("k-means", "AE + k-means", "DEC", "ACC", "NMI", "FMI"):
        assert word in printed
    payload = json.loads(out.read_text())
    assert set(payload["results"]) == {"k-means", "AE + k-means", "DEC"}
    assert payload["results"]["DEC"]["acc"] >= 0.95
    assert (tmp_path / "p_clusters.png").stat().st_size > 0 and (tmp_path / "p_labels.png").stat().st_size > 0


def test_cli_cluster_errors(tmp_path, capsys):
    from clipcore.cli import main

    x, y = _blobs(n=40, seed=6)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y[:-1])
    bad = x.copy()
    bad[3, 0] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    base = ["cluster", "--quiet", "--tsne-samples", "0"]
    assert main(base + ["--embeddings", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy")]) == 2
    assert "clipcore: error: labels: 39 labels but embeddings has 40 rows" in capsys.readouterr().err
    assert main(base + ["--embeddings", str(tmp_path / "x.npy"), "--k", "41"]) == 2
    assert "clipcore: error: k: 41 clusters but embeddings has only 40 rows" in capsys.readouterr().err
    assert main(base + ["--embeddings", str(tmp_path / "bad.npy")]) == 2
    assert "clipcore: error: embeddings: contains Inf at row 3" in capsys.readouterr().err
    assert main(base + ["--embeddings", str(tmp_path / "missing.npy")]) == 2
    assert "clipcore: error: embeddings: file not found" in capsys.readouterr().err


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
