"""Static configuration of the CLIP towers, read from a Hugging Face ``CLIPConfig``.

Radford et al. (2021), "Learning Transferable Visual Models From Natural
Language Supervision" (arXiv:2103.00020): a ViT image tower and a causal
transformer text tower, each followed by a linear projection into a shared
space.  The sizes come from the checkpoint's ``config.json``; ViT-B/32,
ViT-B/16 and ViT-L/14 differ only in these numbers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["TowerConfig", "VisionConfig", "TextConfig", "ClipConfig", "ACTIVATIONS"]

#: ``hidden_act`` values of Hugging Face CLIP configs that the towers implement.
ACTIVATIONS = ("quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


@dataclasses.dataclass(frozen=True)
class TowerConfig:
    """Transformer sizes shared by both towers.

    Attributes:
      hidden_size: width of the residual stream.
      intermediate_size: width of the MLP.
      num_layers: number of pre-LN residual blocks.
      num_heads: attention heads (``hidden_size`` divisible by it).
      layer_norm_eps: LayerNorm epsilon.
      hidden_act: MLP activation (``"quick_gelu"`` for OpenAI CLIP).
    """

    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    layer_norm_eps: float = 1e-5
    hidden_act: str = "quick_gelu"


@dataclasses.dataclass(frozen=True)
class VisionConfig(TowerConfig):
    """ViT image tower: ``image_size`` px square inputs cut into ``patch_size`` patches."""

    image_size: int = 224
    patch_size: int = 32
    num_channels: int = 3

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@dataclasses.dataclass(frozen=True)
class TextConfig(TowerConfig):
    """Causal text tower; the pooled token is the first end-of-text token.

    Attributes:
      vocab_size: token embedding rows.
      max_position_embeddings: context length (77 for OpenAI CLIP).
      eos_token_id: the end-of-text id; ``2`` selects the legacy pooling
        (the position of the largest token id), as transformers does.
    """

    vocab_size: int = 49408
    max_position_embeddings: int = 77
    eos_token_id: int = 49407


@dataclasses.dataclass(frozen=True)
class ClipConfig:
    """Both towers and the shared projection width."""

    vision: VisionConfig
    text: TextConfig
    projection_dim: int

    @classmethod
    def from_hf(cls, hf: Any) -> "ClipConfig":
        """Convert a ``transformers.CLIPConfig``."""
        v, t = hf.vision_config, hf.text_config
        for name, c in (("vision_config", v), ("text_config", t)):
            if c.hidden_act not in ACTIVATIONS:
                raise ValueError(
                    f"model: {name}.hidden_act {c.hidden_act!r} is not supported (expected one of {ACTIVATIONS})"
                )
            if c.hidden_size % c.num_attention_heads:
                raise ValueError(
                    f"model: {name}.hidden_size {c.hidden_size} is not divisible by "
                    f"num_attention_heads {c.num_attention_heads}"
                )
        if v.image_size % v.patch_size:
            raise ValueError(f"model: vision_config.image_size {v.image_size} is not a multiple of patch_size {v.patch_size}")
        common = lambda c: dict(  # noqa: E731
            hidden_size=int(c.hidden_size), intermediate_size=int(c.intermediate_size),
            num_layers=int(c.num_hidden_layers), num_heads=int(c.num_attention_heads),
            layer_norm_eps=float(c.layer_norm_eps), hidden_act=str(c.hidden_act),
        )
        vision = VisionConfig(**common(v), image_size=int(v.image_size), patch_size=int(v.patch_size),
                              num_channels=int(getattr(v, "num_channels", 3)))
        text = TextConfig(**common(t), vocab_size=int(t.vocab_size),
                          max_position_embeddings=int(t.max_position_embeddings),
                          eos_token_id=int(t.eos_token_id))
        return cls(vision=vision, text=text, projection_dim=int(hf.projection_dim))
