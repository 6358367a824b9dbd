"""clipcore.encoder._towers: the NNX towers' sizes (published parameter counts) and the text pooling rules."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from clipcore.encoder import ClipConfig, ClipModule, load_clip
from reference import clip_numpy as R

from .helpers import close, pixels


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
    close(enc.text_features(ids, mask), R.text_features(W, cfg.text_config.to_dict(), ids, mask), 1e-5)
    px = pixels(2, seed=3)
    close(enc.image_features(px), R.image_features(W, cfg.vision_config.to_dict(), px), 1e-5)


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
