"""clipcore.models.iin (the IIN of Esser, Rombach & Ommer 2020) against independent references.

References: the float64 NumPy flow / loss / dimension estimator in
tests/reference/iin_numpy.py, central finite differences and
``slogdet(jax.jacfwd(T))`` for the log-determinant, the closed-form entropy of
a Gaussian for the flow likelihood, scikit-learn's PCA for the Fashion-MNIST
features, and the synthetic set's ground-truth attributes for editing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from clipcore.models import evaluate_iin
from clipcore.models.iin import IIN, IINConfig, pair_loss
from clipcore.models.iin_data import synthetic_attributes
from reference import iin_numpy as ref

from .helpers import IIN_SMALL as SMALL


def _randomize(model: IIN, scale: float, seed: int) -> None:
    """Perturb every parameter (the zero-initialised output layers included) so
    the couplings are far from the identity, then re-run the ActNorm data init."""
    st = nnx.state(model.flow, nnx.Param)
    leaves, tree = jax.tree.flatten(st)
    rng = np.random.default_rng(seed)
    # noise std scale/√fan_in: kernels are [blocks, in, out], vectors [blocks, d]
    leaves = [jnp.asarray(np.asarray(l) + scale / np.sqrt(l.shape[-2] if l.ndim == 3 else l.shape[-1])
                          * rng.standard_normal(l.shape), l.dtype) for l in leaves]
    nnx.update(model.flow, jax.tree.unflatten(tree, leaves))


def _random_model(dim, k=2, dtype="float64", seed=0, scale=0.5, **cfg):
    z = synthetic_attributes(200, dim, num_attributes=k, seed=seed).embeddings
    m = IIN(IINConfig(dtype=dtype, seed=seed, **{**SMALL, **cfg})).build(dim, k)
    _randomize(m, scale, seed)
    m.initialize(z)
    return m, z


@pytest.fixture(scope="module")
def random_models():
    """D = 8, K = 2, 3 blocks with perturbed (non-identity) couplings, per dtype."""
    return {dt: _random_model(8, k=2, dtype=dt) for dt in ("float32", "float64")}


# ------------------------------------------------------------- invertibility
@pytest.mark.parametrize("dtype, tol", [("float32", 1e-5), ("float64", 1e-10)])
def test_inverse_roundtrip(random_models, dtype, tol):
    m, z = random_models[dtype]
    zbar = m.encode(z)
    assert zbar.dtype == (jnp.float32 if dtype == "float32" else jnp.float64)
    back = np.asarray(m.decode(zbar), np.float64)
    assert np.linalg.norm(back - z, axis=1).max() <= tol
    # the couplings are not the identity: T moved the points a lot
    assert np.linalg.norm(np.asarray(zbar, np.float64) - z, axis=1).min() > 0.5


def test_forward_inverse_logdet_match_numpy_reference(random_models):
    m, z = random_models["float64"]
    params = m.numpy_params()
    zbar, ld = m.forward(z)
    want, want_ld = ref.forward(params, z)
    np.testing.assert_allclose(np.asarray(zbar), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ld), want_ld, rtol=1e-12, atol=1e-12)
    y = np.random.default_rng(1).standard_normal((7, 8))
    np.testing.assert_allclose(np.asarray(m.decode(y)), ref.inverse(params, y), rtol=1e-10, atol=1e-12)
    # float32 model: same parameters rounded, agrees to float32 precision
    m32, _ = random_models["float32"]
    want32, want_ld32 = ref.forward(m32.numpy_params(), z)
    z32, ld32 = m32.forward(z)
    np.testing.assert_allclose(np.asarray(z32, np.float64), want32, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(ld32, np.float64), want_ld32, rtol=1e-4, atol=1e-4)


def test_logdet_equals_slogdet_of_jacobian_d8(random_models):
    m, z = random_models["float64"]
    graphdef, params, rest = nnx.split(m.flow, nnx.Param, ...)

    @jax.jit
    def jac(x):
        return jax.jacfwd(lambda r: nnx.merge(graphdef, params, rest).forward(r[None])[0][0])(x)

    ld = np.asarray(m.log_det(z[:6]))
    for i in range(6):
        sign, logabs = np.linalg.slogdet(np.asarray(jac(jnp.asarray(z[i]))))
        assert sign != 0
        assert ld[i] == pytest.approx(logabs, rel=1e-10, abs=1e-10)
    # and by central differences on the NumPy reference (no autodiff at all)
    fd = ref.numeric_jacobian_logdet(m.numpy_params(), z[:3])
    np.testing.assert_allclose(ld[:3], fd, rtol=1e-6, atol=1e-6)
    assert np.ptp(ld) > 1e-3  # log-det varies with z: the couplings are active


def test_actnorm_data_initialisation_block_by_block(random_models):
    m, z = random_models["float64"]
    params = m.numpy_params()
    x = z.astype(np.float64)
    for p in params:
        np.testing.assert_allclose(p["loc"], -x.mean(0), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(p["scale"], 1.0 / (x.std(0, ddof=1) + 1e-6), rtol=1e-12)
        x, _ = ref.block_forward(p, x)


def test_permutations_fixed_by_seed_and_saved(tmp_path):
    a = IIN(IINConfig(seed=3, **SMALL)).build(16, 2)
    b = IIN(IINConfig(seed=3, **SMALL)).build(16, 2)
    c = IIN(IINConfig(seed=4, **SMALL)).build(16, 2)
    pa = [p["perm"] for p in a.numpy_params()]
    assert all(np.array_equal(x, y) for x, y in zip(pa, [p["perm"] for p in b.numpy_params()]))
    assert not all(np.array_equal(x, y) for x, y in zip(pa, [p["perm"] for p in c.numpy_params()]))
    assert all(sorted(p) == list(range(16)) for p in pa)
    loaded = IIN.load(a.save(str(tmp_path / "m")))
    assert all(np.array_equal(x, p["perm"]) for x, p in zip(pa, loaded.numpy_params()))


# --------------------------------------------------------------------- losses
def test_pair_loss_through_the_model_matches_reference(random_models):
    m, z = random_models["float64"]
    params = m.numpy_params()
    rng = np.random.default_rng(2)
    i, j, f = rng.integers(0, 200, 16), rng.integers(0, 200, 16), rng.integers(0, 2, 16)
    za, lda = m.forward(z[i])
    zb, ldb = m.forward(z[j])
    got = float(pair_loss(za, lda, zb, ldb, jnp.asarray(f), m.factor_sizes, 0.975))
    ra, rla = ref.forward(params, z[i])
    rb, rlb = ref.forward(params, z[j])
    assert got == pytest.approx(ref.pair_loss(ra, rla, rb, rlb, f, m.factor_sizes, 0.975), rel=1e-10)


def test_flow_objective_reaches_gaussian_likelihood():
    # For x ~ N(μ, Σ) no density beats the true one in expectation: on held-out
    # samples ½‖T(x)‖² − log|det J| (the flow's −log p up to ½ D log 2π) must come
    # close to, and not meaningfully below, ½ (x−μ)ᵀ Σ⁻¹ (x−μ) + ½ log det Σ.
    rng = np.random.default_rng(0)
    d = 8
    a = rng.standard_normal((d, d))
    cov = a @ a.T / d + 0.1 * np.eye(d)
    mu = np.ones(d)
    x = rng.multivariate_normal(mu, cov, size=50000)  # < 1 epoch of draws: no overfitting
    held = rng.multivariate_normal(mu, cov, size=4000)
    r = held - mu
    truth = np.mean(0.5 * np.einsum("ij,ij->i", r @ np.linalg.inv(cov), r)) + 0.5 * np.linalg.slogdet(cov)[1]
    m = IIN(IINConfig(objective="flow", steps=2000, learning_rate=1e-3, batch_size=256, **SMALL))
    m.fit(x, names=("x",), progress=False)
    zbar, ld = m.forward(held)
    got = ref.flow_loss(np.asarray(zbar, np.float64), np.asarray(ld, np.float64))
    assert m.losses[0] > truth + 0.5  # started far from the optimum
    assert truth - 0.02 < got < truth + 0.05, (got, truth)


# ------------------------------------------------------- training and editing
def test_edit_value_and_swap(synthetic_fit):
    m, ds, _ = synthetic_fit
    z = ds.embeddings[:20].astype(np.float64)
    other = ds.embeddings[20:40]
    swapped = m.encode(m.edit(z, "attr1", swap_with=other))
    want = np.asarray(m.encode(z)).copy()
    lo, hi = m.factor_sizes[0], m.factor_sizes[0] + m.factor_sizes[1]
    want[:, lo:hi] = np.asarray(m.encode(other))[:, lo:hi]
    np.testing.assert_allclose(np.asarray(swapped), want, atol=2e-4)
    set1 = np.asarray(m.encode(m.edit(z, 0, 1)))[:, :lo]
    np.testing.assert_allclose(set1, np.broadcast_to(m.class_means[0][1], set1.shape), atol=2e-4)
    vec = np.arange(m.factor_sizes[1], dtype=float) / 10
    np.testing.assert_allclose(np.asarray(m.encode(m.edit(z[0], 1, vec)))[0, lo:hi], vec, atol=2e-4)


def test_save_load_roundtrip(synthetic_fit, tmp_path):
    m, ds, _ = synthetic_fit
    path = m.save(str(tmp_path / "iin.npz"))
    back = IIN.load(path)
    z = ds.embeddings[:30]
    assert np.array_equal(np.asarray(back.encode(z)), np.asarray(m.encode(z)))
    assert back.factor_sizes == m.factor_sizes and back.names == m.names and back.config == m.config
    for x, y in zip(back.class_means, m.class_means):
        assert np.array_equal(x, y)


# ------------------------------------------------------------------ errors
def test_errors_are_clear():
    ds = synthetic_attributes(50, 8, num_attributes=2, seed=0)
    z, a = ds.embeddings, ds.attributes
    fit = IIN(IINConfig(steps=1, **SMALL)).fit
    with pytest.raises(ValueError, match=r"D must be even; got shape \(50, 7\)"):
        fit(z[:, :7], a, progress=False)
    with pytest.raises(ValueError, match="attributes: 49 rows but z has 50"):
        fit(z, a[:49], progress=False)
    with pytest.raises(ValueError, match=r"attributes: expected \[n, K\] integer labels, got shape \(50, 2, 1\)"):
        fit(z, a[:, :, None], progress=False)
    with pytest.raises(ValueError, match="attributes: expected integer class labels"):
        fit(z, a + 0.5, progress=False)
    with pytest.raises(ValueError, match="column 1 has a single value"):
        fit(z, np.stack([a[:, 0], np.zeros(50, int)], 1), progress=False)
    with pytest.raises(ValueError, match=r"column 0 has classes \[0, 2\]; expected 0..C-1"):
        fit(z, np.stack([2 * a[:, 0], a[:, 1]], 1), progress=False)
    with pytest.raises(ValueError, match="attributes: the pair objective needs"):
        fit(z, None, progress=False)
    bad = z.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="z: contains NaN at row 3"):
        fit(bad, a, progress=False)
    with pytest.raises(ValueError, match="factor_sizes"):
        IIN(IINConfig(factor_sizes=(3, 3, 3), **SMALL)).fit(z, a, progress=False)
    with pytest.raises(ValueError, match="factor_sizes"):
        IINConfig(factor_sizes="big").validated()
    with pytest.raises(ValueError, match="rho"):
        IIN(rho=1.0)
    with pytest.raises(ValueError, match="D must be even"):
        IIN(IINConfig(**SMALL)).build(9, 2)
    m = IIN(IINConfig(**SMALL)).build(8, 2)
    with pytest.raises(ValueError, match=r"z: dimension 6 but the model has D=8"):
        m.encode(z[:, :6])
    with pytest.raises(ValueError, match="exactly one of"):
        m.edit(z, 0)
    with pytest.raises(ValueError, match="unknown attribute 'smile'"):
        m.edit(z, "smile", 1)
    with pytest.raises(ValueError, match="no class means"):
        m.edit(z, 0, 1)
    with pytest.raises(ValueError, match="not built"):
        IIN().encode(z)
    with pytest.raises(FileNotFoundError):
        IIN.load("/nonexistent/iin.npz")


# -------------------------------------------------------------------- slow
@pytest.mark.slow
def test_default_model_512d_roundtrip_and_training():
    """The published architecture (12 blocks, 512-wide couplings) on 512-d unit vectors."""
    ds = synthetic_attributes(1200, 512, num_attributes=3, seed=0)
    for dtype, tol in (("float32", 1e-5), ("float64", 1e-10)):
        m = IIN(IINConfig(dtype=dtype)).build(512, 3)
        _randomize(m, 0.3, 0)
        m.initialize(ds.embeddings[:256])
        zbar = m.encode(ds.embeddings[:64])
        assert np.linalg.norm(np.asarray(m.decode(zbar), np.float64) - ds.embeddings[:64], axis=1).max() <= tol
    m = IIN(IINConfig(steps=60, learning_rate=1e-4, batch_size=64))
    m.fit(ds.embeddings[:900], ds.attributes[:900], progress=False)
    assert m.flow.blocks.loc[...].shape == (12, 512) and m.factor_sizes == (128, 128, 128, 128)
    assert np.isfinite(m.losses).all() and m.losses[-20:].mean() < m.losses[:20].mean()
    ev = evaluate_iin(m, ds.embeddings[:900], ds.attributes[:900], ds.embeddings[900:], ds.attributes[900:])
    assert ev.reconstruction_error <= 1e-5


@pytest.mark.slow
def test_synthetic_512d_edit_success_with_a_small_residual():
    """The issue's goal on the 512-d synthetic set: every attribute's edit succeeds ≥ 90 % with ≤ 10 %
    collateral flips. Each attribute is spread densely over the 512 coordinates, so equal chunks leave
    ≈ a quarter of it in the residual, which the pair loss hardly purges (edit success 0.40–0.71,
    bench/RESULTS.md); with a 2-d residual the attribute factors take it all (an 8-d one still kept
    one attribute in one of four seeded runs).

    The edit success is recomputed here from scikit-learn probes on the original embeddings and the
    ground-truth labels, independently of ``evaluate_iin``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ds = synthetic_attributes(2000, 512, num_attributes=3, seed=0)
    ntr = 1500
    x, a = ds.embeddings.astype(np.float64), ds.attributes
    m = IIN(IINConfig(num_blocks=4, hidden=128, hidden_layers=3, steps=500, learning_rate=1e-3,
                      batch_size=128, residual_size=2))
    m.fit(ds.embeddings[:ntr], a[:ntr], progress=False)
    assert m.factor_sizes == (170, 170, 170, 2)

    # independent judge: probes on the original z, edits through the public edit(value=class)
    probes = [make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[:ntr], a[:ntr, k])
              for k in range(3)]
    xte, ate = x[ntr:], a[ntr:]
    assert min(p.score(xte, ate[:, k]) for k, p in enumerate(probes)) >= 0.99  # z is linearly decodable
    before = np.stack([p.predict(xte) for p in probes], 1)
    for f in range(3):
        edited = np.empty_like(xte)
        for c in (0, 1):
            rows = ate[:, f] == c
            edited[rows] = np.asarray(m.edit(xte[rows], f, 1 - c), np.float64)
        after = np.stack([p.predict(edited) for p in probes], 1)
        others = [k for k in range(3) if k != f]
        flipped = after[:, f] == 1 - ate[:, f]
        changed = after[:, others] != before[:, others]
        assert (flipped & ~changed.any(1)).mean() >= 0.9, (f, flipped.mean(), changed.mean(0))
        assert changed.mean() <= 0.1, (f, changed.mean(0))

    ev = evaluate_iin(m, ds.embeddings[:ntr], a[:ntr], ds.embeddings[ntr:], a[ntr:])
    assert np.all(ev.success_rate >= 0.9) and np.all(ev.collateral_rate <= 0.1), ev
    assert ev.reconstruction_error <= 1e-5
    acc = ev.probe_accuracy
    assert np.all(np.diag(acc) >= 0.95), acc
    # the residual no longer predicts the attributes (near chance; 0.93–0.98 for an 8-d one after 1 step)
    assert np.all(acc[3] <= 0.7), acc


def test_fit_progress_follows_the_convention():
    ds = synthetic_attributes(50, 8, num_attributes=2, seed=0)
    with pytest.raises(ValueError, match=r"^progress: expected None"):
        IIN(IINConfig(steps=1, **SMALL)).fit(ds.embeddings, ds.attributes, progress="yes")
