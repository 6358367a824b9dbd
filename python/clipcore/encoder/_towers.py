"""Flax NNX CLIP towers: ViT image encoder and causal text encoder.

Radford et al. (2021), "Learning Transferable Visual Models From Natural
Language Supervision" (arXiv:2103.00020); ViT patch embedding from Dosovitskiy
et al. (2021, arXiv:2010.11929).  The layout follows Hugging Face's
``CLIPModel`` so that a checkpoint's parameter names map one to one onto the
attribute paths here (``vision_model.encoder.layers.3.self_attn.q_proj`` …):

* image: pixels ``[b, C, H, W]`` → non-overlapping p×p patches, a linear
  patch embedding (the conv without bias), a class token, learned position
  embeddings, ``pre_layrnorm``; pre-LN blocks; ``post_layernorm`` of the class
  token; ``visual_projection`` (no bias).
* text: token + position embeddings; pre-LN blocks under a causal mask (and
  the padding mask); ``final_layer_norm``; the state at the first end-of-text
  token; ``text_projection`` (no bias).
* block: x + attn(LN₁(x)), then x + fc₂(act(fc₁(LN₂(x)))), act = quick-GELU
  x·σ(1.702x) for OpenAI CLIP.

Only the nnx API is used.  ``dtype`` is the compute dtype (``bfloat16`` halves
memory traffic; LayerNorm statistics and the softmax stay in float32).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ._config import ClipConfig, TextConfig, TowerConfig, VisionConfig

__all__ = ["ClipModule", "VisionTransformer", "TextTransformer", "activation"]


def activation(name: str):
    """The MLP nonlinearity of a Hugging Face ``hidden_act`` name."""
    if name == "quick_gelu":
        return lambda x: x * jax.nn.sigmoid(1.702 * x)
    if name == "gelu":
        return lambda x: jax.nn.gelu(x, approximate=False)
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return lambda x: jax.nn.gelu(x, approximate=True)
    if name == "relu":
        return jax.nn.relu
    raise ValueError(f"hidden_act: unsupported activation {name!r}")


def _linear(i, o, cfg_dtype, precision, rngs, bias=True):
    return nnx.Linear(i, o, use_bias=bias, dtype=cfg_dtype, precision=precision, rngs=rngs)


class Attention(nnx.Module):
    """Multi-head self-attention with q/k/v/out projections (with bias)."""

    def __init__(self, cfg: TowerConfig, *, dtype, precision, rngs: nnx.Rngs):
        h = cfg.hidden_size
        self.num_heads = cfg.num_heads
        self.head_dim = h // cfg.num_heads
        self.precision = precision
        self.q_proj = _linear(h, h, dtype, precision, rngs)
        self.k_proj = _linear(h, h, dtype, precision, rngs)
        self.v_proj = _linear(h, h, dtype, precision, rngs)
        self.out_proj = _linear(h, h, dtype, precision, rngs)

    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        """``x: [b, s, h]``, ``mask: [b, 1, s, s]`` boolean (True = attend) → ``[b, s, h]``."""
        b, s, _ = x.shape
        split = lambda a: a.reshape(b, s, self.num_heads, self.head_dim)  # noqa: E731
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k, precision=self.precision).astype(jnp.float32)
        scores = scores * (self.head_dim ** -0.5)
        if mask is not None:
            scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
        weights = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
        out = jnp.einsum("bhqk,bkhd->bqhd", weights, v, precision=self.precision)
        return self.out_proj(out.reshape(b, s, -1))


class MLP(nnx.Module):
    """fc₂(act(fc₁(x)))."""

    def __init__(self, cfg: TowerConfig, *, dtype, precision, rngs: nnx.Rngs):
        self.act = activation(cfg.hidden_act)
        self.fc1 = _linear(cfg.hidden_size, cfg.intermediate_size, dtype, precision, rngs)
        self.fc2 = _linear(cfg.intermediate_size, cfg.hidden_size, dtype, precision, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.fc2(self.act(self.fc1(x)))


def _layer_norm(n, eps, dtype, rngs):
    return nnx.LayerNorm(n, epsilon=eps, dtype=dtype, rngs=rngs)


class EncoderLayer(nnx.Module):
    """Pre-LN residual block: x + attn(LN₁ x), then + mlp(LN₂ x)."""

    def __init__(self, cfg: TowerConfig, *, dtype, precision, rngs: nnx.Rngs):
        self.layer_norm1 = _layer_norm(cfg.hidden_size, cfg.layer_norm_eps, dtype, rngs)
        self.self_attn = Attention(cfg, dtype=dtype, precision=precision, rngs=rngs)
        self.layer_norm2 = _layer_norm(cfg.hidden_size, cfg.layer_norm_eps, dtype, rngs)
        self.mlp = MLP(cfg, dtype=dtype, precision=precision, rngs=rngs)

    def __call__(self, x, mask=None):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nnx.Module):
    """``num_layers`` blocks in sequence."""

    def __init__(self, cfg: TowerConfig, *, dtype, precision, rngs: nnx.Rngs):
        self.layers = nnx.List(
            [EncoderLayer(cfg, dtype=dtype, precision=precision, rngs=rngs) for _ in range(cfg.num_layers)]
        )

    def __call__(self, x, mask=None):
        for layer in self.layers:
            x = layer(x, mask)
        return x


class VisionEmbeddings(nnx.Module):
    """Patch embedding (a p×p stride-p conv without bias, as a linear map of
    flattened ``(c, i, j)`` patches), class token and position embeddings."""

    def __init__(self, cfg: VisionConfig, *, dtype, precision, rngs: nnx.Rngs):
        self.cfg = cfg
        p, c, h = cfg.patch_size, cfg.num_channels, cfg.hidden_size
        self.patch_embedding = _linear(c * p * p, h, dtype, precision, rngs, bias=False)
        self.class_embedding = nnx.Param(jax.random.normal(rngs.params(), (h,)))
        self.position_embedding = nnx.Embed(cfg.num_patches + 1, h, dtype=dtype, rngs=rngs)
        self.dtype = dtype

    def __call__(self, pixels: jax.Array) -> jax.Array:
        """``pixels: [b, C, H, W]`` → ``[b, 1 + (H/p)(W/p), hidden]``."""
        cfg = self.cfg
        b, c, hh, ww = pixels.shape
        if (c, hh, ww) != (cfg.num_channels, cfg.image_size, cfg.image_size):
            raise ValueError(
                f"pixel_values: expected [b, {cfg.num_channels}, {cfg.image_size}, {cfg.image_size}], "
                f"got {tuple(pixels.shape)}"
            )
        p = cfg.patch_size
        g = cfg.image_size // p
        patches = pixels.reshape(b, c, g, p, g, p).transpose(0, 2, 4, 1, 3, 5).reshape(b, g * g, c * p * p)
        x = self.patch_embedding(patches.astype(self.dtype or patches.dtype))
        cls = jnp.broadcast_to(self.class_embedding[...].astype(x.dtype), (b, 1, x.shape[-1]))
        x = jnp.concatenate([cls, x], axis=1)
        return x + self.position_embedding.embedding[...].astype(x.dtype)[None]


class VisionTransformer(nnx.Module):
    """The CLIP image tower up to the pooled, post-normalised class token."""

    def __init__(self, cfg: VisionConfig, *, dtype=None, precision=None, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, precision=precision, rngs=rngs)
        self.embeddings = VisionEmbeddings(cfg, **kw)
        self.pre_layrnorm = _layer_norm(cfg.hidden_size, cfg.layer_norm_eps, dtype, rngs)
        self.encoder = Encoder(cfg, **kw)
        self.post_layernorm = _layer_norm(cfg.hidden_size, cfg.layer_norm_eps, dtype, rngs)

    def __call__(self, pixels: jax.Array) -> jax.Array:
        """``pixels: [b, C, H, W]`` → pooled ``[b, hidden]``."""
        x = self.pre_layrnorm(self.embeddings(pixels))
        x = self.encoder(x)
        return self.post_layernorm(x[:, 0, :])


class TextEmbeddings(nnx.Module):
    """Token + learned position embeddings."""

    def __init__(self, cfg: TextConfig, *, dtype, rngs: nnx.Rngs):
        self.token_embedding = nnx.Embed(cfg.vocab_size, cfg.hidden_size, dtype=dtype, rngs=rngs)
        self.position_embedding = nnx.Embed(cfg.max_position_embeddings, cfg.hidden_size, dtype=dtype, rngs=rngs)

    def __call__(self, ids: jax.Array) -> jax.Array:
        x = self.token_embedding(ids)
        pos = self.position_embedding.embedding[...][: ids.shape[1]]
        return x + pos[None].astype(x.dtype)


class TextTransformer(nnx.Module):
    """The CLIP text tower up to the final-normalised end-of-text state."""

    def __init__(self, cfg: TextConfig, *, dtype=None, precision=None, rngs: nnx.Rngs):
        self.cfg = cfg
        self.embeddings = TextEmbeddings(cfg, dtype=dtype, rngs=rngs)
        self.encoder = Encoder(cfg, dtype=dtype, precision=precision, rngs=rngs)
        self.final_layer_norm = _layer_norm(cfg.hidden_size, cfg.layer_norm_eps, dtype, rngs)

    def __call__(self, input_ids: jax.Array, attention_mask: jax.Array | None = None) -> jax.Array:
        """``input_ids, attention_mask: [b, s]`` → pooled ``[b, hidden]``."""
        b, s = input_ids.shape
        if s > self.cfg.max_position_embeddings:
            raise ValueError(
                f"input_ids: {s} tokens exceed the model's context of {self.cfg.max_position_embeddings}"
            )
        mask = jnp.tril(jnp.ones((s, s), bool))[None, None]
        if attention_mask is not None:
            mask = mask & (attention_mask[:, None, None, :] > 0)
        x = self.encoder(self.embeddings(input_ids), mask)
        x = self.final_layer_norm(x)
        if self.cfg.eos_token_id == 2:  # legacy configs: the end token has the largest id
            pos = jnp.argmax(input_ids, axis=-1)
        else:  # the first end-of-text token (padding may reuse its id)
            pos = jnp.argmax((input_ids == self.cfg.eos_token_id).astype(jnp.int32), axis=-1)
        return x[jnp.arange(b), pos]


class ClipModule(nnx.Module):
    """Both towers, their projections and the logit scale (``CLIPModel``'s layout)."""

    def __init__(self, cfg: ClipConfig, *, dtype=None, precision=None, rngs: nnx.Rngs):
        self.cfg = cfg
        self.vision_model = VisionTransformer(cfg.vision, dtype=dtype, precision=precision, rngs=rngs)
        self.text_model = TextTransformer(cfg.text, dtype=dtype, precision=precision, rngs=rngs)
        self.visual_projection = _linear(cfg.vision.hidden_size, cfg.projection_dim, dtype, precision, rngs, bias=False)
        self.text_projection = _linear(cfg.text.hidden_size, cfg.projection_dim, dtype, precision, rngs, bias=False)
        self.logit_scale = nnx.Param(jnp.asarray(2.6592, jnp.float32))

    def image_features(self, pixels: jax.Array) -> jax.Array:
        """``pixels: [b, C, H, W]`` → ``[b, projection_dim]`` float32 (not normalised;
        transformers' ``get_image_features``)."""
        return self.visual_projection(self.vision_model(pixels)).astype(jnp.float32)

    def text_features(self, input_ids: jax.Array, attention_mask: jax.Array | None = None) -> jax.Array:
        """``input_ids: [b, s]`` → ``[b, projection_dim]`` float32 (``get_text_features``)."""
        return self.text_projection(self.text_model(input_ids, attention_mask)).astype(jnp.float32)
