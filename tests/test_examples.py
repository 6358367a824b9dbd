"""The examples run and say what they claim (subprocess, offline data)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from clipcore import datasets

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not os.path.isdir(datasets.FASHION_MNIST_DIR), reason="dataset-fashion-mnist not installed")
def test_score_generators_ranks_the_varied_generator_first(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "score_generators.py"), "--out", str(tmp_path), "--per-prompt", "20"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "scores.png").stat().st_size > 0
    rows = {r["generator"]: r for r in json.loads((tmp_path / "scores.json").read_text())["rows"]}
    assert rows["varied"]["sce"] > rows["collapsed"]["sce"]
    assert rows["collapsed"]["distinct_images"] < rows["varied"]["distinct_images"]


@pytest.mark.parametrize("extra", [[], ["--generator", "--vendi-weight", "0.5"]], ids=["embeddings", "generator"])
def test_diversity_guidance_raises_sce_and_keeps_the_clipscore_floor(tmp_path, extra):
    floor = 1.25
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "diversity_guidance.py"), "--out", str(tmp_path), "--steps", "40",
         "--batch", "64", "--bank", "400", "--dim", "32", "--floor", str(floor), *extra],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads((tmp_path / "history.json").read_text())
    hist = res["history"]
    assert len(hist) == 41 and (tmp_path / "guidance.png").stat().st_size > 0
    assert hist[-1]["sce"] > 1.2 * hist[0]["sce"], "the guided batch raises the SCE of bank ∪ batch"
    assert hist[-1]["batch_sce"] > 2.0 * hist[0]["batch_sce"]
    assert all(h["clip_min"] >= floor * (1 - 1e-5) for h in hist), "every image keeps its CLIPScore floor"
    assert res["seconds"] < 60
