"""`clipcore iin` (clipcore.cli.iin) in-process: fit, evaluate, JSON, PNG, saved models, errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from clipcore.cli import main
from clipcore.models.iin_data import synthetic_attributes


def test_cli_iin_json_png(tmp_path, capsys):
    ds = synthetic_attributes(400, 8, num_attributes=2, seed=2)
    np.save(tmp_path / "z.npy", ds.embeddings)
    with open(tmp_path / "a.csv", "w") as f:
        f.write("glasses,smile\n")
        for r in ds.attributes:
            f.write(f"{'yes' if r[0] else 'no'},{r[1]}\n")
    out, png, model = tmp_path / "o.json", tmp_path / "p.png", tmp_path / "m.npz"
    args = ["iin", "--embeddings", str(tmp_path / "z.npy"), "--attributes", str(tmp_path / "a.csv"),
            "--blocks", "3", "--hidden", "32", "--hidden-layers", "2", "--steps", "100", "--lr", "1e-3",
            "--batch-size", "128", "--json", str(out), "--plot", str(png), "--save", str(model)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "edit success rate" in printed and "glasses" in printed and "collateral" in printed
    payload = json.loads(out.read_text())
    r = payload["result"]
    assert r["names"] == ["glasses", "smile"] and r["classes"][0] == ["no", "yes"]
    assert np.array(r["probe_accuracy"]).shape == (3, 2)
    assert r["train_rows"] == 300 and r["test_rows"] == 100
    assert payload["config"]["num_blocks"] == 3 and "jax" in payload["environment"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a saved model evaluates to the same figures
    assert main(["iin", "--embeddings", str(tmp_path / "z.npy"), "--attributes", str(tmp_path / "a.csv"),
                 "--load", str(model), "--json", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text())["result"]["probe_accuracy"] == r["probe_accuracy"]
    assert capsys.readouterr().out == ""


def test_cli_iin_builtin_fashion_data(tmp_path, capsys):
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.skip("Fashion-MNIST IDX files not installed")
    out = tmp_path / "f.json"
    assert main(["iin", "--data", "fashion-mnist", "--n", "300", "--dim", "8", "--blocks", "3", "--hidden", "32",
                 "--hidden-layers", "2", "--steps", "100", "--lr", "1e-3", "--batch-size", "128",
                 "--json", str(out), "--quiet"]) == 0
    payload = json.loads(out.read_text())
    assert payload["result"]["names"] == ["footwear", "light"] and payload["inputs"]["data"] == "fashion-mnist"
    assert payload["result"]["test_rows"] == 75 and payload["result"]["factor_sizes"] == [3, 3, 2]
    assert main(["iin", "--data", "synthetic", "--embeddings", "z.npy", "--quiet"]) == 2
    assert "not both" in capsys.readouterr().err


@pytest.mark.parametrize("setup, message", [
    ("odd", "D must be even"),
    ("rows", "attributes: 399 rows"),
    ("missing", "file not found"),
    ("none", "needs --embeddings"),
])
def test_cli_iin_errors_exit_2(tmp_path, capsys, setup, message):
    ds = synthetic_attributes(400, 8, num_attributes=1, seed=2)
    z = ds.embeddings[:, :7] if setup == "odd" else ds.embeddings
    np.save(tmp_path / "z.npy", z)
    rows = ds.attributes[:399] if setup == "rows" else ds.attributes
    (tmp_path / "a.csv").write_text("a\n" + "\n".join(str(int(v)) for v in rows[:, 0]) + "\n")
    args = ["iin", "--embeddings", str(tmp_path / ("nope.npy" if setup == "missing" else "z.npy")),
            "--attributes", str(tmp_path / "a.csv"), "--steps", "1", "--blocks", "1", "--hidden", "4", "--quiet"]
    if setup == "none":
        args = ["iin", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("clipcore: error:") and message in err[0]
