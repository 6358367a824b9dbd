"""Tokenizer and image processor of a local CLIP checkpoint (no torch).

Both come from ``transformers``: ``CLIPTokenizer`` (the ``tokenizers``
backend) and ``CLIPImageProcessorPil`` (PIL + NumPy; transformers 5's plain
``CLIPImageProcessor`` needs torchvision).  Texts are padded to the model's
context length so every batch has one shape (one compilation); the causal
mask makes the padding invisible to the pooled end-of-text state.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

__all__ = ["load_tokenizer", "load_image_processor", "tokenize", "pixel_values", "open_image"]

_TOKENIZER_FILES = ("tokenizer.json", "vocab.json")


def load_tokenizer(path: str):
    """The checkpoint's ``CLIPTokenizer`` (``tokenizer.json`` or ``vocab.json`` + ``merges.txt``)."""
    from transformers import CLIPTokenizer

    if not any(os.path.exists(os.path.join(path, f)) for f in _TOKENIZER_FILES):
        raise FileNotFoundError(
            f"model: {path} has no tokenizer (expected tokenizer.json, or vocab.json + merges.txt, as "
            "CLIPProcessor.save_pretrained writes them); texts cannot be encoded"
        )
    return CLIPTokenizer.from_pretrained(path, local_files_only=True)


def load_image_processor(path: str, image_size: int):
    """The checkpoint's image processor (``preprocessor_config.json``), run with PIL.

    A checkpoint without one gets CLIP's standard pipeline at the model's
    resolution: bicubic resize of the short side to ``image_size``, centre
    crop, scale to [0, 1], normalise with the OpenAI CLIP mean and std.
    """
    from transformers import CLIPImageProcessorPil

    if os.path.exists(os.path.join(path, "preprocessor_config.json")):
        return CLIPImageProcessorPil.from_pretrained(path, local_files_only=True)
    return CLIPImageProcessorPil(size={"shortest_edge": image_size},
                                 crop_size={"height": image_size, "width": image_size})


def tokenize(tokenizer, texts: Sequence[str], context: int) -> tuple[np.ndarray, np.ndarray]:
    """``texts`` → ``input_ids, attention_mask: [b, context]`` int32 (truncated, padded)."""
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"texts: entry {bad[0]} is a {type(texts[bad[0]]).__name__}, expected a string")
    enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=context, return_tensors="np")
    return enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int32)


def open_image(path: str):
    """Open ``path`` as an RGB PIL image, decoding it now (so a broken file fails here)."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return im.convert("RGB")


def pixel_values(processor, images: Sequence[Any]) -> np.ndarray:
    """PIL images (or ``[H, W]`` / ``[H, W, 3]`` uint8 arrays) → ``[b, 3, S, S]`` float32."""
    from PIL import Image

    pil = []
    for i, im in enumerate(images):
        if isinstance(im, np.ndarray):
            if im.ndim not in (2, 3) or im.dtype != np.uint8:
                raise ValueError(
                    f"images: array {i} has shape {im.shape} and dtype {im.dtype}; expected uint8 [H, W] or [H, W, 3]"
                )
            im = Image.fromarray(im)
        elif isinstance(im, (str, os.PathLike)):
            im = open_image(os.fspath(im))
        elif not isinstance(im, Image.Image):
            raise ValueError(f"images: entry {i} is a {type(im).__name__}; expected a PIL image, a path or a uint8 array")
        pil.append(im.convert("RGB"))
    return np.asarray(processor(images=pil, return_tensors="np")["pixel_values"], dtype=np.float32)
