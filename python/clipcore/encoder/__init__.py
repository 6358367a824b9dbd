"""A CLIP encoder in JAX: Flax NNX towers loaded from a local Hugging Face checkpoint.

transformers 5 ships no Flax CLIP (the last ``FlaxCLIPModel`` is in 4.57), so
clipcore carries its own: the ViT image tower and the causal text tower of
Radford et al. (2021, arXiv:2103.00020) as Flax NNX modules
(:mod:`._towers`), parameters read from ``model.safetensors`` with the sizes
from ``config.json`` through ``transformers.CLIPConfig`` (:mod:`._load`), and
the checkpoint's own tokenizer and image processor from ``transformers``
(:mod:`._preprocess`; no torch).  ViT-B/32, B/16 and L/14 are the same code
with different configs.  Features equal transformers' ``get_image_features``
/ ``get_text_features`` (projected, not normalised).

    enc = clipcore.load_clip("models/clip-vit-base-patch32")
    x = enc.encode_images(["a.png", "b.jpg"])          # [2, 512] float32
    t = enc.encode_texts(["a cat", "a dog"])           # [2, 512]
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .._progress import bar
from ._config import ClipConfig, TextConfig, VisionConfig
from ._load import build_module, check_model_dir, read_config, read_weights
from ._preprocess import load_image_processor, load_tokenizer, open_image, pixel_values, tokenize
from ._towers import ClipModule

__all__ = ["CLIPEncoder", "load_clip", "ClipConfig", "VisionConfig", "TextConfig", "ClipModule",
           "resolve_device", "open_image", "batch_bucket"]

_DTYPES = {None: jnp.float32, "float32": jnp.float32, "bfloat16": jnp.bfloat16}


def batch_bucket(m: int, batch_size: int) -> int:
    """Padded size of a batch of ``m`` rows: the next power of two, at most
    ``batch_size`` (so a run compiles at most log₂(batch_size) + 1 shapes)."""
    return int(min(batch_size, 1 << max(m - 1, 0).bit_length()))


def resolve_device(device: Any) -> jax.Device | None:
    """``None`` (JAX's default), a ``jax.Device``, or a platform name: ``"cpu"``,
    ``"gpu"`` / ``"cuda"``, ``"tpu"``, optionally with an index (``"gpu:1"``)."""
    if device is None or isinstance(device, jax.Device):
        return device
    if not isinstance(device, str):
        raise ValueError(f"device: expected None, a jax.Device or a name like 'cpu' / 'gpu:0', got {device!r}")
    name, _, idx = device.lower().partition(":")
    name = {"cuda": "gpu", "rocm": "gpu"}.get(name, name)
    if name in ("", "auto", "default"):
        return None
    try:
        devs = jax.devices(name)
    except RuntimeError:
        have = sorted({d.platform for d in jax.devices()})
        raise ValueError(f"device: no {name!r} device on this machine (available: {', '.join(have)})") from None
    k = int(idx) if idx else 0
    if not 0 <= k < len(devs):
        raise ValueError(f"device: {device!r} asks for index {k} but there are {len(devs)} {name} device(s)")
    return devs[k]


class CLIPEncoder:
    """A loaded CLIP checkpoint: jit-compiled, batched image and text features.

    Attributes:
      module: the :class:`ClipModule` (Flax NNX) holding the parameters.
      config: its :class:`ClipConfig`.
      tokenizer, processor: the checkpoint's ``CLIPTokenizer`` and PIL image processor.
      path: the checkpoint directory; dtype: compute dtype name; device: where it runs.
    """

    def __init__(self, module: ClipModule, config: ClipConfig, tokenizer, processor, *, path: str | None,
                 dtype: str, device: jax.Device | None):
        self.module, self.config = module, config
        self.tokenizer, self.processor = tokenizer, processor
        self.path, self.dtype, self.device = path, dtype, device
        graphdef, state = nnx.split(module)
        self._state = state

        def img(st, px):
            return nnx.merge(graphdef, st).image_features(px)

        def txt(st, ids, mask):
            return nnx.merge(graphdef, st).text_features(ids, mask)

        self._img, self._txt = jax.jit(img), jax.jit(txt)

    @property
    def projection_dim(self) -> int:
        """Dimension of the shared embedding space."""
        return self.config.projection_dim

    @property
    def context_length(self) -> int:
        return self.config.text.max_position_embeddings

    def _put(self, a: np.ndarray) -> jax.Array:
        return jax.device_put(a, self.device) if self.device is not None else jnp.asarray(a)

    # ---------------------------------------------------------- array level
    def image_features(self, pixels: Any) -> jax.Array:
        """``pixels: [b, C, S, S]`` (the processor's output) → ``[b, projection_dim]`` float32."""
        px = np.asarray(pixels, dtype=np.float32)
        v = self.config.vision
        if px.ndim != 4 or px.shape[1:] != (v.num_channels, v.image_size, v.image_size):
            raise ValueError(
                f"pixel_values: expected [b, {v.num_channels}, {v.image_size}, {v.image_size}], got {px.shape}"
            )
        return self._img(self._state, self._put(px))

    def text_features(self, input_ids: Any, attention_mask: Any = None) -> jax.Array:
        """``input_ids: [b, s]`` (s ≤ context) → ``[b, projection_dim]`` float32."""
        ids = np.asarray(input_ids)
        if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"input_ids: expected integer [b, s], got shape {ids.shape} dtype {ids.dtype}")
        if ids.shape[1] > self.context_length:
            raise ValueError(f"input_ids: {ids.shape[1]} tokens exceed the model's context of {self.context_length}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.config.text.vocab_size):
            raise ValueError(f"input_ids: ids must lie in [0, {self.config.text.vocab_size})")
        mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask)
        if mask.shape != ids.shape:
            raise ValueError(f"attention_mask: shape {mask.shape} differs from input_ids' {ids.shape}")
        return self._txt(self._state, self._put(ids.astype(np.int32)), self._put(mask.astype(np.int32)))

    # ------------------------------------------------------- user level
    def preprocess_images(self, images: Sequence[Any]) -> np.ndarray:
        """PIL images, paths or uint8 arrays → pixel values ``[b, 3, S, S]``."""
        return pixel_values(self.processor, images)

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Texts → ``input_ids, attention_mask: [b, context]``."""
        return tokenize(self.tokenizer, texts, self.context_length)

    def _batched(self, n: int, batch_size: int, make, run, progress, desc: str) -> np.ndarray:
        if n == 0:
            raise ValueError(f"{desc}: nothing to encode (empty list)")
        b = batch_bucket(n, int(batch_size))
        out = np.empty((n, self.projection_dim), np.float32)
        with bar(n, desc, progress, unit=desc.split()[-1], unit_scale=False) as pbar:
            for start in range(0, n, b):
                stop = min(n, start + b)
                arrays = make(start, stop)
                if stop - start < b:  # pad the tail: every call has one shape (one compile)
                    arrays = tuple(np.concatenate([a, np.repeat(a[-1:], b - (stop - start), 0)]) for a in arrays)
                out[start:stop] = np.asarray(run(*arrays))[: stop - start]
                pbar.update(stop - start)
        return out

    def encode_images(self, images: Sequence[Any], *, batch_size: int = 64, progress: bool | None = None) -> np.ndarray:
        """Image features ``[n, projection_dim]`` float32 of PIL images, paths or uint8 arrays.

        Batches of ``batch_size`` are preprocessed on the host and run by one
        compiled program (the tail batch padded).  ``progress``: a bar of images
        (``None``: after 2 s; ``True``: at once; ``False``: never).
        """
        images = list(images)
        return self._batched(len(images), batch_size, lambda a, b: (self.preprocess_images(images[a:b]),),
                             self.image_features, progress, "encode images")

    def encode_texts(self, texts: Sequence[str] | str, *, batch_size: int = 256, progress: bool | None = None) -> np.ndarray:
        """Text features ``[n, projection_dim]`` float32 (one string → ``[1, projection_dim]``); ``progress`` as
        :meth:`encode_images`."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        return self._batched(len(texts), batch_size, lambda a, b: self.tokenize(texts[a:b]),
                             self.text_features, progress, "encode texts")


def load_clip(path: str | os.PathLike, *, dtype: str | None = None, device: Any = None, precision: Any = None,
              tokenizer: bool = True, image_processor: bool = True) -> CLIPEncoder:
    """Load a local Hugging Face CLIP checkpoint into the Flax NNX encoder.

    Args:
      path: directory with ``config.json`` and ``model.safetensors`` (as
        ``CLIPModel.save_pretrained`` writes), plus the tokenizer files and
        ``preprocessor_config.json`` (as ``CLIPProcessor.save_pretrained``
        writes). Nothing is downloaded.
      dtype: ``None``/``"float32"`` or ``"bfloat16"`` (parameters and
        activations; LayerNorm statistics and softmax stay float32).
      device: ``None`` (JAX's default), ``"cpu"``, ``"gpu"``, ``"tpu"``,
        ``"gpu:1"`` or a ``jax.Device``.
      precision: ``jax.lax.Precision`` of the matmuls (``"highest"`` avoids
        TF32 on recent GPUs).
      tokenizer, image_processor: load them (``False`` for array-level use only).

    Returns:
      :class:`CLIPEncoder`.

    Raises:
      FileNotFoundError: the directory or one of its files is missing.
      ValueError: the config is not a CLIP config or the weights do not fit it.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype: expected 'float32' or 'bfloat16', got {dtype!r}")
    path = check_model_dir(path)
    cfg, _ = read_config(path)
    dev = resolve_device(device)
    jdtype = _DTYPES[dtype]
    weights = read_weights(path)
    module = build_module(cfg, weights, dtype=jdtype, param_dtype=jdtype, precision=precision, device=dev,
                          source=os.path.join(path, "model.safetensors"))
    tok = load_tokenizer(path) if tokenizer else None
    proc = load_image_processor(path, cfg.vision.image_size) if image_processor else None
    return CLIPEncoder(module, cfg, tok, proc, path=path, dtype=jnp.dtype(jdtype).name, device=dev)
