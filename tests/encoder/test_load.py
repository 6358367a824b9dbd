"""clipcore.encoder._load: what a checkpoint directory must hold, and weights that do not fit the config."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from clipcore.encoder import load_clip


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
