"""Float64 NumPy CLIP forward pass from Hugging Face parameter names (test reference).

Written from transformers' ``modeling_clip.py`` (``CLIPVisionEmbeddings``,
``CLIPEncoderLayer``, ``CLIPTextModel`` pooling, ``get_image_features`` /
``get_text_features``), independently of clipcore's Flax towers: the patch
embedding is a literal strided convolution over patch windows, attention is
computed head by head, the causal / padding mask additively.  Also builds
tiny random checkpoints (config.json, model.safetensors, tokenizer,
preprocessor) without torch.
"""

from __future__ import annotations

import os

import numpy as np


def _ln(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _act(name, x):
    if name == "quick_gelu":
        return x / (1.0 + np.exp(-1.702 * x))
    if name == "gelu":
        from scipy.special import erf

        return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))
    raise ValueError(name)


def _lin(x, W, p, name, bias=True):
    y = x @ W[f"{p}.{name}.weight"].T
    return y + W[f"{p}.{name}.bias"] if bias else y


def _encoder(W, prefix, x, cfg, add_mask):
    heads = cfg["num_attention_heads"]
    hd = cfg["hidden_size"] // heads
    eps = cfg.get("layer_norm_eps", 1e-5)
    for i in range(cfg["num_hidden_layers"]):
        p = f"{prefix}.encoder.layers.{i}"
        h = _ln(x, W[f"{p}.layer_norm1.weight"], W[f"{p}.layer_norm1.bias"], eps)
        q = _lin(h, W, p, "self_attn.q_proj")
        k = _lin(h, W, p, "self_attn.k_proj")
        v = _lin(h, W, p, "self_attn.v_proj")
        out = np.zeros_like(h)
        for j in range(heads):
            sl = slice(j * hd, (j + 1) * hd)
            s = q[:, :, sl] @ k[:, :, sl].transpose(0, 2, 1) / np.sqrt(hd)
            if add_mask is not None:
                s = s + add_mask
            s = s - s.max(-1, keepdims=True)
            a = np.exp(s)
            a /= a.sum(-1, keepdims=True)
            out[:, :, sl] = a @ v[:, :, sl]
        x = x + _lin(out, W, p, "self_attn.out_proj")
        h = _ln(x, W[f"{p}.layer_norm2.weight"], W[f"{p}.layer_norm2.bias"], eps)
        x = x + _lin(_act(cfg["hidden_act"], _lin(h, W, p, "mlp.fc1")), W, p, "mlp.fc2")
    return x


def image_features(W: dict, vcfg: dict, pixels: np.ndarray) -> np.ndarray:
    """``pixels: [b, C, S, S]`` → ``[b, projection_dim]`` float64 (``get_image_features``)."""
    W = {k: np.asarray(v, np.float64) for k, v in W.items()}
    px = np.asarray(pixels, np.float64)
    conv = W["vision_model.embeddings.patch_embedding.weight"]  # [h, C, p, p]
    p = conv.shape[-1]
    g = px.shape[-1] // p
    b = px.shape[0]
    patches = np.zeros((b, g * g, conv.shape[0]))
    for r in range(g):
        for c in range(g):
            window = px[:, :, r * p:(r + 1) * p, c * p:(c + 1) * p]
            patches[:, r * g + c] = np.tensordot(window, conv, axes=([1, 2, 3], [1, 2, 3]))
    cls = np.broadcast_to(W["vision_model.embeddings.class_embedding"], (b, 1, conv.shape[0]))
    x = np.concatenate([cls, patches], 1) + W["vision_model.embeddings.position_embedding.weight"][None]
    eps = vcfg.get("layer_norm_eps", 1e-5)
    x = _ln(x, W["vision_model.pre_layrnorm.weight"], W["vision_model.pre_layrnorm.bias"], eps)
    x = _encoder(W, "vision_model", x, vcfg, None)
    pooled = _ln(x[:, 0], W["vision_model.post_layernorm.weight"], W["vision_model.post_layernorm.bias"], eps)
    return pooled @ W["visual_projection.weight"].T


def text_features(W: dict, tcfg: dict, ids: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``ids, mask: [b, s]`` → ``[b, projection_dim]`` float64 (``get_text_features``)."""
    W = {k: np.asarray(v, np.float64) for k, v in W.items()}
    ids = np.asarray(ids)
    b, s = ids.shape
    x = W["text_model.embeddings.token_embedding.weight"][ids] + W["text_model.embeddings.position_embedding.weight"][:s]
    allowed = np.tril(np.ones((s, s), bool))[None]
    if mask is not None:
        allowed = allowed & (np.asarray(mask)[:, None, :] > 0)
    add = np.where(allowed, 0.0, -1e30)
    x = _encoder(W, "text_model", x, tcfg, add)
    eps = tcfg.get("layer_norm_eps", 1e-5)
    x = _ln(x, W["text_model.final_layer_norm.weight"], W["text_model.final_layer_norm.bias"], eps)
    eos = tcfg["eos_token_id"]
    pos = ids.argmax(-1) if eos == 2 else np.array([int(np.flatnonzero(row == eos)[0]) for row in ids])
    return x[np.arange(b), pos] @ W["text_projection.weight"].T


# ------------------------------------------------------------ tiny checkpoints
TINY_VOCAB = 514  # byte-level alphabet, with and without "</w>", plus the two specials


def tiny_tokenizer():
    """A CLIP BPE tokenizer with no merges: one token per byte (ids 0–511),
    <|startoftext|> = 512, <|endoftext|> = 513 (also the padding)."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    return CLIPTokenizer(vocab=vocab, merges=[])


def tiny_config(*, hidden=32, layers=2, heads=4, image=32, patch=8, proj=16, context=16, act="quick_gelu"):
    """A ``transformers.CLIPConfig`` of toy size matching :func:`tiny_tokenizer`."""
    from transformers import CLIPConfig

    common = dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                  num_attention_heads=heads, hidden_act=act)
    return CLIPConfig(
        text_config=dict(common, vocab_size=TINY_VOCAB + 6, max_position_embeddings=context,
                         bos_token_id=512, eos_token_id=513, pad_token_id=513),
        vision_config=dict(common, image_size=image, patch_size=patch),
        projection_dim=proj,
    )


def random_weights(cfg, seed: int = 0, scale: float = 0.05) -> dict[str, np.ndarray]:
    """Random float32 parameters under Hugging Face names for ``cfg`` (LayerNorms near 1)."""
    rng = np.random.default_rng(seed)
    v, t = cfg.vision_config, cfg.text_config
    W: dict[str, np.ndarray] = {}

    def block(prefix, c):
        h, m = c.hidden_size, c.intermediate_size
        for i in range(c.num_hidden_layers):
            p = f"{prefix}.encoder.layers.{i}"
            for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
                W[f"{p}.self_attn.{n}.weight"] = rng.normal(0, 1 / np.sqrt(h), (h, h))
                W[f"{p}.self_attn.{n}.bias"] = rng.normal(0, scale, h)
            W[f"{p}.mlp.fc1.weight"] = rng.normal(0, 1 / np.sqrt(h), (m, h))
            W[f"{p}.mlp.fc1.bias"] = rng.normal(0, scale, m)
            W[f"{p}.mlp.fc2.weight"] = rng.normal(0, 1 / np.sqrt(m), (h, m))
            W[f"{p}.mlp.fc2.bias"] = rng.normal(0, scale, h)
            for n in ("layer_norm1", "layer_norm2"):
                W[f"{p}.{n}.weight"] = 1 + rng.normal(0, 0.1, h)
                W[f"{p}.{n}.bias"] = rng.normal(0, 0.1, h)

    def ln(name, h):
        W[f"{name}.weight"] = 1 + rng.normal(0, 0.1, h)
        W[f"{name}.bias"] = rng.normal(0, 0.1, h)

    hv, ht = v.hidden_size, t.hidden_size
    npos = (v.image_size // v.patch_size) ** 2 + 1
    W["vision_model.embeddings.class_embedding"] = rng.normal(0, 1, hv)
    W["vision_model.embeddings.patch_embedding.weight"] = rng.normal(
        0, 1 / np.sqrt(3 * v.patch_size ** 2), (hv, 3, v.patch_size, v.patch_size))
    W["vision_model.embeddings.position_embedding.weight"] = rng.normal(0, 0.5, (npos, hv))
    ln("vision_model.pre_layrnorm", hv)
    block("vision_model", v)
    ln("vision_model.post_layernorm", hv)
    W["text_model.embeddings.token_embedding.weight"] = rng.normal(0, 1, (t.vocab_size, ht))
    W["text_model.embeddings.position_embedding.weight"] = rng.normal(0, 0.5, (t.max_position_embeddings, ht))
    block("text_model", t)
    ln("text_model.final_layer_norm", ht)
    W["visual_projection.weight"] = rng.normal(0, 1 / np.sqrt(hv), (cfg.projection_dim, hv))
    W["text_projection.weight"] = rng.normal(0, 1 / np.sqrt(ht), (cfg.projection_dim, ht))
    W["logit_scale"] = np.array(np.log(1 / 0.07))
    return {k: np.ascontiguousarray(a, dtype=np.float32) for k, a in W.items()}


def save_processor_files(directory: str, cfg) -> None:
    """Write the tiny tokenizer and a PIL CLIP image processor at the model's resolution."""
    from transformers import CLIPImageProcessorPil

    tok = tiny_tokenizer()
    tok.model_max_length = cfg.text_config.max_position_embeddings
    tok.save_pretrained(directory)
    s = cfg.vision_config.image_size
    CLIPImageProcessorPil(size={"shortest_edge": s}, crop_size={"height": s, "width": s}).save_pretrained(directory)


def make_tiny_checkpoint(directory: str, *, seed: int = 0, **sizes):
    """A complete random CLIP checkpoint directory without torch. Returns ``(cfg, weights)``."""
    from safetensors.numpy import save_file

    cfg = tiny_config(**sizes)
    os.makedirs(directory, exist_ok=True)
    cfg.save_pretrained(directory)
    W = random_weights(cfg, seed)
    save_file(W, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
    save_processor_files(directory, cfg)
    return cfg, W


# ------------------------------------------------- CLIPScore, tables, modes
def _unit(a):
    a = np.asarray(a, np.float64)
    return a / np.sqrt((a * a).sum(1, keepdims=True))


def clip_score_hessel(x, t, w: float = 2.5) -> float:
    """Hessel et al. (2021), Eq. 1: mean_i w · max(cos(x_i, t_i), 0)."""
    cos = [float(np.dot(a, b)) for a, b in zip(_unit(x), _unit(t))]
    return sum(w * max(c, 0.0) for c in cos) / len(cos)


def clip_score_torchmetrics(x, t, w: float = 100.0) -> float:
    """torchmetrics ``clip_score``: max(mean_i w · cos(x_i, t_i), 0)."""
    cos = [float(np.dot(a, b)) for a, b in zip(_unit(x), _unit(t))]
    return max(sum(w * c for c in cos) / len(cos), 0.0)


def cosine_table(t, x) -> np.ndarray:
    """cos(t_i, x_j) by a double loop."""
    t, x = np.asarray(t, np.float64), np.asarray(x, np.float64)
    out = np.empty((len(t), len(x)))
    for i, a in enumerate(t):
        for j, b in enumerate(x):
            out[i, j] = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return out


def schur_modes(phi_t, phi_x, part: str, k: int, per_mode: int):
    """Top-k eigenpairs of S, R or C_XX (dense float64) and each mode's top images.

    Each eigenvector is flipped so its largest-magnitude sample score is
    positive; samples are ranked by that score. Returns (eigenvalues [k],
    eigenvectors [D, k], indices [k, per_mode], scores [k, per_mode]).
    """
    from . import sce_numpy as S

    n = phi_x.shape[0]
    c_tt, c_tx, c_xx = phi_t.T @ phi_t / n, phi_t.T @ phi_x / n, phi_x.T @ phi_x / n
    s, r, _ = S.schur(c_tt, c_tx, c_xx)
    mat = {"complement": s, "text": r, "image": c_xx}[part]
    w, v = np.linalg.eigh(mat)
    w, v = w[::-1][:k], v[:, ::-1][:, :k]
    sc = phi_x @ v
    for j in range(k):
        if sc[np.argmax(np.abs(sc[:, j])), j] < 0:
            sc[:, j] *= -1
            v[:, j] *= -1
    idx = np.stack([np.argsort(-sc[:, j], kind="stable")[:per_mode] for j in range(k)])
    return w, v, idx, np.stack([sc[idx[j], j] for j in range(k)])
