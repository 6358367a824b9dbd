"""Deep Embedded Clustering (Xie, Girshick & Farhadi 2016, "Unsupervised Deep
Embedding for Clustering Analysis", ICML, arXiv:1511.06335).

Two stages (../SPEC_MODELS.md, DEC section):

1. **Pretraining.** An autoencoder d-500-500-2000-10 (ReLU hidden layers, a
   linear embedding and a linear output; the decoder mirrors the encoder) is
   trained on the MSE reconstruction loss.  The paper trains it greedily
   layer by layer as denoising autoencoders (50 000 iterations per layer, then
   100 000 fine-tuning iterations); clipcore trains it end to end (which the
   spec allows, and which Guo et al.'s reference re-implementation of DEC
   also does), optionally with input dropout (``pretrain_dropout``) as the
   denoising corruption.
2. **Clustering.** Centres μ from k-means (``n_init=20``) on the embeddings
   z = f(x); then the encoder and the centres are trained on KL(P‖Q) with the
   Student-t soft assignment

       q_ij = (1 + ‖z_i − μ_j‖²/α)^(−(α+1)/2) / Σ_j' (…),   α = 1,

   and the target p_ij = (q_ij²/f_j) / Σ_j' (q_ij'²/f_j'), f_j = Σ_i q_ij,
   recomputed over the whole data set every ``update_interval`` steps and
   held constant in between.  SGD lr 0.01, momentum 0.9, batch 256; training
   stops when fewer than ``tol`` = 0.1 % of the hard labels change between two
   target updates (or after ``max_steps``).

Inputs are scaled by one global factor s so that (1/d)‖s·x‖² ≈ 1 on average
(the paper's normalisation; unit CLIP vectors are multiplied by √d).  The
factor is learnt by ``fit`` and applied by every later call.

Every training loop is the models' one jit-compiled ``lax.scan`` over
minibatches (:func:`clipcore.models._common.scan_trainer`; Flax NNX modules
split into a graph definition and a parameter pytree), so there is no
per-step Python overhead.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .._progress import bar as progress_bar
from .._progress import check_progress
from .._validate import as_embeddings, check_choice, check_flag, check_number, check_positive_int
from ._common import MLP, apply_rows, in_chunks, load_model, restore_state, save_model, scan_trainer, state_tensors
from ._common import merge_config, train_in_chunks
from .dec_objectives import input_scale, kl_divergence, soft_assignment, target_distribution

__all__ = [
    "DEC",
    "DECConfig",
    "DECHistory",
    "Autoencoder",
    "soft_assignment",
    "target_distribution",
    "kl_divergence",
    "input_scale",
]


# ---------------------------------------------------------------- modules
def _dense_init() -> Any:
    # Guo's DEC-keras: VarianceScaling(1/3, fan_in, uniform) (Keras' old
    # default for Dense layers, as used in the original Caffe code).
    return jax.nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


class Autoencoder(nnx.Module):
    """DEC's stacked autoencoder d-500-500-2000-10, decoder mirrored.

    Encoder and decoder are ReLU :class:`~clipcore.models._common.MLP` s with a
    linear last layer (the embedding, the reconstruction).

    Args:
      d: input dimension.
      hidden: hidden widths of the encoder (paper: 500, 500, 2000).
      embed_dim: embedding dimension (paper: 10).
      rngs: ``nnx.Rngs`` for the initialisation.
    """

    def __init__(self, d: int, hidden: tuple[int, ...] = (500, 500, 2000), embed_dim: int = 10, *,
                 rngs: nnx.Rngs):
        dims = (d, *hidden, embed_dim)
        self.encoder = MLP(dims, activation="relu", kernel_init=_dense_init(), rngs=rngs)
        self.decoder = MLP(dims[::-1], activation="relu", kernel_init=_dense_init(), rngs=rngs)

    def encode(self, x: jax.Array) -> jax.Array:
        """``x: [n, d]`` → ``z: [n, embed_dim]``."""
        return self.encoder(x)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Reconstruction ``[n, d]``."""
        return self.decoder(self.encoder(x))


# ---------------------------------------------------------------- options
@dataclasses.dataclass(frozen=True)
class DECConfig:
    """DEC options; defaults are the published ones unless noted.

    Attributes:
      n_clusters: k.
      hidden: encoder hidden widths (paper: 500-500-2000).
      embed_dim: embedding size (paper: 10).
      alpha: Student-t degrees of freedom (paper: 1).
      batch_size: minibatch size of both stages (paper: 256).
      pretrain: ``"end-to-end"`` (default: the whole autoencoder trained with
        Adam, as in Guo's DEC-keras; the spec allows it and it is what the
        benchmark measures) or ``"layerwise"`` (the paper: each encoder /
        decoder layer pair first trained greedily as a denoising autoencoder
        on the previous layer's output for ``layerwise_steps`` steps with
        dropout ``layerwise_dropout`` on its input and hidden units, then the
        stack fine-tuned for ``pretrain_steps`` steps without dropout; plain
        SGD at ``sgd_lr`` divided by 10 every ``sgd_lr_drop_every`` steps).
      pretrain_steps: end-to-end steps, or fine-tuning steps after the
        layer-wise stage (paper: 100 000).  0 skips it.
      pretrain_lr: Adam learning rate of ``pretrain="end-to-end"`` (1e-3).
      pretrain_dropout: input dropout of ``pretrain="end-to-end"`` (0 = plain AE).
      layerwise_steps: steps per layer of ``pretrain="layerwise"`` (paper: 50 000).
      layerwise_dropout: the denoising corruption there (paper: 0.2).
      sgd_lr, sgd_lr_drop_every: the layer-wise schedule (paper: 0.1, ÷10
        every 20 000 steps; weight decay 0).
      lr, momentum: SGD of the clustering stage (paper: 0.01, 0.9).
      update_interval: steps between target-distribution updates (140, Guo's
        MNIST value; the paper does not state it).
      max_steps: upper bound on clustering steps (20 000, Guo's value).
      tol: stop when the fraction of changed labels between two target
        updates falls below this (paper: 0.1 % = 1e-3).
      n_init: k-means restarts for the centres (paper: 20).
      scale_inputs: multiply inputs by s so that (1/d)‖x‖² ≈ 1 (paper).
      seed: seed of the initialisation, batches, dropout and k-means.
      progress: progress bars of the training stages: None (the default) shows them once a stage has
        lasted 2 s, True at once, False never.
    """

    n_clusters: int = 10
    hidden: tuple[int, ...] = (500, 500, 2000)
    embed_dim: int = 10
    alpha: float = 1.0
    batch_size: int = 256
    pretrain: str = "end-to-end"
    pretrain_steps: int = 100_000
    pretrain_lr: float = 1e-3
    pretrain_dropout: float = 0.0
    layerwise_steps: int = 50_000
    layerwise_dropout: float = 0.2
    sgd_lr: float = 0.1
    sgd_lr_drop_every: int = 20_000
    lr: float = 0.01
    momentum: float = 0.9
    update_interval: int = 140
    max_steps: int = 20_000
    tol: float = 1e-3
    n_init: int = 20
    scale_inputs: bool = True
    seed: int = 0
    progress: bool | None = None

    def validated(self) -> "DECConfig":
        check_positive_int(self.n_clusters, "n_clusters")
        check_positive_int(self.embed_dim, "embed_dim")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.update_interval, "update_interval")
        check_positive_int(self.n_init, "n_init")
        if not isinstance(self.hidden, tuple) or not all(
            isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h > 0 for h in self.hidden
        ):
            raise ValueError(f"hidden: expected a tuple of positive integers, got {self.hidden!r}")
        check_choice(self.pretrain, "pretrain", ("end-to-end", "layerwise"))
        check_positive_int(self.sgd_lr_drop_every, "sgd_lr_drop_every")
        check_number(self.sgd_lr, "sgd_lr", positive=True)
        if not 0.0 <= float(self.layerwise_dropout) < 1.0:
            raise ValueError(f"layerwise_dropout: expected a rate in [0, 1), got {self.layerwise_dropout!r}")
        for name in ("pretrain_steps", "max_steps", "layerwise_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name}: expected an integer ≥ 0, got {v!r}")
        check_number(self.alpha, "alpha", positive=True)
        check_number(self.pretrain_lr, "pretrain_lr", positive=True)
        check_number(self.lr, "lr", positive=True)
        check_number(self.momentum, "momentum", positive=False)
        check_number(self.tol, "tol", positive=False)
        if not 0.0 <= float(self.pretrain_dropout) < 1.0:
            raise ValueError(f"pretrain_dropout: expected a rate in [0, 1), got {self.pretrain_dropout!r}")
        check_flag(self.scale_inputs, "scale_inputs")
        check_progress(self.progress)
        return self


class DECHistory(NamedTuple):
    """What happened during ``fit``.

    Attributes:
      pretrain_loss: ``[m]`` mean reconstruction MSE (per input dimension) of each compiled
        pretraining chunk (about one epoch), the layer-wise stages first.
      kl: ``[u]`` KL(P‖Q) on the whole data at each target update.
      label_change: ``[u]`` fraction of labels changed since the previous update.
      steps: clustering steps taken.
      converged: the ``tol`` criterion stopped training (else ``max_steps``).
      init_labels: ``[n]`` k-means labels on the pretrained embedding (AE + k-means).
      pretrain_seconds, kmeans_seconds, cluster_seconds: wall times.
    """

    pretrain_loss: np.ndarray
    kl: np.ndarray
    label_change: np.ndarray
    steps: int
    converged: bool
    init_labels: np.ndarray
    pretrain_seconds: float
    kmeans_seconds: float
    cluster_seconds: float



# ---------------------------------------------------------------- training
class _Batches:
    """Seeded epoch-wise shuffles, drawn ``steps × batch`` indices at a time."""

    def __init__(self, n: int, batch: int, seed: int):
        self.n, self.batch = n, min(batch, n)
        self.rng = np.random.default_rng(seed)
        self.buf = np.empty(0, dtype=np.int32)

    def take(self, steps: int) -> np.ndarray:
        need = steps * self.batch
        parts = [self.buf]
        have = self.buf.size
        while have < need:
            perm = self.rng.permutation(self.n).astype(np.int32)
            parts.append(perm)
            have += perm.size
        flat = np.concatenate(parts)
        self.buf = flat[need:]
        return flat[:need].reshape(steps, self.batch)


def _mse(rec: jax.Array, x: jax.Array) -> jax.Array:
    """Mean over rows of ‖rec − x‖² / d."""
    return jnp.mean(jnp.sum((rec - x) ** 2, axis=1)) / x.shape[1]


def _dropout(x, rate: float, key):
    if rate <= 0:
        return x
    return jnp.where(jax.random.bernoulli(key, 1.0 - rate, x.shape), x / (1.0 - rate), 0.0)


def _dense(p, x, relu: bool):
    y = x @ p["kernel"] + p["bias"]
    return jax.nn.relu(y) if relu else y


@jax.jit
def _dense_jit(p, x):
    return _dense(p, x, True)


def _sgd_schedule(lr: float, drop_every: int):
    return optax.sgd(optax.exponential_decay(lr, drop_every, 0.1, staircase=True))


@functools.lru_cache(maxsize=16)
def _pretrain_runner(graphdef, lr: float, dropout: float):
    """End-to-end Adam pretraining (input dropout as the denoising corruption); batches ``(idx, keys)``."""
    tx = optax.adam(lr)

    def loss(params, x, batch):
        idx, key = batch
        xb = x[idx]
        return _mse(nnx.merge(graphdef, params)(_dropout(xb, dropout, key)), xb)

    return tx, scan_trainer(loss, tx)


@functools.lru_cache(maxsize=16)
def _layer_runner(enc_relu: bool, dec_relu: bool, lr: float, drop_every: int, dropout: float):
    """One greedy denoising layer pair (DEC §3.2): h → dropout → enc → dropout → dec ≈ h."""
    tx = _sgd_schedule(lr, drop_every)

    def loss(params, h, batch):
        idx, key = batch
        hb = h[idx]
        k1, k2 = jax.random.split(key)
        hidden = _dense(params["enc"], _dropout(hb, dropout, k1), enc_relu)
        return _mse(_dense(params["dec"], _dropout(hidden, dropout, k2), dec_relu), hb)

    return tx, scan_trainer(loss, tx)


@functools.lru_cache(maxsize=16)
def _finetune_runner(graphdef, lr: float, drop_every: int):
    """End-to-end fine-tuning of the stacked autoencoder with the layer-wise SGD schedule (keys unused)."""
    tx = _sgd_schedule(lr, drop_every)

    def loss(params, x, batch):
        xb = x[batch[0]]
        return _mse(nnx.merge(graphdef, params)(xb), xb)

    return tx, scan_trainer(loss, tx)


@functools.lru_cache(maxsize=16)
def _cluster_runner(graphdef, lr: float, momentum: float, alpha: float):
    """The KL(P‖Q) stage: parameters ``(encoder params, centres)``, data ``(x, p)``, batches ``idx``."""
    tx = optax.sgd(lr, momentum=momentum)

    def loss(theta, data, idx):
        params, centers = theta
        x, p = data
        z = nnx.merge(graphdef, params)(x[idx])
        return kl_divergence(p[idx], soft_assignment(z, centers, alpha))

    return tx, scan_trainer(loss, tx)


def _train(run, params, opt_state, data, batches: _Batches, total: int, key, desc: str, progress,
           losses: list) -> Any:
    """``total`` steps of a runner taking ``(idx, keys)`` batches, in compiled chunks of about one
    epoch (≥ 100 steps) under one bar; appends each chunk's mean loss to ``losses``."""
    chunk = min(total, max(100, -(-batches.n // batches.batch)))
    keys = [key]

    def next_batches(steps: int):
        keys[0], sub = jax.random.split(keys[0])
        return jnp.asarray(batches.take(steps)), jax.random.split(sub, steps)

    with progress_bar(total, desc, progress, unit="step", unit_scale=False) as bar:
        params, _, chunks = train_in_chunks(run, params, opt_state, data, total=total, chunk=chunk,
                                            batches=next_batches, bar=bar)
    losses.extend(float(np.mean(c)) for c in chunks)
    return params


# ---------------------------------------------------------------- the model
class DEC:
    """Deep Embedded Clustering (Xie, Girshick & Farhadi 2016) in Flax NNX + optax.

    Example::

        dec = clipcore.models.DEC(n_clusters=10, pretrain_steps=5000).fit(x)
        labels = dec.predict(x)          # [n] hard clusters
        q = dec.soft_assign(x)           # [n, k] Student-t soft assignment
        ae_kmeans = dec.history.init_labels   # the AE + k-means baseline

    Args:
      n_clusters: number of clusters k.
      config: a ``DECConfig``; keyword arguments override its fields.
      **options: any ``DECConfig`` field (``pretrain_steps=...``, ``seed=...``).

    Attributes (after ``fit``):
      autoencoder: the ``Autoencoder`` (encoder fine-tuned by the KL stage).
      centers: ``[k, embed_dim]`` float32 cluster centres.
      scale: the input factor s (1 when ``scale_inputs=False``).
      labels_: ``[n]`` hard labels of the training data.
      history: a ``DECHistory``.
    """

    def __init__(self, n_clusters: int | None = None, *, config: DECConfig | None = None, **options: Any):
        if n_clusters is not None:
            options["n_clusters"] = n_clusters
        if "hidden" in options:
            options["hidden"] = tuple(options["hidden"])
        self.config = merge_config("DEC", DECConfig, config, options)
        self.autoencoder: Autoencoder | None = None
        self.centers: np.ndarray | None = None
        self.scale: float = 1.0
        self.labels_: np.ndarray | None = None
        self.history: DECHistory | None = None

    # ---------------------------------------------------------------- input
    # ---------------------------------------------------------------- input
    def _input(self, x: Any, name: str = "x") -> jax.Array:
        x = as_embeddings(x, name)
        if self.autoencoder is not None:
            d = self.autoencoder.encoder.layers[0].in_features
            if x.shape[1] != d:
                raise ValueError(f"{name}: dimension {x.shape[1]} differs from the {d} the model was fit on "
                                 f"(shape {tuple(x.shape)})")
        return x

    def _scaled(self, x: jax.Array) -> jax.Array:
        return jnp.asarray(x, jnp.float32) * jnp.float32(self.scale)

    def _require_fit(self) -> None:
        if self.autoencoder is None or self.centers is None:
            raise ValueError("DEC: the model is not fitted; call fit(x) or DEC.load(path) first")

    # ---------------------------------------------------------------- stages
    def pretrain(self, x: Any) -> "DEC":
        """Stage 1 only: build and pretrain the autoencoder on ``x: [n, d]``."""
        cfg = self.config
        x = as_embeddings(x, "x")
        self.scale = input_scale(x) if cfg.scale_inputs else 1.0
        xs = self._scaled(x)
        n, d = xs.shape
        self.autoencoder = Autoencoder(d, cfg.hidden, cfg.embed_dim, rngs=nnx.Rngs(cfg.seed))
        t0 = time.perf_counter()
        losses: list[float] = []
        key = jax.random.key(cfg.seed + 2)
        if cfg.pretrain == "layerwise" and cfg.layerwise_steps > 0:
            self._pretrain_layerwise(xs, key, losses)
        if cfg.pretrain_steps > 0:
            graphdef, params = nnx.split(self.autoencoder)
            if cfg.pretrain == "layerwise":
                tx, run = _finetune_runner(graphdef, float(cfg.sgd_lr), int(cfg.sgd_lr_drop_every))
            else:
                tx, run = _pretrain_runner(graphdef, float(cfg.pretrain_lr), float(cfg.pretrain_dropout))
            params = _train(run, params, tx.init(params), xs, _Batches(n, cfg.batch_size, cfg.seed + 1),
                            cfg.pretrain_steps, jax.random.fold_in(key, 1000), "DEC pretrain", cfg.progress, losses)
            nnx.update(self.autoencoder, params)
        self._pretrain_loss = np.asarray(losses)
        self._pretrain_seconds = time.perf_counter() - t0
        return self

    def _pretrain_layerwise(self, xs: jax.Array, key, losses: list) -> None:
        """The paper's greedy stage: layer pair i trained on the output of encoder layers < i."""
        cfg = self.config
        enc, dec = self.autoencoder.encoder.layers, self.autoencoder.decoder.layers
        depth = len(enc)
        h = xs
        for i in range(depth):
            e, d = enc[i], dec[depth - 1 - i]
            params = {"enc": {"kernel": e.kernel.get_value(), "bias": e.bias.get_value()},
                      "dec": {"kernel": d.kernel.get_value(), "bias": d.bias.get_value()}}
            # ReLU everywhere except the embedding (last encoder layer) and the data reconstruction
            tx, run = _layer_runner(i < depth - 1, i > 0, float(cfg.sgd_lr), int(cfg.sgd_lr_drop_every),
                                    float(cfg.layerwise_dropout))
            params = _train(run, params, tx.init(params), h, _Batches(h.shape[0], cfg.batch_size, cfg.seed + 10 + i),
                            cfg.layerwise_steps, jax.random.fold_in(key, i), f"DEC layer {i + 1}/{depth}",
                            cfg.progress, losses)
            e.kernel.set_value(params["enc"]["kernel"])
            e.bias.set_value(params["enc"]["bias"])
            d.kernel.set_value(params["dec"]["kernel"])
            d.bias.set_value(params["dec"]["bias"])
            if i < depth - 1:
                h = in_chunks(functools.partial(_dense_jit, params["enc"]), h, 4096)

    def fit(self, x: Any) -> "DEC":
        """Pretrain, initialise centres by k-means, then train on KL(P‖Q).

        Args:
          x: ``[n, d]`` inputs (e.g. CLIP embeddings or flattened pixels), n ≥ k.

        Returns:
          ``self`` with ``labels_``, ``centers`` and ``history`` set.
        """
        from sklearn.cluster import KMeans

        cfg = self.config
        x = as_embeddings(x, "x")
        n = x.shape[0]
        if cfg.n_clusters > n:
            raise ValueError(f"n_clusters: {cfg.n_clusters} clusters but x has only {n} rows (shape {tuple(x.shape)})")
        self.pretrain(x)
        xs = self._scaled(x)

        t0 = time.perf_counter()
        z = np.asarray(self._embed_scaled(xs), dtype=np.float64)
        km = KMeans(cfg.n_clusters, n_init=cfg.n_init, random_state=cfg.seed).fit(z)
        init_labels = km.labels_.astype(np.int64)
        kmeans_seconds = time.perf_counter() - t0

        t0 = time.perf_counter()
        steps, converged, kls, changes = self._cluster(xs, jnp.asarray(km.cluster_centers_, jnp.float32), init_labels)
        self.history = DECHistory(
            pretrain_loss=self._pretrain_loss, kl=np.asarray(kls), label_change=np.asarray(changes),
            steps=steps, converged=converged, init_labels=init_labels,
            pretrain_seconds=self._pretrain_seconds, kmeans_seconds=kmeans_seconds,
            cluster_seconds=time.perf_counter() - t0,
        )
        return self

    def _cluster(self, xs: jax.Array, centers: jax.Array, labels_prev: np.ndarray):
        """The KL(P‖Q) stage from the k-means centres; sets the encoder, ``centers`` and ``labels_``.

        Returns:
          ``(steps, converged, kl per target update, label change per target update)``.
        """
        cfg = self.config
        graphdef, params = nnx.split(self.autoencoder.encoder)
        theta = (params, centers)
        tx, run = _cluster_runner(graphdef, float(cfg.lr), float(cfg.momentum), float(cfg.alpha))
        opt_state = tx.init(theta)
        batches = _Batches(xs.shape[0], cfg.batch_size, cfg.seed + 3)
        kls, changes = [], []
        steps, converged = 0, False
        with progress_bar(cfg.max_steps, "DEC cluster", cfg.progress, unit="step", unit_scale=False) as bar:
            while True:
                q = self._q_scaled(xs, theta)
                p = target_distribution(q)
                labels = np.asarray(jnp.argmax(q, axis=1)).astype(np.int64)
                change = float(np.mean(labels != labels_prev))
                kls.append(float(kl_divergence(p, q)))
                changes.append(change)
                labels_prev = labels
                if steps > 0 and change < cfg.tol:
                    converged = True
                    break
                if steps >= cfg.max_steps:
                    break
                k = min(cfg.update_interval, cfg.max_steps - steps)
                theta, opt_state, _ = run(theta, opt_state, (xs, p), jnp.asarray(batches.take(k)))
                steps += k
                bar.update(k)
                bar.set_postfix(changed=f"{change:.4f}")
        nnx.update(self.autoencoder.encoder, theta[0])
        self.centers = np.asarray(theta[1])
        self.labels_ = labels
        return steps, converged, kls, changes

    # ---------------------------------------------------------------- inference
    def _embed_scaled(self, xs: jax.Array) -> jax.Array:
        graphdef, params = nnx.split(self.autoencoder.encoder)
        return apply_rows(graphdef, (params,), xs, chunk=4096)

    def _q_scaled(self, xs: jax.Array, theta) -> jax.Array:
        graphdef, _ = nnx.split(self.autoencoder.encoder)
        params, centers = theta
        z = apply_rows(graphdef, (params,), xs, chunk=4096)
        return soft_assignment(z, centers, float(self.config.alpha))

    def transform(self, x: Any) -> np.ndarray:
        """Embeddings z = f(s·x): ``x: [n, d]`` → ``[n, embed_dim]`` float32."""
        if self.autoencoder is None:
            raise ValueError("DEC: the model is not fitted; call fit(x) or DEC.load(path) first")
        return np.asarray(self._embed_scaled(self._scaled(self._input(x))))

    def soft_assign(self, x: Any) -> np.ndarray:
        """Student-t soft assignment q: ``x: [n, d]`` → ``[n, k]``."""
        self._require_fit()
        z = jnp.asarray(self.transform(x))
        return np.asarray(soft_assignment(z, jnp.asarray(self.centers), float(self.config.alpha)))

    def predict(self, x: Any) -> np.ndarray:
        """Hard clusters argmax_j q_ij: ``x: [n, d]`` → ``[n]`` int64."""
        return np.argmax(self.soft_assign(x), axis=1).astype(np.int64)

    # ---------------------------------------------------------------- save / load
    def save(self, path: str | os.PathLike) -> str:
        """Write the weights, centres, training labels (``labels_``), input scale and options to one file
        (the models' one format, :func:`clipcore.models._common.save_model`); returns the path."""
        self._require_fit()
        tensors = state_tensors(self.autoencoder)
        tensors["centers"] = np.asarray(self.centers)
        if self.labels_ is not None:
            tensors["labels"] = np.asarray(self.labels_, np.int64)
        state = {"scale": self.scale, "d": int(self.autoencoder.encoder.layers[0].in_features)}
        return save_model(path, "DEC", config=dataclasses.asdict(self.config), state=state, tensors=tensors)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DEC":
        """Read a model written by ``save`` (or by clipcore's earlier ``clipcore.DEC/1`` ``.npz`` format);
        ``labels_`` is the training data's labels when the file holds them (files written before they were
        saved: None; ``predict(x)`` gives them)."""
        saved = load_model(path, "DEC")
        cfg = dict(saved.config)
        cfg["hidden"] = tuple(cfg["hidden"])
        model = cls(config=DECConfig(**cfg))
        model.autoencoder = Autoencoder(int(saved.state["d"]), model.config.hidden, model.config.embed_dim,
                                        rngs=nnx.Rngs(0))
        restore_state(model.autoencoder, saved.tensors, os.fspath(path))
        model.centers = saved.tensors["centers"]
        labels = saved.tensors.get("labels")  # files written before labels were saved have none
        model.labels_ = None if labels is None else np.asarray(labels, np.int64)
        model.scale = float(saved.state["scale"])
        return model
