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
import json
import os
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .._validate import as_embeddings, check_choice, check_number, check_positive_int

__all__ = [
    "MDSConfig",
    "NeuralMDS",
    "EpochMetrics",
    "MDSMetrics",
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


# ------------------------------------------------------------------ losses
def embedded_distance(a: jax.Array, b: jax.Array, eps: float = 1e-12) -> jax.Array:
    """sqrt(‖a − b‖² + ε) row by row: finite gradient when a = b.

    Args:
      a, b: ``[..., k]``.
      eps: the ε under the square root.

    Returns:
      ``[...]``.
    """
    diff = a - b
    return jnp.sqrt(jnp.sum(diff * diff, axis=-1) + eps)


def raw_stress(delta: jax.Array, dist: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Raw stress Σ w (δ − d)² (metric MDS; Kruskal 1964).

    Args:
      delta: ``[m]`` target (original-space) distances.
      dist: ``[m]`` embedded distances.
      weights: ``[m]`` non-negative weights (default 1).
    """
    r = delta - dist
    w = 1.0 if weights is None else weights
    return jnp.sum(w * r * r)


def kruskal_stress1(delta: jax.Array, dist: jax.Array) -> jax.Array:
    """Kruskal's Stress-1, sqrt(Σ (δ − d)² / Σ d²), with d the embedded distances."""
    r = delta - dist
    return jnp.sqrt(jnp.sum(r * r) / jnp.sum(dist * dist))


def quad_loss(d_near: jax.Array, d_far: jax.Array, margin: float, weights: jax.Array | None = None) -> jax.Array:
    """SOE squared hinge Σ w · max(0, d_near + margin − d_far)² (Terada & von Luxburg 2014).

    Args:
      d_near: ``[m]`` embedded distance of the pair with the smaller δ.
      d_far: ``[m]`` embedded distance of the pair with the larger δ.
      margin: the hinge margin (sets the scale of the embedding).
      weights: ``[m]`` non-negative weights (default 1; 0 drops tied quads).
    """
    h = jnp.maximum(0.0, d_near + margin - d_far)
    w = 1.0 if weights is None else weights
    return jnp.sum(w * h * h)


# ---------------------------------------------------------------- sampling
def sample_pairs(key: jax.Array, n: int, size: int, cross_modal_fraction: float,
                 matched_fraction: float) -> tuple[jax.Array, jax.Array]:
    """Pairs of indices into the pooled set Z = [images (0..n−1); texts (n..2n−1)].

    A fraction ``cross_modal_fraction`` of the pairs is (image, caption) in a
    random order, a fraction ``matched_fraction`` of those an image with its
    own caption; the rest are uniform over Z × Z.

    Args:
      key: a JAX PRNG key.
      n: number of pairs in the set; size: number of pairs to draw.

    Returns:
      ``(a, b)``, each ``[size]`` int; pair m is (Z[a_m], Z[b_m]).
    """
    k_int, k_u = jax.random.split(key)
    ua, ub, i, j = jax.random.randint(k_int, (4, size), 0, jnp.array([2 * n, 2 * n, n, n])[:, None])
    matched, image_first, cross = jax.random.uniform(k_u, (3, size)) < jnp.array(
        [matched_fraction, 0.5, cross_modal_fraction])[:, None]
    j = jnp.where(matched, i, j)
    ca = jnp.where(image_first, i, n + i)
    cb = jnp.where(image_first, n + j, j)
    return jnp.where(cross, ca, ua), jnp.where(cross, cb, ub)


def sample_quads(key: jax.Array, n: int, size: int, cross_modal_fraction: float,
                 matched_fraction: float) -> tuple[jax.Array, ...]:
    """Quads (a, b, c, e) of indices into Z = [images; texts] (not yet ordered by δ).

    A fraction ``cross_modal_fraction`` are anchored triplets: (x, y) and
    (x, y') with x of one modality and y, y' of the other, y the partner of x
    with probability ``matched_fraction``; the rest are two uniform pairs.

    Returns:
      ``(a, b, c, e)``, each ``[size]``; the quad compares (a, b) with (c, e).
    """
    k_pair, k_int, k_u = jax.random.split(key, 3)
    a, b = sample_pairs(k_pair, n, size, 1.0, matched_fraction)
    other, ua, ub, uc, ue = jax.random.randint(k_int, (5, size), 0,
                                               jnp.array([n, 2 * n, 2 * n, 2 * n, 2 * n])[:, None])
    e_cross = jnp.where(a < n, n + other, other)  # the anchor's other modality
    cross = jax.random.uniform(k_u, (size,)) < cross_modal_fraction
    return (jnp.where(cross, a, ua), jnp.where(cross, b, ub),
            jnp.where(cross, a, uc), jnp.where(cross, e_cross, ue))


def _true_distance(z: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    d = z[a] - z[b]
    return jnp.sqrt(jnp.sum(d * d, axis=-1))


# ------------------------------------------------------------------ module
class MDSNet(nnx.Module):
    """g(x) = W x + b (linear) or W x + b + MLP(x) (mlp: GELU hidden layers).

    The MLP branch's last layer starts at zero, so with ``init="pca"`` the
    network starts exactly at the PCA (classical MDS) map and learns a
    non-linear correction.
    """

    def __init__(self, d_in: int, d_out: int, hidden: tuple[int, ...], architecture: str, *, rngs: nnx.Rngs):
        self.skip = nnx.Linear(d_in, d_out, rngs=rngs)
        self.architecture = architecture
        layers = []
        if architecture == "mlp":
            widths = (d_in, *hidden)
            for w_in, w_out in zip(widths[:-1], widths[1:]):
                layers.append(nnx.Linear(w_in, w_out, rngs=rngs))
            layers.append(nnx.Linear(widths[-1], d_out, kernel_init=nnx.initializers.zeros, rngs=rngs))
        self.layers = nnx.List(layers)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.skip(x)
        if self.architecture == "mlp":
            h = x
            for layer in self.layers[:-1]:
                h = jax.nn.gelu(layer(h))
            y = y + self.layers[-1](h)
        return y


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
        if not isinstance(self.keep_best, (bool, np.bool_)):
            raise ValueError(f"keep_best: expected True or False, got {self.keep_best!r}")
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


class MDSMetrics(NamedTuple):
    """How well an embedding keeps the original distances (see :func:`mds_metrics`)."""

    stress1: float
    quad_fraction: float
    spearman: float


# ---------------------------------------------------------------- metrics
def _pooled(images: jax.Array, texts: jax.Array, normalize: bool) -> jax.Array:
    z = jnp.concatenate([images, texts], axis=0)
    if normalize:
        z = z / jnp.linalg.norm(z, axis=1, keepdims=True)
    return z


class _EvalSample(NamedTuple):
    pa: np.ndarray
    pb: np.ndarray
    delta: np.ndarray
    qa: np.ndarray
    qb: np.ndarray
    qc: np.ndarray
    qe: np.ndarray
    keep: np.ndarray  # quads with δ_ab ≠ δ_ce, ordered so (a, b) is the nearer pair


def _eval_sample(z: jax.Array, n: int, size: int, seed: int, cross: float, matched: float) -> _EvalSample:
    out = _eval_indices(z, jax.random.key(seed), n, size, cross, matched)
    return _EvalSample(*(np.asarray(x) for x in out))


@functools.partial(jax.jit, static_argnums=(2, 3))
def _eval_indices(z: jax.Array, key: jax.Array, n: int, size: int, cross: float, matched: float):
    k1, k2 = jax.random.split(key)
    pa, pb = sample_pairs(k1, n, size, cross, matched)
    delta = _true_distance(z, pa, pb)
    qa, qb, qc, qe = sample_quads(k2, n, size, cross, matched)
    d1, d2 = _true_distance(z, qa, qb), _true_distance(z, qc, qe)
    swap = d2 < d1
    qa, qb, qc, qe = (jnp.where(swap, qc, qa), jnp.where(swap, qe, qb), jnp.where(swap, qa, qc),
                      jnp.where(swap, qb, qe))
    return pa, pb, delta, qa, qb, qc, qe, d1 != d2


def _metrics_on(y: np.ndarray, s: _EvalSample) -> MDSMetrics:
    from scipy.stats import spearmanr

    y = np.asarray(y, dtype=np.float64)
    dist = np.linalg.norm(y[s.pa] - y[s.pb], axis=1)
    r = s.delta - dist
    stress1 = float(np.sqrt(np.sum(r * r) / np.sum(dist * dist)))
    near = np.linalg.norm(y[s.qa] - y[s.qb], axis=1)
    far = np.linalg.norm(y[s.qc] - y[s.qe], axis=1)
    frac = float(np.mean((near < far)[s.keep]))
    rho = float(spearmanr(s.delta, dist).statistic)
    return MDSMetrics(stress1, frac, rho)


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
    _check_paired(u, v)
    lu = as_embeddings(low_images, "low_images")
    lv = as_embeddings(low_texts, "low_texts")
    if lu.shape[0] != u.shape[0] or lv.shape != lu.shape:
        raise ValueError(
            f"low_images / low_texts: shapes {tuple(lu.shape)} and {tuple(lv.shape)} must both be "
            f"[{u.shape[0]}, D'] like the {u.shape[0]} pairs"
        )
    n = int(u.shape[0])
    z = _pooled(u.astype(jnp.float64) if jax.config.jax_enable_x64 else u, v, normalize)
    s = _eval_sample(z, n, check_positive_int(size, "size"), seed, cross_modal_fraction, matched_fraction)
    return _metrics_on(np.concatenate([np.asarray(lu), np.asarray(lv)]), s)


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


def _check_paired(u: jax.Array, v: jax.Array) -> None:
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


# ------------------------------------------------------------------- model
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
        self._net: MDSNet | None = None

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
          progress: tqdm bar per epoch with the metrics (``None``: shown after 2 s).

        Returns:
          ``self`` (``history`` holds the per-epoch metrics).

        Raises:
          ValueError: NaN/Inf, empty or non-2-D input, unpaired rows,
            different dimensions, fewer than 2 pairs, or D' ≥ D.
        """
        c = self.config
        u = as_embeddings(images, "images", nonzero_rows=c.normalize)
        v = as_embeddings(texts, "texts", nonzero_rows=c.normalize)
        _check_paired(u, v)
        n, d = int(u.shape[0]), int(u.shape[1])
        if n < 2:
            raise ValueError(f"images: need at least 2 pairs to learn distances, got shape {tuple(u.shape)}")
        if c.dim >= d:
            raise ValueError(
                f"dim: D'={c.dim} must be smaller than the input dimension D={d} "
                f"(images {tuple(u.shape)}); nothing to compress"
            )
        z = _pooled(u.astype(jnp.float32), v.astype(jnp.float32), c.normalize)
        net = self._build(d)
        if c.init == "pca":
            w, b = pca_map(z, c.dim)
            net.skip.kernel.set_value(jnp.asarray(w, jnp.float32))
            net.skip.bias.set_value(jnp.asarray(b, jnp.float32))
        graphdef, params, rest = nnx.split(net, nnx.Param, ...)
        # the epoch program does not depend on these options: one compilation serves them all
        total = c.epochs * c.steps_per_epoch if c.schedule == "cosine" else 0
        tx, run_epoch = _epoch_fn(graphdef, dataclasses.replace(c, epochs=1, init="pca", eval_size=1, seed=0,
                                                                keep_best=True), n, total)
        opt_state = tx.init(params)

        evals = _eval_sample(z, n, c.eval_size, c.seed + 1, c.cross_modal_fraction, c.matched_fraction)
        key = jax.random.key(c.seed)
        self.history = []
        self.d_in = d
        m0 = _metrics_on(np.asarray(_apply(graphdef, params, rest, z)), evals)
        self.initial_metrics = m0
        # higher is better: the method's own measure on the evaluation sample
        score = (lambda m: m.quad_fraction) if c.method == "isotonic" else (lambda m: -m.stress1)
        best = (score(m0), 0, params)

        from tqdm.auto import tqdm

        with tqdm(range(1, c.epochs + 1), desc=f"neural MDS ({c.method}, D'={c.dim})", unit="epoch",
                  disable=progress is False, delay=0 if progress else 2.0, leave=False) as bar:
            for epoch in bar:
                key, sub = jax.random.split(key)
                t0 = time.perf_counter()
                params, opt_state, losses = run_epoch(params, rest, opt_state, z, sub)
                losses = np.asarray(losses)
                seconds = time.perf_counter() - t0
                y = _apply(graphdef, params, rest, z)
                m = _metrics_on(np.asarray(y), evals)
                loss = float(losses.mean())
                if not np.isfinite(loss):
                    raise FloatingPointError(f"neural MDS: the loss became {loss} in epoch {epoch}")
                self.history.append(EpochMetrics(epoch, loss, m.stress1, m.quad_fraction, m.spearman, seconds))
                if score(m) > best[0]:
                    best = (score(m), epoch, params)
                bar.set_postfix(loss=f"{loss:.4g}", stress1=f"{m.stress1:.3f}", quads=f"{m.quad_fraction:.3f}",
                                rho=f"{m.spearman:.3f}")
        if c.keep_best:
            self.best_epoch, params = best[1], best[2]
        else:
            self.best_epoch = c.epochs
        self._net = nnx.merge(graphdef, params, rest)
        return self

    # ---------------------------------------------------------- transform
    def transform(self, x: Any, *, block_size: int = 65536) -> jax.Array:
        """Map embeddings of either modality to D'.

        Args:
          x: ``[m, D]`` image or caption embeddings.
          block_size: rows per jitted call.

        Returns:
          ``[m, D']`` float32.
        """
        if self._net is None:
            raise ValueError("NeuralMDS: not fitted; call fit(images, texts) or NeuralMDS.load(path) first")
        c = self.config
        x = as_embeddings(x, "x", nonzero_rows=c.normalize)
        if x.shape[1] != self.d_in:
            raise ValueError(f"x: dimension {x.shape[1]} (shape {tuple(x.shape)}) but the model maps D={self.d_in}")
        graphdef, params, rest = nnx.split(self._net, nnx.Param, ...)
        x = x.astype(jnp.float32)
        if c.normalize:
            x = x / jnp.linalg.norm(x, axis=1, keepdims=True)
        bs = check_positive_int(block_size, "block_size")
        parts = [_apply(graphdef, params, rest, x[s:s + bs]) for s in range(0, x.shape[0], bs)]
        return parts[0] if len(parts) == 1 else jnp.concatenate(parts)

    def fit_transform(self, images: Any, texts: Any, *, progress: bool | None = None) -> tuple[jax.Array, jax.Array]:
        """``fit`` then ``(transform(images), transform(texts))``."""
        self.fit(images, texts, progress=progress)
        return self.transform(images), self.transform(texts)

    # ---------------------------------------------------------- save/load
    def save(self, path: str | os.PathLike) -> None:
        """Write the parameters and the config to one safetensors file.

        The tensors are the flattened ``nnx.state`` (keys joined by ``.``);
        the config, D and the history go in the file's JSON metadata.
        """
        from safetensors.numpy import save_file

        if self._net is None:
            raise ValueError("NeuralMDS: not fitted; nothing to save")
        tensors = {".".join(map(str, k)): np.ascontiguousarray(np.asarray(v.get_value()))
                   for k, v in nnx.to_flat_state(nnx.state(self._net, nnx.Param))}
        from .. import __version__

        meta = {
            "format": "clipcore.NeuralMDS/1",
            "clipcore": __version__,
            "config": json.dumps(dataclasses.asdict(self.config)),
            "d_in": str(self.d_in),
            "history": json.dumps([h._asdict() for h in self.history]),
            "initial_metrics": json.dumps(None if self.initial_metrics is None else self.initial_metrics._asdict()),
            "best_epoch": json.dumps(self.best_epoch),
        }
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        save_file(tensors, path, metadata=meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NeuralMDS":
        """Read a model written by :meth:`save`."""
        from safetensors import safe_open

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"path: no model file {path}")
        try:
            with safe_open(path, framework="numpy") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:
            raise ValueError(f"path: {path} is not a safetensors file ({exc})") from exc
        if meta.get("format") != "clipcore.NeuralMDS/1":
            raise ValueError(f"path: {path} does not hold a clipcore NeuralMDS (format {meta.get('format')!r})")
        cfg = json.loads(meta["config"])
        cfg["hidden"] = tuple(cfg["hidden"])
        model = cls.from_config(MDSConfig(**cfg))
        model.d_in = int(meta["d_in"])
        model.history = [EpochMetrics(**h) for h in json.loads(meta.get("history", "[]"))]
        init_m = json.loads(meta.get("initial_metrics", "null"))
        model.initial_metrics = None if init_m is None else MDSMetrics(**init_m)
        model.best_epoch = json.loads(meta.get("best_epoch", "null"))
        net = model._build(model.d_in)
        state = nnx.state(net, nnx.Param)
        flat = nnx.to_flat_state(state)
        expected = {".".join(map(str, k)) for k, _ in flat}
        if expected != set(tensors):
            raise ValueError(f"path: {path} has parameters {sorted(tensors)} but the config needs {sorted(expected)}")
        for k, var in flat:
            name = ".".join(map(str, k))
            shape = tuple(var.get_value().shape)
            if tuple(tensors[name].shape) != shape:
                raise ValueError(f"path: parameter {name} has shape {tensors[name].shape}, expected {shape}")
            var.set_value(jnp.asarray(tensors[name]))
        nnx.update(net, nnx.from_flat_state(flat))
        model._net = net
        return model


# ---------------------------------------------------------------- training
def _loss(params, rest, graphdef, z: jax.Array, key: jax.Array, c: MDSConfig, n: int) -> jax.Array:
    """Mean loss per pair (isometric) or per quad (isotonic) on one sampled batch."""
    net = nnx.merge(graphdef, params, rest)
    bsz = c.batch_size
    if c.method == "isometric":
        a, b = sample_pairs(key, n, bsz, c.cross_modal_fraction, c.matched_fraction)
        delta = _true_distance(z, a, b)
        y = net(jnp.concatenate([z[a], z[b]]))
        return raw_stress(delta, embedded_distance(y[:bsz], y[bsz:], c.eps)) / bsz
    a, b, cc, e = sample_quads(key, n, bsz, c.cross_modal_fraction, c.matched_fraction)
    d1, d2 = _true_distance(z, a, b), _true_distance(z, cc, e)
    y = net(jnp.concatenate([z[a], z[b], z[cc], z[e]]))
    g1 = embedded_distance(y[:bsz], y[bsz:2 * bsz], c.eps)
    g2 = embedded_distance(y[2 * bsz:3 * bsz], y[3 * bsz:], c.eps)
    first_nearer = d1 <= d2
    near, far = jnp.where(first_nearer, g1, g2), jnp.where(first_nearer, g2, g1)
    return quad_loss(near, far, c.margin, (d1 != d2).astype(y.dtype)) / bsz


@functools.lru_cache(maxsize=32)
def _epoch_fn(graphdef, c: MDSConfig, n: int, total_steps: int):
    """One jitted epoch: ``steps_per_epoch`` Adam steps in a ``lax.scan``.

    ``total_steps`` > 0: the step size follows a cosine decay from
    ``learning_rate`` to 0 over that many steps (Adam's step count carries
    across epochs); 0: constant.
    """
    lr = optax.cosine_decay_schedule(c.learning_rate, total_steps) if total_steps > 0 else c.learning_rate
    tx = optax.adam(lr)
    grad = jax.value_and_grad(_loss)

    def step(carry, key):
        params, rest, opt_state, z = carry
        loss, g = grad(params, rest, graphdef, z, key, c, n)
        updates, opt_state = tx.update(g, opt_state, params)
        return (optax.apply_updates(params, updates), rest, opt_state, z), loss

    @jax.jit
    def run(params, rest, opt_state, z, key):
        keys = jax.random.split(key, c.steps_per_epoch)
        (params, rest, opt_state, _), losses = jax.lax.scan(step, (params, rest, opt_state, z), keys)
        return params, opt_state, losses

    return tx, run


@functools.partial(jax.jit, static_argnums=0)
def _apply(graphdef, params, rest, x: jax.Array) -> jax.Array:
    return nnx.merge(graphdef, params, rest)(x)
