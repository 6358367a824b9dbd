"""Readers of the three save formats the models had before they shared one (:mod:`._common`).

* ``clipcore.NeuralMDS/1``: safetensors, tensors named by the MDS network's
  state path (``skip.kernel``, ``layers.0.kernel`` for the MLP branch), config,
  ``d_in``, history, initial metrics and best epoch as JSON metadata;
* ``clipcore.DEC/1``: ``.npz`` with ``encoder/<i>/kernel`` … ``decoder/<i>/bias``,
  ``centers`` and a JSON ``meta`` member (uint8 bytes: config, scale, d);
* ``clipcore-iin-1``: ``.npz`` with ``state/<path>`` (the coupling MLPs as
  ``hidden/<i>`` and ``out``), ``class_means/<k>`` and a JSON string ``meta``.

Each reader returns ``(kind, config, state, tensors, format)`` in today's
names (``state.<path>`` of today's modules), which
:func:`clipcore.models._common.load_model` wraps as a ``SavedModel``.
"""

from __future__ import annotations

import json

import numpy as np

__all__ = ["read_npz", "read_safetensors", "MDS_V1", "DEC_V1", "IIN_V1"]

MDS_V1 = "clipcore.NeuralMDS/1"
DEC_V1 = "clipcore.DEC/1"
IIN_V1 = "clipcore-iin-1"


def read_safetensors(path: str, meta: dict, tensors: dict) -> tuple:
    """A ``clipcore.NeuralMDS/1`` file (the only earlier safetensors format)."""
    if meta.get("format") != MDS_V1:
        raise ValueError(f"path: {path} is not a clipcore model file (format {meta.get('format')!r})")
    state = {
        "d_in": int(meta["d_in"]),
        "history": json.loads(meta.get("history", "[]")),
        "initial_metrics": json.loads(meta.get("initial_metrics", "null")),
        "best_epoch": json.loads(meta.get("best_epoch", "null")),
    }
    renamed = {("state.branch." if k.startswith("layers.") else "state.") + k: v for k, v in tensors.items()}
    return "NeuralMDS", json.loads(meta["config"]), state, renamed, MDS_V1


def read_npz(path: str) -> tuple:
    """A ``clipcore.DEC/1`` or ``clipcore-iin-1`` file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        raw = arrays.pop("meta")
        meta = json.loads(bytes(raw).decode() if raw.dtype == np.uint8 else str(raw))
    except Exception as exc:
        raise ValueError(f"path: {path} is not a clipcore model file ({exc})") from exc
    if meta.get("format") == DEC_V1:
        return _dec(meta, arrays)
    if meta.get("format") == IIN_V1:
        return _iin(meta, arrays)
    raise ValueError(f"path: {path} is not a clipcore model file (format {meta.get('format')!r})")


def _dec(meta: dict, arrays: dict) -> tuple:
    tensors = {"centers": arrays.pop("centers")}
    for key, value in arrays.items():  # encoder/<i>/kernel -> state.encoder.layers.<i>.kernel
        part, i, leaf = key.split("/")
        tensors[f"state.{part}.layers.{i}.{leaf}"] = value
    return "DEC", meta["config"], {"scale": float(meta["scale"]), "d": int(meta["d"])}, tensors, DEC_V1


def _iin(meta: dict, arrays: dict) -> tuple:
    last = int(meta["config"]["hidden_layers"])  # the coupling MLP's output layer follows its hidden ones
    tensors = {}
    for key, value in arrays.items():
        parts = key.split("/")
        if parts[0] == "class_means":
            tensors[f"class_means.{parts[1]}"] = value
            continue
        if "hidden" in parts:
            parts[parts.index("hidden")] = "layers"
        elif "out" in parts:
            i = parts.index("out")
            parts[i:i + 1] = ["layers", str(last)]
        tensors[".".join(parts)] = value
    state = {k: meta[k] for k in ("dim", "factor_sizes", "names", "initialized", "num_class_means")}
    return "IIN", meta["config"], state, tensors, IIN_V1
