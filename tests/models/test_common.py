"""clipcore.models._common: the one MLP (against a NumPy forward pass), the one batched apply, the one
scan trainer (against gradient descent's closed form) and the one save format (files written by the
earlier formats, tests/data/models, still load and predict what they predicted then)."""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from clipcore.models import DEC, IIN, NeuralMDS
from clipcore.models import _common as C

DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "models"


# ------------------------------------------------------------------ the MLP
def _np_act(x, name, slope):
    if name == "relu":
        return np.maximum(x, 0)
    if name == "leaky_relu":
        return np.where(x >= 0, x, slope * x)
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))  # GELU, tanh form


@pytest.mark.parametrize("activation, final", [("relu", None), ("gelu", None), ("leaky_relu", "tanh")])
def test_mlp_matches_numpy_forward(activation, final):
    mlp = C.MLP((5, 7, 6, 3), activation=activation, negative_slope=0.2, final=final, param_dtype=jnp.float64,
                rngs=nnx.Rngs(0))
    x = np.random.default_rng(1).standard_normal((11, 5))
    h = x
    for i, layer in enumerate(mlp.layers):
        h = h @ np.asarray(layer.kernel.get_value()) + np.asarray(layer.bias.get_value())
        if i < 2:
            h = _np_act(h, activation, 0.2)
    if final == "tanh":
        h = np.tanh(h)
    np.testing.assert_allclose(np.asarray(mlp(jnp.asarray(x))), h, rtol=1e-12, atol=1e-12)
    assert [(l.in_features, l.out_features) for l in mlp.layers] == [(5, 7), (7, 6), (6, 3)]


def test_mlp_zero_last_starts_at_zero_and_custom_init():
    mlp = C.MLP((4, 8, 2), zero_last=True, kernel_init=nnx.initializers.ones, rngs=nnx.Rngs(0))
    assert np.all(np.asarray(mlp.layers[0].kernel.get_value()) == 1)
    assert np.all(np.asarray(mlp.layers[-1].kernel.get_value()) == 0)
    assert np.all(np.asarray(mlp(jnp.ones((3, 4)))) == 0)
    with pytest.raises(ValueError, match="^activation: "):
        C.MLP((2, 2), activation="swish", rngs=nnx.Rngs(0))


# ------------------------------------------------------------ batched apply
def test_bucket_rows():
    assert [C.bucket_rows(r, 1024) for r in (1, 16, 17, 64, 65, 300, 1024)] == [16, 16, 64, 64, 256, 1024, 1024]
    assert C.bucket_rows(900, 1000) == 1000 and C.bucket_rows(10, 8) == 10


@pytest.mark.parametrize("n, chunk", [(1, 64), (100, 64), (128, 64), (300, 1000)])
def test_in_chunks_equals_one_call_and_compiles_few_shapes(n, chunk):
    shapes = []

    def fn(x):
        shapes.append(x.shape[0])
        return {"y": x * 2.0 + 1.0, "s": jnp.sum(x, axis=1)}

    x = jnp.asarray(np.random.default_rng(n).standard_normal((n, 3)))
    out = C.in_chunks(fn, x, chunk)
    np.testing.assert_array_equal(np.asarray(out["y"]), np.asarray(x) * 2 + 1)
    np.testing.assert_allclose(np.asarray(out["s"]), np.asarray(x).sum(1), rtol=1e-15)
    assert all(s in (16, 64, 256, chunk) for s in shapes) and len(shapes) == -(-n // chunk)


def test_apply_rows_calls_the_module_method():
    mlp = C.MLP((4, 6, 2), rngs=nnx.Rngs(3))
    graphdef, state = nnx.split(mlp)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((70, 4)), jnp.float32)
    np.testing.assert_allclose(np.asarray(C.apply_rows(graphdef, (state,), x, chunk=32)), np.asarray(mlp(x)),
                               rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- training
def test_scan_trainer_is_gradient_descent():
    """SGD on ½‖w − t‖² has the closed form w_k = t + (1 − lr)^k (w_0 − t)."""
    t = np.array([1.0, -2.0, 3.0])
    lr, steps = 0.1, 7

    def loss(w, target, batch):
        return 0.5 * jnp.sum((w - target) ** 2) * batch

    tx = optax.sgd(lr)
    run = C.scan_trainer(loss, tx)
    w0 = jnp.zeros(3)
    w, _, losses = run(w0, tx.init(w0), jnp.asarray(t), jnp.ones(steps))
    want = t + (1 - lr) ** steps * (0 - t)
    np.testing.assert_allclose(np.asarray(w), want, rtol=1e-12)
    ks = np.arange(steps)
    np.testing.assert_allclose(np.asarray(losses), 0.5 * np.sum(t ** 2) * (1 - lr) ** (2 * ks), rtol=1e-12)


def test_train_in_chunks_drives_total_steps():
    class Bar:
        n = 0

        def update(self, k):
            self.n += k

        def set_postfix(self, **kw):
            self.postfix = kw

    def loss(w, _data, batch):
        return jnp.sum(w * batch)

    tx = optax.sgd(1.0)
    run = C.scan_trainer(loss, tx)
    seen, bar = [], Bar()
    w, _, losses = C.train_in_chunks(run, jnp.zeros(()), tx.init(jnp.zeros(())), None, total=25, chunk=10,
                                     batches=lambda s: jnp.ones(s), bar=bar,
                                     check=lambda first, ls: seen.append((first, ls.size)))
    assert seen == [(0, 10), (10, 10), (20, 5)] and bar.n == 25
    assert float(w) == -25.0 and np.concatenate(losses).tolist() == [-float(i) for i in range(25)]


# -------------------------------------------------------------- save format
@pytest.fixture(scope="module")
def expected():
    with np.load(DATA / "expected_v1.npz") as z:
        return {k: z[k] for k in z.files}


def _mds_check(m, e):
    assert m.d_in == 12 and m.config.dim == 4 and m.config.hidden == (8,) and m.best_epoch == 2
    assert [h.epoch for h in m.history] == [1, 2] and m.initial_metrics is not None
    np.testing.assert_allclose(np.asarray(m.transform(e["mds_x"])), e["mds_out"], rtol=1e-6, atol=1e-7)


def _dec_check(m, e):
    assert m.config.hidden == (8, 8, 16) and m.config.n_clusters == 3 and m.centers.shape == (3, 3)
    np.testing.assert_allclose(m.transform(e["dec_x"]), e["dec_z"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(m.soft_assign(e["dec_x"]), e["dec_q"], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(m.predict(e["dec_x"]), e["dec_labels"])


def _iin_check(m, e):
    assert m.dim == 8 and m.factor_sizes == (3, 3, 2) and m.names == ("a", "b") and m.initialized
    assert [c.shape for c in m.class_means] == [(2, 3), (2, 3)]
    zbar, logdet = m.forward(e["iin_z"])
    np.testing.assert_allclose(np.asarray(zbar), e["iin_zbar"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(logdet), e["iin_logdet"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(m.decode(zbar)), e["iin_decoded"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(m.edit(e["iin_z"], "b", 1)), e["iin_edit"], rtol=1e-6, atol=1e-6)


CASES = [(NeuralMDS, "mds_v1.safetensors", "NeuralMDS", _mds_check),
         (DEC, "dec_v1.npz", "DEC", _dec_check),
         (IIN, "iin_v1.npz", "IIN", _iin_check)]


@pytest.mark.parametrize("cls, name, kind, check", CASES, ids=[c[2] for c in CASES])
def test_files_of_the_first_formats_load_and_predict_the_same(cls, name, kind, check, expected, tmp_path):
    old = cls.load(DATA / name)
    assert C.load_model(DATA / name, kind).format != C.FORMAT
    check(old, expected)
    # saved again, in the one format: a safetensors file whose metadata names the kind
    path = old.save(tmp_path / f"again_{name}")
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["format"] == C.FORMAT == "clipcore.model/1" and meta["kind"] == kind
    assert json.loads(meta["config"]) and any(k.startswith("state.") for k in keys)
    again = cls.load(path)
    check(again, expected)
    assert again.config == old.config


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="path: no model file"):
        C.load_model(tmp_path / "missing.safetensors", "DEC")
    with pytest.raises(ValueError, match="holds a clipcore NeuralMDS, not a DEC"):
        DEC.load(DATA / "mds_v1.safetensors")
    with pytest.raises(ValueError, match="holds a clipcore DEC, not a IIN"):
        IIN.load(DATA / "dec_v1.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK not really a zip")
    with pytest.raises(ValueError, match="is not a clipcore model file"):
        DEC.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="is not a clipcore model file"):
        DEC.load(tmp_path / "other.npz")


def test_restore_state_checks_names_and_shapes(tmp_path):
    mlp = C.MLP((3, 4, 2), rngs=nnx.Rngs(0))
    tensors = C.state_tensors(mlp)
    assert set(tensors) == {f"state.layers.{i}.{p}" for i in (0, 1) for p in ("kernel", "bias")}
    other = C.MLP((3, 4, 2), rngs=nnx.Rngs(1))
    C.restore_state(other, tensors, "p")
    np.testing.assert_array_equal(np.asarray(other.layers[1].kernel.get_value()), tensors["state.layers.1.kernel"])
    with pytest.raises(ValueError, match=r"path: p has parameters .* but the config needs"):
        C.restore_state(C.MLP((3, 4, 4, 2), rngs=nnx.Rngs(0)), tensors, "p")
    with pytest.raises(ValueError, match=r"parameter state.layers.0.kernel has shape \(3, 4\), expected \(5, 4\)"):
        C.restore_state(C.MLP((5, 4, 2), rngs=nnx.Rngs(0)), tensors, "p")
    assert jax.tree.leaves(nnx.state(other))  # still a module
