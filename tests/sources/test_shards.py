"""clipcore.sources.shards: THE shard lister (paths, directories with or without a manifest, globs, lists)."""

import json
import os

import numpy as np
import pytest

import clipcore
from clipcore.sources import (MANIFEST, has_manifest, list_shards, manifest_columns, read_manifest,
                              write_shards)

from .helpers import agree, save_uneven_shards


def test_npy_paths_globs_lists_and_plain_directories(stream_all, tmp_path, pairs):
    images, texts = pairs
    # float32 rows both ways, computed in float64 (float32 block products would round per block)
    want = clipcore.sce(images, texts, dtype="float64")
    (tmp_path / "img").mkdir()
    (tmp_path / "txt").mkdir()
    ip = save_uneven_shards(tmp_path / "img", "part", images, [1, 700, 3, 796])
    tp = save_uneven_shards(tmp_path / "txt", "part", texts, [500, 1000])  # other boundaries
    np.save(tmp_path / "all_images.npy", images)
    np.save(tmp_path / "all_texts.npy", texts)
    for got in (
        clipcore.sce(str(tmp_path / "all_images.npy"), str(tmp_path / "all_texts.npy"), block_size=256, progress=False,
                     dtype="float64"),
        clipcore.sce(ip, tp, block_size=256, progress=False, dtype="float64"),
        clipcore.sce(str(tmp_path / "img" / "part-*.npy"), str(tmp_path / "txt"), block_size=333, progress=False,
                     dtype="float64"),
    ):
        agree(got, want)


def test_npz_shard_directories(tmp_path, pairs):
    """A plain directory of .npz shards (or .npy and .npz mixed, in name order) is read like .npy shards."""
    images, texts = pairs
    (tmp_path / "img").mkdir()
    (tmp_path / "txt").mkdir()
    np.savez(tmp_path / "img" / "a.npz", images[:600])
    np.save(tmp_path / "img" / "b.npy", images[600:1000])
    np.savez(tmp_path / "img" / "c.npz", embeddings=images[1000:])
    np.savez(tmp_path / "txt" / "a.npz", texts)
    got = clipcore.sce(str(tmp_path / "img"), str(tmp_path / "txt"), progress=False)
    agree(got, clipcore.sce(images, texts))
    v = clipcore.vendi(str(tmp_path / "img"), progress=False)
    assert v.n == 1500 and v.score == pytest.approx(clipcore.vendi(images).score, rel=1e-12)
    (tmp_path / "none").mkdir()
    with pytest.raises(ValueError, match="x: directory .* has no .npy or .npz files"):
        clipcore.vendi(str(tmp_path / "none"))


def test_list_shards(tmp_path, pairs):
    """Each kind of argument lists the files expected of it, in reading order."""
    images, texts = pairs
    write_shards(tmp_path / "s", images, texts, shard_rows=600)
    s = str(tmp_path / "s")
    assert list_shards(s, "images") == [os.path.join(s, f"images-0000{k}.npy") for k in range(3)]
    assert list_shards(s, "x", key="texts") == [os.path.join(s, f"texts-0000{k}.npy") for k in range(3)]
    assert has_manifest(s) and has_manifest(tmp_path / "s") and not has_manifest(str(tmp_path))
    assert not has_manifest(images) and manifest_columns(s, "images") == ["images", "texts"]
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("b.npz", "a.npy", "c.npy", "notes.txt"):
        (plain / name).write_bytes(b"")
    assert list_shards(plain, "images") == [str(plain / n) for n in ("a.npy", "b.npz", "c.npy")]
    assert list_shards(str(plain / "*.np?"), "images") == [str(plain / n) for n in ("a.npy", "b.npz", "c.npy")]
    assert list_shards(str(plain / "c.npy"), "images") == [str(plain / "c.npy")]
    order = [plain / "c.npy", str(plain / "a.npy")]
    assert list_shards(order, "images") == [str(plain / "c.npy"), str(plain / "a.npy")]  # a list keeps its order
    assert list_shards(tuple(order), "images") == list_shards(order, "images")


def test_list_shards_errors(tmp_path, pairs):
    images, texts = pairs
    with pytest.raises(FileNotFoundError, match="images: file not found: .*missing.npy"):
        list_shards(str(tmp_path / "missing.npy"), "images")
    np.save(tmp_path / "a.npy", images[:3])
    with pytest.raises(FileNotFoundError, match="texts: file not found: .*gone.npy"):
        list_shards([str(tmp_path / "a.npy"), str(tmp_path / "gone.npy")], "texts")
    with pytest.raises(FileNotFoundError, match="images: no file matches"):
        list_shards(str(tmp_path / "zz-*.npy"), "images")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=f"images: directory .*empty has no .npy or .npz files and no {MANIFEST}"):
        list_shards(str(tmp_path / "empty"), "images")
    with pytest.raises(ValueError, match="images: no embedding files found"):
        list_shards([], "images")
    with pytest.raises(ValueError, match="images: expected a path, a directory, a glob or a list of paths; got int"):
        list_shards(3, "images")
    write_shards(tmp_path / "s", images, texts, shard_rows=600)
    with pytest.raises(ValueError, match=r"images: the manifest in .* has no 'labels' shards"):
        list_shards(str(tmp_path / "s"), "images", key="labels")
    (tmp_path / "s" / MANIFEST).write_text(json.dumps({"format": "other/1", "shards": []}))
    with pytest.raises(ValueError, match=r"images: .* is not a clipcore shard manifest \(format 'other/1'\)"):
        list_shards(str(tmp_path / "s"), "images")
    with pytest.raises(ValueError, match=r"images: .* is not a clipcore shard manifest"):
        read_manifest(tmp_path / "s", "images")
    (tmp_path / "s" / MANIFEST).write_text("{not json")
    with pytest.raises(ValueError, match="images: cannot read"):
        read_manifest(tmp_path / "s", "images")
