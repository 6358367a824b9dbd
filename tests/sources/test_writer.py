"""clipcore.sources.writer: write_shards writes .npy shards and a manifest that sce streams."""

import json

import numpy as np
import pytest

import clipcore
from clipcore.sources import FORMAT, paired_source, read_manifest, write_shards

from .helpers import agree


KERNELS = [dict(), dict(kernel="gaussian", rff_features=40, key=2), dict(convention="clip-dissection"),
           dict(kernel="gaussian", rff_features=30, sigma=0.8, normalize=True)]


@pytest.mark.parametrize("kw", KERNELS)
@pytest.mark.parametrize("block", [97, 512, 4096])
def test_shard_directory_matches_arrays(stream_all, tmp_path, pairs, kw, block):
    images, texts = pairs
    write_shards(tmp_path / "shards", images, texts, shard_rows=400)
    got = clipcore.sce(str(tmp_path / "shards"), block_size=block, progress=False, **kw)
    want = clipcore.sce(images, texts, **kw)
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
