"""A small convolutional variational autoencoder (Kingma & Welling 2014) for managed synthesis.

The deck's third task: an autoencoder latent z = E(x), the IIN edits one
factor of T(z), and the decoder shows the image with that factor changed
(:func:`clipcore.models.vae_grid.edit_grid`). This module holds the model:

  encoder  x [H, W, 1] → Conv 3×3 / 2 (``channels[0]``, ReLU) → Conv 3×3 / 2
           (``channels[1]``, ReLU) → flatten → MLP (``hidden``, ReLU) →
           (μ, log σ²) ∈ R^latent_dim × R^latent_dim
  decoder  z → MLP (``hidden``, ReLU) → [H/4, W/4, channels[1]] (ReLU) →
           ConvTranspose 3×3 / 2 (``channels[0]``, ReLU) → ConvTranspose 3×3 / 2
           (1) → pixel logits

trained on the negative evidence lower bound with a Bernoulli likelihood of
pixels in [0, 1] (binary cross-entropy summed over pixels) plus β·KL(q(z|x) ‖
N(0, I)), one reparameterised sample per image, Adam. H and W must be
multiples of 4 (Fashion-MNIST's 28 × 28, scikit-learn digits' 8 × 8).

Training is the models' one scan trainer, the file the models' one save
format (:mod:`clipcore.models._common`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .._progress import bar as progress_bar
from .._progress import check_progress
from .._validate import check_positive_int
from ._common import MLP, apply_rows, load_model, restore_state, save_model, scan_trainer, state_tensors
from ._common import merge_config, train_in_chunks

__all__ = ["VAE", "VAEConfig", "VAENet", "negative_elbo", "check_images"]


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Options of :class:`VAE`.

    Attributes:
      latent_dim: size of z (even, so that an IIN can run on it).
      channels: the two convolutions' channels (32, 64).
      hidden: width of the dense layer on each side (256).
      beta: weight of the KL term (1: the ELBO).
      learning_rate: Adam step (1e-3); batch_size: images per step (128); steps: Adam steps (3000).
      seed: initialisation, batches and the reparameterisation noise.
    """

    latent_dim: int = 16
    channels: tuple[int, int] = (32, 64)
    hidden: int = 256
    beta: float = 1.0
    learning_rate: float = 1e-3
    batch_size: int = 128
    steps: int = 3000
    seed: int = 0

    def validated(self) -> "VAEConfig":
        for name in ("latent_dim", "hidden", "batch_size", "steps"):
            check_positive_int(getattr(self, name), name)
        if self.latent_dim % 2:
            raise ValueError(f"latent_dim: expected an even size (an IIN splits it in halves), got {self.latent_dim}")
        channels = tuple(self.channels)
        if len(channels) != 2:
            raise ValueError(f"channels: expected two channel counts, got {self.channels!r}")
        for c in channels:
            check_positive_int(c, "channels")
        for name in ("beta", "learning_rate"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
                raise ValueError(f"{name}: expected a finite number > 0, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ValueError(f"seed: expected an integer, got {self.seed!r}")
        return dataclasses.replace(self, channels=channels)


class VAENet(nnx.Module):
    """The encoder and decoder (module docstring) for ``[H, W]`` images, H and W multiples of 4.

    ``encode(x [n, H, W, 1]) -> (mu, logvar)`` each ``[n, latent_dim]``; ``decode(z) -> logits [n, H, W, 1]``.
    """

    def __init__(self, shape: tuple[int, int], c: VAEConfig, *, rngs: nnx.Rngs):
        h, w = shape
        c1, c2 = c.channels
        self.shape = (int(h), int(w))
        flat = (h // 4) * (w // 4) * c2
        conv = functools.partial(nnx.Conv, kernel_size=(3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
        deconv = functools.partial(nnx.ConvTranspose, kernel_size=(3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
        self.conv1, self.conv2 = conv(1, c1), conv(c1, c2)
        self.enc = MLP((flat, c.hidden, 2 * c.latent_dim), rngs=rngs)
        self.dec = MLP((c.latent_dim, c.hidden, flat), rngs=rngs)
        self.deconv1, self.deconv2 = deconv(c2, c1), deconv(c1, 1)
        self.latent_dim = int(c.latent_dim)
        self.c2 = int(c2)

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        y = jax.nn.relu(self.conv2(jax.nn.relu(self.conv1(x))))
        out = self.enc(y.reshape(y.shape[0], -1))
        return out[:, :self.latent_dim], out[:, self.latent_dim:]

    def decode(self, z: jax.Array) -> jax.Array:
        h, w = self.shape
        y = jax.nn.relu(self.dec(z)).reshape(z.shape[0], h // 4, w // 4, self.c2)
        return self.deconv2(jax.nn.relu(self.deconv1(y)))

    def mean(self, x: jax.Array) -> jax.Array:
        """Posterior means ``[n, latent_dim]`` (what :meth:`VAE.encode` returns)."""
        return self.encode(x)[0]

    def pixels(self, z: jax.Array) -> jax.Array:
        """Decoded pixel means in [0, 1]: ``[n, H, W, 1]``."""
        return jax.nn.sigmoid(self.decode(z))


def negative_elbo(logits: jax.Array, x: jax.Array, mu: jax.Array, logvar: jax.Array, beta: float) -> jax.Array:
    """Mean over images of Σ_pixels BCE(logits, x) + β · KL(N(μ, σ²) ‖ N(0, I)).

    Args:
      logits: ``[n, H, W, 1]`` decoder outputs; x: ``[n, H, W, 1]`` pixels in [0, 1].
      mu, logvar: ``[n, L]`` the posterior's mean and log-variance.
      beta: the KL weight.
    """
    bce = jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x), axis=(1, 2, 3))
    kl = -0.5 * jnp.sum(1.0 + logvar - mu * mu - jnp.exp(logvar), axis=1)
    return jnp.mean(bce + beta * kl)


def check_images(images: Any, name: str = "images") -> np.ndarray:
    """``images`` as float32 ``[n, H, W, 1]`` in [0, 1] (``[n, H, W]`` accepted), H and W multiples of 4."""
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected [n, H, W] (or [n, H, W, 1]) grey images, got shape {x.shape}")
    if x.shape[1] % 4 or x.shape[2] % 4:
        raise ValueError(f"{name}: H and W must be multiples of 4 (two stride-2 convolutions), got {x.shape[1:]}")
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{name}: expected numbers, got dtype {x.dtype}")
    x = x.astype(np.float32)
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError(f"{name}: pixels must be finite and in [0, 1] (divide uint8 images by 255), got "
                         f"[{np.nanmin(x):g}, {np.nanmax(x):g}]")
    return x[..., None]


class VAEHistory(NamedTuple):
    """``loss``: the negative ELBO per image of each compiled chunk of steps; ``seconds``: the fit's time."""

    loss: np.ndarray
    seconds: float


class VAE:
    """A small convolutional VAE in Flax NNX + optax (module docstring).

    Example::

        vae = VAE(latent_dim=16, steps=3000).fit(images)      # [n, 28, 28] in [0, 1]
        z = vae.encode(images)                                 # [n, 16] posterior means
        back = vae.decode(z)                                   # [n, 28, 28] pixel means
        vae.save("vae.safetensors"); VAE.load("vae.safetensors")

    Args:
      latent_dim: size of z (even).
      config: a :class:`VAEConfig`; keyword ``options`` override its fields.

    Attributes (after ``fit`` or ``load``):
      net: the :class:`VAENet`; shape: ``(H, W)``; history: a :class:`VAEHistory`.
    """

    def __init__(self, latent_dim: int | None = None, *, config: VAEConfig | None = None, **options: Any):
        if latent_dim is not None:
            options["latent_dim"] = latent_dim
        self.config = merge_config("VAE", VAEConfig, config, options)
        self.net: VAENet | None = None
        self.shape: tuple[int, int] | None = None
        self.history: VAEHistory | None = None

    def fit(self, images: Any, *, progress: bool | None = None) -> "VAE":
        """Train on ``images [n, H, W]`` (pixels in [0, 1]) for ``config.steps`` Adam steps.

        Returns:
          self.
        """
        import time

        c = self.config
        progress = check_progress(progress)
        x = jnp.asarray(check_images(images))
        self.shape = (int(x.shape[1]), int(x.shape[2]))
        self.net = VAENet(self.shape, c, rngs=nnx.Rngs(c.seed))
        graphdef, params = nnx.split(self.net)
        tx, run = _trainer(graphdef, float(c.learning_rate), float(c.beta))
        rng = np.random.default_rng(c.seed + 1)
        key = [jax.random.key(c.seed + 2)]
        bs = min(c.batch_size, int(x.shape[0]))

        def batches(steps: int):
            key[0], sub = jax.random.split(key[0])
            return jnp.asarray(rng.integers(0, x.shape[0], size=(steps, bs))), jax.random.split(sub, steps)

        def check(done: int, losses: np.ndarray) -> None:
            if not np.isfinite(losses).all():
                raise FloatingPointError(f"VAE: the loss became non-finite near step {done}; lower learning_rate")

        t0 = time.perf_counter()
        with progress_bar(c.steps, "VAE", progress, unit="step", unit_scale=False) as bar:
            params, _, losses = train_in_chunks(run, params, tx.init(params), x, total=c.steps,
                                                chunk=min(c.steps, 200), batches=batches, bar=bar, check=check)
        nnx.update(self.net, params)
        self.history = VAEHistory(np.array([float(np.mean(l)) for l in losses]), time.perf_counter() - t0)
        return self

    def _need_fit(self) -> None:
        if self.net is None:
            raise ValueError("VAE: not fitted; call fit(images) or VAE.load(path) first")

    def _apply(self, method: str, x: jax.Array) -> np.ndarray:
        graphdef, params = nnx.split(self.net)
        return np.asarray(apply_rows(graphdef, (params,), x, method=method, chunk=1024))

    def encode(self, images: Any) -> np.ndarray:
        """Posterior means: ``images [n, H, W]`` → ``[n, latent_dim]`` float32."""
        self._need_fit()
        x = check_images(images)
        if x.shape[1:3] != self.shape:
            raise ValueError(f"images: size {x.shape[1:3]} but the model was fitted on {self.shape}")
        return self._apply("mean", jnp.asarray(x))

    def decode(self, z: Any) -> np.ndarray:
        """Pixel means in [0, 1]: ``z [n, latent_dim]`` → ``[n, H, W]`` float32."""
        self._need_fit()
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim or not np.isfinite(z).all():
            raise ValueError(f"z: expected finite [n, {self.config.latent_dim}] codes, got shape {z.shape}")
        return self._apply("pixels", jnp.asarray(z))[..., 0]

    def reconstruction_error(self, images: Any) -> float:
        """Mean squared error per pixel of ``decode(encode(images))`` against ``images``."""
        x = check_images(images)[..., 0]
        return float(np.mean((self.decode(self.encode(x)) - x) ** 2))

    def save(self, path: str | os.PathLike) -> str:
        """Write the model (the models' one format); returns the path."""
        self._need_fit()
        state = {"shape": list(self.shape),
                 "history": None if self.history is None else {"loss": self.history.loss.tolist(),
                                                               "seconds": self.history.seconds}}
        return save_model(path, "VAE", config=dataclasses.asdict(self.config), state=state,
                          tensors=state_tensors(self.net))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "VAE":
        """Read a model written by :meth:`save`."""
        saved = load_model(path, "VAE")
        cfg = dict(saved.config)
        cfg["channels"] = tuple(cfg["channels"])
        model = cls(config=VAEConfig(**cfg))
        model.shape = tuple(int(s) for s in saved.state["shape"])
        model.net = VAENet(model.shape, model.config, rngs=nnx.Rngs(0))
        restore_state(model.net, saved.tensors, os.fspath(path))
        h = saved.state.get("history")
        model.history = None if h is None else VAEHistory(np.asarray(h["loss"]), float(h["seconds"]))
        return model


@functools.lru_cache(maxsize=8)
def _trainer(graphdef, lr: float, beta: float):
    """``(tx, run)``: Adam on the negative ELBO; data the images ``[n, H, W, 1]``, batches ``(idx, keys)``."""
    tx = optax.adam(lr)

    def loss(params, x, batch):
        idx, key = batch
        net = nnx.merge(graphdef, params)
        xb = x[idx]
        mu, logvar = net.encode(xb)
        z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape, mu.dtype)
        return negative_elbo(net.decode(z), xb, mu, logvar, beta)

    return tx, scan_trainer(loss, tx)
