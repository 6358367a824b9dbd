"""``clipcore inspect PATH``: the report of clipcore.sources.inspect printed and written as JSON, for a small
generated folder of each layout, good and broken (a missing shard, a NaN row); exit 0 when the report is ok,
1 when something needs fixing, 2 when the path cannot be read."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from clipcore.cli import main
from clipcore.sources import write_shards
from sources import folders  # tests/sources/folders.py: folders in the layouts other tools write


@pytest.fixture
def data():
    rng = np.random.default_rng(5)
    x, t = rng.normal(size=(240, 8)), rng.normal(size=(240, 8))
    return x / np.linalg.norm(x, axis=1, keepdims=True), 2.0 * t  # unit images, raw texts


def _run(capsys, *argv):
    rc = main(["inspect", *map(str, argv)])
    return rc, capsys.readouterr()


def _json(path):
    with open(path) as f:
        return json.load(f)


def test_clip_retrieval_good_and_missing_shard(tmp_path, data, capsys):
    images, texts = data
    root = tmp_path / "cr"
    folders.clip_retrieval(root, images, texts, [100, 60, 80])
    rc, out = _run(capsys, root, "--json", tmp_path / "good.json")
    assert rc == 0, out.err
    assert "clip-retrieval layout" in out.out
    assert "img_emb_0.npy: 100, img_emb_1.npy: 60, img_emb_2.npy: 80" in out.out
    assert "d = 8, float16" in out.out and "pairing: complete (3 shard pairs, 240 rows)" in out.out
    rep = _json(tmp_path / "good.json")
    assert rep["command"] == "inspect" and rep["ok"] and rep["layout"] == "clip-retrieval"
    assert [s["rows"] for s in rep["images"]["shards"]] == [100, 60, 80]
    assert rep["images"]["unit"] and not rep["texts"]["unit"]
    norms = np.linalg.norm(texts.astype(np.float16).astype(np.float64), axis=1)  # every row: 240 < the sample
    assert rep["texts"]["norm_mean"] == pytest.approx(norms.mean(), rel=1e-12)
    assert rep["texts"]["norm_min"] == pytest.approx(norms.min(), rel=1e-12)
    assert rep["texts"]["norm_max"] == pytest.approx(norms.max(), rel=1e-12)
    assert rep["metadata_columns"][:2] == ["image_path", "caption"] and "environment" in rep

    os.remove(root / "text_emb" / "text_emb_1.npy")
    rc, out = _run(capsys, root, "--json", tmp_path / "bad.json")
    assert rc == 1
    assert "INCOMPLETE" in out.out and "text_emb_1.npy missing" in out.out
    rep = _json(tmp_path / "bad.json")
    assert not rep["ok"] and rep["pairing"]["missing"] == ["text_emb_1.npy missing"]
    assert rep["pairing"]["skipped"] == [1] and rep["pairing"]["skipped_rows"] == 60


def test_check_names_the_nan_row(tmp_path, data, capsys):
    images, texts = data
    root = tmp_path / "laion"
    folders.laion5b(root, images, texts, [90, 150], dtype=np.float32)
    shard = root / "laion2B-en" / "img_emb" / "img_emb_0001.npy"
    a = np.load(shard)
    a[17, 3] = np.nan
    np.save(shard, a)
    rc, out = _run(capsys, root, "--check", "--json", tmp_path / "r.json")
    assert rc == 1
    assert "img_emb_0001.npy, row 17 (global row 107): nan" in out.out
    rep = _json(tmp_path / "r.json")
    assert rep["checked"] and not rep["ok"]
    assert rep["images"]["bad_counts"] == {"nan": 1, "inf": 0, "zero": 0}
    bad = rep["images"]["bad_rows"]
    assert [(b["shard"], b["row"], b["global_row"], b["kind"]) for b in bad] == [("img_emb_0001.npy", 17, 107, "nan")]
    assert rep["texts"]["bad_counts"] == {"nan": 0, "inf": 0, "zero": 0}
    # without --check the rows are only sampled: the pairing is complete, nothing is reported bad
    rc, out = _run(capsys, root, "--quiet")
    assert rc == 0 and out.out == ""


def test_datacomp_keys(tmp_path, data, capsys):
    images, texts = data
    arrays = {"b32_img": images, "b32_txt": texts, "l14_img": 3 * images, "l14_txt": texts[:, ::-1].copy(),
              "dedup": np.zeros(240, bool)}
    folders.datacomp(tmp_path, arrays, [70, 170])
    rc, out = _run(capsys, tmp_path, "--images-key", "l14_img", "--json", tmp_path / "r.json")
    assert rc == 0, out.err
    assert "datacomp layout" in out.out and "00000000.npz[l14_img]: 70" in out.out
    rep = _json(tmp_path / "r.json")
    assert rep["pairing"]["images_key"] == "l14_img" and rep["pairing"]["texts_key"] == "l14_txt"
    assert rep["images"]["norm_mean"] == pytest.approx(3.0, rel=1e-3)  # float16 unit rows times 3
    rc, out = _run(capsys, tmp_path, "--images-key", "l15_img")
    assert rc == 2
    assert "'l15_img'" in out.err and "l14_img" in out.err and "b32_img" in out.err
    assert out.err.count("\n") == 1  # one line


def test_parquet_and_clipcore_shards(tmp_path, data, capsys):
    images, texts = data
    folders.parquet(tmp_path / "hf", {"image_embedding": images.astype(np.float32),
                                      "text_embedding": texts.astype(np.float32),
                                      "caption": folders.captions_of(240)}, [100, 140])
    rc, out = _run(capsys, tmp_path / "hf")
    assert rc == 0, out.err
    assert "parquet layout" in out.out and "d = 8, float32" in out.out and "metadata columns:" in out.out
    write_shards(tmp_path / "own", images, texts, shard_rows=100)
    rc, out = _run(capsys, tmp_path / "own", "--check")
    assert rc == 0, out.err
    assert "images: 240 rows in 3 shard(s)" in out.out and "check: no NaN / Inf / zero row" in out.out


def test_plain_file_and_missing_path(tmp_path, data, capsys):
    images, _ = data
    x = images.copy()
    x[5] = 0.0
    np.save(tmp_path / "x.npy", x)
    rc, out = _run(capsys, tmp_path / "x.npy", "--check", "--json", tmp_path / "r.json")
    assert rc == 1
    assert "files layout" in out.out and "x.npy, row 5 (global row 5): zero" in out.out
    rep = _json(tmp_path / "r.json")
    assert rep["texts"] is None and rep["pairing"] is None and rep["images"]["bad_counts"]["zero"] == 1
    rc, out = _run(capsys, tmp_path / "nothing-here")
    assert rc == 2 and "clipcore: error:" in out.err
