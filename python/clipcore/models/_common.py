"""What the three models (neural MDS, DEC, IIN) share.

* :class:`MLP` — the one Flax NNX multilayer perceptron (ReLU / GELU /
  LeakyReLU hidden layers, a linear last layer, optionally ``tanh``-bounded,
  optionally zero-initialised so that a residual branch or a coupling starts
  as the identity);
* :func:`apply_rows` / :func:`in_chunks` — the one batched apply: rows in
  chunks, each padded to one of a few bucket sizes (16, 64, 256, …, ``chunk``)
  so that a jitted program is compiled a bounded number of times whatever the
  number of rows;
* :func:`scan_trainer` — the one training loop: optax steps in a
  ``lax.scan`` under ``jit``; :func:`train_in_chunks` drives it from the host
  in compiled chunks with a progress bar (:func:`clipcore._progress.bar`);
* :func:`save_model` / :func:`load_model` — the one save format: a
  safetensors file holding the module's variables (``state.<path>``) and any
  further arrays, with the kind, the config and the fitted scalars as JSON
  metadata. Files written in the three earlier formats load too
  (:mod:`clipcore.models._legacy`).
"""

from __future__ import annotations

import dataclasses

import functools
import json
import os
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .._version import __version__
from . import _legacy

__all__ = [
    "merge_config",
    "MLP",
    "ACTIVATIONS",
    "bucket_rows",
    "in_chunks",
    "apply_rows",
    "scan_trainer",
    "train_in_chunks",
    "FORMAT",
    "SavedModel",
    "save_model",
    "load_model",
    "state_tensors",
    "restore_state",
]

#: Hidden-layer activations of :class:`MLP` (by name, so that the module's graph stays hashable).
ACTIVATIONS = ("relu", "gelu", "leaky_relu")


# ------------------------------------------------------------------ the MLP
class MLP(nnx.Module):
    """``widths[0] → widths[1] → … → widths[-1]``: activation after every layer but the last.

    Args:
      widths: layer widths, input first (at least two).
      activation: ``"relu"``, ``"gelu"`` (tanh approximation) or ``"leaky_relu"``.
      negative_slope: the LeakyReLU slope.
      final: ``"tanh"`` to bound the output, or None (linear output).
      kernel_init: initialiser of every kernel (None: Flax's default, LeCun normal).
      zero_last: the last kernel starts at zero (the output starts at the last bias, 0).
      param_dtype, dtype: parameter and computation dtype (``dtype=None``: promoted from the inputs).
      rngs: ``nnx.Rngs`` for the initialisation.

    Call: ``[..., widths[0]]`` → ``[..., widths[-1]]``.
    """

    def __init__(self, widths: Sequence[int], *, activation: str = "relu", negative_slope: float = 0.01,
                 final: str | None = None, kernel_init: Any = None, zero_last: bool = False,
                 param_dtype: Any = jnp.float32, dtype: Any = None, rngs: nnx.Rngs):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {activation!r}")
        widths = tuple(int(w) for w in widths)
        layers = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            init = nnx.initializers.zeros if zero_last and i == len(widths) - 2 else kernel_init
            kw = {} if init is None else {"kernel_init": init}
            layers.append(nnx.Linear(a, b, param_dtype=param_dtype, dtype=dtype, rngs=rngs, **kw))
        self.layers = nnx.List(layers)
        self.activation = activation
        self.negative_slope = float(negative_slope)
        self.final = final

    def _act(self, x: jax.Array) -> jax.Array:
        if self.activation == "relu":
            return jax.nn.relu(x)
        if self.activation == "gelu":
            return jax.nn.gelu(x)
        return jax.nn.leaky_relu(x, self.negative_slope)

    def __call__(self, x: jax.Array) -> jax.Array:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = self._act(x)
        return jnp.tanh(x) if self.final == "tanh" else x


# --------------------------------------------------------------- batched apply
def merge_config(model: str, config_cls: type, config: Any, options: dict) -> Any:
    """The model's config: ``config`` (or the defaults) with ``options`` replaced, validated; an option
    ``config_cls`` does not have is refused, naming the model."""
    unknown = set(options) - {f.name for f in dataclasses.fields(config_cls)}
    if unknown:
        raise ValueError(f"{model}: unknown option(s) {sorted(unknown)}; see {config_cls.__name__}")
    return dataclasses.replace(config if config is not None else config_cls(), **options).validated()


def bucket_rows(rows: int, chunk: int) -> int:
    """The padded size of a chunk of ``rows`` rows: the smallest of 16, 64, 256, … (×4), capped at ``chunk``."""
    size = 16
    while size < rows:
        size *= 4
    return max(min(size, chunk), rows)


def in_chunks(fn: Callable[[jax.Array], Any], x: jax.Array, chunk: int = 4096) -> Any:
    """``fn`` (row-wise, usually jitted) over ``x: [n, d]`` in chunks of at most ``chunk`` rows.

    Each chunk is zero-padded to :func:`bucket_rows` rows and the padding cut
    from the result, so ``fn`` sees at most a handful of shapes.

    Returns:
      ``fn``'s pytree of ``[n, ...]`` arrays.
    """
    chunk = int(chunk)
    if chunk <= 0:
        raise ValueError(f"chunk: expected a positive integer, got {chunk}")
    outs = []
    for start in range(0, x.shape[0], chunk):
        part = x[start:start + chunk]
        rows = part.shape[0]
        padded = bucket_rows(rows, chunk)
        if padded != rows:
            part = jnp.concatenate([part, jnp.zeros((padded - rows, *part.shape[1:]), part.dtype)])
        out = fn(part)
        outs.append(jax.tree.map(lambda a, r=rows: a[:r], out))
    if len(outs) == 1:
        return outs[0]
    return jax.tree.map(lambda *a: jnp.concatenate(a), *outs)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _call(graphdef, method: str, state: tuple, x: jax.Array):
    module = nnx.merge(graphdef, *state)
    return (module if method == "__call__" else getattr(module, method))(x)


def apply_rows(graphdef: Any, state: tuple, x: jax.Array, *, method: str = "__call__", chunk: int = 4096) -> Any:
    """``nnx.merge(graphdef, *state).<method>(x)`` by :func:`in_chunks`, under one jit.

    Args:
      graphdef, state: a split module (``nnx.split(module, ...)``: the graph
        definition and a tuple of its states).
      x: ``[n, d]`` rows.
      method: the module's method to call (``"__call__"``, ``"forward"``, ``"inverse"``, …).
      chunk: rows per call.
    """
    return in_chunks(functools.partial(_call, graphdef, method, tuple(state)), x, chunk)


# ------------------------------------------------------------------ training
def scan_trainer(loss_fn: Callable, tx: optax.GradientTransformation) -> Callable:
    """The one training loop: a jitted ``run(params, opt_state, data, batches)``.

    ``run`` takes one optimiser step per leading entry of ``batches`` (a
    pytree of ``[steps, ...]`` arrays: minibatch indices, keys, gathered rows)
    in a ``lax.scan``: ``loss, grads = value_and_grad(loss_fn)(params, data,
    batch)``, then ``tx``'s update. ``data`` is held fixed over the steps.

    Args:
      loss_fn: ``loss_fn(params, data, batch) -> scalar``.
      tx: the optax optimiser (initialise its state with ``tx.init(params)``).

    Returns:
      ``run`` → ``(params, opt_state, losses [steps])``.
    """

    @jax.jit
    def run(params, opt_state, data, batches):
        def step(carry, batch):
            p, o = carry
            loss, grads = jax.value_and_grad(loss_fn)(p, data, batch)
            updates, o = tx.update(grads, o, p)
            return (optax.apply_updates(p, updates), o), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), batches)
        return params, opt_state, losses

    return run


def train_in_chunks(run: Callable, params: Any, opt_state: Any, data: Any, *, total: int, chunk: int,
                    batches: Callable[[int], Any], bar: Any, check: Callable | None = None):
    """Drive a :func:`scan_trainer` ``run`` for ``total`` steps in compiled chunks of ``chunk`` steps.

    Args:
      run, params, opt_state, data: as :func:`scan_trainer`.
      total: steps in all; chunk: steps per compiled call (the last may be shorter).
      batches: ``batches(steps)`` → the scanned pytree for the next ``steps`` steps.
      bar: a progress bar (:func:`clipcore._progress.bar`), advanced by steps.
      check: ``check(first_step, losses)`` called after each chunk (e.g. to raise on a non-finite loss).

    Returns:
      ``(params, opt_state, losses)``: ``losses`` a list of one ``[steps]`` NumPy array per chunk.
    """
    out, done = [], 0
    while done < total:
        steps = min(chunk, total - done)
        params, opt_state, losses = run(params, opt_state, data, batches(steps))
        losses = np.asarray(losses)
        if check is not None:
            check(done, losses)
        out.append(losses)
        done += steps
        bar.update(steps)
        bar.set_postfix(loss=f"{losses[-1]:.4g}")
    return params, opt_state, out


# ----------------------------------------------------------------- save format
#: The format tag of every model file written since the three models share one format.
FORMAT = "clipcore.model/1"


class SavedModel(NamedTuple):
    """A model file's content.

    Attributes:
      kind: ``"NeuralMDS"``, ``"DEC"`` or ``"IIN"``.
      config: the model's config as a JSON dict.
      state: the fitted scalars (dimensions, history, …) as a JSON dict.
      tensors: name → array: the module's variables as ``state.<path>`` and further arrays.
      format: the file's format tag (:data:`FORMAT`, or an earlier one).
    """

    kind: str
    config: dict
    state: dict
    tensors: dict
    format: str


def state_tensors(module: nnx.Module, prefix: str = "state.") -> dict[str, np.ndarray]:
    """Every variable of ``module`` as ``{prefix + "a.b.0.kernel": array}`` (host copies)."""
    return {prefix + ".".join(map(str, k)): np.ascontiguousarray(np.asarray(v.get_value()))
            for k, v in nnx.to_flat_state(nnx.state(module))}


def restore_state(module: nnx.Module, tensors: dict, path: str, prefix: str = "state.") -> None:
    """Set ``module``'s variables from :func:`state_tensors`' names, checking names and shapes.

    Raises:
      ValueError: naming ``path`` and the parameter that is missing, extra or of another shape.
    """
    flat = nnx.to_flat_state(nnx.state(module))
    expected = {prefix + ".".join(map(str, k)) for k, _ in flat}
    given = {k for k in tensors if k.startswith(prefix)}
    if expected != given:
        raise ValueError(f"path: {path} has parameters {sorted(given)} but the config needs {sorted(expected)}")
    for k, var in flat:
        name = prefix + ".".join(map(str, k))
        value = var.get_value()
        if tuple(tensors[name].shape) != tuple(value.shape):
            raise ValueError(f"path: parameter {name} has shape {tuple(tensors[name].shape)}, "
                             f"expected {tuple(value.shape)}")
        var.set_value(jnp.asarray(tensors[name], value.dtype))
    nnx.update(module, nnx.from_flat_state(flat))


def save_model(path: str | os.PathLike, kind: str, *, config: dict, state: dict,
               tensors: dict[str, np.ndarray]) -> str:
    """Write one model file (safetensors; ``kind``, ``config`` and ``state`` as JSON metadata).

    Args:
      path: the file (its directory is created).
      kind: the model class name.
      config: JSON-ready options; state: JSON-ready fitted scalars.
      tensors: name → array (contiguous copies are written).

    Returns:
      ``path`` as a string.
    """
    from safetensors.numpy import save_file

    path = os.fspath(path)
    meta = {"format": FORMAT, "kind": kind, "clipcore": __version__, "config": json.dumps(config),
            "state": json.dumps(state)}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path, metadata=meta)
    return path


def load_model(path: str | os.PathLike, kind: str) -> SavedModel:
    """Read a model file of ``kind`` (this format, or the model's earlier one).

    Raises:
      FileNotFoundError: no such file.
      ValueError: not a clipcore model file, or one of another kind.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no model file {path}")
    with open(path, "rb") as f:
        zipped = f.read(2) == b"PK"
    saved = SavedModel(*_legacy.read_npz(path)) if zipped else _read_safetensors(path)
    if saved.kind != kind:
        raise ValueError(f"path: {path} holds a clipcore {saved.kind}, not a {kind}")
    return saved


def _read_safetensors(path: str) -> SavedModel:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ValueError(f"path: {path} is not a clipcore model file ({exc})") from exc
    if meta.get("format") == FORMAT:
        return SavedModel(meta["kind"], json.loads(meta["config"]), json.loads(meta["state"]), tensors, FORMAT)
    return SavedModel(*_legacy.read_safetensors(path, meta, tensors))
