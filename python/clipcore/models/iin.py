"""IIN: an invertible interpretation network for CLIP embeddings.

Esser, Rombach & Ommer 2020, "A Disentangling Invertible Interpretation
Network for Explaining Latent Representations" (CVPR; CompVis/iin is the
reference design). An invertible map T sends an embedding ``z: [D]`` to
``z̄ = T(z)`` split into K attribute factors plus a residual (the last
chunk). Trained on pairs that share factor F (same value of attribute F),
each factor collects what its attribute explains; editing a factor and
inverting, ``z* = T⁻¹(T(z)*)``, changes that attribute only.

T is ``num_blocks`` blocks of

  ActNorm        y = scale·(x + loc), data-initialised on the first batch
                 (loc = −mean, scale = 1/(std + 1e−6)); logdet Σ log|scale|.
  double affine  [a, b] → b' = b·exp(s₁(a)) + t₁(a), a' = a·exp(s₂(b')) + t₂(b')
  coupling       (s ends in tanh, so every log-scale is in [−1, 1]); logdet Σ s.
                 s, t: MLP D/2 → hidden → … → hidden → D/2, LeakyReLU(0.01).
  permutation    fixed at init (seeded), saved with the model.

Pure functions (:func:`pair_loss`, :func:`flow_loss`,
:func:`estimate_factor_sizes`) sit beside the :class:`IIN` fit / encode /
decode / edit / save / load API and :func:`evaluate_iin` (probes and edit
success, scikit-learn logistic regression).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .._validate import as_embeddings, check_positive_int

__all__ = [
    "IIN",
    "IINConfig",
    "IINEvaluation",
    "pair_loss",
    "flow_loss",
    "estimate_factor_sizes",
    "equal_factor_sizes",
    "evaluate_iin",
    "read_attributes",
]


# ------------------------------------------------------------------ config
@dataclasses.dataclass(frozen=True)
class IINConfig:
    """Static options of an :class:`IIN` (defaults: SPEC_MODELS.md / CompVis/iin).

    Attributes:
      num_blocks: ActNorm → coupling → permutation blocks (12).
      hidden: width of the s / t MLPs (512).
      hidden_layers: hidden layers of each s / t MLP (3: D/2→512→512→512→D/2).
      negative_slope: LeakyReLU slope (0.01).
      factor_sizes: ``"equal"`` (K+1 near-equal chunks, the first ``D mod (K+1)``
        one larger; with ``residual_size``, the K attribute factors share
        D − residual_size equally), ``"estimate"`` (from pair statistics of the
        data, as the reference's dimension estimator), or a tuple of K+1 sizes
        summing to D (the last is the residual).
      residual_size: with ``factor_sizes="equal"``, the residual's size
        (None: an equal chunk, the published default). A small residual
        (e.g. 2 of 512) matters when each attribute is spread densely over
        the input coordinates (as in :func:`~clipcore.models.iin_data.synthetic_attributes`):
        the pair loss purges attribute F quickly from the *other attribute*
        factors (a pair sharing G but not F pays ½‖Δ‖²/(1 − ρ²) for F's
        trace in z̄_G) but from the residual only through the weak N(0, I)
        prior (at most the attribute's entropy, ln 2 nats for a balanced
        binary one), so the share of F that starts in the residual (≈ its
        fraction of D) stays there, and setting z̄_F alone moves only the
        rest. On the 512-d synthetic set (3 attributes, 4 blocks, hidden
        128) equal chunks (residual 128) leave about half of each
        attribute's probe logit in the residual (edit success 0.40–0.71
        after 1 500 steps); a 2-d residual reaches ≥ 0.98 in 500 steps on
        every seed tried (an 8-d one kept one attribute in 1 of 6 runs).
        The price: the nuisance information (what no attribute explains) is
        then held, squeezed, inside the attribute factors, so setting z̄_F
        to a class mean also resets F's share of it. See bench/RESULTS.md, IIN.
      objective: ``"pairs"`` (the factor pair loss, ρ = ``rho``) or ``"flow"``
        (unsupervised likelihood ½‖T(z)‖² − log|det J|).
      rho: correlation of a shared factor in the pair loss (0.975).
      learning_rate, betas: Adam (1e−4, (0.5, 0.9)).
      batch_size: pairs (or samples) per step; steps: optimiser steps.
      seed: initialisation, permutations and pair sampling.
      dtype: parameter and compute dtype, ``"float32"`` or ``"float64"``
        (float64 needs ``jax_enable_x64``).
    """

    num_blocks: int = 12
    hidden: int = 512
    hidden_layers: int = 3
    negative_slope: float = 0.01
    factor_sizes: Any = "equal"
    residual_size: int | None = None
    objective: str = "pairs"
    rho: float = 0.975
    learning_rate: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    batch_size: int = 256
    steps: int = 2000
    seed: int = 0
    dtype: str = "float32"

    def validated(self) -> "IINConfig":
        for name in ("num_blocks", "hidden", "hidden_layers", "batch_size", "steps"):
            check_positive_int(getattr(self, name), name)
        if self.objective not in ("pairs", "flow"):
            raise ValueError(f"objective: expected 'pairs' or 'flow', got {self.objective!r}")
        if not (isinstance(self.rho, (int, float)) and 0.0 <= float(self.rho) < 1.0):
            raise ValueError(f"rho: expected a number in [0, 1), got {self.rho!r}")
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate: expected a finite number > 0, got {self.learning_rate!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype: expected 'float32' or 'float64', got {self.dtype!r}")
        fs = self.factor_sizes
        if self.residual_size is not None:
            check_positive_int(self.residual_size, "residual_size")
            if not (isinstance(fs, str) and fs == "equal"):
                raise ValueError(f"residual_size: applies to factor_sizes='equal' only, got factor_sizes={fs!r} "
                                 "(give the residual as the last of the sizes instead)")
        if isinstance(fs, str):
            if fs not in ("equal", "estimate"):
                raise ValueError(f"factor_sizes: expected 'equal', 'estimate' or a list of sizes, got {fs!r}")
        else:
            try:
                sizes = tuple(int(s) for s in fs)
            except TypeError:
                raise ValueError(f"factor_sizes: expected 'equal', 'estimate' or a list of sizes, got {fs!r}") from None
            if any(s <= 0 for s in sizes) or any(int(s) != s for s in fs):
                raise ValueError(f"factor_sizes: sizes must be positive integers, got {tuple(fs)}")
            return dataclasses.replace(self, factor_sizes=sizes)
        return self


# ----------------------------------------------------------------- modules
class Permutation(nnx.Variable):
    """A fixed (non-trainable) permutation of the coordinates."""


class _MLP(nnx.Module):
    def __init__(self, din: int, hidden: int, layers: int, *, tanh: bool, slope: float,
                 dtype: Any, rngs: nnx.Rngs):
        widths = [din] + [hidden] * layers
        self.hidden = nnx.List([nnx.Linear(a, b, param_dtype=dtype, dtype=dtype, rngs=rngs)
                                for a, b in zip(widths[:-1], widths[1:])])
        # Last layer starts at zero: every coupling is the identity at
        # initialisation (Glow / RealNVP practice), so a deep stack starts stable.
        self.out = nnx.Linear(hidden, din, param_dtype=dtype, dtype=dtype,
                              kernel_init=nnx.initializers.zeros, rngs=rngs)
        self.tanh = tanh
        self.slope = slope

    def __call__(self, x):
        for layer in self.hidden:
            x = jax.nn.leaky_relu(layer(x), self.slope)
        x = self.out(x)
        return jnp.tanh(x) if self.tanh else x


class _Block(nnx.Module):
    """ActNorm → double affine coupling → fixed permutation."""

    def __init__(self, dim: int, cfg: IINConfig, perm: np.ndarray, dtype: Any, rngs: nnx.Rngs):
        h = dim // 2
        self.loc = nnx.Param(jnp.zeros((dim,), dtype))
        self.scale = nnx.Param(jnp.ones((dim,), dtype))
        kw = dict(slope=cfg.negative_slope, dtype=dtype, rngs=rngs)
        self.s1 = _MLP(h, cfg.hidden, cfg.hidden_layers, tanh=True, **kw)
        self.t1 = _MLP(h, cfg.hidden, cfg.hidden_layers, tanh=False, **kw)
        self.s2 = _MLP(h, cfg.hidden, cfg.hidden_layers, tanh=True, **kw)
        self.t2 = _MLP(h, cfg.hidden, cfg.hidden_layers, tanh=False, **kw)
        self.perm = Permutation(jnp.asarray(perm, jnp.int32))

    def forward(self, x):
        h = x.shape[-1] // 2
        x = self.scale[...] * (x + self.loc[...])
        logdet = jnp.sum(jnp.log(jnp.abs(self.scale[...]))) * jnp.ones(x.shape[:-1], x.dtype)
        a, b = x[..., :h], x[..., h:]
        s = self.s1(a)
        b = b * jnp.exp(s) + self.t1(a)
        logdet = logdet + jnp.sum(s, axis=-1)
        s = self.s2(b)
        a = a * jnp.exp(s) + self.t2(b)
        logdet = logdet + jnp.sum(s, axis=-1)
        return jnp.concatenate([a, b], axis=-1)[..., self.perm[...]], logdet

    def inverse(self, y):
        inv = jnp.argsort(self.perm[...])
        y = y[..., inv]
        h = y.shape[-1] // 2
        a, b = y[..., :h], y[..., h:]
        a = (a - self.t2(b)) * jnp.exp(-self.s2(b))
        b = (b - self.t1(a)) * jnp.exp(-self.s1(a))
        x = jnp.concatenate([a, b], axis=-1)
        return x / self.scale[...] - self.loc[...]


class _Flow(nnx.Module):
    """``num_blocks`` blocks held as ONE :class:`_Block` whose every parameter
    (and permutation) has a leading ``[num_blocks]`` axis; forward and inverse
    are a ``lax.scan`` over it, so compile time does not grow with depth."""

    def __init__(self, dim: int, cfg: IINConfig, dtype: Any, rngs: nnx.Rngs, perm_seed: int):
        prng = np.random.default_rng(perm_seed)
        blocks = [_Block(dim, cfg, prng.permutation(dim), dtype, rngs) for _ in range(cfg.num_blocks)]
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *[nnx.state(b) for b in blocks])
        nnx.update(blocks[0], stacked)
        self.blocks = blocks[0]
        self.num_blocks = cfg.num_blocks

    def _scan(self, fn, x, reverse=False):
        graphdef, state = nnx.split(self.blocks)

        def body(carry, st):
            return fn(nnx.merge(graphdef, st), carry)

        return jax.lax.scan(body, x, state, reverse=reverse)

    def forward(self, x):
        x = x.astype(self.blocks.loc[...].dtype)
        y, logdets = self._scan(lambda blk, v: blk.forward(v), x)
        return y, jnp.sum(logdets, axis=0)

    def inverse(self, y):
        y = y.astype(self.blocks.loc[...].dtype)
        x, _ = self._scan(lambda blk, v: (blk.inverse(v), None), y, reverse=True)
        return x


# ---------------------------------------------------------- pure functions
def _factor_masks(factor_sizes: Sequence[int], dtype: Any) -> jax.Array:
    """``[K+1, D]`` 0/1 masks of each factor's coordinates."""
    ids = np.repeat(np.arange(len(factor_sizes)), factor_sizes)
    return jnp.asarray(ids[None, :] == np.arange(len(factor_sizes))[:, None], dtype)


def pair_loss(zbar_a: jax.Array, logdet_a: jax.Array, zbar_b: jax.Array, logdet_b: jax.Array,
              factor: jax.Array, factor_sizes: Sequence[int], rho: float = 0.975) -> jax.Array:
    """Mean IIN pair loss (Esser et al. 2020, eq. 10; SPEC_MODELS.md).

    For a pair (z^a, z^b) sharing factor F:

      ½‖z̄^a‖² − logdet^a + Σ_{k≠F} ½‖z̄^b_k‖² + ½‖z̄^b_F − ρ z̄^a_F‖²/(1 − ρ²) − logdet^b

    i.e. the negative log-likelihood (up to constants) of z̄^a under N(0, I)
    and of z̄^b given z̄^a when factor F is correlated with coefficient ρ.

    Args:
      zbar_a, zbar_b: ``[B, D]`` outputs of T on the two members of each pair.
      logdet_a, logdet_b: ``[B]`` log|det ∂T/∂z| at each member.
      factor: ``[B]`` int index F ∈ [0, K) of the shared factor of each pair.
      factor_sizes: K+1 static sizes (the last is the residual), summing to D.
      rho: shared-factor correlation in [0, 1).

    Returns:
      Scalar: the mean over the B pairs.
    """
    masks = _factor_masks(factor_sizes, zbar_a.dtype)
    m = masks[factor]  # [B, D]
    nll_a = 0.5 * jnp.sum(zbar_a * zbar_a, axis=-1)
    free = 0.5 * jnp.sum((1.0 - m) * zbar_b * zbar_b, axis=-1)
    diff = zbar_b - rho * zbar_a
    shared = 0.5 * jnp.sum(m * diff * diff, axis=-1) / (1.0 - rho * rho)
    return jnp.mean(nll_a - logdet_a + free + shared - logdet_b)


def flow_loss(zbar: jax.Array, logdet: jax.Array) -> jax.Array:
    """Mean unsupervised flow loss ½‖T(z)‖² − log|det J| (N(0, I) prior, no constant).

    Args:
      zbar: ``[B, D]``; logdet: ``[B]``.
    """
    return jnp.mean(0.5 * jnp.sum(zbar * zbar, axis=-1) - logdet)


def equal_factor_sizes(dim: int, num_attributes: int, residual: int | None = None) -> tuple[int, ...]:
    """K+1 near-equal chunks of ``dim`` (the first ``dim mod (K+1)`` one larger).

    With ``residual``: the last chunk has that size and the K attribute factors
    split ``dim − residual`` near-equally (the first ones larger).
    """
    k1 = num_attributes + 1
    if dim < k1:
        raise ValueError(f"factor_sizes: D={dim} is smaller than the {k1} factors (K attributes + residual)")
    if residual is None:
        base, extra = divmod(dim, k1)
        return tuple(base + (i < extra) for i in range(k1))
    residual = int(residual)
    if not 1 <= residual <= dim - num_attributes:
        raise ValueError(f"residual_size: {residual} leaves fewer than one dimension per attribute factor "
                         f"(D={dim}, K={num_attributes}); expected 1..{dim - num_attributes}")
    base, extra = divmod(dim - residual, num_attributes)
    return tuple(base + (i < extra) for i in range(num_attributes)) + (residual,)


def estimate_factor_sizes(z_a: np.ndarray, z_b: np.ndarray, factor: np.ndarray,
                          num_attributes: int) -> tuple[int, ...]:
    """Factor dimensions from pair statistics, as CompVis/iin's dimension estimator.

    For each attribute F with pairs (z^a, z^b) sharing F, the score is the
    summed per-coordinate covariance between the pair members, divided by the
    total variance of all embeddings:

      s_F = Σ_i mean((z^a_i − m_i)(z^b_i − m_i)) / Σ_i Var(z_i),   m = ½(mean z^a + mean z^b) over F's pairs;

    the residual's score is 1. The sizes are ⌊softmax(s)·D⌋ for the
    attributes and the remainder for the residual. Unlike the reference, every
    factor gets at least one dimension (taken from the residual, then from the
    largest factor).

    Args:
      z_a, z_b: ``[P, D]`` pairs (row p of each); factor: ``[P]`` int in [0, K).
      num_attributes: K.

    Returns:
      K+1 sizes summing to D.
    """
    z_a = np.asarray(z_a, np.float64)
    z_b = np.asarray(z_b, np.float64)
    factor = np.asarray(factor)
    dim = z_a.shape[1]
    equal_factor_sizes(dim, num_attributes)  # D ≥ K+1
    zall = np.concatenate([z_a, z_b])
    total_var = np.sum(np.mean((zall - zall.mean(0)) ** 2, axis=0))
    scores = np.ones(num_attributes + 1)
    for f in range(num_attributes):
        sel = factor == f
        if not sel.any():
            raise ValueError(f"factor: no pair shares attribute {f}; cannot estimate its size")
        a, b = z_a[sel], z_b[sel]
        m = 0.5 * (a.mean(0) + b.mean(0))
        scores[f] = np.sum(np.mean((a - m) * (b - m), axis=0)) / total_var
    e = np.exp(scores - scores.max())
    soft = e / e.sum()
    sizes = [int(s * dim) for s in soft[:-1]]
    sizes.append(dim - sum(sizes))
    for i in range(len(sizes)):  # at least one dimension each
        while sizes[i] < 1:
            donor = len(sizes) - 1 if sizes[-1] > 1 else int(np.argmax(sizes))
            sizes[donor] -= 1
            sizes[i] += 1
    return tuple(sizes)


# -------------------------------------------------------------- attributes
def _check_attributes(attributes: Any, n: int) -> np.ndarray:
    a = np.asarray(attributes)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"attributes: expected [n, K] integer labels, got shape {a.shape}")
    if a.shape[0] != n:
        raise ValueError(f"attributes: {a.shape[0]} rows but z has {n}; row i labels embedding i")
    if a.shape[1] == 0:
        raise ValueError(f"attributes: no attribute columns (shape {a.shape})")
    if a.dtype == np.bool_:
        a = a.astype(np.int64)
    if not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise ValueError(f"attributes: expected integer class labels, got dtype {a.dtype}")
    if (a < 0).any():
        raise ValueError("attributes: class labels must be ≥ 0 (0, 1, … per attribute)")
    for k in range(a.shape[1]):
        values = np.unique(a[:, k])
        if values.size < 2:
            raise ValueError(f"attributes: column {k} has a single value; an attribute needs two classes")
        if values[-1] != values.size - 1:
            raise ValueError(f"attributes: column {k} has classes {values.tolist()[:10]}; expected 0..C-1, "
                             "each present (relabel, e.g. with numpy.unique(..., return_inverse=True))")
    return a.astype(np.int64)


def read_attributes(path: str) -> tuple[np.ndarray, tuple[str, ...], list[list[str]]]:
    """Read a CSV of attributes: a header of K names, then one row per embedding.

    Each column's distinct values (numbers or words) become classes 0, 1, …
    in sorted order.

    Returns:
      ``(attributes [n, K] int64, names, classes)`` with ``classes[k]`` the
      original values of attribute k in class order.
    """
    import csv

    if not os.path.exists(path):
        raise FileNotFoundError(f"attributes: file not found: {path}")
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if len(rows) < 2:
        raise ValueError(f"attributes: {path} needs a header row and at least one data row")
    names = tuple(c.strip() for c in rows[0])
    body = rows[1:]
    for i, r in enumerate(body):
        if len(r) != len(names):
            raise ValueError(f"attributes: {path} row {i + 1} has {len(r)} fields, the header has {len(names)}")
    out = np.empty((len(body), len(names)), np.int64)
    classes = []
    for k in range(len(names)):
        col = [r[k].strip() for r in body]
        try:
            nums = [float(c) for c in col]
            uniq = sorted(set(nums))
            out[:, k] = np.searchsorted(np.asarray(uniq), np.asarray(nums))
            classes.append([f"{u:g}" for u in uniq])
        except ValueError:
            uniq = sorted(set(col))
            lookup = {u: i for i, u in enumerate(uniq)}
            out[:, k] = [lookup[c] for c in col]
            classes.append(uniq)
    return out, names, classes


class _PairSampler:
    """Seeded pairs: anchor i uniform, factor F uniform, partner j uniform among
    the samples with attribute F equal to i's (CompVis/iin's CelebA sampler)."""

    def __init__(self, attributes: np.ndarray, rng: np.random.Generator):
        self.a = attributes
        self.rng = rng
        self.order, self.start, self.count = [], [], []
        for k in range(attributes.shape[1]):
            col = attributes[:, k]
            order = np.argsort(col, kind="stable")
            counts = np.bincount(col)
            self.order.append(order)
            self.start.append(np.concatenate([[0], np.cumsum(counts)[:-1]]))
            self.count.append(counts)

    def sample(self, shape: tuple[int, ...]):
        n, k = self.a.shape
        i = self.rng.integers(0, n, size=shape)
        f = self.rng.integers(0, k, size=shape)
        j = np.empty(shape, np.int64)
        u = self.rng.random(size=shape)
        for kk in range(k):
            sel = f == kk
            c = self.a[i[sel], kk]
            pos = self.start[kk][c] + np.floor(u[sel] * self.count[kk][c]).astype(np.int64)
            j[sel] = self.order[kk][pos]
        return i, j, f


# ------------------------------------------------------------------- model
class IIN:
    """Invertible interpretation network (Esser, Rombach & Ommer 2020).

    ``model = IIN(IINConfig(...)).fit(z, attributes)`` trains T on pairs that
    share an attribute (or on the flow likelihood); then ``encode(z) -> z̄``,
    ``decode(z̄) -> z``, ``factors(z̄)`` splits z̄ into the K attribute factors
    and the residual, and ``edit`` sets or swaps one factor and inverts.

    Attributes (after ``fit`` or ``build``):
      dim: D; factor_sizes: K+1 sizes (last = residual); names: K attribute names.
      class_means: per attribute k, ``[C_k, size_k]`` mean of z̄_k over the
        training embeddings of each class (what ``edit(value=c)`` sets).
      losses: training loss per step (``[steps]``).
      flow: the Flax NNX module (blocks of ActNorm, coupling, permutation).
    """

    def __init__(self, config: IINConfig | None = None, **overrides: Any):
        cfg = IINConfig() if config is None else config
        self.config = dataclasses.replace(cfg, **overrides).validated()
        self.flow: _Flow | None = None
        self.dim: int | None = None
        self.factor_sizes: tuple[int, ...] | None = None
        self.names: tuple[str, ...] = ()
        self.class_means: list[np.ndarray] = []
        self.losses = np.zeros(0)
        self.initialized = False

    # ------------------------------------------------------------ building
    @property
    def dtype(self):
        return jnp.float64 if self.config.dtype == "float64" else jnp.float32

    def build(self, dim: int, num_attributes: int | None = None, *,
              factor_sizes: Sequence[int] | None = None, names: Sequence[str] | None = None) -> "IIN":
        """Create T for dimension ``dim`` with random couplings and identity ActNorm.

        Args:
          dim: D (even).
          num_attributes: K (sizes from ``config.factor_sizes``; ``"estimate"``
            falls back to equal sizes here — ``fit`` estimates them).
          factor_sizes: explicit K+1 sizes (overrides the config).
          names: K attribute names.
        """
        dim = check_positive_int(dim, "dim")
        if dim % 2:
            raise ValueError(f"z: the coupling splits D in halves, so D must be even; got D={dim} "
                             "(drop or pad one coordinate)")
        if self.dtype == jnp.float64 and not jax.config.jax_enable_x64:
            raise ValueError("dtype: 'float64' needs jax_enable_x64 (jax.config.update('jax_enable_x64', True))")
        sizes = factor_sizes if factor_sizes is not None else self.config.factor_sizes
        if isinstance(sizes, str):
            if num_attributes is None:
                raise ValueError("num_attributes: needed when factor sizes are not given")
            sizes = equal_factor_sizes(dim, check_positive_int(num_attributes, "num_attributes"),
                                       self.config.residual_size)
        sizes = tuple(int(s) for s in sizes)
        if sum(sizes) != dim or any(s <= 0 for s in sizes) or len(sizes) < 2:
            raise ValueError(f"factor_sizes: {sizes} must be ≥ 2 positive sizes (K attributes + residual) "
                             f"summing to D={dim}")
        if num_attributes is not None and len(sizes) != num_attributes + 1:
            raise ValueError(f"factor_sizes: {len(sizes)} sizes for {num_attributes} attributes; "
                             "expected K+1 (the last is the residual)")
        k = len(sizes) - 1
        names = tuple(names) if names is not None else tuple(f"attr{i}" for i in range(k))
        if len(names) != k:
            raise ValueError(f"names: {len(names)} names for {k} attributes")
        self.dim, self.factor_sizes, self.names = dim, sizes, names
        self.flow = _Flow(dim, self.config, self.dtype, nnx.Rngs(self.config.seed), self.config.seed + 1)
        self.class_means = []
        self.initialized = False
        return self

    def _need_built(self):
        if self.flow is None:
            raise ValueError("model: not built yet; call fit(z, attributes), build(dim, K) or IIN.load(path)")

    def _as_input(self, z: Any, name: str = "z") -> jax.Array:
        self._need_built()
        single = np.ndim(z) == 1
        x = as_embeddings(np.asarray(z)[None] if single else z, name)
        if x.shape[1] != self.dim:
            raise ValueError(f"{name}: dimension {x.shape[1]} but the model has D={self.dim} (shape {tuple(x.shape)})")
        return x.astype(self.dtype)

    def initialize(self, z: Any) -> "IIN":
        """Data-initialise every ActNorm on ``z: [B, D]`` (loc = −mean, scale = 1/(std + 1e−6)).

        Block by block, as the reference does on its first batch: each
        ActNorm sees the output of the blocks before it. ``std`` is the
        unbiased (ddof = 1) standard deviation, as torch's ``Tensor.std``.
        """
        x = self._as_input(z)
        if x.shape[0] < 2:
            raise ValueError(f"z: ActNorm initialisation needs at least 2 rows, got {x.shape[0]}")
        graphdef, params, rest = self._split()
        nnx.update(self.flow, _actnorm_init(graphdef, params, rest, x))
        self.initialized = True
        return self

    # ------------------------------------------------------------- forward
    def _split(self):
        graphdef, params, rest = nnx.split(self.flow, nnx.Param, ...)
        return graphdef, params, rest

    def forward(self, z: Any) -> tuple[jax.Array, jax.Array]:
        """``(z̄ = T(z) [n, D], log|det ∂T/∂z| [n])``."""
        x = self._as_input(z)
        graphdef, params, rest = self._split()
        return _by_rows(_apply_forward, graphdef, params, rest, x)

    def encode(self, z: Any) -> jax.Array:
        """z̄ = T(z): ``z [n, D] -> [n, D]`` (use ``factors`` to split it)."""
        return self.forward(z)[0]

    def log_det(self, z: Any) -> jax.Array:
        """log|det ∂T/∂z| per row: ``[n]``."""
        return self.forward(z)[1]

    def decode(self, zbar: Any) -> jax.Array:
        """z = T⁻¹(z̄): ``[n, D] -> [n, D]``."""
        y = self._as_input(zbar, "zbar")
        graphdef, params, rest = self._split()
        return _by_rows(_apply_inverse, graphdef, params, rest, y)

    def factors(self, zbar: jax.Array) -> list[jax.Array]:
        """Split ``z̄ [n, D]`` into K attribute factors and the residual (last)."""
        self._need_built()
        cuts = np.cumsum(self.factor_sizes)[:-1]
        return jnp.split(zbar, cuts, axis=-1)

    def _factor_index(self, factor: int | str) -> int:
        k = len(self.factor_sizes) - 1
        if isinstance(factor, str):
            if factor not in self.names:
                raise ValueError(f"factor: unknown attribute {factor!r}; the model has {list(self.names)}")
            return self.names.index(factor)
        if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or not 0 <= factor <= k:
            raise ValueError(f"factor: expected an attribute name or an index in 0..{k} (k = residual), got {factor!r}")
        return int(factor)

    def edit(self, z: Any, factor: int | str, value: Any = None, *, swap_with: Any = None) -> jax.Array:
        """Set or swap factor F and invert: z* = T⁻¹(T(z) with z̄_F replaced).

        Args:
          z: ``[n, D]`` (or ``[D]``) embeddings to edit.
          factor: attribute name or index F (K = the residual).
          value: an int class c of attribute F (z̄_F ← its class mean from
            ``fit``), or an array ``[size_F]`` / ``[n, size_F]`` for z̄_F.
          swap_with: ``[n, D]`` (or ``[D]``) embeddings whose factor F replaces z's.

        Returns:
          ``[n, D]`` edited embeddings.
        """
        self._need_built()
        f = self._factor_index(factor)
        if (value is None) == (swap_with is None):
            raise ValueError("value: give exactly one of value= and swap_with=")
        x = self._as_input(z)
        zbar = self.encode(x)
        lo = int(sum(self.factor_sizes[:f]))
        hi = lo + self.factor_sizes[f]
        if swap_with is not None:
            other = self._as_input(swap_with, "swap_with")
            if other.shape[0] not in (1, x.shape[0]):
                raise ValueError(f"swap_with: {other.shape[0]} rows but z has {x.shape[0]}")
            new = jnp.broadcast_to(self.encode(other)[:, lo:hi], (x.shape[0], hi - lo))
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if f >= len(self.class_means):
                raise ValueError(f"value: no class means for factor {f} (fit the model on attributes first, "
                                 "or pass an array)")
            means = self.class_means[f]
            if not 0 <= value < means.shape[0]:
                raise ValueError(f"value: attribute {self.names[f]!r} has classes 0..{means.shape[0] - 1}, got {value}")
            new = jnp.broadcast_to(jnp.asarray(means[value], self.dtype), (x.shape[0], hi - lo))
        else:
            v = np.asarray(value, dtype=np.float64)
            if v.shape not in ((hi - lo,), (x.shape[0], hi - lo)) or not np.isfinite(v).all():
                raise ValueError(f"value: expected a class index, or finite [{hi - lo}] or [{x.shape[0]}, {hi - lo}] "
                                 f"values of factor {f}, got shape {v.shape}")
            new = jnp.broadcast_to(jnp.asarray(v, self.dtype), (x.shape[0], hi - lo))
        return self.decode(zbar.at[:, lo:hi].set(new))

    # ------------------------------------------------------------ training
    def fit(self, z: Any, attributes: Any = None, *, names: Sequence[str] | None = None,
            progress: bool = True) -> "IIN":
        """Train T on ``z [n, D]`` with integer ``attributes [n, K]``.

        Builds the flow (factor sizes per ``config.factor_sizes``; for
        ``"estimate"``, from 4096 seeded pairs of the raw z), data-initialises
        ActNorm on the first batch, then runs ``config.steps`` Adam steps on
        the pair loss, or on the flow loss (``objective="flow"``; then
        ``attributes`` may be None and K = ``len(names)``, default 1, only sets
        the factor split). Finally stores the class means of each attribute
        factor (for ``edit(value=c)``).

        Args:
          z: ``[n, D]`` embeddings, D even.
          attributes: ``[n, K]`` (or ``[n]``) integer classes ≥ 0, each column
            with at least two classes.
          names: K attribute names (default ``attr0``, …).
          progress: tqdm bar over the steps.

        Returns:
          self.
        """
        cfg = self.config
        x = as_embeddings(z, "z")
        n, dim = x.shape
        if dim % 2:
            raise ValueError(f"z: the coupling splits D in halves, so D must be even; got shape {tuple(x.shape)}")
        if attributes is None:
            if cfg.objective == "pairs":
                raise ValueError("attributes: the pair objective needs [n, K] attribute labels "
                                 "(or use objective='flow')")
            a = None
            k = len(names) if names is not None else 1
        else:
            a = _check_attributes(attributes, n)
            k = a.shape[1]
        if names is not None and len(names) != k:
            raise ValueError(f"names: {len(names)} names for {k} attribute columns")
        rng = np.random.default_rng(cfg.seed)
        sizes = cfg.factor_sizes
        if sizes == "estimate":
            if a is None:
                raise ValueError("factor_sizes: 'estimate' needs attributes")
            xi, xj, fi = _PairSampler(a, np.random.default_rng(cfg.seed + 7)).sample((4096,))
            xh = np.asarray(x, np.float64)
            sizes = estimate_factor_sizes(xh[xi], xh[xj], fi, k)
        elif sizes == "equal":
            sizes = equal_factor_sizes(dim, k, cfg.residual_size)
        self.build(dim, k, factor_sizes=sizes, names=names)
        x = x.astype(self.dtype)
        bs = min(cfg.batch_size, n)
        first = rng.choice(n, size=bs, replace=False) if bs < n else np.arange(n)
        self.initialize(x[first])

        hyper = (float(cfg.learning_rate), float(cfg.betas[0]), float(cfg.betas[1]))
        graphdef, params, rest = self._split()
        opt_state = _adam(hyper).init(params)
        sampler = _PairSampler(a, rng) if a is not None else None
        chunk = max(1, min(cfg.steps, 100))
        losses = []
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, desc="IIN", unit="step", disable=not progress, leave=False)
        done = 0
        try:
            while done < cfg.steps:
                s = min(chunk, cfg.steps - done)
                if sampler is not None and cfg.objective == "pairs":
                    i, j, f = sampler.sample((s, bs))
                    params, opt_state, ls = _train_pairs(graphdef, rest, hyper, self.factor_sizes, float(cfg.rho),
                                                         params, opt_state, _gather(x, jnp.asarray(i)),
                                                         _gather(x, jnp.asarray(j)), jnp.asarray(f))
                else:
                    i = rng.integers(0, n, size=(s, bs))
                    params, opt_state, ls = _train_flow(graphdef, rest, hyper, params, opt_state,
                                                        _gather(x, jnp.asarray(i)))
                ls = np.asarray(ls)
                if not np.isfinite(ls).all():
                    raise FloatingPointError(
                        f"IIN: the loss became non-finite at step {done + int(np.argmin(np.isfinite(ls)))}; "
                        "lower learning_rate")
                losses.append(ls)
                done += s
                bar.update(s)
                bar.set_postfix(loss=f"{ls[-1]:.4g}")
        finally:
            bar.close()
        nnx.update(self.flow, params)
        self.losses = np.concatenate(losses)
        if a is not None:
            self._store_class_means(x, a)
        return self

    def _store_class_means(self, x: jax.Array, a: np.ndarray) -> None:
        zbar = np.asarray(self.encode(x))
        facs = np.split(zbar, np.cumsum(self.factor_sizes)[:-1], axis=1)
        self.class_means = []
        for k in range(a.shape[1]):
            c = int(a[:, k].max()) + 1
            means = np.stack([facs[k][a[:, k] == cc].mean(0) if (a[:, k] == cc).any()
                              else np.full(facs[k].shape[1], np.nan) for cc in range(c)])
            self.class_means.append(means)

    # ----------------------------------------------------------- save/load
    def save(self, path: str) -> str:
        """Write the model (config, factor sizes, names, permutations, all parameters,
        class means) to one ``.npz`` file; returns the path."""
        self._need_built()
        flat = {}
        for keys, var in nnx.to_flat_state(nnx.state(self.flow)):
            flat["state/" + "/".join(map(str, keys))] = np.asarray(var[...])
        for k, m in enumerate(self.class_means):
            flat[f"class_means/{k}"] = m
        meta = {"format": "clipcore-iin-1", "config": dataclasses.asdict(self.config), "dim": self.dim,
                "factor_sizes": list(self.factor_sizes), "names": list(self.names),
                "initialized": self.initialized, "num_class_means": len(self.class_means)}
        flat["meta"] = np.asarray(json.dumps(meta))
        if not path.endswith(".npz"):
            path = path + ".npz"
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        np.savez(path, **flat)
        return path

    @classmethod
    def load(cls, path: str) -> "IIN":
        """Read a model written by :meth:`save`."""
        if not os.path.exists(path):
            raise FileNotFoundError(f"model: file not found: {path}")
        with np.load(path, allow_pickle=False) as zf:
            if "meta" not in zf:
                raise ValueError(f"model: {path} is not a clipcore IIN file (no 'meta')")
            meta = json.loads(str(zf["meta"]))
            arrays = {k: zf[k] for k in zf.keys() if k != "meta"}
        cfgd = dict(meta["config"])
        cfgd["betas"] = tuple(cfgd["betas"])
        if isinstance(cfgd["factor_sizes"], list):
            cfgd["factor_sizes"] = tuple(cfgd["factor_sizes"])
        model = cls(IINConfig(**cfgd))
        model.build(meta["dim"], factor_sizes=meta["factor_sizes"], names=meta["names"])
        state = nnx.state(model.flow)
        flat = []
        for keys, var in nnx.to_flat_state(state):
            key = "state/" + "/".join(map(str, keys))
            if key not in arrays:
                raise ValueError(f"model: {path} lacks {key}")
            if arrays[key].shape != var[...].shape:
                raise ValueError(f"model: {key} has shape {arrays[key].shape}, expected {var[...].shape}")
            var[...] = jnp.asarray(arrays[key], var[...].dtype)
            flat.append((keys, var))
        nnx.update(model.flow, nnx.from_flat_state(flat))
        model.class_means = [arrays[f"class_means/{k}"] for k in range(meta["num_class_means"])]
        model.initialized = meta["initialized"]
        return model

    def numpy_params(self) -> list[dict]:
        """Parameters as float64 NumPy, one dict per block (for independent references):
        ``loc, scale, perm`` and ``s1, t1, s2, t2`` = lists of ``(W [in, out], b [out])``."""
        self._need_built()
        b = self.flow.blocks

        def take(v, i):
            return np.asarray(v[...][i], np.float64)

        out = []
        for i in range(self.flow.num_blocks):
            d = {"loc": take(b.loc, i), "scale": take(b.scale, i), "perm": np.asarray(b.perm[...][i])}
            for nm in ("s1", "t1", "s2", "t2"):
                mlp = getattr(b, nm)
                d[nm] = [(take(l.kernel, i), take(l.bias, i)) for l in list(mlp.hidden) + [mlp.out]]
            out.append(d)
        return out


# ----------------------------------------------------- jitted entry points
def _forward_pure(graphdef, params, rest, x):
    flow = nnx.merge(graphdef, params, rest)
    return flow.forward(x)


_apply_forward = jax.jit(_forward_pure, static_argnums=0)


def _inverse_pure(graphdef, params, rest, y):
    flow = nnx.merge(graphdef, params, rest)
    return flow.inverse(y)


_apply_inverse = jax.jit(_inverse_pure, static_argnums=0)

#: Rows per jitted call; smaller inputs are zero-padded to the next power of
#: four (16, 64, 256, 1024), so at most four shapes are ever compiled.
_CHUNK = 1024


def _by_rows(fn, graphdef, params, rest, x):
    """Apply a row-wise jitted ``fn`` in padded chunks (bounded recompilation)."""
    outs = []
    for start in range(0, x.shape[0], _CHUNK):
        part = x[start:start + _CHUNK]
        rows = part.shape[0]
        padded = 16
        while padded < rows:
            padded *= 4
        if padded != rows:
            part = jnp.concatenate([part, jnp.zeros((padded - rows, part.shape[1]), part.dtype)])
        out = fn(graphdef, params, rest, part)
        outs.append(jax.tree.map(lambda a: a[:rows], out))
    if len(outs) == 1:
        return outs[0]
    return jax.tree.map(lambda *a: jnp.concatenate(a), *outs)


@functools.partial(jax.jit, static_argnums=0)
def _actnorm_init(graphdef, params, rest, x):
    """ActNorm data init, block by block (each sees the blocks before it)."""
    flow = nnx.merge(graphdef, params, rest)
    blocks_def, state = nnx.split(flow.blocks)

    def body(v, st):
        blk = nnx.merge(blocks_def, st)
        blk.loc[...] = -jnp.mean(v, axis=0)
        blk.scale[...] = 1.0 / (jnp.std(v, axis=0, ddof=1) + 1e-6)
        v, _ = blk.forward(v)
        return v, (blk.loc[...], blk.scale[...])

    _, (locs, scales) = jax.lax.scan(body, x, state)
    flow.blocks.loc[...] = locs
    flow.blocks.scale[...] = scales
    return nnx.state(flow, nnx.Param)


def _pairs_objective(params, graphdef, rest, factor_sizes, rho, xa, xb, f):
    za, lda = _forward_pure(graphdef, params, rest, xa)
    zb, ldb = _forward_pure(graphdef, params, rest, xb)
    return pair_loss(za, lda, zb, ldb, f, factor_sizes, rho)


def _flow_objective(params, graphdef, rest, x):
    zb, ld = _forward_pure(graphdef, params, rest, x)
    return flow_loss(zb, ld)


_gather = jax.jit(lambda x, i: x[i])


def _adam(hyper):
    lr, b1, b2 = hyper
    return optax.adam(lr, b1=b1, b2=b2)


@functools.partial(jax.jit, static_argnums=(0, 2, 3, 4))
def _train_pairs(graphdef, rest, hyper, factor_sizes, rho, params, opt_state, xa, xb, ff):
    """``xa, xb: [steps, B, D]`` pair members, ``ff: [steps, B]`` shared factors."""
    tx = _adam(hyper)

    def step(carry, batch):
        p, o = carry
        a, b, f = batch
        loss, g = jax.value_and_grad(_pairs_objective)(p, graphdef, rest, factor_sizes, rho, a, b, f)
        upd, o = tx.update(g, o, p)
        return (optax.apply_updates(p, upd), o), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (xa, xb, ff))
    return params, opt_state, losses


@functools.partial(jax.jit, static_argnums=(0, 2))
def _train_flow(graphdef, rest, hyper, params, opt_state, xs):
    tx = _adam(hyper)

    def step(carry, xb):
        p, o = carry
        loss, g = jax.value_and_grad(_flow_objective)(p, graphdef, rest, xb)
        upd, o = tx.update(g, o, p)
        return (optax.apply_updates(p, upd), o), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), xs)
    return params, opt_state, losses


# -------------------------------------------------------------- evaluation
class IINEvaluation(NamedTuple):
    """Disentanglement and editing figures of a trained IIN on held-out data.

    Attributes:
      names: the K attribute names.
      factor_sizes: K+1 sizes (last = residual).
      reconstruction_error: max over rows of ‖T⁻¹(T(z)) − z‖₂.
      reconstruction_relative: that divided by the largest ‖z‖₂.
      probe_accuracy: ``[K+1, K]`` test accuracy of a logistic regression on
        z̄_f (row f; the last row is the residual) predicting attribute k.
      chance: ``[K]`` majority-class rate of each attribute (test split).
      raw_probe_accuracy: ``[K]`` accuracy of the probes on the original z.
      flip_rate: ``[K]`` fraction of edits of factor F (z̄_F ← mean of the
        target class, the next class cyclically: the other class when binary)
        after which the z-probe of F predicts the target class.
      collateral_rate: ``[K]`` fraction of (edit, other attribute k ≠ F)
        whose z-probe prediction changed.
      success_rate: ``[K]`` fraction of edits with F flipped and no other
        attribute's prediction changed.
      edit_success: mean of ``success_rate``.
    """

    names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    reconstruction_error: float
    reconstruction_relative: float
    probe_accuracy: np.ndarray
    chance: np.ndarray
    raw_probe_accuracy: np.ndarray
    flip_rate: np.ndarray
    collateral_rate: np.ndarray
    success_rate: np.ndarray
    edit_success: float


def _probe(seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))


def evaluate_iin(model: IIN, z_train: Any, a_train: Any, z_test: Any, a_test: Any, *,
                 seed: int = 0) -> IINEvaluation:
    """Probe accuracies, reconstruction and edit success of a fitted IIN.

    Probes (scikit-learn ``LogisticRegression`` on standardised inputs) are
    trained on the train split and scored on the test split: one per
    (factor f, attribute k) on z̄_f, and one per attribute on the original z
    (the edit judges). Each test embedding is edited once per attribute F:
    z̄_F ← class mean (from ``fit``) of the target class ``(a_F + 1) mod C_F``.

    Args:
      model: a fitted :class:`IIN` (``class_means`` set).
      z_train, a_train: ``[n, D]``, ``[n, K]`` probe training data.
      z_test, a_test: ``[m, D]``, ``[m, K]`` held-out data.
      seed: probe seed.

    Returns:
      IINEvaluation.
    """
    model._need_built()
    xtr = np.asarray(model._as_input(z_train, "z_train"), np.float64)
    xte = np.asarray(model._as_input(z_test, "z_test"), np.float64)
    atr = _check_attributes(a_train, xtr.shape[0])
    ate = _check_attributes(a_test, xte.shape[0])
    k = len(model.factor_sizes) - 1
    if atr.shape[1] != k or ate.shape[1] != k:
        raise ValueError(f"attributes: {atr.shape[1]} (train) / {ate.shape[1]} (test) columns but the model has K={k}")
    if len(model.class_means) != k:
        raise ValueError("model: no class means; fit it on attributes before evaluating edits")

    ztr = np.asarray(model.encode(xtr), np.float64)
    zte = np.asarray(model.encode(xte), np.float64)
    rec = np.asarray(model.decode(zte), np.float64)
    err = np.linalg.norm(rec - xte, axis=1)
    cuts = np.cumsum(model.factor_sizes)[:-1]
    ftr, fte = np.split(ztr, cuts, axis=1), np.split(zte, cuts, axis=1)
    acc = np.zeros((k + 1, k))
    for f in range(k + 1):
        for kk in range(k):
            acc[f, kk] = _probe(seed).fit(ftr[f], atr[:, kk]).score(fte[f], ate[:, kk])
    chance = np.array([np.bincount(ate[:, kk]).max() / ate.shape[0] for kk in range(k)])
    probes = [_probe(seed).fit(xtr, atr[:, kk]) for kk in range(k)]
    raw = np.array([p.score(xte, ate[:, kk]) for kk, p in enumerate(probes)])
    before = np.stack([p.predict(xte) for p in probes], axis=1)
    flip, coll, succ = np.zeros(k), np.zeros(k), np.zeros(k)
    for f in range(k):
        c = model.class_means[f].shape[0]
        target = (ate[:, f] + 1) % c
        zbar = zte.copy()
        lo, hi = int(sum(model.factor_sizes[:f])), int(sum(model.factor_sizes[:f + 1]))
        zbar[:, lo:hi] = model.class_means[f][target]
        edited = np.asarray(model.decode(zbar), np.float64)
        after = np.stack([p.predict(edited) for p in probes], axis=1)
        flipped = after[:, f] == target
        others = [kk for kk in range(k) if kk != f]
        changed = after[:, others] != before[:, others]
        flip[f] = flipped.mean()
        coll[f] = changed.mean() if others else 0.0
        succ[f] = (flipped & ~changed.any(axis=1)).mean()
    scale = float(np.linalg.norm(xte, axis=1).max())
    return IINEvaluation(tuple(model.names), tuple(model.factor_sizes), float(err.max()),
                         float(err.max() / scale) if scale > 0 else float("nan"), acc, chance, raw,
                         flip, coll, succ, float(succ.mean()))
