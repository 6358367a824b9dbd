"""clipcore.encoder: the Flax NNX CLIP encoder (load_clip, CLIPEncoder) against a float64 NumPy forward pass
and transformers' torch CLIPModel."""

from __future__ import annotations

import numpy as np
import pytest

import clipcore.encoder as clipcore_encoder
from clipcore.encoder import load_clip
from reference import clip_numpy as R

from .helpers import close, pixels


def test_tiny_matches_numpy_reference(tiny, enc):
    d, cfg, W = tiny
    px = pixels(3)
    close(enc.image_features(px), R.image_features(W, cfg.vision_config.to_dict(), px), 1e-5)
    ids, mask = enc.tokenize(["a cat", "a photo of a dog on the grass, far too long for the context", ""])
    assert ids.shape == (3, 16) and ids[1, -1] == 513 and mask[0].sum() == 6  # truncated, end token kept
    close(enc.text_features(ids, mask), R.text_features(W, cfg.text_config.to_dict(), ids, mask), 1e-5)


def test_batched_encoding_equals_one_batch(tiny, enc):
    d, cfg, W = tiny
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, (40 + 3 * i, 36, 3), dtype=np.uint8) for i in range(5)]
    texts = ["red", "a blue shoe", "green bag", "x", "trousers"]
    got = enc.encode_images(images, batch_size=4, progress=False)  # tail batch padded
    ref = R.image_features(W, cfg.vision_config.to_dict(), enc.preprocess_images(images))
    close(got, ref, 1e-5)
    ids, mask = enc.tokenize(texts)
    close(enc.encode_texts(texts, batch_size=4, progress=False),
           R.text_features(W, cfg.text_config.to_dict(), ids, mask), 1e-5)
    assert enc.encode_texts("red", progress=False).shape == (1, 16)


def test_bfloat16_close_to_float64(tiny):
    d, cfg, W = tiny
    enc = load_clip(d, dtype="bfloat16")
    assert enc.dtype == "bfloat16"
    px = pixels(4, seed=5)
    ours = np.asarray(enc.image_features(px), np.float64)
    ref = R.image_features(W, cfg.vision_config.to_dict(), px)
    cos = np.sum(ours * ref, 1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert ours.dtype == np.float64 and np.all(cos > 0.99)


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
    close(enc.encode_images(images, batch_size=2, progress=False), ref_img, 1e-4)
    close(enc.encode_texts(texts, batch_size=2, progress=False), ref_txt, 1e-4)


@pytest.mark.slow
def test_vit_b32_sized_parity_with_transformers(tmp_path):
    pytest.importorskip("torch")
    from transformers import CLIPConfig

    cfg = CLIPConfig(text_config=dict(vocab_size=R.TINY_VOCAB + 6, bos_token_id=512, eos_token_id=513,
                                      pad_token_id=513))  # ViT-B/32 sizes, tiny vocabulary
    model = _torch_checkpoint(str(tmp_path), cfg)
    enc = load_clip(tmp_path)
    px = pixels(2, s=224, seed=7)
    ids, mask = enc.tokenize(["a photo of a cat", "a diagram"])
    ref_img, ref_txt = _torch_features(model, px, ids, mask)
    close(enc.image_features(px), ref_img, 1e-4)
    close(enc.text_features(ids, mask), ref_txt, 1e-4)


def test_progress_bars_follow_the_convention(enc, capsys):
    """encode_images / encode_texts show a bar of items at once with progress=True, nothing by default for a
    short call or with progress=False; other values are refused."""
    images = [np.zeros((8, 8, 3), np.uint8)] * 3
    enc.encode_images(images, batch_size=2, progress=True)
    assert "encode images" in capsys.readouterr().err
    enc.encode_texts(["a", "b"], progress=True)
    assert "encode texts" in capsys.readouterr().err
    enc.encode_images(images, progress=None)
    enc.encode_texts(["a"], progress=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="progress: expected None"):
        enc.encode_texts(["a"], progress="yes")
