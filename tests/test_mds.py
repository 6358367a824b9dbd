"""Neural MDS against float64 NumPy references (tests/reference/mds_numpy.py), scikit-learn and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import clipcore
from clipcore.models import NeuralMDS, mds_metrics
from clipcore.models import mds as M
from reference import mds_numpy as ref

SMALL = dict(hidden=(64,), epochs=3, steps_per_epoch=20, batch_size=256, eval_size=512)


def lifted_pairs(n, d_intrinsic=32, d=96, seed=0, gap=0.8):
    """Seeded CLIP-like pairs (modality gap) of intrinsic dimension d_intrinsic, in d dimensions.

    Matched image–caption cosines ≈ 0.6, unmatched ≈ 0.2 (at d_intrinsic=32).
    """
    p = clipcore.synthetic_pairs(n=n, d=d_intrinsic, gap=gap, seed=seed, text_noise=0.5, noise=0.25,
                                 mode_strength=0.25)
    q, _ = np.linalg.qr(np.random.default_rng(seed + 100).standard_normal((d, d_intrinsic)))
    return p.images.astype(np.float64) @ q.T, p.texts.astype(np.float64) @ q.T


# ------------------------------------------------------------------ losses
def test_losses_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 9, 5))
    b[3] = a[3]  # a coincident pair
    delta = rng.uniform(0.0, 2.0, 9)
    w = rng.uniform(0.0, 1.0, 9)
    eps = 1e-6
    d = np.asarray(M.embedded_distance(jnp.asarray(a), jnp.asarray(b), eps))
    np.testing.assert_allclose(d, ref.embedded_distance(a, b, eps), rtol=1e-14)
    assert d[3] == pytest.approx(np.sqrt(eps))
    np.testing.assert_allclose(float(M.raw_stress(delta, d)), ref.raw_stress(delta, d), rtol=1e-13)
    np.testing.assert_allclose(float(M.raw_stress(delta, d, w)), ref.raw_stress(delta, d, w), rtol=1e-13)
    np.testing.assert_allclose(float(M.kruskal_stress1(delta, d)), ref.kruskal_stress1(delta, d), rtol=1e-13)
    far = d + rng.uniform(-0.3, 0.3, 9)
    for margin in (0.0, 0.1):
        np.testing.assert_allclose(float(M.quad_loss(d, far, margin)), ref.quad_loss(d, far, margin), rtol=1e-13)
        np.testing.assert_allclose(float(M.quad_loss(d, far, margin, w)), ref.quad_loss(d, far, margin, w),
                                   rtol=1e-13)
    # the hinge is active on some quads and not on others, so both branches were compared
    assert 0 < np.sum(d + 0.1 > far) < 9


@pytest.mark.parametrize("method", ["isometric", "isotonic"])
def test_training_loss_matches_numpy(method):
    """The batch loss of a linear g, recomputed in NumPy from the same sampled indices."""
    rng = np.random.default_rng(1)
    n, d, k = 30, 10, 4
    u, v = rng.standard_normal((2, n, d))
    c = M.MDSConfig(k, method=method, architecture="linear", batch_size=64, margin=0.1).validated()
    net = M.MDSNet(d, k, (), "linear", rngs=M.nnx.Rngs(0))
    graphdef, params, rest = M.nnx.split(net, M.nnx.Param, ...)
    z = np.concatenate([u, v])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    key = jax.random.key(3)
    loss = float(M._loss(params, rest, graphdef, jnp.asarray(z), key, c, n))
    W, b = np.asarray(net.skip.kernel.get_value()), np.asarray(net.skip.bias.get_value())
    g = z @ W + b
    if method == "isometric":
        ia, ib = map(np.asarray, M.sample_pairs(key, n, 64, c.cross_modal_fraction, c.matched_fraction))
        delta = np.linalg.norm(z[ia] - z[ib], axis=1)
        expected = ref.raw_stress(delta, ref.embedded_distance(g[ia], g[ib], c.eps)) / 64
    else:
        ia, ib, ic, ie = map(np.asarray, M.sample_quads(key, n, 64, c.cross_modal_fraction, c.matched_fraction))
        d1, d2 = np.linalg.norm(z[ia] - z[ib], axis=1), np.linalg.norm(z[ic] - z[ie], axis=1)
        g1, g2 = ref.embedded_distance(g[ia], g[ib], c.eps), ref.embedded_distance(g[ic], g[ie], c.eps)
        near, far = np.where(d1 <= d2, g1, g2), np.where(d1 <= d2, g2, g1)
        expected = ref.quad_loss(near, far, 0.1, (d1 != d2).astype(float)) / 64
    assert loss == pytest.approx(expected, rel=1e-10)


def test_gradients_finite_at_coincident_points_and_match_finite_differences():
    a = jnp.asarray(np.random.default_rng(2).standard_normal((4, 3)))
    stress = lambda x, y: M.raw_stress(jnp.full(4, 0.5), M.embedded_distance(x, y))  # noqa: E731
    quads = lambda x, y: M.quad_loss(M.embedded_distance(x, y), M.embedded_distance(x, y[::-1]), 0.2)  # noqa: E731
    for f in (stress, quads):
        g = jax.grad(f)(a, a)  # every pair coincident
        assert np.isfinite(np.asarray(g)).all()
    # generic point: central differences in float64
    b = a + jnp.asarray(np.random.default_rng(3).standard_normal((4, 3)))
    for f in (stress, quads):
        g = np.asarray(jax.grad(f)(a, b))
        h = 1e-6
        fd = np.zeros_like(g)
        for idx in np.ndindex(*g.shape):
            e = np.zeros(g.shape)
            e[idx] = h
            fd[idx] = (float(f(a + e, b)) - float(f(a - e, b))) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
        assert np.abs(g).max() > 1e-3


def test_sampling_oversamples_cross_modal_and_matched_pairs():
    n, size = 100, 20000
    a, b = map(np.asarray, M.sample_pairs(jax.random.key(0), n, size, 0.5, 0.25))
    cross = (a < n) != (b < n)
    # uniform pairs are cross-modal half the time: 0.5 + 0.5 · 0.5
    assert cross.mean() == pytest.approx(0.75, abs=0.015)
    matched = cross & (a % n == b % n)
    assert matched.mean() == pytest.approx(0.5 * 0.25, abs=0.01)
    qa, qb, qc, qe = map(np.asarray, M.sample_quads(jax.random.key(1), n, size, 0.6, 0.3))
    anchored = (qa == qc) & ((qa < n) != (qb < n)) & ((qa < n) != (qe < n))
    assert anchored.mean() == pytest.approx(0.6, abs=0.015)


def test_pca_map_matches_numpy_svd():
    rng = np.random.default_rng(4)
    z = rng.standard_normal((200, 8)) @ np.diag([5, 4, 3, 2, 1, 0.5, 0.2, 0.1])
    w, b = M.pca_map(z, 3)
    y = z @ w + b
    expected = ref.pca_coordinates(z, 3)
    np.testing.assert_allclose(np.abs(y), np.abs(expected), rtol=1e-9, atol=1e-9)  # up to a sign per axis


def test_mds_metrics_match_numpy_on_the_same_sample():
    u, v = lifted_pairs(200, d_intrinsic=8, d=20, seed=5)
    z = np.concatenate([u, v])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    low = ref.pca_coordinates(z, 3)
    m = mds_metrics(u, v, low[:200], low[200:], size=1000, seed=7)
    s = M._eval_sample(jnp.asarray(z), 200, 1000, 7, 0.5, 0.25)
    delta = np.linalg.norm(z[s.pa] - z[s.pb], axis=1)
    dist = np.linalg.norm(low[s.pa] - low[s.pb], axis=1)
    assert m.stress1 == pytest.approx(ref.kruskal_stress1(delta, dist), rel=1e-10)
    assert m.spearman == pytest.approx(ref.spearman(delta, dist), rel=1e-10)
    d1, d2 = np.linalg.norm(z[s.qa] - z[s.qb], axis=1), np.linalg.norm(z[s.qc] - z[s.qe], axis=1)
    assert (d1 <= d2).all()
    e1, e2 = np.linalg.norm(low[s.qa] - low[s.qb], axis=1), np.linalg.norm(low[s.qc] - low[s.qe], axis=1)
    keep = d1 < d2
    assert m.quad_fraction == pytest.approx(np.mean(e1[keep] < e2[keep]), rel=1e-12)
    assert 0.5 < m.quad_fraction < 1 and 0 < m.stress1
    exact = mds_metrics(u, v, z[:200], z[200:], size=1000, seed=7)  # the identity keeps everything
    assert exact.stress1 == pytest.approx(0, abs=1e-12) and exact.quad_fraction == 1
    assert exact.spearman == pytest.approx(1, abs=1e-12)


# -------------------------------------------------------------- training
def test_recovers_95_percent_of_full_top1_at_64_out_of_sample():
    u, v = lifted_pairs(900, seed=0)
    train, test = slice(0, 600), slice(600, 900)
    full = clipcore.retrieval(u[test], v[test], 1, progress=False).image_to_text_top1
    mds = NeuralMDS(64, **SMALL).fit(u[train], v[train], progress=False)
    got = clipcore.retrieval(mds.transform(u[test]), mds.transform(v[test]), 1, metric="euclidean",
                             progress=False).image_to_text_top1
    assert 0.2 < full < 0.9  # the task is neither trivial nor hopeless
    assert got >= 0.95 * full, (got, full)
    # control: a random projection to 64 dimensions does not get there
    rp = np.random.default_rng(0).standard_normal((96, 64))
    ctrl = clipcore.retrieval(u[test] @ rp, v[test] @ rp, 1, metric="euclidean", progress=False)
    assert ctrl.image_to_text_top1 < 0.95 * full
    h = mds.history
    assert [e.epoch for e in h] == [1, 2, 3] and all(np.isfinite(e.loss) for e in h)
    assert h[-1].spearman > 0.9


# step 3e-4: at the default 1e-5 this short run barely leaves its PCA start (and keep_best may return that)
ISO = dict(SMALL, method="isotonic", epochs=4, learning_rate=3e-4, eval_size=4096)


@pytest.fixture(scope="module")
def isotonic_fit():
    u, v = lifted_pairs(400, seed=1)
    return u, v, NeuralMDS(6, **ISO).fit(u, v, progress=False)


def test_isotonic_beats_or_equals_pca_on_satisfied_quads(isotonic_fit):
    u, v, iso = isotonic_fit
    dim = 6
    gu, gv = iso.transform(u), iso.transform(v)
    z = np.concatenate([u, v])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    pca = ref.pca_coordinates(z, dim)
    m_iso = mds_metrics(u, v, gu, gv, size=4096, seed=11)
    m_pca = mds_metrics(u, v, pca[:400], pca[400:], size=4096, seed=11)
    assert m_pca.quad_fraction < 0.99  # PCA at this D' does lose order
    assert m_iso.quad_fraction >= m_pca.quad_fraction, (m_iso, m_pca)
    # the model holds the parameters of its best epoch on the fixed evaluation sample (seed + 1), and the
    # per-epoch metrics are those of the map after each epoch on that sample
    h = iso.history
    assert 0 <= iso.best_epoch <= len(h)
    held = h[iso.best_epoch - 1] if iso.best_epoch else iso.initial_metrics
    assert held.quad_fraction == max([iso.initial_metrics.quad_fraction] + [e.quad_fraction for e in h])
    last = mds_metrics(u, v, gu, gv, size=iso.config.eval_size, seed=iso.config.seed + 1)
    assert held.quad_fraction == pytest.approx(last.quad_fraction, abs=0.01)
    assert held.spearman == pytest.approx(last.spearman, abs=1e-3)


def test_isotonic_beats_pca_on_satisfied_quads_with_isotropic_noise():
    """The bench's kind of data (pair identity in isotropic noise over all d dims), smaller.

    Scored by the NumPy reference on quads drawn by NumPy's own generator (not
    clipcore's sampler, not the model's evaluation sample), in the proportions
    training uses: half anchored cross-modal triplets, a quarter of those matched.
    """
    n, dim = 1000, 8
    p = clipcore.synthetic_pairs(n=n, d=128, gap=0.8, seed=0)
    u, v = p.images.astype(np.float64), p.texts.astype(np.float64)
    z = np.concatenate([u, v])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    pca = ref.pca_coordinates(z, dim)
    iso = NeuralMDS(dim, method="isotonic", hidden=(64,), epochs=6, steps_per_epoch=50, batch_size=1024)
    iso.fit(u, v, progress=False)
    y = np.concatenate([np.asarray(iso.transform(u)), np.asarray(iso.transform(v))])
    quads = ref.sample_quads(np.random.default_rng(123), n, 100_000, anchored=0.5, matched=0.25)
    f_pca, f_iso = ref.quad_fraction(z, pca, quads), ref.quad_fraction(z, y, quads)
    assert f_pca < 0.95  # PCA at this D' does lose order
    assert f_iso >= f_pca, (f_iso, f_pca)
    # float32 PCA start and float64 SVD agree on the quads up to near-ties
    w, b = M.pca_map(z, dim)
    assert abs(ref.quad_fraction(z, z @ w + b, quads) - f_pca) < 1e-3


def test_deterministic_and_save_load_roundtrip(isotonic_fit, tmp_path):
    u, v, a = isotonic_fit
    assert a.best_epoch > 0  # a trained map, not the (seed-independent) PCA start
    b = NeuralMDS(6, **ISO).fit(u, v, progress=False)
    np.testing.assert_array_equal(np.asarray(a.transform(u)), np.asarray(b.transform(u)))
    assert a.history[-1].loss == b.history[-1].loss
    c = NeuralMDS(6, **ISO, seed=4).fit(u, v, progress=False)
    assert not np.array_equal(np.asarray(a.transform(u)), np.asarray(c.transform(u)))
    path = tmp_path / "m" / "mds.safetensors"
    a.save(path)
    back = NeuralMDS.load(path)
    np.testing.assert_array_equal(np.asarray(back.transform(v)), np.asarray(a.transform(v)))
    assert back.config == a.config and back.d_in == 96 and back.history == a.history
    assert back.best_epoch == a.best_epoch and back.initial_metrics == a.initial_metrics
    with pytest.raises(ValueError, match=r"x: dimension 5 .* maps D=96"):
        back.transform(u[:, :5])
    # a linear map round-trips too (set by hand: no second training compile)
    lin = NeuralMDS(6, architecture="linear")
    lin._net, lin.d_in = M.MDSNet(96, 6, (), "linear", rngs=M.nnx.Rngs(5)), 96
    lin.save(tmp_path / "lin.safetensors")
    np.testing.assert_array_equal(np.asarray(NeuralMDS.load(tmp_path / "lin.safetensors").transform(u)),
                                  np.asarray(lin.transform(u)))
    with pytest.raises(FileNotFoundError, match="no model file"):
        NeuralMDS.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="path: "):
        NeuralMDS.load(tmp_path / "junk.safetensors")


def test_bad_inputs_get_clear_errors():
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((2, 20, 8))
    m = NeuralMDS(4, **SMALL)
    with pytest.raises(ValueError, match=r"texts: 19 rows but images has 20"):
        m.fit(u, v[:19])
    with pytest.raises(ValueError, match=r"dim: D'=8 must be smaller than the input dimension D=8"):
        NeuralMDS(8).fit(u, v)
    with pytest.raises(ValueError, match=r"images: empty set"):
        m.fit(u[:0], v[:0])
    with pytest.raises(ValueError, match=r"texts: dimension 7 differs"):
        m.fit(u, v[:, :7])
    bad = u.copy()
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match=r"images: contains Inf at row 3"):
        m.fit(bad, v)
    with pytest.raises(ValueError, match="not fitted"):
        m.transform(u)
    with pytest.raises(ValueError, match=r"^method: "):
        NeuralMDS(4, method="sammon")
    with pytest.raises(ValueError, match=r"^dim: "):
        NeuralMDS(0)
    with pytest.raises(ValueError, match=r"^cross_modal_fraction: "):
        NeuralMDS(4, cross_modal_fraction=1.5)
    with pytest.raises(ValueError, match=r"^images: need at least 2 pairs"):
        m.fit(u[:1], v[:1])


# -------------------------------------------------------------------- CLI
def test_cli_mds_writes_json_and_plot(tmp_path, capsys):
    import json

    from clipcore.cli import main

    # the isotonic fixture's data and options: its compiled epoch program is reused
    u, v = lifted_pairs(400, seed=1)
    np.save(tmp_path / "x.npy", u.astype(np.float32))
    np.save(tmp_path / "t.npy", v.astype(np.float32))
    out = tmp_path / "o" / "mds.json"
    rc = main(["mds", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"), "--dims", "6",
               "--method", "isotonic,pca,random,sklearn", "--epochs", "4", "--steps-per-epoch", "20", "--hidden", "64",
               "--batch-size", "256", "--learning-rate", "3e-4",
               "--sklearn-max", "50", "--sklearn-max-iter", "50", "--json", str(out), "--save-dir",
               str(tmp_path / "models")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "top-1 i→t" in printed and "sklearn-nonmetric" in printed
    payload = json.loads(out.read_text())
    assert (tmp_path / "o" / "mds.png").stat().st_size > 1000
    # the full-dimension figure is the independent dense reference's
    full = np.mean(ref.ranks(u, v) == 0)
    assert payload["full"]["top1_image_to_text"] == pytest.approx(full)
    for m in ("isotonic", "pca", "random", "sklearn-metric", "sklearn-nonmetric"):
        e = payload["results"][m]["6"]
        assert 0 <= e["top1_image_to_text"] <= 1 and 0 < e["spearman"] <= 1
    assert payload["results"]["sklearn-metric"]["6"]["pairs"] == 50
    assert len(payload["results"]["isotonic"]["6"]["history"]) == 4
    back = NeuralMDS.load(payload["results"]["isotonic"]["6"]["model"])
    assert back.config.dim == 6
    # PCA's figure is the NumPy SVD's
    z = np.concatenate([u, v])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    p = ref.pca_coordinates(z, 6)
    assert payload["results"]["pca"]["6"]["top1_image_to_text"] == pytest.approx(
        np.mean(ref.ranks(p[:400], p[400:], "euclidean") == 0))


def test_cli_mds_holdout_scores_held_out_pairs(tmp_path, capsys):
    import json

    from clipcore.cli import main

    u, v = (a.astype(np.float32) for a in lifted_pairs(400, seed=1))
    np.save(tmp_path / "x.npy", u)
    np.save(tmp_path / "t.npy", v)
    u, v = u.astype(np.float64), v.astype(np.float64)
    out = tmp_path / "ho.json"
    rc = main(["mds", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"), "--dims", "6",
               "--method", "isotonic,pca,random,sklearn-metric", "--epochs", "1", "--steps-per-epoch", "20",
               "--hidden", "64", "--batch-size", "256", "--sklearn-max", "40", "--sklearn-max-iter", "30",
               "--holdout", "0.25", "--seed", "3", "--json", str(out), "--no-plot"])
    assert rc == 0
    assert "held-out top-1 i→t" in capsys.readouterr().out
    payload = json.loads(out.read_text())
    h = payload["holdout"]
    test = np.asarray(h["indices"])
    train = np.setdiff1d(np.arange(400), test)
    assert h["pairs"] == 100 == test.size and h["fit_pairs"] == 300 == payload["n"] and h["fraction"] == 0.25
    # the split is the seeded permutation; in-sample figures are on the fitted pairs, held-out on the rest
    np.testing.assert_array_equal(test, np.sort(np.random.default_rng(3).permutation(400)[:100]))
    assert payload["full"]["top1_image_to_text"] == pytest.approx(np.mean(ref.ranks(u[train], v[train]) == 0))
    assert h["full"]["top1_image_to_text"] == pytest.approx(np.mean(ref.ranks(u[test], v[test]) == 0))
    # PCA is fitted on the training pairs only and applied to the held-out ones (NumPy SVD reference)
    z = np.concatenate([u[train], v[train]])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    mu = z.mean(axis=0)
    _, _, vt = np.linalg.svd(z - mu, full_matrices=False)
    zt = np.concatenate([u[test], v[test]])
    zt = zt / np.linalg.norm(zt, axis=1, keepdims=True)
    pt = (zt - mu) @ vt[:6].T
    ptr = (z - mu) @ vt[:6].T
    e = payload["results"]["pca"]["6"]
    assert e["holdout"]["top1_image_to_text"] == pytest.approx(np.mean(ref.ranks(pt[:100], pt[100:], "euclidean") == 0))
    assert e["holdout"]["top1_text_to_image"] == pytest.approx(np.mean(ref.ranks(pt[100:], pt[:100], "euclidean") == 0))
    assert e["top1_image_to_text"] == pytest.approx(np.mean(ref.ranks(ptr[:300], ptr[300:], "euclidean") == 0))
    for m in ("isotonic", "random"):
        ho = payload["results"][m]["6"]["holdout"]
        assert 0 <= ho["top1_image_to_text"] <= 1 and 0 < ho["spearman"] <= 1
    assert payload["results"]["sklearn-metric"]["6"]["holdout"] is None  # no out-of-sample map
    assert payload["options"]["holdout"] == 0.25
    with pytest.raises(ValueError, match=r"^holdout: expected a fraction in \[0, 1\)"):
        clipcore_run_mds(u, v, [6], ["pca"], holdout=1.0)
    with pytest.raises(ValueError, match=r"^holdout: 0.001 of 400 pairs leaves 0 held out"):
        clipcore_run_mds(u, v, [6], ["pca"], holdout=0.001)


def clipcore_run_mds(*args, **kw):
    from clipcore._cli_mds import run_mds

    return run_mds(*args, progress=False, **kw)


def test_cli_mds_errors_are_one_line(tmp_path, capsys):
    from clipcore.cli import main

    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.standard_normal((20, 8)))
    np.save(tmp_path / "t.npy", rng.standard_normal((19, 8)))
    np.save(tmp_path / "t8.npy", rng.standard_normal((20, 8)))
    base = ["mds", "--images", str(tmp_path / "x.npy"), "--json", str(tmp_path / "o.json"), "--quiet"]
    cases = [(["--texts", str(tmp_path / "t.npy")], "texts: 19 rows but images has 20"),
             (["--texts", str(tmp_path / "t8.npy"), "--dims", "4,8"], "dims: D'=8 must be smaller"),
             (["--texts", str(tmp_path / "nope.npy")], "texts: file not found"),
             (["--texts", str(tmp_path / "t8.npy"), "--method", "tsne"], "method: unknown method 'tsne'")]
    for extra, msg in cases:
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("clipcore: error: ") and msg in err[0], err
