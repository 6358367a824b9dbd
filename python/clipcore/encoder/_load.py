"""Load a local Hugging Face CLIP checkpoint into the NNX towers.

A model is a directory: ``config.json`` (read by ``transformers.CLIPConfig``)
and ``model.safetensors`` (or ``model.safetensors.index.json`` and its
shards), as ``CLIPModel.save_pretrained`` writes them.  Nothing is
downloaded.  Every parameter of the towers must be present with the shape
the config implies; Hugging Face's ``[out, in]`` linear weights are
transposed to NNX's ``[in, out]`` kernels, the patch conv ``[h, C, p, p]`` is
flattened to a ``[C·p·p, h]`` kernel.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ._config import ClipConfig
from ._towers import ClipModule

__all__ = ["check_model_dir", "read_config", "read_weights", "build_module"]

_EXPECTED = ("a Hugging Face CLIP checkpoint directory holding config.json and model.safetensors "
             "(as CLIPModel.save_pretrained writes them); nothing is downloaded")


def check_model_dir(path) -> str:
    """Return ``path`` as a string or raise a clear error saying what a model directory holds."""
    if path is None:
        raise ValueError(f"model: missing; pass {_EXPECTED}")
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"model: {path} is not a directory; expected {_EXPECTED}")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise FileNotFoundError(f"model: {path} has no config.json; expected {_EXPECTED}")
    if not any(os.path.isfile(os.path.join(path, f)) for f in ("model.safetensors", "model.safetensors.index.json")):
        extra = ""
        if os.path.isfile(os.path.join(path, "pytorch_model.bin")):
            extra = " (it holds pytorch_model.bin: re-save it with save_pretrained(..., safe_serialization=True))"
        raise FileNotFoundError(f"model: {path} has no model.safetensors{extra}; expected {_EXPECTED}")
    return path


def read_config(path: str) -> tuple[ClipConfig, dict]:
    """``(ClipConfig, raw config dict)`` of a checkpoint directory."""
    from transformers import CLIPConfig

    with open(os.path.join(path, "config.json")) as f:
        try:
            raw = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"model: {path}/config.json is not valid JSON ({exc})") from None
    if raw.get("model_type") != "clip":
        raise ValueError(
            f"model: {path}/config.json has model_type {raw.get('model_type')!r}; expected 'clip' "
            "(a full CLIPModel with both towers)"
        )
    return ClipConfig.from_hf(CLIPConfig.from_pretrained(path, local_files_only=True)), raw


def read_weights(path: str) -> dict[str, np.ndarray]:
    """All tensors of ``model.safetensors`` (or its indexed shards) as host arrays."""
    from safetensors import SafetensorError, safe_open

    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.isfile(os.path.join(path, "model.safetensors")):
        files = ["model.safetensors"]
    else:
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    out: dict[str, np.ndarray] = {}
    for name in files:
        file = os.path.join(path, name)
        if not os.path.isfile(file):
            raise FileNotFoundError(f"model: shard {file} listed in {index} is missing")
        try:
            with safe_open(file, framework="flax") as f:  # flax: bfloat16 tensors load too
                for k in f.keys():
                    out[k] = np.asarray(f.get_tensor(k).astype(jnp.float32))
        except (OSError, ValueError, SafetensorError) as exc:
            raise ValueError(f"model: {file} is not a readable safetensors file ({exc})") from exc
    return out


_LEAF = {"kernel": "weight", "scale": "weight", "embedding": "weight", "bias": "bias"}


def _hf_key(path: tuple) -> str:
    *mods, leaf = [str(p) for p in path]
    return ".".join(mods + [_LEAF.get(leaf, leaf)])


def build_module(cfg: ClipConfig, weights: dict[str, np.ndarray], *, dtype=None, param_dtype=jnp.float32,
                 precision=None, device=None, source: str = "model") -> ClipModule:
    """A :class:`ClipModule` whose parameters are ``weights`` (Hugging Face names).

    Args:
      cfg: the tower sizes.
      weights: name → array, as in ``CLIPModel.state_dict()``.
      dtype: compute dtype (``None``: the parameter dtype).
      param_dtype: dtype the parameters are stored in.
      device: a ``jax.Device`` for the parameters (default: JAX's default).
      source: where the weights came from, for error messages.
    """
    abstract = nnx.eval_shape(lambda: ClipModule(cfg, dtype=dtype, precision=precision, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(abstract)
    flat = nnx.to_flat_state(state)
    missing, wrong = [], []
    for path, var in flat:
        key = _hf_key(path)
        shape = tuple(var.get_value().shape)
        if key not in weights:
            missing.append(key)
            continue
        w = np.asarray(weights[key])
        if key.endswith("patch_embedding.weight"):
            w = w.reshape(w.shape[0], -1).T if w.ndim == 4 else w
        elif path[-1] == "kernel":
            w = w.T
        elif key == "logit_scale":
            w = w.reshape(())
        if tuple(w.shape) != shape:
            wrong.append(f"{key} {tuple(weights[key].shape)} (expected {shape} after layout change)")
            continue
        arr = jnp.asarray(w, dtype=param_dtype)
        var.set_value(jax.device_put(arr, device) if device is not None else arr)
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ValueError(f"model: {source} lacks parameters {', '.join(missing[:5])}{more}; is it a CLIPModel checkpoint?")
    if wrong:
        raise ValueError(f"model: {source} has parameters whose shapes do not match config.json: {'; '.join(wrong[:3])}")
    return nnx.merge(graphdef, nnx.from_flat_state(flat))
