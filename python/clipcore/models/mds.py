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
cross-modal: a fraction ``cross_modal_fraction`` of the pairs (quads) are
drawn image–caption. For quads a fraction ``matched_fraction`` of those
(default 0.25) compare an image's own caption with another caption against
the same anchor: the retrieval constraint itself.

**Matched pairs in the stress (isometric).** The stress gives each sampled
pair the weight of its sampling rate, so drawing matched pairs on purpose
multiplies their weight by about n/3 (with the earlier 0.25 of the
cross-modal half). That over-weighting was the cause of the isometric
method's collapse on CLIP-like data (modality gap, strong isotropic noise):
there a matched pair's original distance δ_ii is mostly the noise and the gap
(1.09 against 1.40 for another caption on the bench's set), which PCA — and
any D' < D map that keeps the semantics — discards (d_ii/δ_ii = 0.73 at
D' = 32). The stress pulls every matched d_ii back up to its δ_ii, and with
matched pairs a few hundred times heavier than any other pair the MLP does so
pair by pair: it re-injects each fitted pair's own noise until the captions
of the fitted images are no nearer than the others (in-sample top-1 0.04,
chance; held out 0.49 against PCA's 0.78, and 0.69 for a linear map, which
can only spread all pairs alike). The isometric stress therefore now weighs
matched pairs at their natural rate (``matched_fraction`` defaults to 0
there; an ordinal quad is a different constraint, so isotonic keeps 0.25):
held out 0.95, in-sample 0.91 on the same set (bench/RESULTS.md).

**Model selection.** Stress-1 kept falling (0.26 → 0.04) while retrieval
collapsed, so ``keep_best`` no longer selects on the method's own measure
alone: a seeded ``validation_fraction`` of the pairs is kept out of training
and every epoch is scored by its image→text and text→image top-1 on them
(each validation image among all captions, the fitted ones included: the
deck's measure). The start is the PCA map of all the pairs given (the baseline
itself); an epoch qualifies only when it retrieves the validation pairs better
than the start beyond their noise (a paired sign test at one standard error over
the queries the two maps answer differently), and among the qualified the
highest validation top-1 is kept (ties: the method's own measure, Stress-1 or
the satisfied-quad fraction); when none qualifies the start is kept. A bare
"at least the start's top-1" let noise through: isotonic epochs that matched
PCA on 150 validation pairs slipped 2–5 of 500 held-out pairs below it on the
bench (2026-12-05).

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
from .mds_objectives import (EvalSample, MDSMetrics, check_paired, embedded_distance, eval_sample, kruskal_stress1,
                             mds_metrics, metrics_on, paired_hits, paired_top1, pca_map, pooled, quad_loss, raw_stress,
                             sample_pairs, sample_quads, true_distance)

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
    "paired_hits",
    "paired_top1",
    "validation_split",
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

#: Share of matched (image, own caption) pairs among the cross-modal ones when none is given: the
#: stress takes matched pairs at their natural rate (module docstring), the quads oversample them.
DEFAULT_MATCHED_FRACTION = {"isometric": 0.0, "isotonic": 0.25}


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
    matched_fraction: float | None = None
    init: str = "pca"
    normalize: bool = True
    eps: float = 1e-12
    eval_size: int = 16384
    seed: int = 0
    schedule: str = "cosine"
    keep_best: bool = True
    validation_fraction: float = 0.1

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
        fractions = {}
        for name in ("cross_modal_fraction", "matched_fraction", "validation_fraction"):
            v = check_number(getattr(self, name), name, positive=False,
                             default=DEFAULT_MATCHED_FRACTION.get(self.method) if name[0] == "m" else -1.0)
            if not 0 <= v <= 1 or (name == "validation_fraction" and v >= 1):
                raise ValueError(f"{name}: expected a fraction in [0, 1{')' if name[0] == 'v' else ']'}, got {v}")
            fractions[name] = v
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise ValueError(f"seed: expected an integer, got {self.seed!r}")
        return dataclasses.replace(self, hidden=hidden, learning_rate=lr, **fractions)


class EpochMetrics(NamedTuple):
    """Metrics after one epoch, on a fixed seeded evaluation sample.

    Attributes:
      epoch: 1-based epoch.
      loss: mean training loss over the epoch's steps (per pair / quad).
      stress1: Kruskal Stress-1 on the evaluation pairs.
      quad_fraction: fraction of evaluation quads whose order is kept.
      spearman: Spearman ρ between δ and the embedded distance (evaluation pairs).
      seconds: wall time of the epoch (training steps only).
      validation_top1: mean of image→text and text→image top-1 on the validation pairs
        (:func:`paired_top1`; None in files written before it was recorded).
    """

    epoch: int
    loss: float
    stress1: float
    quad_fraction: float
    spearman: float
    seconds: float
    validation_top1: float | None = None


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
        pairs and of matched pairs among them (module docstring; ``matched_fraction``
        defaults to 0 for isometric, 0.25 for isotonic).
      init: ``"pca"`` (start at the PCA map of the pooled set of all the pairs
        given, validation pairs included, default) or
        ``"random"`` (Flax's default initialisation).
      normalize: L2-normalise input rows (CLIP embeddings are compared by cosine).
      eps: ε in sqrt(‖·‖² + ε).
      eval_size: evaluation (validation) pairs / quads for the per-epoch metrics,
        drawn once with seed ``seed + 1`` from the training distribution.
      seed: seeds the initialisation, the sampling and the evaluation sample.
      schedule: ``"cosine"`` (Adam step decays to 0 over all steps, default) or
        ``"constant"``.
      keep_best: end with the parameters (the starting map included) of the
        epoch best by the method's own measure on the evaluation sample (the
        satisfied-quad fraction for isotonic, Stress-1 for isometric) among
        those whose top-1 retrieval (mean of both directions) on the
        validation pairs is at least the starting map's: no epoch that
        retrieves worse than its start is kept. ``False``: the last epoch's
        (and no pairs are held back).
      validation_fraction: with ``keep_best``, this seeded fraction of the pairs
        (seed ``seed + 2``) is kept out of training and scores the epochs
        (default 0.1). When it would leave fewer than 2 pairs on either side
        (or is 0) the epochs are scored on the fitted pairs themselves.

    Attributes:
      config: the :class:`MDSConfig`.
      history: one :class:`EpochMetrics` per epoch of the last ``fit``.
      initial_metrics: :class:`MDSMetrics` of the starting map (epoch 0).
      initial_validation_top1: the starting map's validation top-1.
      validation_pairs: pairs held out for selection (0: selection in-sample).
      best_epoch: the epoch whose parameters the model holds (0: the start).
      d_in: D (set by ``fit`` or ``load``).
    """

    def __init__(self, dim: int, *, method: str = "isometric", architecture: str = "mlp",
                 hidden: tuple[int, ...] = (512,), epochs: int = 20, steps_per_epoch: int = 100,
                 batch_size: int = 1024, learning_rate: float | None = None, margin: float = 0.01,
                 cross_modal_fraction: float = 0.5, matched_fraction: float | None = None, init: str = "pca",
                 normalize: bool = True, eps: float = 1e-12, eval_size: int = 16384, seed: int = 0,
                 schedule: str = "cosine", keep_best: bool = True, validation_fraction: float = 0.1):
        self.config = MDSConfig(dim, method, architecture, tuple(hidden), epochs, steps_per_epoch, batch_size,
                                learning_rate, margin, cross_modal_fraction, matched_fraction, init, normalize,
                                eps, eval_size, seed, schedule, keep_best, validation_fraction).validated()
        self.history: list[EpochMetrics] = []
        self.initial_metrics: MDSMetrics | None = None
        self.initial_validation_top1: float | None = None
        self.validation_pairs = 0
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
        u, v = self._checked_pairs(images, texts)
        d = int(u.shape[1])
        fit_rows, val_rows = validation_split(int(u.shape[0]), c.validation_fraction if c.keep_best else 0.0,
                                              c.seed + 2)
        n = int(fit_rows.size)
        z = pooled(u[fit_rows], v[fit_rows], c.normalize)
        zv = z if val_rows is None else pooled(u[val_rows], v[val_rows], c.normalize)
        net = self._build(d)
        if c.init == "pca":  # the PCA baseline itself: all pairs given (an unsupervised map of the points)
            w, b = pca_map(z if val_rows is None else jnp.concatenate([z, zv]), c.dim)
            net.skip.kernel.set_value(jnp.asarray(w, jnp.float32))
            net.skip.bias.set_value(jnp.asarray(b, jnp.float32))
        graphdef, params, rest = nnx.split(net, nnx.Param, ...)
        # the epoch program does not depend on these options: one compilation serves them all
        total = c.epochs * c.steps_per_epoch if c.schedule == "cosine" else 0
        tx, run = _epoch_fn(graphdef, dataclasses.replace(c, epochs=1, init="pca", eval_size=1, seed=0,
                                                          keep_best=True, validation_fraction=0.0), n, total)
        evals = eval_sample(z, n, c.eval_size, c.seed + 1, c.cross_modal_fraction, c.matched_fraction)
        self.history, self.d_in = [], d
        self.validation_pairs = 0 if val_rows is None else int(val_rows.size)
        score = functools.partial(_score, graphdef, rest, z, zv, evals)
        self.initial_metrics, start_hits = score(params)
        self.initial_validation_top1 = float(start_hits.mean())
        self.best_epoch, params = self._epochs(run, score, params, rest, tx.init(params), z, start_hits, progress)
        self.net = nnx.merge(graphdef, params, rest)
        return self

    def _checked_pairs(self, images: Any, texts: Any) -> tuple[jax.Array, jax.Array]:
        """Checked float32 pairs ``[n, D]`` (at least 2, D > D')."""
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
        return u.astype(jnp.float32), v.astype(jnp.float32)

    def _epochs(self, run, score, params, rest, opt_state, z: jax.Array, start: np.ndarray,
                progress: bool | None) -> tuple[int, Any]:
        """Train epoch by epoch, appending to ``history``; the epoch kept (0: the start) and its parameters.

        Kept: among the epochs that retrieve the validation pairs better than the start beyond noise
        (:func:`beats_start`), the one of highest validation top-1, ties broken by the method's own measure
        on the evaluation sample (the satisfied-quad fraction, or Stress-1); the start when none does."""
        c = self.config

        def rank(m: MDSMetrics, hits: np.ndarray) -> tuple[bool, float, float]:
            own = m.quad_fraction if c.method == "isotonic" else -m.stress1
            return beats_start(hits, start), float(hits.mean()), own

        best = ((True, float(start.mean()), float('-inf')), 0, params)  # the start: the fallback
        key = jax.random.key(c.seed)
        with progress_bar(None, f"neural MDS ({c.method}, D'={c.dim})", progress, unit="epoch", unit_scale=False,
                          iterable=range(1, c.epochs + 1)) as bar:
            for epoch in bar:
                key, sub = jax.random.split(key)
                t0 = time.perf_counter()
                params, opt_state, losses = run(params, opt_state, (rest, z), jax.random.split(sub, c.steps_per_epoch))
                losses = np.asarray(losses)
                seconds = time.perf_counter() - t0
                m, hits = score(params)
                top1 = float(hits.mean())
                loss = float(losses.mean())
                if not np.isfinite(loss):
                    raise FloatingPointError(f"neural MDS: the loss became {loss} in epoch {epoch}")
                self.history.append(EpochMetrics(epoch, loss, m.stress1, m.quad_fraction, m.spearman, seconds, top1))
                r = rank(m, hits)
                if r > best[0]:
                    best = (r, epoch, params)
                bar.set_postfix(loss=f"{loss:.4g}", stress1=f"{m.stress1:.3f}", quads=f"{m.quad_fraction:.3f}",
                                top1=f"{top1:.3f}")
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
                 "best_epoch": self.best_epoch, "initial_validation_top1": self.initial_validation_top1,
                 "validation_pairs": self.validation_pairs}
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
        model.initial_validation_top1 = st.get("initial_validation_top1")
        model.validation_pairs = int(st.get("validation_pairs", 0))
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


def _score(graphdef, rest, z: jax.Array, zv: jax.Array, evals: EvalSample, params) -> tuple[MDSMetrics, np.ndarray]:
    """The map's metrics on the evaluation sample of the fitted set ``z`` and its validation hits (image→text
    then text→image, ``[2k]`` bool): each pooled validation pair of ``zv`` retrieved among all captions
    (images), the fitted ones included (``zv is z``: the fitted pairs among themselves)."""
    y = np.asarray(_embed(graphdef, params, rest, z))
    m = y.shape[0] // 2
    if zv is z:
        return metrics_on(y, evals), np.concatenate(paired_hits(y[:m], y[m:]))
    yv = np.asarray(_embed(graphdef, params, rest, zv))
    k = yv.shape[0] // 2
    return metrics_on(y, evals), np.concatenate(paired_hits(yv[:k], yv[k:], extra_images=y[:m], extra_texts=y[m:]))


def beats_start(hits: np.ndarray, start: np.ndarray) -> bool:
    """Does a map retrieve better than the start on the same validation queries, beyond their noise?

    A paired sign test at one standard error: of the queries the two maps answer differently, b are hit
    only by the map and c only by the start; the map qualifies when b − c ≥ max(1, √(b + c)) (under "no
    better", b − c has mean 0 and standard deviation √(b + c)). A bare b ≥ c let noise through: isotonic
    maps that matched PCA on 150 validation pairs retrieved 2–5 of 500 held-out pairs fewer
    (bench/RESULTS.md, 2026-12-05).

    Args:
      hits, start: ``[q]`` bool per-query hits of the map and of the start.
    """
    b = int(np.sum(hits & ~start))
    c = int(np.sum(start & ~hits))
    return b - c >= max(1.0, float(np.sqrt(b + c)))


def validation_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Pairs to fit and pairs to validate on: a seeded permutation's first ``round(fraction · n)``.

    Args:
      n: the number of pairs; fraction: in [0, 1); seed: the permutation's seed.

    Returns:
      ``(fit_rows, validation_rows)`` sorted; ``validation_rows`` is None (and ``fit_rows`` all
      rows) when the split would leave fewer than 2 pairs on either side.
    """
    m = int(round(fraction * n))
    if m < 2 or n - m < 2:
        return np.arange(n), None
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[m:]), np.sort(perm[:m])
