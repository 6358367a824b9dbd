"""Embedding sets as other tools write them score exactly like the same rows in memory: clip-retrieval,
LAION-400M (unpadded numbers), LAION-5B (metadata in a sibling folder), DataComp (.npz of five arrays next to
.parquet), Parquet / Hugging Face datasets (list and fixed-size-list columns); float16 and float32, 2–4
uneven partitions, rows permuted within them."""

import numpy as np
import pytest

import clipcore
from clipcore.sources import list_shards, paired_source, recognise

from . import folders
from .helpers import agree

SIZES = [430, 9, 561]  # uneven partitions of the 1000 rows


@pytest.fixture(scope="module")
def data():
    d = clipcore.synthetic_pairs(n=1000, d=16, num_modes=4, seed=5)
    return np.asarray(d.images, np.float32), np.asarray(d.texts, np.float32)


def as_stored(a, dtype):
    """The rows as the folder stores them, widened as clipcore reads them."""
    return a.astype(dtype).astype(np.float32)


def same_scores(folder_call, images, texts, **kw):
    agree(folder_call("sce", **kw), clipcore.sce(images, texts, **kw))
    v = folder_call("vendi", **kw)
    assert v.n == images.shape[0]
    assert v.score == pytest.approx(clipcore.vendi(images, **kw).score, rel=1e-10)


STREAMED = [False, True]
DTYPES = [np.float16, np.float32]


@pytest.mark.parametrize("streamed", STREAMED, ids=["read-whole", "streamed"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f16", "f32"])
@pytest.mark.parametrize("pad", [True, False], ids=["clip-retrieval", "laion-400m"])
def test_clip_retrieval(tmp_path, data, dtype, pad, streamed, request):
    if streamed:
        request.getfixturevalue("stream_all")
    images, texts = data
    order = folders.clip_retrieval(tmp_path, images, texts, [250, 3, 400, 347], dtype=dtype, pad=pad)
    assert recognise(str(tmp_path)).name == "clip-retrieval"

    def call(score, **kw):
        return getattr(clipcore, score)(str(tmp_path), progress=False, **kw)

    same_scores(call, as_stored(images[order], dtype), as_stored(texts[order], dtype))
    src = paired_source(str(tmp_path))
    assert src.layout == "clip-retrieval" and src.pairing.complete and src.pairing.shards == 4
    np.testing.assert_array_equal(src.texts.read(0, 1000), as_stored(texts[order], dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f16", "f32"])
def test_laion5b_root_or_subset(tmp_path, data, dtype):
    images, texts = data
    order = folders.laion5b(tmp_path, images, texts, [100, 650, 250], dtype=dtype)
    x, t = as_stored(images[order], dtype), as_stored(texts[order], dtype)
    for path in (tmp_path, tmp_path / "laion2B-en"):
        assert recognise(str(path)).name == "laion-5b"
        agree(clipcore.sce(str(path), progress=False), clipcore.sce(x, t))
    src = paired_source(str(tmp_path))
    assert src.image_paths().tolist() == [str(i) for i in order]


def test_shards_read_in_number_order_not_text_order(tmp_path, data):
    """LAION-400M names its 410 shards img_emb_0 ... img_emb_409: img_emb_10 comes after img_emb_9."""
    images, texts = data
    sizes = [80] * 12 + [40]
    order = folders.clip_retrieval(tmp_path, images, texts, sizes, dtype=np.float32, pad=False)
    names = [p.rsplit("/", 1)[1] for p in list_shards(str(tmp_path), "images")]
    assert names == [f"img_emb_{k}.npy" for k in range(13)]
    glob_names = [p.rsplit("/", 1)[1] for p in list_shards(str(tmp_path / "img_emb" / "*.npy"), "images")]
    assert glob_names == names
    np.testing.assert_array_equal(paired_source(str(tmp_path)).images.read(0, 1000), images[order])
    # two folders of clip-retrieval files pair by number too
    src = paired_source(str(tmp_path / "img_emb"), str(tmp_path / "text_emb"))
    assert src.pairing.shards == 13
    np.testing.assert_array_equal(src.texts.read(0, 1000), texts[order])


@pytest.mark.parametrize("streamed", STREAMED, ids=["read-whole", "streamed"])
@pytest.mark.parametrize("compressed", [False, True], ids=["savez", "savez_compressed"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f16", "f32"])
def test_datacomp(tmp_path, data, dtype, compressed, streamed, request):
    if streamed:
        request.getfixturevalue("stream_all")
    images, texts = data
    rng = np.random.default_rng(1)
    b32_img, b32_txt = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
    arrays = {"b32_img": b32_img, "b32_txt": b32_txt, "l14_img": images, "l14_txt": texts,
              "dedup": np.zeros((1000, 4), np.uint8)}
    order = folders.datacomp(tmp_path, arrays, [300, 500, 200], dtype=dtype, compressed=compressed)
    assert recognise(str(tmp_path)).name == "datacomp"
    x, t = as_stored(images[order], dtype), as_stored(texts[order], dtype)

    def call(score, **kw):
        return getattr(clipcore, score)(paired_source(str(tmp_path), images_key="l14_img", texts_key="l14_txt",
                                                      single=score == "vendi", name="x"), progress=False, **kw)

    same_scores(call, x, t)
    # texts_key follows images_key (l14_img -> l14_txt; b32_img -> b32_txt)
    agree(clipcore.sce(paired_source(str(tmp_path), images_key="l14_img"), progress=False), clipcore.sce(x, t))
    got = clipcore.sce(paired_source(str(tmp_path), images_key="b32_img"), progress=False)
    agree(got, clipcore.sce(as_stored(b32_img[order], dtype), as_stored(b32_txt[order], dtype)))
    src = paired_source(str(tmp_path), images_key="l14_img")
    caps = folders.captions_of(1000)
    assert [src.prompts()[g] for g in src.groups()] == [caps[i] for i in order]


@pytest.mark.parametrize("streamed", STREAMED, ids=["read-whole", "streamed"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f16", "f32"])
@pytest.mark.parametrize("row_group", [None, 64], ids=["one-group", "groups-of-64"])
def test_parquet_hf(tmp_path, data, dtype, row_group, streamed, request):
    """Hugging Face layout (data/train-NNNNN-of-MMMMM.parquet): a fixed-size-list image column and a
    list<float> text column, found by their usual names; the caption column gives the prompt ids."""
    if streamed:
        request.getfixturevalue("stream_all")
    images, texts = data
    caps = folders.captions_of(1000)
    cols = {"image_embedding": images.astype(dtype), "text_embedding": texts.astype(dtype), "caption": caps}
    order = folders.parquet(tmp_path, cols, [500, 120, 380], row_group_size=row_group, fixed=["image_embedding"])
    assert recognise(str(tmp_path)).name == "parquet"

    def call(score, **kw):
        return getattr(clipcore, score)(str(tmp_path), progress=False, **kw)

    x, t = as_stored(images[order], dtype), as_stored(texts[order], dtype)
    same_scores(call, x, t)
    src = paired_source(str(tmp_path))
    assert src.images.dtype == np.float32 and src.images.parts[0].dtype == np.dtype(dtype)  # widened per block
    groups = src.groups()
    assert groups.shape == (1000,) and [src.prompts()[g] for g in groups] == [caps[i] for i in order]
    np.testing.assert_array_equal(src.images.take(np.array([999, 0, 517, 3])), x[[999, 0, 517, 3]])


def test_parquet_columns_by_key(tmp_path, data):
    """Any column name, chosen with images_key / texts_key; autofaiss' `embeddings` column is one set."""
    images, texts = data
    order = folders.parquet(tmp_path / "a", {"emb_i": images, "emb_t": texts}, [600, 400], hf=False)
    got = clipcore.sce(paired_source(str(tmp_path / "a"), images_key="emb_i", texts_key="emb_t"), progress=False)
    agree(got, clipcore.sce(images[order], texts[order]))
    order = folders.parquet(tmp_path / "b", {"embeddings": images}, [700, 300], hf=False)
    assert clipcore.vendi(str(tmp_path / "b"), progress=False).score == \
        pytest.approx(clipcore.vendi(images[order]).score, rel=1e-10)
    one = folders.parquet(tmp_path / "c", {"embedding": images}, [1000], hf=False)
    assert clipcore.vendi(str(tmp_path / "c" / "part_0.parquet"), progress=False).score == \
        pytest.approx(clipcore.vendi(images[one]).score, rel=1e-10)


def test_npz_key_in_plain_files(tmp_path, data):
    """.npz files of several arrays: images_key / texts_key name them (one file, or a list of files)."""
    images, texts = data
    np.savez(tmp_path / "a.npz", img=images[:600], txt=texts[:600])
    np.savez(tmp_path / "b.npz", img=images[600:], txt=texts[600:])
    src = paired_source([str(tmp_path / "a.npz"), str(tmp_path / "b.npz")], images_key="img", texts_key="txt")
    agree(clipcore.sce(src, progress=False), clipcore.sce(images, texts))
    src = paired_source(str(tmp_path / "a.npz"), str(tmp_path / "a.npz"), images_key="img", texts_key="txt")
    np.testing.assert_array_equal(src.images.read(0, 600), images[:600])
    np.testing.assert_array_equal(src.texts.read(0, 600), texts[:600])
    assert clipcore.vendi(paired_source(str(tmp_path / "b.npz"), images_key="txt", single=True, name="x"),
                          progress=False).score == pytest.approx(clipcore.vendi(texts[600:]).score, rel=1e-10)
