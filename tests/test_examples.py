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
