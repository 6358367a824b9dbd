"""clipcore.models.vae (the VAE of managed synthesis) and clipcore.models.vae_eval (decoded IIN edits, the
edit grid): the ELBO against a float64 NumPy formula, the round trip through save / load, a reconstruction
bound against the mean image on held-out digits, the grid's layout, and (slow) the deck's managed
synthesis on Fashion-MNIST judged by probes on real images."""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
import pytest

import clipcore
from clipcore.models import IIN, IINConfig, VAE, edit_grid, evaluate_decoded_edits
from clipcore.models.vae import check_images, negative_elbo

from .helpers import IIN_SMALL


def _digits():
    d = clipcore.digits()
    return (d.images / 16.0).astype(np.float32), d.labels


@pytest.fixture(scope="module")
def digits_vae():
    x, y = _digits()
    return x, y, VAE(latent_dim=8, steps=300, seed=0).fit(x[:1500], progress=False)


def test_negative_elbo_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 4, 4, 1)) * 3
    x = rng.uniform(size=(5, 4, 4, 1))
    mu, logvar = rng.standard_normal((2, 5, 3))
    p = 1 / (1 + np.exp(-logits))
    bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=(1, 2, 3))
    kl = 0.5 * (np.exp(logvar) + mu ** 2 - 1 - logvar).sum(axis=1)
    for beta in (1.0, 0.5):
        got = float(negative_elbo(*(jnp.asarray(a) for a in (logits, x, mu, logvar)), beta))
        assert got == pytest.approx(np.mean(bce + beta * kl), rel=1e-5)


def test_reconstruction_beats_the_mean_image_held_out(digits_vae):
    x, _, vae = digits_vae
    held = x[1500:]
    z = vae.encode(held)
    back = vae.decode(z)
    assert z.shape == (len(held), 8) and back.shape == held.shape
    assert back.min() >= 0 and back.max() <= 1
    mse = float(np.mean((back - held) ** 2))
    assert vae.reconstruction_error(held) == pytest.approx(mse, rel=1e-6)
    baseline = float(np.mean((held - x[:1500].mean(axis=0)) ** 2))
    assert mse <= 0.75 * baseline, (mse, baseline)
    assert vae.history.loss[-1] < vae.history.loss[0]


def test_save_load_roundtrip(digits_vae, tmp_path):
    x, _, vae = digits_vae
    path = vae.save(tmp_path / "m" / "vae.safetensors")
    back = VAE.load(path)
    assert back.config == vae.config and back.shape == (8, 8)
    np.testing.assert_array_equal(back.encode(x[:20]), vae.encode(x[:20]))
    z = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    np.testing.assert_array_equal(back.decode(z), vae.decode(z))
    np.testing.assert_array_equal(back.history.loss, vae.history.loss)
    with pytest.raises(ValueError, match="holds a clipcore VAE, not a IIN"):
        IIN.load(path)


def test_grid_and_decoded_edits_shapes(digits_vae):
    x, y, vae = digits_vae
    a = np.stack([y >= 5, y % 2], axis=1).astype(np.int64)  # two attributes of the digits
    z = vae.encode(x[:1500])
    iin = IIN(IINConfig(steps=60, learning_rate=1e-3, batch_size=128, validation_fraction=0.0, **IIN_SMALL))
    iin.fit(z, a[:1500], names=("high", "odd"), progress=False)
    grid, labels = edit_grid(vae, iin, x[1500:1505], "odd", classes=a[1500:1505, 1])
    assert grid.shape == (5, 2 + 7 + 1, 8, 8) and len(labels) == 10
    assert labels[:2] == ["original", "reconstruction"] and labels[2] == "odd -3" and labels[-1] == "odd swapped"
    np.testing.assert_array_equal(grid[:, 0], x[1500:1505])
    np.testing.assert_allclose(grid[:, 1], vae.decode(vae.encode(x[1500:1505])), atol=1e-6)
    no_swap, _ = edit_grid(vae, iin, x[1500:1503], 0, values=(-1.0, 1.0))
    assert no_swap.shape == (3, 4, 8, 8)
    ev = evaluate_decoded_edits(vae, iin, x[:1500], a[:1500], x[1500:], a[1500:])
    assert ev.names == ("high", "odd") and ev.flip_rate.shape == (2,)
    assert np.all((ev.flip_rate >= 0) & (ev.flip_rate <= 1)) and 0 < ev.reconstruction_error < 0.1
    assert np.all(ev.probe_accuracy > 0.8)  # the pixel probes read the attributes off real digits


def test_bad_inputs():
    with pytest.raises(ValueError, match="latent_dim: expected an even size"):
        VAE(latent_dim=7)
    with pytest.raises(ValueError, match="unknown option"):
        VAE(latent_dim=8, hidden_units=3)
    with pytest.raises(ValueError, match=r"pixels must be finite and in \[0, 1\]"):
        check_images(np.full((2, 8, 8), 3.0))
    with pytest.raises(ValueError, match="multiples of 4"):
        check_images(np.zeros((2, 6, 8)))
    with pytest.raises(ValueError, match="not fitted"):
        VAE(latent_dim=8).encode(np.zeros((1, 8, 8)))


@pytest.mark.slow
def test_managed_synthesis_on_fashion_mnist():
    """The deck's third task: an IIN on a VAE's latent edits footwear / light; decoded, the edits read as
    the target class to probes trained on real images in ≥ 90 % of held-out cases."""
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.skip("Fashion-MNIST IDX files not installed")
    from clipcore.models import fashion_mnist_images

    x, a, _ = fashion_mnist_images(12000, seed=1)
    vae = VAE(latent_dim=16, steps=2000, seed=1).fit(x[:9000], progress=False)
    held = x[9000:]
    assert vae.reconstruction_error(held) <= 0.5 * float(np.mean((held - x[:9000].mean(0)) ** 2))
    z = vae.encode(x[:9000])
    iin = IIN(IINConfig(num_blocks=4, hidden=128, learning_rate=1e-3, steps=1500, seed=1))
    iin.fit(z, a[:9000], names=("footwear", "light"), progress=False)
    ev = evaluate_decoded_edits(vae, iin, x[:9000], a[:9000], held, a[9000:])
    assert np.all(ev.flip_rate >= 0.9), ev
