"""The Flax NNX CLIP encoder against a float64 NumPy forward pass and transformers' torch CLIPModel."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import clipcore.encoder as clipcore_encoder
from clipcore.encoder import ClipConfig, ClipModule, load_clip
from reference import clip_numpy as R


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tinyclip"))
    cfg, W = R.make_tiny_checkpoint(d, seed=0)
    return d, cfg, W


@pytest.fixture(scope="module")
def enc(tiny):
    return load_clip(tiny[0])


def _close(ours, ref, tol):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape
    err = np.abs(ours - ref).max()
    assert err <= tol * max(1.0, np.abs(ref).max()), f"max abs error {err:.3g}"


def _pixels(b, s=32, seed=1):
    return np.random.default_rng(seed).normal(size=(b, 3, s, s)).astype(np.float32)


def test_tiny_matches_numpy_reference(tiny, enc):
    d, cfg, W = tiny
    px = _pixels(3)
    _close(enc.image_features(px), R.image_features(W, cfg.vision_config.to_dict(), px), 1e-5)
    ids, mask = enc.tokenize(["a cat", "a photo of a dog on the grass, far too long for the context", ""])
    assert ids.shape == (3, 16) and ids[1, -1] == 513 and mask[0].sum() == 6  # truncated, end token kept
    _close(enc.text_features(ids, mask), R.text_features(W, cfg.text_config.to_dict(), ids, mask), 1e-5)


def test_gelu_and_legacy_eos_config_match_numpy_reference(tmp_path):
    d = str(tmp_path)
    cfg, W = R.make_tiny_checkpoint(d, seed=2, act="gelu")
    # pre-#24773 configs (eos_token_id = 2) pool at the largest token id
    raw = json.load(open(os.path.join(d, "config.json")))
    raw["text_config"]["eos_token_id"] = 2
    json.dump(raw, open(os.path.join(d, "config.json"), "w"))
    cfg.text_config.eos_token_id = 2
    enc = load_clip(d)
    ids, mask = enc.tokenize(["zebra", "a b c"])
    ids[0, 3] = 515  # an id above the end token moves the legacy pooling, not the modern one
    _close(enc.text_features(ids, mask), R.text_features(W, cfg.text_config.to_dict(), ids, mask), 1e-5)
    px = _pixels(2, seed=3)
    _close(enc.image_features(px), R.image_features(W, cfg.vision_config.to_dict(), px), 1e-5)


def test_batched_encoding_equals_one_batch(tiny, enc):
    d, cfg, W = tiny
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, (40 + 3 * i, 36, 3), dtype=np.uint8) for i in range(5)]
    texts = ["red", "a blue shoe", "green bag", "x", "trousers"]
    got = enc.encode_images(images, batch_size=4, progress=False)  # tail batch padded
    ref = R.image_features(W, cfg.vision_config.to_dict(), enc.preprocess_images(images))
    _close(got, ref, 1e-5)
    ids, mask = enc.tokenize(texts)
    _close(enc.encode_texts(texts, batch_size=4, progress=False),
           R.text_features(W, cfg.text_config.to_dict(), ids, mask), 1e-5)
    assert enc.encode_texts("red", progress=False).shape == (1, 16)


def test_bfloat16_close_to_float64(tiny):
    d, cfg, W = tiny
    enc = load_clip(d, dtype="bfloat16")
    assert enc.dtype == "bfloat16"
    px = _pixels(4, seed=5)
    ours = np.asarray(enc.image_features(px), np.float64)
    ref = R.image_features(W, cfg.vision_config.to_dict(), px)
    cos = np.sum(ours * ref, 1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert ours.dtype == np.float64 and np.all(cos > 0.99)


_L14 = dict(projection_dim=768, text_config=dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12),
            vision_config=dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
                               num_hidden_layers=24, patch_size=14))


@pytest.mark.parametrize("sizes, count", [
    pytest.param({}, 151_277_313, id="B32", marks=pytest.mark.slow),
    pytest.param(dict(vision_config=dict(patch_size=16)), 149_620_737, id="B16", marks=pytest.mark.slow),
    pytest.param(_L14, 427_616_513, id="L14", marks=pytest.mark.slow),
])
def test_published_parameter_counts(sizes, count):
    """openai/clip-vit-{base-patch32, base-patch16, large-patch14} have 151,277,313 /
    149,620,737 / 427,616,513 parameters (the Hugging Face model cards' sizes)."""
    import jax
    from flax import nnx
    from transformers import CLIPConfig

    ab = nnx.eval_shape(lambda: ClipModule(ClipConfig.from_hf(CLIPConfig(**sizes)), rngs=nnx.Rngs(0)))
    assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(ab))) == count


def test_missing_or_wrong_directory_errors(tiny, tmp_path):
    d, cfg, W = tiny
    with pytest.raises(FileNotFoundError, match="not a directory.*config.json and model.safetensors"):
        load_clip(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_clip(empty)
    shutil.copy(os.path.join(d, "config.json"), empty)
    (empty / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="no model.safetensors.*pytorch_model.bin"):
        load_clip(empty)
    # a vision-only config is not a CLIPModel
    (empty / "model.safetensors").write_bytes(b"")
    json.dump({"model_type": "clip_vision_model"}, open(empty / "config.json", "w"))
    with pytest.raises(ValueError, match="model_type 'clip_vision_model'"):
        load_clip(empty)


def test_weights_that_do_not_fit_the_config(tiny, tmp_path):
    from safetensors.numpy import save_file

    d, cfg, W = tiny
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        shutil.copy(os.path.join(d, name), tmp_path)
    bad = dict(W)
    del bad["text_projection.weight"]
    save_file(bad, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="lacks parameters text_projection.weight"):
        load_clip(tmp_path)
    bad = dict(W, **{"visual_projection.weight": np.zeros((8, 32), np.float32)})
    save_file(bad, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"visual_projection.weight \(8, 32\)"):
        load_clip(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_clip(tmp_path)


def test_bad_arguments(tiny, enc):
    d, cfg, W = tiny
    with pytest.raises(ValueError, match="dtype"):
        load_clip(d, dtype="float16")
    with pytest.raises(ValueError, match="device: no 'tpu' device"):
        load_clip(d, device="tpu")
    assert clipcore_encoder.resolve_device("cpu").platform == "cpu"
    with pytest.raises(ValueError, match=r"pixel_values: expected \[b, 3, 32, 32\]"):
        enc.image_features(np.zeros((2, 3, 28, 28), np.float32))
    with pytest.raises(ValueError, match="exceed the model's context of 16"):
        enc.text_features(np.zeros((1, 20), np.int32))
    with pytest.raises(ValueError, match="input_ids: ids must lie in"):
        enc.text_features(np.full((1, 4), 10_000))
    with pytest.raises(ValueError, match="texts: entry 1"):
        enc.encode_texts(["ok", 3])
    with pytest.raises(ValueError, match="nothing to encode"):
        enc.encode_images([])


# ------------------------------------------------------- transformers (torch)
def _torch_features(model, px, ids, mask):
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        img = model.get_image_features(pixel_values=torch.from_numpy(px))
        txt = model.get_text_features(input_ids=torch.from_numpy(ids.astype(np.int64)),
                                      attention_mask=torch.from_numpy(mask.astype(np.int64)))
    # transformers 5 returns a BaseModelOutputWithPooling (projected pooler_output); 4.x a tensor
    img = getattr(img, "pooler_output", img)
    txt = getattr(txt, "pooler_output", txt)
    return img.numpy(), txt.numpy()


def _torch_checkpoint(directory, cfg, seed=0):
    torch = pytest.importorskip("torch")
    from transformers import CLIPModel

    torch.manual_seed(seed)
    model = CLIPModel(cfg).eval()
    with torch.no_grad():  # move every parameter (LayerNorms included) off its init value
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(directory)
    R.save_processor_files(directory, cfg)
    return model


def test_batch_bucket():
    assert [clipcore_encoder.batch_bucket(m, 64) for m in (1, 2, 3, 5, 64, 65, 1000)] == [1, 2, 4, 8, 64, 64, 64]


def test_tiny_parity_with_transformers(tmp_path):
    pytest.importorskip("torch")
    from PIL import Image

    model = _torch_checkpoint(str(tmp_path), R.tiny_config())
    enc = load_clip(tmp_path)
    rng = np.random.default_rng(6)
    images = [Image.fromarray(rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)) for _ in range(3)]
    texts = ["a cat", "a photo of a dog on the grass", ""]
    px = enc.preprocess_images(images)
    ids, mask = enc.tokenize(texts)
    ref_img, ref_txt = _torch_features(model, px, ids, mask)
    _close(enc.encode_images(images, batch_size=2, progress=False), ref_img, 1e-4)
    _close(enc.encode_texts(texts, batch_size=2, progress=False), ref_txt, 1e-4)


@pytest.mark.slow
def test_vit_b32_sized_parity_with_transformers(tmp_path):
    pytest.importorskip("torch")
    from transformers import CLIPConfig

    cfg = CLIPConfig(text_config=dict(vocab_size=R.TINY_VOCAB + 6, bos_token_id=512, eos_token_id=513,
                                      pad_token_id=513))  # ViT-B/32 sizes, tiny vocabulary
    model = _torch_checkpoint(str(tmp_path), cfg)
    enc = load_clip(tmp_path)
    px = _pixels(2, s=224, seed=7)
    ids, mask = enc.tokenize(["a photo of a cat", "a diagram"])
    ref_img, ref_txt = _torch_features(model, px, ids, mask)
    _close(enc.image_features(px), ref_img, 1e-4)
    _close(enc.text_features(ids, mask), ref_txt, 1e-4)
