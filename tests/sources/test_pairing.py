"""Shards paired by number: every missing, mismatched or empty shard named in ONE error; skip_incomplete
scores the complete pairs only and reports the rest; wrong keys, non-numeric and ragged columns and NaN
rows each give one clear error naming the file (and the row)."""

import os
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import clipcore
from clipcore.sources import paired_source, shard_table

from . import folders
from .helpers import agree


@pytest.fixture
def data():
    d = clipcore.synthetic_pairs(n=600, d=12, num_modes=3, seed=8)
    return np.asarray(d.images, np.float32), np.asarray(d.texts, np.float32)


@pytest.fixture
def laion(tmp_path, data):
    """A clip-retrieval folder of 11 shards (img_emb_00 ... img_emb_10), rows permuted."""
    images, texts = data
    order = folders.clip_retrieval(tmp_path, images, texts, [60] * 9 + [50, 10], dtype=np.float16)
    return tmp_path, order


def test_every_missing_mismatched_and_empty_shard_in_one_error(laion, data):
    root, order = laion
    os.remove(root / "text_emb" / "text_emb_07.npy")
    os.remove(root / "img_emb" / "img_emb_02.npy")
    short = np.load(root / "text_emb" / "text_emb_04.npy")
    np.save(root / "text_emb" / "text_emb_04.npy", short[:-1])
    np.save(root / "img_emb" / "img_emb_10.npy", np.zeros((0, 12), np.float16))
    np.save(root / "text_emb" / "text_emb_10.npy", np.zeros((0, 12), np.float16))
    with pytest.raises(ValueError) as err:
        clipcore.sce(str(root), progress=False)
    msg = str(err.value)
    assert msg.startswith("images: 4 shard(s) of ") and "cannot be paired" in msg
    for line in ("text_emb_07.npy missing", "img_emb_02.npy missing",
                 "img_emb_04.npy has 60 rows, text_emb_04.npy has 59",
                 "img_emb_10.npy and text_emb_10.npy are empty (0 rows)", "skip_incomplete=True"):
        assert line in msg, line
    src = paired_source(str(root), skip_incomplete=True)
    p = src.pairing
    assert not p.complete and p.shards == 7 and p.rows == 7 * 60 - 60 + 50
    assert p.missing == ("img_emb_02.npy missing", "text_emb_07.npy missing")
    assert p.mismatched == ("img_emb_04.npy has 60 rows, text_emb_04.npy has 59",)
    assert p.skipped == (2, 4, 7, 10) and p.skipped_rows == 60 + 60 + 0
    assert p.to_dict()["skipped"] == [2, 4, 7, 10]
    keep = np.concatenate([order[k * 60:(k + 1) * 60] for k in (0, 1, 3, 5, 6, 8)] + [order[540:590]])
    x, t = images_texts = (data[0][keep].astype(np.float16).astype(np.float32),
                           data[1][keep].astype(np.float16).astype(np.float32))
    del images_texts
    agree(clipcore.sce(src, progress=False), clipcore.sce(x, t))
    assert src.groups().shape == (x.shape[0],)


def test_complete_pairs_report(laion):
    root, _ = laion
    p = paired_source(str(root)).pairing
    assert p.complete and p.problems == [] and p.shards == 11 and p.rows == 600 and p.layout == "clip-retrieval"


def test_one_set_reads_the_images_even_without_texts(laion, data):
    root, order = laion
    for f in os.listdir(root / "text_emb"):
        os.remove(root / "text_emb" / f)
    with pytest.raises(ValueError, match=r"images: 11 shard\(s\) .* text_emb_00.npy missing; text_emb_01.npy missing"):
        clipcore.sce(str(root), progress=False)
    v = clipcore.vendi(str(root), progress=False)
    assert v.score == pytest.approx(clipcore.vendi(data[0][order].astype(np.float16).astype(np.float32)).score,
                                    rel=1e-10)
    os.remove(root / "img_emb" / "img_emb_03.npy")  # a gap in the images alone is no error for one set
    assert clipcore.vendi(str(root), progress=False).n == 540


def test_nan_rows_name_the_shard_and_row(laion):
    root, _ = laion
    x = np.load(root / "img_emb" / "img_emb_05.npy")
    x[17, 3] = np.nan
    np.save(root / "img_emb" / "img_emb_05.npy", x)
    with pytest.raises(ValueError, match=re.escape("contains NaN at row 317 (img_emb_05.npy, row 17)")):
        clipcore.sce(str(root), progress=False)


def test_datacomp_keys(tmp_path, data):
    images, texts = data
    folders.datacomp(tmp_path, {"b32_img": images, "b32_txt": texts, "l14_img": images, "l14_txt": texts,
                                "dedup": np.zeros((600, 2), np.uint8)}, [200, 400])
    with pytest.raises(ValueError, match=r"images: .*00000000.npz holds 5 arrays \['b32_img', 'b32_txt', "
                                         r"'l14_img', 'l14_txt', 'dedup'\]; a shard holds one \(choose one with "
                                         r"images_key=\)"):
        clipcore.sce(str(tmp_path), progress=False)
    with pytest.raises(ValueError, match=r"images: .*00000000.npz has no array 'l14_image' \(it has .*\); check "
                                         r"images_key="):
        paired_source(str(tmp_path), images_key="l14_image")
    with pytest.raises(ValueError, match=r"texts: .*00000000.npz has no array 'l14_text' .*check texts_key="):
        paired_source(str(tmp_path), images_key="l14_img", texts_key="l14_text")
    with pytest.raises(ValueError, match=r"dedup.* holds dtype uint8; expected float32 or float64"):
        paired_source(str(tmp_path), images_key="dedup", texts_key="l14_txt")
    with pytest.raises(ValueError, match="images_key: expected an array / column name"):
        paired_source(str(tmp_path), images_key=3)


def _parquet(path, **cols):
    pq.write_table(pa.table(cols), path)


def test_parquet_errors(tmp_path, data):
    images, texts = data
    good = folders.list_column(images[:5])
    _parquet(tmp_path / "a.parquet", image_embedding=good, caption=pa.array(["x"] * 5),
             scores=pa.array(np.ones(5)))
    with pytest.raises(ValueError, match=r"images: a.parquet has no column 'img' \(its columns: \['image_embedding', "
                                         r"'caption', 'scores'\]; embedding columns: \['image_embedding'\]\); check "
                                         r"images_key="):
        paired_source(str(tmp_path / "a.parquet"), images_key="img", single=True)
    for col, typ in (("caption", "string"), ("scores", "double")):
        with pytest.raises(ValueError, match=rf"images: a.parquet column '{col}' holds {typ}, not embeddings; "
                                             r"expected a list of floats"):
            paired_source(str(tmp_path / "a.parquet"), images_key=col, single=True)
    with pytest.raises(ValueError, match=r"texts: a.parquet has no texts embedding column"):
        paired_source(str(tmp_path / "a.parquet"))
    ints = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(10)), 2)
    _parquet(tmp_path / "i.parquet", image_embedding=ints)
    with pytest.raises(ValueError, match=r"images: i.parquet column 'image_embedding' holds fixed_size_list<.*int64"):
        paired_source(str(tmp_path / "i.parquet"), images_key="image_embedding", single=True)
    _parquet(tmp_path / "two.parquet", u=good, v=good)
    with pytest.raises(ValueError, match=r"images: two.parquet has 2 embedding columns \['u', 'v'\] .*choose one "
                                         r"with images_key="):
        paired_source(str(tmp_path / "two.parquet"), single=True)


def test_parquet_ragged_and_null_rows(tmp_path):
    rows = [[1.0, 2.0, 3.0]] * 6 + [[1.0, 2.0]] + [[1.0, 2.0, 3.0]] * 3
    _parquet(tmp_path / "r.parquet", embedding=pa.array(rows, pa.list_(pa.float32())))
    with pytest.raises(ValueError, match=re.escape("x: r.parquet[embedding], row 6 has 2 values but rows have 3: "
                                                   "ragged list column")):
        clipcore.vendi(str(tmp_path / "r.parquet"), progress=False)
    balanced = [[1.0, 2.0]] * 2 + [[1.0, 2.0, 3.0, 4.0]] * 2 + [[1.0, 2.0, 3.0]] * 4  # 24 values: 8 rows of 3?
    _parquet(tmp_path / "b.parquet", embedding=pa.array(balanced, pa.list_(pa.float32())))
    with pytest.raises(ValueError, match=re.escape("x: b.parquet[embedding], row 0 has 2 values but rows have 3")):
        clipcore.vendi(str(tmp_path / "b.parquet"), progress=False)
    nulls = [[1.0, 2.0]] * 4 + [None] + [[1.0, 2.0]] * 2
    _parquet(tmp_path / "n.parquet", embedding=pa.array(nulls, pa.list_(pa.float32())))
    with pytest.raises(ValueError, match=re.escape("x: n.parquet[embedding], row 4 is null")):
        clipcore.vendi(str(tmp_path / "n.parquet"), progress=False)
    inner = [[1.0, 2.0]] * 4 + [[1.0, None]] + [[1.0, 2.0]] * 2
    _parquet(tmp_path / "v.parquet", embedding=pa.array(inner, pa.list_(pa.float32())))
    with pytest.raises(ValueError, match=re.escape("x: v.parquet[embedding], row 4 holds a null value")):
        clipcore.vendi(str(tmp_path / "v.parquet"), progress=False)


def test_parquet_nan_row_named(tmp_path, data):
    images, _ = data
    x = images.copy()
    x[401, 0] = np.nan
    order = folders.parquet(tmp_path, {"embedding": x}, [300, 300], hf=False)
    where = int(np.flatnonzero(order == 401)[0])
    shard, row = divmod(where, 300)
    with pytest.raises(ValueError, match=re.escape(f"x: contains NaN at row {where} "
                                                   f"(part_{shard}.parquet[embedding], row {row})")):
        clipcore.vendi(str(tmp_path), progress=False)


def test_parquet_splits_not_mixed(tmp_path, data):
    images, _ = data
    os.makedirs(tmp_path / "data")
    for split in ("train", "test"):
        _parquet(tmp_path / "data" / f"{split}-00000-of-00001.parquet", embedding=folders.list_column(images[:4]))
    with pytest.raises(ValueError, match=r"images: .* holds the Parquet shards of several splits \(test, train\)"):
        shard_table(str(tmp_path))


def test_wrong_file_kinds(tmp_path, data):
    images, texts = data
    np.save(tmp_path / "a.npy", images)
    with pytest.raises(ValueError, match="images_key: 'x' names an array inside .npz shards or a Parquet column, "
                                         "but a.npy is a .npy file"):
        paired_source(str(tmp_path / "a.npy"), str(tmp_path / "a.npy"), images_key="x")
    (tmp_path / "empty.parquet").write_bytes(b"")
    with pytest.raises(ValueError, match="x: .*empty.parquet is not a readable Parquet file"):
        clipcore.vendi(str(tmp_path / "empty.parquet"))
    with pytest.raises(ValueError, match="skip_incomplete: expected True or False"):
        paired_source(images, texts, skip_incomplete="yes")
