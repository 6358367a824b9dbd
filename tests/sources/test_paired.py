"""clipcore.sources.paired: paired sources walk images and texts (or one set, or an iterator) in validated
blocks; streamed, they give the in-memory numbers."""

import numpy as np
import pytest

import clipcore
from clipcore.sources import Block, check_block, paired_source, row_source, write_shards

from .helpers import agree, save_uneven_shards


def test_iterator_of_pairs(pairs):
    images, texts = pairs
    want = clipcore.sce(images, texts, kernel="gaussian", rff_features=40, key=1, sigma=0.9)
    blocks = ((images[i:i + 300], texts[i:i + 300]) for i in range(0, 1500, 300))
    got = clipcore.sce(blocks, kernel="gaussian", rff_features=40, key=1, sigma=0.9, block_size=128, progress=False)
    agree(got, want)
    assert got.n == 1500


def test_iterator_sigma_comes_from_the_first_block(pairs):
    images, texts = pairs
    blocks = iter([(images[:1000], texts[:1000]), (images[1000:], texts[1000:])])
    got = clipcore.sce(blocks, kernel="gaussian", rff_features=20, progress=False)
    assert got.sigma == pytest.approx(clipcore.median_sigma(images[:1000]))


@pytest.mark.parametrize("order", [1.0, 2.0, float("inf")])
def test_vendi_and_rke_stream(stream_all, tmp_path, pairs, order):
    images, _ = pairs
    paths = save_uneven_shards(tmp_path, "x", images, [600, 600, 300])
    # float32 rows: both sides computed in float64 (float32 block products would round per block)
    for kw in (dict(), dict(kernel="gaussian", rff_features=50, key=0)):
        got = clipcore.vendi(paths, order=order, block_size=250, progress=False, dtype="float64", **kw)
        want = clipcore.vendi(images, order=order, method="primal", dtype="float64", **kw)
        assert got.score == pytest.approx(want.score, rel=1e-10)
    assert clipcore.rke(paths, progress=False, dtype="float64").score == pytest.approx(
        clipcore.rke(images, dtype="float64").score, rel=1e-10)


def test_nan_in_a_shard_names_file_and_row(stream_all, tmp_path, pairs):
    images, texts = pairs
    bad = images.copy()
    bad[1234, 5] = np.nan
    write_shards(tmp_path / "s", bad, texts, shard_rows=500)
    with pytest.raises(ValueError, match=r"images: contains NaN at row 1234 \(images-00002.npy, row 234\)"):
        clipcore.sce(str(tmp_path / "s"), block_size=100, progress=False)
    zero = texts.copy()
    zero[7] = 0
    write_shards(tmp_path / "z", images, zero, shard_rows=500)
    with pytest.raises(ValueError, match=r"texts: row 7 \(texts-00000.npy, row 7\) has zero norm"):
        clipcore.sce(str(tmp_path / "z"), progress=False)


@pytest.mark.parametrize("kw", [dict(), dict(kernel="gaussian", rff_features=50, key=0, sigma=0.9),
                                dict(kernel="gaussian", sigma=1.1, landmarks="points", estimate="missing-mass")])
def test_vendi_and_rke_take_an_iterator_of_blocks(pairs, kw):
    """vendi / rke read one set from an iterator of [b, d] blocks (uneven, re-cut into block_size rows) and
    give the numbers of the same rows in memory (σ given: the heuristic would see the first block only)."""
    images, _ = pairs
    if kw.get("landmarks") == "points":  # the same landmark points both ways
        kw = dict(kw, landmarks=images[::37])
    kw = dict(kw, dtype="float64")  # float32 rows: both sides computed in float64
    for order in (1.0, 2.0):
        blocks = (images[a:b] for a, b in [(0, 700), (700, 703), (703, 1500)])
        got = clipcore.vendi(blocks, order=order, block_size=256, progress=False, **kw)
        want = clipcore.vendi(images, order=order, method="primal", **kw)
        assert got.n == 1500 and got.score == pytest.approx(want.score, rel=1e-10)
    got = clipcore.rke(iter([images[:800], images[800:]]), progress=False, dtype="float64")
    assert got.score == pytest.approx(clipcore.rke(images, dtype="float64").score, rel=1e-10)


def test_single_set_iterators_refuse_bad_blocks(pairs):
    images, texts = pairs
    with pytest.raises(ValueError, match=r"x: block 0 is a pair of arrays; this score takes one set"):
        clipcore.vendi(iter([(images[:10], texts[:10])]), progress=False)
    with pytest.raises(ValueError, match=r"x: block 1 has dimension 10 but the first block had 24"):
        clipcore.vendi(iter([images[:10], images[10:20, :10]]), progress=False)
    bad = images[100:200].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"x: contains NaN at row 103 \(block 1, row 3\)"):
        clipcore.rke(iter([images[:100], bad]), progress=False)
    with pytest.raises(ValueError, match=r"x: block 0 has dtype int64"):
        clipcore.vendi(iter([np.ones((4, 3), np.int64)]), progress=False)
    with pytest.raises(ValueError, match="x: the block iterator yielded no rows"):
        clipcore.vendi(iter([]), progress=False)


def test_small_sources_read_whole_still_name_shard_and_row(tmp_path, pairs):
    """Below IN_MEMORY_ROWS files are read whole (the in-memory path); a bad row still names its shard."""
    images, texts = pairs
    bad = images.copy()
    bad[1234, 5] = np.inf
    write_shards(tmp_path / "s", bad, texts, shard_rows=500)
    with pytest.raises(ValueError, match=r"images: contains Inf at row 1234 \(images-00002.npy, row 234\)"):
        clipcore.sce(str(tmp_path / "s"), progress=False)
    with pytest.raises(ValueError, match=r"x: contains Inf at row 1234 \(images-00002.npy, row 234\)"):
        clipcore.vendi(str(tmp_path / "s"), progress=False)  # a shard directory: its images column
    zero = texts.copy()
    zero[7] = 0
    write_shards(tmp_path / "z", images, zero, shard_rows=500)
    with pytest.raises(ValueError, match=r"texts: row 7 \(texts-00000.npy, row 7\) has zero norm"):
        clipcore.sce(str(tmp_path / "z"), progress=False)
    # a clipcore shard directory scored by vendi is its images
    assert clipcore.vendi(str(tmp_path / "z"), progress=False).score == pytest.approx(
        clipcore.vendi(images).score, rel=1e-12)


def test_nan_in_an_iterator_block(pairs):
    images, texts = pairs
    bad = texts[300:600].copy()
    bad[10, 0] = np.inf
    blocks = iter([(images[:300], texts[:300]), (images[300:600], bad)])
    with pytest.raises(ValueError, match=r"texts: contains Inf at row 310 \(block 1, row 10\)"):
        clipcore.sce(blocks, progress=False)


def test_blocks_cover_every_row_once(tmp_path, pairs):
    """blocks() walks files, arrays and iterators in order: the blocks' rows, concatenated, are the input
    rows, each block starting at its global row, with or without the reader thread."""
    images, texts = pairs
    write_shards(tmp_path / "s", images, texts, shard_rows=400)
    for src in (paired_source(str(tmp_path / "s")), paired_source(images, texts),
                paired_source(iter([(images[:700], texts[:700]), (images[700:], texts[700:])]))):
        for prefetch in (True, False):
            if src.iterator is not None and not prefetch:
                break  # an iterator is read once
            got = list(src.blocks(333, nonzero=True, prefetch=prefetch))
            assert all(isinstance(b, Block) for b in got)
            assert [b.start for b in got] == list(np.cumsum([0] + [len(b.images) for b in got[:-1]]))
            assert max(len(b.images) for b in got) <= 333
            np.testing.assert_array_equal(np.concatenate([b.images for b in got]), images)
            np.testing.assert_array_equal(np.concatenate([b.texts for b in got]), texts)
    assert src.n == 1500  # an iterator's row count, known once walked
    one = list(paired_source(images, single=True, name="x").blocks(1000, nonzero=False))
    assert [b.texts for b in one] == [None, None] and [b.start for b in one] == [0, 1000]


def test_check_block_names_global_row_and_shard(pairs):
    """check_block names the first NaN / Inf row (and, with nonzero, the first zero row) by global row and
    by where it lives."""
    images, _ = pairs
    x = images[:50].copy()
    check_block(x, "images", 100, None, nonzero=True)  # clean rows pass
    x[7, 2] = np.inf
    x[9, 0] = np.nan
    with pytest.raises(ValueError, match=r"^images: contains Inf at row 107 \(a.npy, row 7\)$"):
        check_block(x, "images", 100, lambda r: f"a.npy, row {r - 100}", nonzero=False)
    x = images[:50].copy()
    x[3] = 0
    check_block(x, "texts", 0, None, nonzero=False)  # zero rows pass without nonzero
    with pytest.raises(ValueError, match=r"^texts: row 3 has zero norm; the cosine kernel needs a direction"):
        check_block(x, "texts", 0, None, nonzero=True)


def test_pairing_errors(pairs):
    images, texts = pairs
    with pytest.raises(ValueError, match="texts: 1000 rows but images has 1500"):
        paired_source(images, texts[:1000])
    with pytest.raises(ValueError, match=r"texts: block 0 has 5 rows but its images block has 10"):
        list(paired_source(iter([(images[:10], texts[:5])])).blocks(8, nonzero=False))
    with pytest.raises(ValueError, match=r"images: block 1 has dimensions \(10, 24\) but the first block had \(24, 24\)"):
        list(paired_source(iter([(images[:10], texts[:10]), (images[:10, :10], texts[:10])])).blocks(
            8, nonzero=False))
    src = paired_source(iter([(images[:10], texts[:10])]))
    first = src.peek()
    assert src.d_images == 24 and src.d_texts == 24
    np.testing.assert_array_equal(first[0], images[:10])
    assert len(list(src.blocks(4, nonzero=False))) == 3  # the peeked block is walked too
    with pytest.raises(ValueError, match="peek: only for iterator sources"):
        paired_source(images, texts).peek()
    assert row_source(images, "images") is not None
