"""clipcore.sources.writer: write_shards writes .npy shards and a manifest that sce streams."""

import json
import os
import re
import warnings

import numpy as np
import pytest

import clipcore
from clipcore.sources import FORMAT, ShardWarning, list_shards, paired_source, read_manifest, write_shards

from .helpers import agree


KERNELS = [dict(), dict(kernel="gaussian", rff_features=40, key=2), dict(convention="clip-dissection"),
           dict(kernel="gaussian", rff_features=30, sigma=0.8, normalize=True)]


@pytest.mark.parametrize("kw", KERNELS)
@pytest.mark.parametrize("block", [97, 512, 4096])
def test_shard_directory_matches_arrays(stream_all, tmp_path, pairs, kw, block):
    images, texts = pairs
    write_shards(tmp_path / "shards", images, texts, shard_rows=400)
    # float32 rows both ways, computed in float64 (float32 block products would round per block)
    got = clipcore.sce(str(tmp_path / "shards"), block_size=block, progress=False, dtype="float64", **kw)
    want = clipcore.sce(images, texts, dtype="float64", **kw)
    agree(got, want)
    assert got.n == 1500 and got.method.startswith("primal")
    assert got.sigma == want.sigma  # the σ heuristic samples the same rows


def test_manifest_fields(tmp_path, pairs):
    images, texts = pairs
    path = write_shards(tmp_path / "s", images, texts, shard_rows=600, extra={"model": "synthetic"})
    man = json.loads(open(path).read())
    assert man["n"] == 1500 and [s["rows"] for s in man["shards"]] == [600, 600, 300] and man["model"] == "synthetic"
    assert man["format"] == FORMAT == "clipcore-shards/1" and read_manifest(tmp_path / "s", "images") == man
    assert man["shards"][1] == {"images": "images-00001.npy", "texts": "texts-00001.npy", "rows": 600}
    assert (man["d_images"], man["d_texts"], man["dtype"]) == (24, 24, "float32")
    np.testing.assert_array_equal(np.load(tmp_path / "s" / "texts-00002.npy"), texts[1200:])
    write_shards(tmp_path / "f64", images, texts, dtype=np.float64)
    assert paired_source(str(tmp_path / "f64")).images.read(0, 3).dtype == np.float64


def test_write_shards_needs_pairs(tmp_path, pairs):
    images, _ = pairs
    with pytest.raises(ValueError, match="texts: write_shards needs paired images and texts"):
        write_shards(tmp_path / "s", images, None)


def test_write_into_a_non_empty_folder_is_refused_unless_overwrite(tmp_path, pairs):
    """The stale-shard case: 1500 rows in shards of 400, then 1000 rows into the same folder. Refused
    without overwrite; with it, only the first write's shards are removed, so the folder, its glob and the
    manifest all give the 1000 new rows (the glob form once read 2476 rows of two writes silently)."""
    images, texts = pairs
    s = tmp_path / "s"
    write_shards(s, images, texts, shard_rows=400)
    (s / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"directory: .*s is not empty .*overwrite=True"):
        write_shards(s, images[:1000], texts[:1000], shard_rows=400)
    assert read_manifest(s, "images")["n"] == 1500  # nothing touched
    write_shards(s, images[:1000], texts[:1000], shard_rows=400, overwrite=True)
    assert sorted(p.name for p in s.iterdir()) == ["images-00000.npy", "images-00001.npy", "images-00002.npy",
                                                   "manifest.json", "notes.txt", "texts-00000.npy",
                                                   "texts-00001.npy", "texts-00002.npy"]
    want = clipcore.sce(images[:1000], texts[:1000])
    agree(clipcore.sce(str(s), progress=False), want)
    agree(clipcore.sce(str(s / "images-*.npy"), str(s / "texts-*.npy"), progress=False), want)
    with pytest.raises(ValueError, match="overwrite: expected True or False"):
        write_shards(s, images, texts, overwrite="yes")


def test_a_glob_that_disagrees_with_its_manifest_warns(tmp_path, pairs):
    """A shard left by an earlier writer (not listed by the manifest) is never read with the folder, and a
    glob that matches it warns; a glob over images and texts together warns too."""
    images, texts = pairs
    s = tmp_path / "s"
    write_shards(s, images[:1000], texts[:1000], shard_rows=400)
    np.save(s / "images-00003.npy", images[1000:])  # stale: no manifest entry
    np.save(s / "texts-00003.npy", texts[1000:])
    agree(clipcore.sce(str(s), progress=False), clipcore.sce(images[:1000], texts[:1000]))
    with pytest.warns(ShardWarning) as caught:
        got = clipcore.sce(str(s / "images-*.npy"), str(s / "texts-*.npy"), progress=False)
    assert len(caught) == 2
    for col, w in zip(("images", "texts"), caught):
        assert re.fullmatch(rf"{col}: the glob .*{col}-\*.npy matches 1 file\(s\) that manifest.json in .* does not "
                            rf"list \({col}-00003.npy\): .*", str(w.message)), str(w.message)
    assert got.n == 1500  # the glob reads what it names, and says so
    with pytest.warns(ShardWarning, match=r"matches files of several columns"):
        list_shards(str(s / "*-0000[0-2].npy"), "images")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list_shards(str(s / "images-0000[0-2].npy"), "images")) == 3  # agrees: silent


@pytest.mark.parametrize("dtype", [np.float16, np.float32], ids=["f16", "f32"])
def test_clip_retrieval_layout(tmp_path, pairs, dtype):
    """write_shards(layout="clip-retrieval") writes what clip-retrieval / LAION tools read: img_emb/, text_emb/,
    metadata/ with N padded to the width of the shard count, and reads back the same (with or without the
    manifest beside them)."""
    images, texts = pairs
    caps = [f"prompt {i % 9}" for i in range(1500)]
    meta = {"caption": caps, "image_path": [f"img/{i}.jpg" for i in range(1500)]}
    write_shards(tmp_path, images, texts, shard_rows=150, dtype=dtype, layout="clip-retrieval", metadata=meta)
    assert sorted(os.listdir(tmp_path / "img_emb")) == [f"img_emb_{k:02d}.npy" for k in range(10)]
    assert sorted(os.listdir(tmp_path / "metadata")) == [f"metadata_{k:02d}.parquet" for k in range(10)]
    x, t = images.astype(dtype).astype(np.float32), texts.astype(dtype).astype(np.float32)
    np.testing.assert_array_equal(np.load(tmp_path / "text_emb" / "text_emb_03.npy"), texts[450:600].astype(dtype))
    want = clipcore.sce(x, t)
    agree(clipcore.sce(str(tmp_path), progress=False), want)
    src = paired_source(str(tmp_path))
    assert [src.prompts()[g] for g in src.groups()] == caps
    os.remove(tmp_path / "manifest.json")  # read by the layout's names alone, as other tools' output
    src = paired_source(str(tmp_path))
    assert src.layout == "clip-retrieval" and src.pairing.shards == 10
    assert src.image_paths().tolist() == meta["image_path"]
    agree(clipcore.sce(str(tmp_path), progress=False), want)
    with pytest.raises(ValueError, match="layout: expected one of"):
        write_shards(tmp_path / "o", images, texts, layout="laion")
    with pytest.raises(ValueError, match="metadata: written with layout='clip-retrieval' only"):
        write_shards(tmp_path / "o", images, texts, metadata=meta)
    with pytest.raises(ValueError, match="metadata: column 'caption' has 3 values for 1500 rows"):
        write_shards(tmp_path / "o", images, texts, metadata={"caption": ["a", "b", "c"]}, layout="clip-retrieval")
