"""clipcore embed: folders and prompt files → resumable shard directories read by score / table / modes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

import clipcore
from clipcore.cli import main
from reference import clip_numpy as R


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tinyclip"))
    cfg, W = R.make_tiny_checkpoint(d, seed=1)
    return d, cfg, W


@pytest.fixture(scope="module")
def enc(ckpt):
    return clipcore.load_clip(ckpt[0])


def _folder(root, n=7, broken=(3,)):
    rng = np.random.default_rng(0)
    os.makedirs(root, exist_ok=True)
    for i in range(n):
        path = os.path.join(root, f"im{i:02d}.png")
        if i in broken:
            open(path, "wb").write(b"not an image")
        else:
            Image.fromarray(rng.integers(0, 256, (30 + i, 26, 3), dtype=np.uint8)).save(path)
    return root


def _reference_rows(ckpt, enc, files, prompts):
    _, cfg, W = ckpt
    x = R.image_features(W, cfg.vision_config.to_dict(), enc.preprocess_images(files))
    ids, mask = enc.tokenize(prompts)
    return x, R.text_features(W, cfg.text_config.to_dict(), ids, mask)


def test_embed_writes_pairs_rows_and_skipped(ckpt, enc, tmp_path):
    folder = _folder(str(tmp_path / "imgs"))
    prompts = ["a cat", "a dog", "a cat", "a bird", "a dog", "a cat", "a fish"]
    (tmp_path / "p.txt").write_text("\n".join(prompts) + "\n\n")
    res = clipcore.embed(enc, out=tmp_path / "out", images=folder, prompts=tmp_path / "p.txt", batch_size=2,
                         shard_rows=3, progress=False)
    assert res.n == 6 and res.shards_written == 3 and res.shards_resumed == 0
    assert [s["image"] for s in res.skipped] == ["im03.png"] and res.skipped[0]["prompt"] == "a bird"
    assert "UnidentifiedImageError" in res.skipped[0]["error"]
    man = json.load(open(res.manifest))
    assert man["format"] == "clipcore-shards/1" and man["normalization"] == "none" and man["inputs"] == 7
    assert man["model"]["projection_dim"] == 16 and man["images_root"] == folder
    kept = [0, 1, 2, 4, 5, 6]
    assert [r["image"] for r in man["rows"]] == [f"im{i:02d}.png" for i in kept]
    assert [man["prompts"][r["prompt_id"]] for r in man["rows"]] == [prompts[i] for i in kept]
    src = clipcore.paired_source(str(tmp_path / "out"))
    x, t = src.images.read(0, src.n), src.texts.read(0, src.n)
    rx, rt = _reference_rows(ckpt, enc, [os.path.join(folder, f"im{i:02d}.png") for i in kept],
                             [prompts[i] for i in kept])
    np.testing.assert_allclose(x, rx, atol=2e-5)
    np.testing.assert_allclose(t, rt, atol=2e-5)
    # the shard directory is what sce reads, without texts
    np.testing.assert_allclose(clipcore.sce(str(tmp_path / "out")).sce, clipcore.sce(x, t).sce, rtol=1e-9)


def test_embed_resumes_after_an_interruption(enc, tmp_path, monkeypatch):
    folder = _folder(str(tmp_path / "imgs"), n=8, broken=())
    kw = dict(out=tmp_path / "out", images=folder, prompts=["one prompt"], batch_size=2, shard_rows=3,
              normalize=True, progress=False)
    real = enc.image_features
    calls = {"n": 0}

    def failing(px):
        calls["n"] += 1
        if calls["n"] == 3:  # in the second shard
            raise KeyboardInterrupt
        return real(px)

    monkeypatch.setattr(enc, "image_features", failing)
    with pytest.raises(KeyboardInterrupt):
        clipcore.embed(enc, **kw)
    assert not os.path.exists(tmp_path / "out" / "manifest.json")
    monkeypatch.setattr(enc, "image_features", real)
    res = clipcore.embed(enc, **kw)
    assert (res.shards_resumed, res.shards_written, res.n) == (1, 2, 8)
    fresh = clipcore.embed(enc, **dict(kw, out=tmp_path / "fresh"))
    a, b = clipcore.paired_source(res.directory), clipcore.paired_source(fresh.directory)
    np.testing.assert_array_equal(a.images.read(0, 8), b.images.read(0, 8))
    np.testing.assert_allclose(np.linalg.norm(a.images.read(0, 8), axis=1), 1.0, rtol=1e-6)
    assert json.load(open(res.manifest))["normalization"] == "l2"
    # a different run into the same directory is refused, then replaced on request
    with pytest.raises(ValueError, match="holds embeddings of a different run"):
        clipcore.embed(enc, **dict(kw, prompts=["another prompt"]))
    again = clipcore.embed(enc, **dict(kw, prompts=["another prompt"], overwrite=True))
    assert again.shards_written == 3


def test_jsonl_pairs_and_pairing_errors(enc, tmp_path):
    folder = _folder(str(tmp_path / "imgs"), n=4, broken=())
    lines = [{"image": "im02.png", "prompt": "second"}, {"file": "im00.png", "caption": "first"},
             {"image": "missing.png", "text": "gone"}]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    res = clipcore.embed(enc, out=tmp_path / "o", images=folder, prompts=tmp_path / "p.jsonl", progress=False)
    man = json.load(open(res.manifest))
    assert [r["image"] for r in man["rows"]] == ["im02.png", "im00.png"] and man["prompts"] == ["second", "first"]
    assert res.skipped[0]["image"] == "missing.png" and "FileNotFoundError" in res.skipped[0]["error"]
    texts_only = clipcore.embed(enc, out=tmp_path / "t", prompts=["a", "b", "a"], progress=False)
    assert json.load(open(texts_only.manifest))["d_images"] is None and texts_only.n == 3
    with pytest.raises(ValueError, match="prompts: 2 prompts for 4 images"):
        clipcore.embed(enc, out=tmp_path / "x", images=folder, prompts=["a", "b"], progress=False)
    with pytest.raises(FileNotFoundError, match="images: no folder, file or glob match"):
        clipcore.embed(enc, out=tmp_path / "x", images=tmp_path / "nope", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image files"):
        clipcore.embed(enc, out=tmp_path / "x", images=tmp_path / "empty", progress=False)
    (tmp_path / "bad.jsonl").write_text('{"prompt": "x"}\n{oops\n')
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        clipcore.embed(enc, out=tmp_path / "x", prompts=tmp_path / "bad.jsonl", progress=False)
    with pytest.raises(ValueError, match="expected a .txt"):
        clipcore.embed(enc, out=tmp_path / "x", prompts=tmp_path / "o" / "manifest.json", progress=False)


def test_cli_embed_then_score_table_modes(ckpt, tmp_path, capsys):
    folder = _folder(str(tmp_path / "imgs"), n=6)
    (tmp_path / "p.txt").write_text("red\nblue\nred\nblue\nred\ngreen\n")
    out = tmp_path / "emb"
    rc = main(["embed", "--model", ckpt[0], "--images", folder, "--prompts", str(tmp_path / "p.txt"),
               "--out", str(out), "--batch-size", "4", "--quiet"])
    assert rc == 0
    assert "skipped: im03.png" in capsys.readouterr().err
    # clipcore score reads the embed directory as it is
    assert main(["score", "--images", str(out), "--json", str(tmp_path / "s.json"), "--quiet"]) == 0
    src = clipcore.paired_source(str(out))
    x, t = src.images.read(0, src.n), src.texts.read(0, src.n)
    payload = json.load(open(tmp_path / "s.json"))
    assert payload["result"]["n"] == 5
    assert payload["scores"]["sce"] == pytest.approx(clipcore.sce(x, t).sce, rel=1e-9)
    # the prompt × image table: distinct prompts × images, labelled from the manifest
    csv_path, png = tmp_path / "tab.csv", tmp_path / "tab.png"
    assert main(["table", "--embeddings", str(out), "--csv", str(csv_path), "--png", str(png)]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["im00.png", "im01.png", "im02.png", "im04.png", "im05.png"]
    assert [line.split()[0] for line in printed.splitlines()[1:4]] == ["red", "blue", "green"]
    vals = np.array([r.split(",")[1:] for r in csv_path.read_text().splitlines()[1:]], float)
    np.testing.assert_allclose(vals, R.cosine_table(t[[0, 1, 4]], x), atol=1e-6)
    assert png.read_bytes()[:4] == b"\x89PNG"
    # modes: JSON plus one image grid per mode
    assert main(["modes", "--images", str(out), "--k", "2", "--per-mode", "3", "--out", str(tmp_path / "m"),
                 "--quiet"]) == 0
    m = json.load(open(tmp_path / "m" / "modes.json"))
    assert np.array(m["indices"]).shape == (2, 3) and len(m["eigenvalues"]) == 2
    assert all(os.path.isfile(f) for row in m["files"] for f in row) and len(m["pngs"]) == 2
    assert open(m["pngs"][0], "rb").read(4) == b"\x89PNG"


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "p.txt").write_text("a prompt\n")
    assert main(["embed", "--model", str(tmp_path / "nope"), "--prompts", str(tmp_path / "p.txt"),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("clipcore: error: model: ") and len(err.splitlines()) == 1
    assert "config.json and model.safetensors" in err and "nothing is downloaded" in err
    assert main(["table", "--texts", str(tmp_path / "t.npy")]) == 2
    assert "--embeddings DIR" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.ones((4, 3), np.float32))
    assert main(["modes", "--images", str(tmp_path / "x.npy"), "--out", str(tmp_path / "m")]) == 2
    assert "texts: missing" in capsys.readouterr().err


def test_embed_progress_follows_the_convention(enc, tmp_path, capsys):
    """A bar of inputs at once with progress=True; nothing with False; other values refused before any work."""
    clipcore.embed(enc, out=tmp_path / "a", prompts=["a", "b"], progress=True)
    assert "embed" in capsys.readouterr().err
    clipcore.embed(enc, out=tmp_path / "b", prompts=["a", "b"], progress=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="progress: expected None"):
        clipcore.embed(enc, out=tmp_path / "c", prompts=["a"], progress=1)
    assert not os.path.exists(tmp_path / "c")
