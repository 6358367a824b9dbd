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


def _digit_files(tmp_path):
    import clipcore

    d = clipcore.digits()
    x = (d.images[:400] / 16.0).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    a = np.stack([d.labels[:400] >= 5, d.labels[:400] % 2], axis=1).astype(int)
    (tmp_path / "a.csv").write_text("high,odd\n" + "\n".join(f"{r[0]},{r[1]}" for r in a) + "\n")
    return x, a


def test_cli_vae_then_iin_on_its_latent(tmp_path, capsys):
    """clipcore vae trains and saves; clipcore iin --vae fits on its codes and writes the grid, the
    correlation heat maps with their JSON, and the decoded edits."""
    x, a = _digit_files(tmp_path)
    vae, vj, vp = tmp_path / "vae.safetensors", tmp_path / "v.json", tmp_path / "v.png"
    assert main(["vae", "--images", str(tmp_path / "x.npy"), "--latent-dim", "8", "--steps", "60",
                 "--save", str(vae), "--json", str(vj), "--plot", str(vp)]) == 0
    printed = capsys.readouterr().out
    assert "held-out reconstruction" in printed and "mean image" in printed
    r = json.loads(vj.read_text())["result"]
    assert r["test_images"] == 80 and r["train_images"] == 320 and 0 < r["reconstruction_mse"] < 1
    assert vp.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out, grid, corr = tmp_path / "o.json", tmp_path / "g.png", tmp_path / "c.png"
    assert main(["iin", "--images", str(tmp_path / "x.npy"), "--attributes", str(tmp_path / "a.csv"), "--vae",
                 str(vae), "--blocks", "3", "--hidden", "32", "--hidden-layers", "2", "--steps", "60", "--lr", "1e-3",
                 "--batch-size", "128", "--grid", str(grid), "--grid-factor", "odd", "--grid-rows", "3",
                 "--correlation", str(corr), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "decoded edits" in printed and "flipped to target" in printed
    res = json.loads(out.read_text())["result"]
    assert res["names"] == ["high", "odd"] and res["test_rows"] == 100
    assert set(res["decoded_edits"]) >= {"flip_rate", "collateral_rate", "reconstruction_error", "probe_accuracy"}
    assert [p["kind"] for p in res["correlation"]] == ["factors", "pca"]
    c = json.loads((tmp_path / "c.json").read_text())["correlation"]
    assert c[0]["features"] == ["high", "odd"] and c[0]["components"] == ["high", "odd", "residual"]
    assert np.array(c[1]["matrix"]).shape == (2, 8)
    for png in (grid, corr):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_iin_correlation_with_prompt_embeddings(tmp_path):
    from clipcore.models.correlation import principal_components, prompt_similarities

    ds = synthetic_attributes(400, 8, num_attributes=2, seed=4)
    np.save(tmp_path / "z.npy", ds.embeddings)
    (tmp_path / "a.csv").write_text("p,q\n" + "\n".join(f"{r[0]},{r[1]}" for r in ds.attributes) + "\n")
    prompts = np.random.default_rng(0).standard_normal((3, 8))
    np.save(tmp_path / "p.npy", prompts)
    corr = tmp_path / "c.png"
    assert main(["iin", "--embeddings", str(tmp_path / "z.npy"), "--attributes", str(tmp_path / "a.csv"),
                 "--blocks", "3", "--hidden", "32", "--hidden-layers", "2", "--steps", "40", "--lr", "1e-3",
                 "--batch-size", "128", "--correlation", str(corr), "--prompts", str(tmp_path / "p.npy"),
                 "--prompt-names", "a dog,a cat,a car", "--quiet"]) == 0
    c = json.loads((tmp_path / "c.json").read_text())["correlation"]
    assert c[1]["features"] == ["a dog", "a cat", "a car"] and c[1]["kind"] == "pca"
    # the held-out rows' similarities against their principal components, recomputed here with NumPy
    te = np.sort(np.random.default_rng(0).permutation(400)[:100])
    z = ds.embeddings[te].astype(np.float64)
    f, pcs = prompt_similarities(z, prompts), principal_components(z, 8)
    ref = np.corrcoef(np.concatenate([f, pcs], axis=1), rowvar=False)[:3, 3:]
    np.testing.assert_allclose(np.array(c[1]["matrix"], dtype=float), ref, atol=1e-9)


def test_cli_iin_vae_flags_need_a_vae(tmp_path, capsys):
    assert main(["iin", "--data", "synthetic", "--grid", str(tmp_path / "g.png"), "--quiet"]) == 2
    assert "--grid and --images need --vae" in capsys.readouterr().err
    assert main(["iin", "--data", "synthetic", "--vae", str(tmp_path / "v.safetensors"), "--quiet"]) == 2
    assert "--data fashion-mnist" in capsys.readouterr().err
