"""clipcore.sources.inspect: layout, shards and rows, dimension, dtype, row norms (sampled, or every row
with check=True), pairing status and gaps, rows NaN / Inf / zero named by shard and row."""

import json
import os

import numpy as np
import pytest

import clipcore
from clipcore.sources import inspect, write_shards

from . import folders


@pytest.fixture
def data():
    d = clipcore.synthetic_pairs(n=400, d=10, num_modes=3, seed=2)
    x, t = np.asarray(d.images, np.float64), np.asarray(d.texts, np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True), 3.0 * t  # unit images, raw texts


def test_clip_retrieval_report(tmp_path, data):
    images, texts = data
    order = folders.clip_retrieval(tmp_path, images, texts, [150, 50, 130, 70], dtype=np.float16)
    os.remove(tmp_path / "text_emb" / "text_emb_2.npy")
    r = inspect(str(tmp_path))
    assert r.layout == "clip-retrieval" and not r.ok and not r.checked
    assert r.images.shards == [("img_emb_0.npy", 150), ("img_emb_1.npy", 50), ("img_emb_3.npy", 70)]
    assert (r.images.rows, r.images.d, r.images.dtype) == (270, 10, "float16") and r.images.unit
    keep = np.concatenate([order[:200], order[330:]])
    norms = np.linalg.norm(texts[keep].astype(np.float16).astype(np.float64), axis=1)
    assert (r.texts.norm_mean, r.texts.norm_min, r.texts.norm_max) == pytest.approx(
        (norms.mean(), norms.min(), norms.max()), rel=1e-12)
    assert not r.texts.unit and r.texts.norm_rows == 270
    assert r.pairing.missing == ("text_emb_2.npy missing",) and r.pairing.skipped == (2,)
    assert r.pairing.skipped_rows == 130
    assert r.metadata_columns == ["image_path", "caption", "NSFW", "similarity"]
    text = str(r)
    assert "clip-retrieval layout" in text and "INCOMPLETE" in text and "text_emb_2.npy missing" in text
    json.dumps(r.to_dict())


def test_check_names_every_bad_row(tmp_path, data):
    images, texts = data
    write_shards(tmp_path, images, texts, shard_rows=150)
    x = np.load(tmp_path / "images-00001.npy")
    x[3, 0], x[7, 2], x[9] = np.nan, np.inf, 0.0
    np.save(tmp_path / "images-00001.npy", x)
    t = np.load(tmp_path / "texts-00002.npy")
    t[5] = 0.0
    np.save(tmp_path / "texts-00002.npy", t)
    np.save(tmp_path / "images-00009.npy", x)  # not in the manifest
    quick = inspect(str(tmp_path))
    assert quick.pairing.complete and quick.unlisted == ["images-00009.npy"] and quick.images.bad_rows == []
    r = inspect(str(tmp_path), check=True, progress=False)
    assert r.checked and not r.ok
    assert [str(b) for b in r.images.bad_rows] == [
        "images: images-00001.npy, row 3 (global row 153): nan",
        "images: images-00001.npy, row 7 (global row 157): inf",
        "images: images-00001.npy, row 9 (global row 159): zero"]
    assert [str(b) for b in r.texts.bad_rows] == ["texts: texts-00002.npy, row 5 (global row 305): zero"]
    assert r.images.bad_counts == {"nan": 1, "inf": 1, "zero": 1} and r.images.norm_rows == 400
    good = np.delete(images, [153, 157, 159], axis=0).astype(np.float64)
    assert r.images.norm_min == 0.0 and r.images.norm_max == pytest.approx(np.linalg.norm(good, axis=1).max())
    d = r.to_dict()
    assert d["images"]["bad_rows"][0] == {"column": "images", "shard": "images-00001.npy", "row": 3,
                                          "global_row": 153, "kind": "nan"}
    assert "NaN rows 1, Inf rows 1, zero rows 1" in str(r)


def test_other_layouts(tmp_path, data):
    images, texts = data
    folders.parquet(tmp_path / "p", {"embedding": images.astype(np.float32), "text": ["a"] * 400}, [300, 100],
                    hf=False)
    r = inspect(str(tmp_path / "p"), check=True, progress=False)
    assert r.layout == "parquet" and r.texts is None and r.pairing is None and r.ok
    assert r.pairing_error == "texts: part_0.parquet has no texts embedding column"
    assert r.images.shards == [("part_0.parquet[embedding]", 300), ("part_1.parquet[embedding]", 100)]
    assert r.metadata_columns == ["embedding", "text"]
    np.save(tmp_path / "a.npy", images[:10])
    r = inspect(str(tmp_path / "a.npy"))
    assert r.layout == "files" and r.images.rows == 10 and r.pairing_error is None and r.texts is None
    folders.datacomp(tmp_path / "dc", {"l14_img": images, "l14_txt": texts}, [100, 300])
    r = inspect(str(tmp_path / "dc"), images_key="l14_img")
    assert r.layout == "datacomp" and r.pairing.complete and r.texts.rows == 400
    assert r.images.shards[0] == ("00000000.npz[l14_img]", 100)
    with pytest.raises(FileNotFoundError):
        inspect(str(tmp_path / "nothing.npy"))
