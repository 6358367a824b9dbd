"""Neural MDS: a learned map g: D → D' that keeps CLIP retrieval (SPEC_MODELS.md).

One map g (an MLP, or linear) is shared by images and captions and trained on
pairs of points of the pooled set Z = [images; texts] (2n points):

* **isometric** (metric MDS): the raw stress over sampled pairs,
  Σ w_ij (δ_ij − ‖g_i − g_j‖)², δ the distance in the original space;
  reported as Kruskal's Stress-1 (Kruskal 1964, "Multidimensional scaling by
  optimizing goodness of fit to a nonmetric hypothesis").
* **isotonic** (ordinal / non-metric MDS): over sampled quads (i, j, k, l)
  with δ_ij < δ_kl, Σ max(0, ‖g_i − g_j‖ + margin − ‖g_k − g_l‖)², the
  soft ordinal embedding (SOE) loss of Terada & von Luxburg 2014, "Local
  Ordinal Embedding" (ICML); reported as the fraction of satisfied quads and
  Spearman's ρ between δ and the embedded distances.

CLIP image–caption cosines all sit in a narrow band (the modality gap, Liang
et al. 2022, "Mind the Gap"), so uniformly drawn pairs are almost never
cross-modal *matches*: a fraction ``cross_modal_fraction`` of the pairs
(quads) are drawn image–caption, and a fraction ``matched_fraction`` of
those pair an image with its own caption (for quads: the matched pair against
the same anchor with another caption — the retrieval constraint itself).

Distances in the embedded space use sqrt(Σ² + ε) so that the gradient stays
finite at coincident points.  Training is seeded and deterministic: a whole
epoch is one ``lax.scan`` over optax Adam steps.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .._progress import bar as progress_bar
from .._progress import check_progress
from .._validate import as_embeddings, check_choice, check_flag, check_number, check_positive_int
from ._common import MLP, apply_rows, load_model, restore_state, save_model, scan_trainer, state_tensors
from .mds_objectives import (EvalSample, MDSMetrics, embedded_distance, eval_sample, kruskal_stress1, metrics_on,
                             quad_loss, raw_stress, sample_pairs, sample_quads, true_distance)

__all__ = [
    "MDSConfig",
    "NeuralMDS",
    "MDSNet",
    "EpochMetrics",
    "MDSMetrics",
    "EvalSample",
    "eval_sample",
    "metrics_on",
    "batch_loss",
    "check_paired",
    "embedded_distance",
    "raw_stress",
    "kruskal_stress1",
    "quad_loss",
    "sample_pairs",
    "sample_quads",
    "mds_metrics",
    "pca_map",
]

METHODS = ("isometric", "isotonic")
ARCHITECTURES = ("mlp", "linear")
INITS = ("pca", "random")

SCHEDULES = ("cosine", "constant")

#: Adam step size when none is given.  Measured (bench/RESULTS.md, n = 5000,
#: d = 512): near its PCA start the SOE squared hinge is a weak surrogate for the
#: satisfied-quad fraction (the loss falls while the fraction stays flat), and
#: Adam's per-parameter steps of 1e-3 or 1e-4 on noisy minibatch gradients
#: perturb PCA's directions faster than the hinge orders quads: the fraction ends
#: below PCA's.  At 1e-5 (cosine decay) it rises or stays level.
DEFAULT_LEARNING_RATE = {"isometric": 1e-3, "isotonic": 1e-5}


# ------------------------------------------------------------------ module
class MDSNet(nnx.Module):
    """g(x) = W x + b (linear) or W x + b + MLP(x) (mlp: GELU hidden layers).

    The MLP branch (:class:`clipcore.models._common.MLP`) ends in a layer that
    starts at zero, so with ``init="pca"`` the network starts exactly at the
    PCA (classical MDS) map and learns a non-linear correction.

    Args:
      d_in: D; d_out: D'.
      hidden: the branch's hidden widths (unused for ``"linear"``).
      architecture: ``"mlp"`` or ``"linear"``.
      rngs: ``nnx.Rngs`` for the initialisation.

    Call: ``[..., D]`` → ``[..., D']``.
    """

    def __init__(self, d_in: int, d_out: int, hidden: tuple[int, ...], architecture: str, *, rngs: nnx.Rngs):
        self.skip = nnx.Linear(d_in, d_out, rngs=rngs)
        self.architecture = architecture
        self.branch = (MLP((d_in, *hidden, d_out), activation="gelu", zero_last=True, rngs=rngs)
                       if architecture == "mlp" else None)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.skip(x)
        return y if self.branch is None else y + self.branch(x)


# ------------------------------------------------------------------ config
@dataclass(frozen=True)
class MDSConfig:
    """Static options of :class:`NeuralMDS` (defaults in its docstring)."""

    dim: int
    method: str = "isometric"
    architecture: str = "mlp"
    hidden: tuple[int, ...] = (512,)
    epochs: int = 20
    steps_per_epoch: int = 100
    batch_size: int = 1024
    learning_rate: float | None = None
    margin: float = 0.01
    cross_modal_fraction: float = 0.5
    matched_fraction: float = 0.25
    init: str = "pca"
    normalize: bool = True
    eps: float = 1e-12
    eval_size: int = 16384
    seed: int = 0
    schedule: str = "cosine"
    keep_best: bool = True

    def validated(self) -> "MDSConfig":
        check_positive_int(self.dim, "dim")
        check_choice(self.method, "method", METHODS)
        check_choice(self.architecture, "architecture", ARCHITECTURES)
        check_choice(self.init, "init", INITS)
        check_choice(self.schedule, "schedule", SCHEDULES)
        check_flag(self.keep_best, "keep_best")
        hidden = tuple(self.hidden)
        if self.architecture == "mlp" and not hidden:
            raise ValueError("hidden: an MLP needs at least one hidden width (or architecture='linear')")
        for h in hidden:
            check_positive_int(h, "hidden")
        for name in ("epochs", "steps_per_epoch", "batch_size", "eval_size"):
            check_positive_int(getattr(self, name), name)
        lr = check_number(self.learning_rate, "learning_rate", positive=True,
                          default=DEFAULT_LEARNING_RATE.get(self.method))
        check_number(self.margin, "margin", positive=False)
        check_number(self.eps, "eps", positive=True)
        for name in ("cross_modal_fraction", "matched_fraction"):
            v = check_number(getattr(self, name), name, positive=False)
            if v > 1:
                raise ValueError(f"{name}: expected a fraction in [0, 1], got {v}")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise ValueError(f"seed: expected an integer, got {self.seed!r}")
        return dataclasses.replace(self, hidden=hidden, learning_rate=lr)


class EpochMetrics(NamedTuple):
    """Metrics after one epoch, on a fixed seeded evaluation sample.

    Attributes:
      epoch: 1-based epoch.
      loss: mean training loss over the epoch's steps (per pair / quad).
      stress1: Kruskal Stress-1 on the evaluation pairs.
      quad_fraction: fraction of evaluation quads whose order is kept.
      spearman: Spearman ρ between δ and the embedded distance (evaluation pairs).
      seconds: wall time of the epoch (training steps only).
    """

    epoch: int
    loss: float
    stress1: float
    quad_fraction: float
    spearman: float
    seconds: float


# ---------------------------------------------------------------- metrics
def _pooled(images: jax.Array, texts: jax.Array, normalize: bool) -> jax.Array:
    z = jnp.concatenate([images, texts], axis=0)
    if normalize:
        z = z / jnp.linalg.norm(z, axis=1, keepdims=True)
    return z


def mds_metrics(
    images: Any,
    texts: Any,
    low_images: Any,
    low_texts: Any,
    *,
    size: int = 4096,
    seed: int = 0,
    cross_modal_fraction: float = 0.5,
    matched_fraction: float = 0.25,
    normalize: bool = True,
) -> MDSMetrics:
    """Stress-1, satisfied-quad fraction and Spearman ρ of any embedding of a paired set.

    Pairs and quads are drawn as in training (:func:`sample_pairs`,
    :func:`sample_quads`) with a fixed seed, so every method (neural MDS,
    PCA, random projection, scikit-learn MDS) is scored on the same sample.

    Args:
      images, texts: ``[n, D]`` the original paired embeddings.
      low_images, low_texts: ``[n, D']`` their embedding.
      size: number of evaluation pairs and of evaluation quads.
      seed: seed of the evaluation sample.
      cross_modal_fraction, matched_fraction: as in :class:`NeuralMDS`.
      normalize: L2-normalise the original rows first (as ``NeuralMDS`` does).

    Returns:
      MDSMetrics(stress1, quad_fraction, spearman); tied quads (δ equal) are
      left out of the fraction.
    """
    u = as_embeddings(images, "images", nonzero_rows=normalize)
    v = as_embeddings(texts, "texts", nonzero_rows=normalize)
    check_paired(u, v)
    lu = as_embeddings(low_images, "low_images")
    lv = as_embeddings(low_texts, "low_texts")
    if lu.shape[0] != u.shape[0] or lv.shape != lu.shape:
        raise ValueError(
            f"low_images / low_texts: shapes {tuple(lu.shape)} and {tuple(lv.shape)} must both be "
            f"[{u.shape[0]}, D'] like the {u.shape[0]} pairs"
        )
    n = int(u.shape[0])
    z = _pooled(u.astype(jnp.float64) if jax.config.jax_enable_x64 else u, v, normalize)
    s = eval_sample(z, n, check_positive_int(size, "size"), seed, cross_modal_fraction, matched_fraction)
    return metrics_on(np.concatenate([np.asarray(lu), np.asarray(lv)]), s)


def pca_map(z: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA (classical MDS on Euclidean distances) as an affine map.

    Args:
      z: ``[m, D]`` points.
      dim: D'.

    Returns:
      ``(W, b)``: ``[D, D']`` top principal directions (float64) and ``[D']``
      offset, so that ``z @ W + b`` are the centred principal coordinates.
    """
    z = np.asarray(z, dtype=np.float64)
    mu = z.mean(axis=0)
    c = (z - mu).T @ (z - mu) / z.shape[0]
    evals, evecs = np.linalg.eigh(c)
    w = evecs[:, ::-1][:, :dim]
    # a fixed sign per direction (largest |entry| positive) so the map is reproducible
    signs = np.sign(w[np.argmax(np.abs(w), axis=0), np.arange(dim)])
    w = w * np.where(signs == 0, 1.0, signs)
    return w, -mu @ w


def check_paired(u: jax.Array, v: jax.Array) -> None:
    """Images ``u`` and captions ``v`` pair by row and share one dimension (one map for both)."""
    if u.shape[0] != v.shape[0]:
        raise ValueError(
            f"texts: {v.shape[0]} rows but images has {u.shape[0]} (shapes {tuple(v.shape)} and "
            f"{tuple(u.shape)}); row i of texts must be the caption of row i of images"
        )
    if u.shape[1] != v.shape[1]:
        raise ValueError(
            f"texts: dimension {v.shape[1]} differs from images' {u.shape[1]} (shapes {tuple(v.shape)} "
            f"and {tuple(u.shape)}); one map g is shared by both modalities"
        )


class NeuralMDS:
    """Neural MDS: a shared map g: D → D' for images and captions (SPEC_MODELS.md).

    Example::

        mds = NeuralMDS(64, method="isotonic").fit(images, texts)
        low = mds.transform(images)          # [n, 64]
        mds.save("mds64.safetensors"); NeuralMDS.load("mds64.safetensors")

    Args:
      dim: D', the output dimension (must be < D).
      method: ``"isometric"`` (raw stress over pairs) or ``"isotonic"`` (SOE
        squared hinge over quads).
      architecture: ``"mlp"`` (linear + GELU MLP branch, default) or ``"linear"``.
      hidden: widths of the MLP's hidden layers (default ``(512,)``).
      epochs, steps_per_epoch: training length; one epoch is one jitted scan.
      batch_size: pairs (isometric) or quads (isotonic) per Adam step.
      learning_rate: Adam step size (optax; default 1e-3 isometric, 1e-5 isotonic).
      margin: SOE margin (isotonic).
      cross_modal_fraction, matched_fraction: oversampling of image–caption
        pairs and of matched pairs among them (module docstring).
      init: ``"pca"`` (start at the PCA map of the pooled set, default) or
        ``"random"`` (Flax's default initialisation).
      normalize: L2-normalise input rows (CLIP embeddings are compared by cosine).
      eps: ε in sqrt(‖·‖² + ε).
      eval_size: evaluation (validation) pairs / quads for the per-epoch metrics,
        drawn once with seed ``seed + 1`` from the training distribution.
      seed: seeds the initialisation, the sampling and the evaluation sample.
      schedule: ``"cosine"`` (Adam step decays to 0 over all steps, default) or
        ``"constant"``.
      keep_best: end with the parameters (the starting map included) that
        scored best on the evaluation sample by the method's own measure:
        the satisfied-quad fraction (isotonic) or Stress-1 (isometric).
        ``False``: the last epoch's.

    Attributes:
      config: the :class:`MDSConfig`.
      history: one :class:`EpochMetrics` per epoch of the last ``fit``.
      initial_metrics: :class:`MDSMetrics` of the starting map (epoch 0).
      best_epoch: the epoch whose parameters the model holds (0: the start).
      d_in: D (set by ``fit`` or ``load``).
    """

    def __init__(self, dim: int, *, method: str = "isometric", architecture: str = "mlp",
                 hidden: tuple[int, ...] = (512,), epochs: int = 20, steps_per_epoch: int = 100,
                 batch_size: int = 1024, learning_rate: float | None = None, margin: float = 0.01,
                 cross_modal_fraction: float = 0.5, matched_fraction: float = 0.25, init: str = "pca",
                 normalize: bool = True, eps: float = 1e-12, eval_size: int = 16384, seed: int = 0,
                 schedule: str = "cosine", keep_best: bool = True):
        self.config = MDSConfig(dim, method, architecture, tuple(hidden), epochs, steps_per_epoch, batch_size,
                                learning_rate, margin, cross_modal_fraction, matched_fraction, init, normalize,
                                eps, eval_size, seed, schedule, keep_best).validated()
        self.history: list[EpochMetrics] = []
        self.initial_metrics: MDSMetrics | None = None
        self.best_epoch: int | None = None
        self.d_in: int | None = None
        self.net: MDSNet | None = None

    @classmethod
    def from_config(cls, config: MDSConfig) -> "NeuralMDS":
        """A model with the options of ``config``."""
        return cls(**dataclasses.asdict(config))

    def _build(self, d_in: int) -> MDSNet:
        c = self.config
        return MDSNet(d_in, c.dim, c.hidden, c.architecture, rngs=nnx.Rngs(c.seed))

    # ---------------------------------------------------------------- fit
    def fit(self, images: Any, texts: Any, *, progress: bool | None = None) -> "NeuralMDS":
        """Train g on the paired set.

        Args:
          images: ``[n, D]`` image embeddings.
          texts: ``[n, D]`` caption embeddings, row i the caption of image i.
          progress: a bar over the epochs with the metrics (``None``: shown after 2 s; ``True``: at once;
            ``False``: never).

        Returns:
          ``self`` (``history`` holds the per-epoch metrics).

        Raises:
          ValueError: NaN/Inf, empty or non-2-D input, unpaired rows,
            different dimensions, fewer than 2 pairs, or D' ≥ D.
        """
        c = self.config
        progress = check_progress(progress)
        z, n, d = self._pooled_input(images, texts)
        net = self._build(d)
        if c.init == "pca":
            w, b = pca_map(z, c.dim)
            net.skip.kernel.set_value(jnp.asarray(w, jnp.float32))
            net.skip.bias.set_value(jnp.asarray(b, jnp.float32))
        graphdef, params, rest = nnx.split(net, nnx.Param, ...)
        # the epoch program does not depend on these options: one compilation serves them all
        total = c.epochs * c.steps_per_epoch if c.schedule == "cosine" else 0
        tx, run = _epoch_fn(graphdef, dataclasses.replace(c, epochs=1, init="pca", eval_size=1, seed=0,
                                                          keep_best=True), n, total)
        evals = eval_sample(z, n, c.eval_size, c.seed + 1, c.cross_modal_fraction, c.matched_fraction)
        self.history, self.d_in = [], d
        self.initial_metrics = metrics_on(np.asarray(_embed(graphdef, params, rest, z)), evals)
        self.best_epoch, params = self._epochs(run, graphdef, params, rest, tx.init(params), z, evals, progress)
        self.net = nnx.merge(graphdef, params, rest)
        return self

    def _pooled_input(self, images: Any, texts: Any) -> tuple[jax.Array, int, int]:
        """Checked pairs as the pooled float32 set ``[2n, D]`` (rows normalised when asked), n and D."""
        c = self.config
        u = as_embeddings(images, "images", nonzero_rows=c.normalize)
        v = as_embeddings(texts, "texts", nonzero_rows=c.normalize)
        check_paired(u, v)
        n, d = int(u.shape[0]), int(u.shape[1])
        if n < 2:
            raise ValueError(f"images: need at least 2 pairs to learn distances, got shape {tuple(u.shape)}")
        if c.dim >= d:
            raise ValueError(
                f"dim: D'={c.dim} must be smaller than the input dimension D={d} "
                f"(images {tuple(u.shape)}); nothing to compress"
            )
        return _pooled(u.astype(jnp.float32), v.astype(jnp.float32), c.normalize), n, d

    def _epochs(self, run, graphdef, params, rest, opt_state, z: jax.Array, evals: EvalSample,
                progress: bool | None) -> tuple[int, Any]:
        """Train epoch by epoch, appending to ``history``; the epoch kept (0: the start) and its parameters."""
        c = self.config
        # higher is better: the method's own measure on the evaluation sample
        score = (lambda m: m.quad_fraction) if c.method == "isotonic" else (lambda m: -m.stress1)
        best = (score(self.initial_metrics), 0, params)
        key = jax.random.key(c.seed)
        with progress_bar(None, f"neural MDS ({c.method}, D'={c.dim})", progress, unit="epoch", unit_scale=False,
                          iterable=range(1, c.epochs + 1)) as bar:
            for epoch in bar:
                key, sub = jax.random.split(key)
                t0 = time.perf_counter()
                params, opt_state, losses = run(params, opt_state, (rest, z), jax.random.split(sub, c.steps_per_epoch))
                losses = np.asarray(losses)
                seconds = time.perf_counter() - t0
                m = metrics_on(np.asarray(_embed(graphdef, params, rest, z)), evals)
                loss = float(losses.mean())
                if not np.isfinite(loss):
                    raise FloatingPointError(f"neural MDS: the loss became {loss} in epoch {epoch}")
                self.history.append(EpochMetrics(epoch, loss, m.stress1, m.quad_fraction, m.spearman, seconds))
                if score(m) > best[0]:
                    best = (score(m), epoch, params)
                bar.set_postfix(loss=f"{loss:.4g}", stress1=f"{m.stress1:.3f}", quads=f"{m.quad_fraction:.3f}",
                                rho=f"{m.spearman:.3f}")
        return (best[1], best[2]) if c.keep_best else (c.epochs, params)

    # ---------------------------------------------------------- transform
    def transform(self, x: Any, *, block_size: int = 65536) -> jax.Array:
        """Map embeddings of either modality to D'.

        Args:
          x: ``[m, D]`` image or caption embeddings.
          block_size: rows per jitted call.

        Returns:
          ``[m, D']`` float32.
        """
        if self.net is None:
            raise ValueError("NeuralMDS: not fitted; call fit(images, texts) or NeuralMDS.load(path) first")
        c = self.config
        x = as_embeddings(x, "x", nonzero_rows=c.normalize)
        if x.shape[1] != self.d_in:
            raise ValueError(f"x: dimension {x.shape[1]} (shape {tuple(x.shape)}) but the model maps D={self.d_in}")
        bs = check_positive_int(block_size, "block_size")
        x = x.astype(jnp.float32)
        if c.normalize:
            x = x / jnp.linalg.norm(x, axis=1, keepdims=True)
        graphdef, params, rest = nnx.split(self.net, nnx.Param, ...)
        return apply_rows(graphdef, (params, rest), x, chunk=bs)

    def fit_transform(self, images: Any, texts: Any, *, progress: bool | None = None) -> tuple[jax.Array, jax.Array]:
        """``fit`` then ``(transform(images), transform(texts))``."""
        self.fit(images, texts, progress=progress)
        return self.transform(images), self.transform(texts)

    # ---------------------------------------------------------- save/load
    def save(self, path: str | os.PathLike) -> str:
        """Write the model to one file (the models' one format, :func:`clipcore.models._common.save_model`).

        The tensors are the network's variables; the config, D, the history,
        the initial metrics and the epoch kept go in the file's JSON metadata.

        Returns:
          the path written.
        """
        if self.net is None:
            raise ValueError("NeuralMDS: not fitted; nothing to save")
        state = {"d_in": self.d_in, "history": [h._asdict() for h in self.history],
                 "initial_metrics": None if self.initial_metrics is None else self.initial_metrics._asdict(),
                 "best_epoch": self.best_epoch}
        return save_model(path, "NeuralMDS", config=dataclasses.asdict(self.config), state=state,
                          tensors=state_tensors(self.net))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NeuralMDS":
        """Read a model written by :meth:`save` (or by clipcore's earlier ``clipcore.NeuralMDS/1`` format)."""
        saved = load_model(path, "NeuralMDS")
        cfg = dict(saved.config)
        cfg["hidden"] = tuple(cfg["hidden"])
        model = cls.from_config(MDSConfig(**cfg))
        st = saved.state
        model.d_in = int(st["d_in"])
        model.history = [EpochMetrics(**h) for h in st.get("history", [])]
        init_m = st.get("initial_metrics")
        model.initial_metrics = None if init_m is None else MDSMetrics(**init_m)
        model.best_epoch = st.get("best_epoch")
        net = model._build(model.d_in)
        restore_state(net, saved.tensors, os.fspath(path))
        model.net = net
        return model


# ---------------------------------------------------------------- training
def batch_loss(params, rest, graphdef, z: jax.Array, key: jax.Array, c: MDSConfig, n: int) -> jax.Array:
    """Mean training loss per pair (isometric) or per quad (isotonic) on one batch sampled with ``key``.

    Args:
      params, rest, graphdef: the split :class:`MDSNet` (``nnx.split(net, nnx.Param, ...)``).
      z: ``[2n, D]`` the pooled (normalised) set.
      key: the batch's PRNG key (:func:`sample_pairs` / :func:`sample_quads`).
      c: the validated config (method, batch size, margin, fractions, ε).
      n: the number of pairs.

    Returns:
      scalar.
    """
    net = nnx.merge(graphdef, params, rest)
    bsz = c.batch_size
    if c.method == "isometric":
        a, b = sample_pairs(key, n, bsz, c.cross_modal_fraction, c.matched_fraction)
        delta = true_distance(z, a, b)
        y = net(jnp.concatenate([z[a], z[b]]))
        return raw_stress(delta, embedded_distance(y[:bsz], y[bsz:], c.eps)) / bsz
    a, b, cc, e = sample_quads(key, n, bsz, c.cross_modal_fraction, c.matched_fraction)
    d1, d2 = true_distance(z, a, b), true_distance(z, cc, e)
    y = net(jnp.concatenate([z[a], z[b], z[cc], z[e]]))
    g1 = embedded_distance(y[:bsz], y[bsz:2 * bsz], c.eps)
    g2 = embedded_distance(y[2 * bsz:3 * bsz], y[3 * bsz:], c.eps)
    first_nearer = d1 <= d2
    near, far = jnp.where(first_nearer, g1, g2), jnp.where(first_nearer, g2, g1)
    return quad_loss(near, far, c.margin, (d1 != d2).astype(y.dtype)) / bsz


@functools.lru_cache(maxsize=32)
def _epoch_fn(graphdef, c: MDSConfig, n: int, total_steps: int):
    """``(tx, run)``: one epoch is one :func:`~clipcore.models._common.scan_trainer` call over
    ``steps_per_epoch`` keys, with data ``(rest, z)``.

    ``total_steps`` > 0: the step size follows a cosine decay from
    ``learning_rate`` to 0 over that many steps (Adam's step count carries
    across epochs); 0: constant.
    """
    lr = optax.cosine_decay_schedule(c.learning_rate, total_steps) if total_steps > 0 else c.learning_rate
    tx = optax.adam(lr)

    def loss(params, data, key):
        rest, z = data
        return batch_loss(params, rest, graphdef, z, key, c, n)

    return tx, scan_trainer(loss, tx)


def _embed(graphdef, params, rest, x: jax.Array) -> jax.Array:
    return apply_rows(graphdef, (params, rest), x, chunk=65536)
