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
The flow and its objectives live in :mod:`clipcore.models.iin_flow`
(:func:`pair_loss`, :func:`flow_loss`, :func:`estimate_factor_sizes`, re-exported
here), the attribute checks, CSV reader and pair sampler in
:mod:`clipcore.models.iin_data`, the probes and edit success in
:mod:`clipcore.models.iin_eval` (:func:`~clipcore.models.evaluate_iin`). This
module holds the :class:`IIN` fit / encode / decode / edit / save / load API;
training is the models' one scan trainer (:mod:`clipcore.models._common`,
programs in :mod:`clipcore.models.iin_train`).

Held-out edits and training length: a flow this size memorises a few
thousand training rows (its NLL falls on them and rises held out; held-out
rows land far from their class cluster in z̄_F), so edits of held-out rows got
worse the longer it trained while those of the training rows stayed near
perfect. ``fit`` therefore jitters the pair members (``input_noise``) and
keeps the checkpoint whose edits of a validation split succeed best
(``validation_fraction``, ``eval_every``; :mod:`clipcore.models.iin_select`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .._progress import bar as progress_bar
from .._progress import check_progress
from .._validate import as_embeddings, check_positive_int
from ._common import apply_rows, load_model, restore_state, save_model, state_tensors, train_in_chunks
from .iin_data import PairSampler, check_attributes, read_attributes
from .iin_flow import Flow, equal_factor_sizes, estimate_factor_sizes, flow_loss, pair_loss
from .iin_select import EditJudge
from .iin_train import actnorm_init, batch_maker, check_finite, flow_trainer, pairs_trainer

#: Rows per jitted call of encode / decode (:func:`clipcore.models._common.apply_rows`: smaller inputs are
#: zero-padded to 16, 64, 256 or 1024 rows, so at most four shapes are ever compiled).
_CHUNK = 1024

__all__ = [
    "IIN",
    "IINConfig",
    "pair_loss",
    "flow_loss",
    "estimate_factor_sizes",
    "equal_factor_sizes",
    "read_attributes",
    "check_attributes",
    "PairSampler",
    "pairs_trainer",
    "flow_trainer",
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
        the input coordinates (:func:`~clipcore.models.iin_data.synthetic_attributes`):
        the pair loss purges attribute F quickly from the other attribute
        factors but from the residual only through the weak N(0, I) prior,
        so F's share that starts in the residual stays there and setting
        z̄_F moves only the rest (512-d: edit success 0.40–0.71 with equal
        chunks, ≥ 0.98 with a 2-d residual). The price: what no attribute
        explains is then squeezed into the attribute factors, and setting
        z̄_F to a class mean resets F's share of it. bench/RESULTS.md, IIN.
      objective: ``"pairs"`` (the factor pair loss, ρ = ``rho``) or ``"flow"``
        (unsupervised likelihood ½‖T(z)‖² − log|det J|).
      rho: correlation of a shared factor in the pair loss (0.975).
      learning_rate, betas: Adam (1e−4, (0.5, 0.9)).
      batch_size: pairs (or samples) per step; steps: optimiser steps.
      seed: initialisation, permutations, pair sampling and the validation split.
      dtype: parameter and compute dtype, ``"float32"`` or ``"float64"``
        (float64 needs ``jax_enable_x64``).
      input_noise: each pair member is jittered by ``input_noise`` times the
        data's per-coordinate standard deviation times N(0, 1), drawn afresh
        every step (0.1; 0: the paper's plain pairs). Why: on 4 500 rows the
        flow learns the training rows themselves — held out, its edits got
        worse the longer it trained (64-d, three attributes, 4 blocks ×
        hidden 128, lr 1e-3: edit success 0.95 → 0.82 and collateral 0.08 →
        0.15 from 1 500 to 4 000 steps, while on the training rows they stayed
        at 0.99 / 0.02). The jitter makes the pair loss hold on a neighbourhood
        of each row instead (see :func:`clipcore.models.iin_train.pairs_trainer`).
      validation_fraction: with attributes and the pair objective, this seeded
        fraction of the rows is kept out of training (0.1; 0: none, the last
        step is kept) and judges a checkpoint every ``eval_every`` steps: each
        validation row is edited once per attribute and judged by probes
        trained on the other rows' original embeddings
        (:class:`~clipcore.models.iin_select.EditJudge`); the checkpoint with
        the best mean edit success (flip and no collateral) is kept, so more
        steps can only add candidates.
      eval_every: steps between checkpoints (250).
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
    input_noise: float = 0.1
    validation_fraction: float = 0.1
    eval_every: int = 250

    def validated(self) -> "IINConfig":
        for name in ("num_blocks", "hidden", "hidden_layers", "batch_size", "steps", "eval_every"):
            check_positive_int(getattr(self, name), name)
        for name, top in (("input_noise", np.inf), ("validation_fraction", 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) < top:
                raise ValueError(f"{name}: expected a number in [0, {top:g}), got {v!r}")
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
        self.flow: Flow | None = None
        self.dim: int | None = None
        self.factor_sizes: tuple[int, ...] | None = None
        self.names: tuple[str, ...] = ()
        self.class_means: list[np.ndarray] = []
        self.losses = np.zeros(0)
        self.initialized = False
        self.validation_history: list[dict] = []
        self.best_step: int | None = None

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
        c = self.config
        self.flow = Flow(dim, c.num_blocks, c.hidden, c.hidden_layers, c.negative_slope, self.dtype, nnx.Rngs(c.seed),
                         c.seed + 1)
        self.class_means = []
        self.initialized = False
        return self


    def _need_built(self):
        if self.flow is None:
            raise ValueError("model: not built yet; call fit(z, attributes), build(dim, K) or IIN.load(path)")

    def check_input(self, z: Any, name: str = "z") -> jax.Array:
        """``z: [n, D]`` (or ``[D]``) checked (:func:`clipcore._validate.as_embeddings`, D of the model)
        and cast to the model's dtype: ``[n, D]``."""
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
        x = self.check_input(z)
        if x.shape[0] < 2:
            raise ValueError(f"z: ActNorm initialisation needs at least 2 rows, got {x.shape[0]}")
        graphdef, params, rest = self._split()
        nnx.update(self.flow, actnorm_init(graphdef, params, rest, x))
        self.initialized = True
        return self

    # ------------------------------------------------------------- forward
    def _split(self):
        graphdef, params, rest = nnx.split(self.flow, nnx.Param, ...)
        return graphdef, params, rest

    def forward(self, z: Any) -> tuple[jax.Array, jax.Array]:
        """``(z̄ = T(z) [n, D], log|det ∂T/∂z| [n])``."""
        x = self.check_input(z)
        graphdef, params, rest = self._split()
        return apply_rows(graphdef, (params, rest), x, method="forward", chunk=_CHUNK)

    def encode(self, z: Any) -> jax.Array:
        """z̄ = T(z): ``z [n, D] -> [n, D]`` (use ``factors`` to split it)."""
        return self.forward(z)[0]

    def log_det(self, z: Any) -> jax.Array:
        """log|det ∂T/∂z| per row: ``[n]``."""
        return self.forward(z)[1]

    def decode(self, zbar: Any) -> jax.Array:
        """z = T⁻¹(z̄): ``[n, D] -> [n, D]``."""
        y = self.check_input(zbar, "zbar")
        graphdef, params, rest = self._split()
        return apply_rows(graphdef, (params, rest), y, method="inverse", chunk=_CHUNK)

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
        x = self.check_input(z)
        zbar = self.encode(x)
        lo = int(sum(self.factor_sizes[:f]))
        hi = lo + self.factor_sizes[f]
        if swap_with is not None:
            other = self.check_input(swap_with, "swap_with")
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
            progress: bool | None = None) -> "IIN":
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
          progress: a bar over the steps (``None``: shown after 2 s; ``True``: at once; ``False``: never).

        Returns:
          self.
        """
        cfg = self.config
        progress = check_progress(progress)
        x = as_embeddings(z, "z")
        n, dim = x.shape
        if dim % 2:
            raise ValueError(f"z: the coupling splits D in halves, so D must be even; got shape {tuple(x.shape)}")
        a, k = self._fit_attributes(attributes, names, n)
        rng = np.random.default_rng(cfg.seed)
        fit_rows, val_rows = self._validation_split(a, n)
        xf, af = x[fit_rows], (None if a is None else a[fit_rows])
        self.build(dim, k, factor_sizes=self._fit_sizes(xf, af, k), names=names)
        xf = xf.astype(self.dtype)
        bs = min(cfg.batch_size, xf.shape[0])
        first = rng.choice(xf.shape[0], size=bs, replace=False) if bs < xf.shape[0] else np.arange(xf.shape[0])
        self.initialize(xf[first])
        val = None if val_rows is None else (np.asarray(x[val_rows], np.float64), a[val_rows])
        self._train(xf, af, rng, progress, val)
        if a is not None:
            self._store_class_means(xf, af)
        return self

    def _validation_split(self, a: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows to fit and rows to select the checkpoint on (None: no selection, the last step is kept).

        A seeded (``seed + 3``) ``validation_fraction`` of the rows, when there are attributes, the pair
        objective, at least 2 rows on each side and every class of every attribute left to fit on."""
        cfg = self.config
        m = int(round(cfg.validation_fraction * n))
        if a is None or cfg.objective != "pairs" or m < 2 or n - m < 2:
            return np.arange(n), None
        perm = np.random.default_rng(cfg.seed + 3).permutation(n)
        fit_rows, val_rows = np.sort(perm[m:]), np.sort(perm[:m])
        if any(np.unique(a[fit_rows, j]).size != np.unique(a[:, j]).size for j in range(a.shape[1])):
            return np.arange(n), None
        return fit_rows, val_rows

    def _fit_attributes(self, attributes: Any, names: Sequence[str] | None, n: int) -> tuple[np.ndarray | None, int]:
        """The checked attributes (None for the flow objective without them) and K."""
        if attributes is None:
            if self.config.objective == "pairs":
                raise ValueError("attributes: the pair objective needs [n, K] attribute labels "
                                 "(or use objective='flow')")
            a, k = None, (len(names) if names is not None else 1)
        else:
            a = check_attributes(attributes, n)
            k = a.shape[1]
        if names is not None and len(names) != k:
            raise ValueError(f"names: {len(names)} names for {k} attribute columns")
        return a, k

    def _fit_sizes(self, x: jax.Array, a: np.ndarray | None, k: int) -> tuple[int, ...]:
        """The factor sizes ``fit`` builds with: estimated from 4096 seeded pairs, equal, or as configured."""
        cfg = self.config
        sizes = cfg.factor_sizes
        if sizes == "estimate":
            if a is None:
                raise ValueError("factor_sizes: 'estimate' needs attributes")
            xi, xj, fi = PairSampler(a, np.random.default_rng(cfg.seed + 7)).sample((4096,))
            xh = np.asarray(x, np.float64)
            return estimate_factor_sizes(xh[xi], xh[xj], fi, k)
        if sizes == "equal":
            return equal_factor_sizes(int(x.shape[1]), k, cfg.residual_size)
        return sizes

    def _train(self, x: jax.Array, a: np.ndarray | None, rng: np.random.Generator, progress: bool | None,
               val: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """``config.steps`` Adam steps (pairs, or the flow likelihood), 100 per compiled chunk; sets ``losses``.

        With ``val`` (validation rows and their attributes), a checkpoint every ``eval_every`` steps is judged
        by its edits of those rows (:class:`~clipcore.models.iin_select.EditJudge`, probes trained on ``x``)
        and the best one is kept (``best_step``, ``validation_history``)."""
        cfg = self.config
        graphdef, params, rest = self._split()
        pairs = a is not None and cfg.objective == "pairs"
        noise = float(cfg.input_noise) if pairs else 0.0
        hyper = (float(cfg.learning_rate), float(cfg.betas[0]), float(cfg.betas[1]))
        tx, run = pairs_trainer(graphdef, hyper, self.factor_sizes, float(cfg.rho), noise) if pairs \
            else flow_trainer(graphdef, hyper)
        data = (rest, jnp.std(x, axis=0)) if noise > 0 else rest
        batches = batch_maker(x, PairSampler(a, rng) if pairs else None, rng, min(cfg.batch_size, x.shape[0]),
                               noise > 0)
        judge = None if val is None else EditJudge(np.asarray(x, np.float64), a, cfg.seed)
        segment = cfg.eval_every if judge is not None else cfg.steps
        opt_state, done, best, out = tx.init(params), 0, None, []
        self.validation_history, self.best_step = [], None
        with progress_bar(cfg.steps, "IIN", progress, unit="step", unit_scale=False) as bar:
            while done < cfg.steps:
                steps = min(segment, cfg.steps - done)
                params, opt_state, losses = train_in_chunks(
                    run, params, opt_state, data, total=steps, chunk=min(steps, 100), batches=batches, bar=bar,
                    check=lambda first, ls, base=done: check_finite(base + first, ls))
                out += losses
                done += steps
                if judge is not None:
                    score = self._judge_checkpoint(params, x, a, judge, val, done)
                    if best is None or score > best[0]:
                        best = (score, done, params)
        if best is not None:
            params, self.best_step = best[2], best[1]
        nnx.update(self.flow, params)
        self.losses = np.concatenate(out)

    def _judge_checkpoint(self, params, x, a, judge: EditJudge, val, step: int) -> float:
        """The mean edit success of the flow with ``params`` on the validation rows (appended to
        ``validation_history``)."""
        nnx.update(self.flow, params)
        self._store_class_means(x, a)
        r = judge.rates(self, *val)
        score = float(np.mean(r.success))
        self.validation_history.append({"step": step, "success": score, "flip": r.flip.tolist(),
                                        "collateral": r.collateral.tolist()})
        return score

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
    def save(self, path: str | os.PathLike) -> str:
        """Write the model (config, factor sizes, names, permutations, all parameters, class means) to one
        file in the models' one format (:func:`clipcore.models._common.save_model`); a path ending in
        neither ``.npz`` nor ``.safetensors`` gets ``.npz`` added (the name this method always gave).

        Returns:
          the path written.
        """
        self._need_built()
        tensors = state_tensors(self.flow)
        for k, m in enumerate(self.class_means):
            tensors[f"class_means.{k}"] = np.asarray(m)
        state = {"dim": self.dim, "factor_sizes": list(self.factor_sizes), "names": list(self.names),
                 "initialized": self.initialized, "num_class_means": len(self.class_means),
                 "best_step": self.best_step, "validation_history": self.validation_history}
        path = os.fspath(path)
        if not path.endswith((".npz", ".safetensors")):
            path = path + ".npz"
        return save_model(path, "IIN", config=dataclasses.asdict(self.config), state=state, tensors=tensors)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "IIN":
        """Read a model written by :meth:`save` (or by clipcore's earlier ``clipcore-iin-1`` ``.npz`` format)."""
        saved = load_model(path, "IIN")
        cfgd = dict(saved.config)
        cfgd["betas"] = tuple(cfgd["betas"])
        if isinstance(cfgd["factor_sizes"], list):
            cfgd["factor_sizes"] = tuple(cfgd["factor_sizes"])
        model = cls(IINConfig(**cfgd))
        st = saved.state
        model.build(st["dim"], factor_sizes=st["factor_sizes"], names=st["names"])
        restore_state(model.flow, saved.tensors, os.fspath(path))
        model.class_means = [saved.tensors[f"class_means.{k}"] for k in range(st["num_class_means"])]
        model.initialized = st["initialized"]
        model.best_step = st.get("best_step")
        model.validation_history = list(st.get("validation_history", []))
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
                d[nm] = [(take(l.kernel, i), take(l.bias, i)) for l in mlp.layers]
            out.append(d)
        return out

