"""clipcore.sources.rows: row sources read .npy / .npz parts and arrays by rows (bounded memory), checked
on the way."""

import numpy as np
import pytest

import clipcore
from clipcore.sources import ArrayPart, NpyPart, paired_source, row_source, write_shards

from .helpers import agree


def test_uncompressed_npz_is_read_by_rows(stream_all, tmp_path, pairs):
    """np.savez stores its array uncompressed: its rows are read by offset like a .npy (bounded memory);
    a compressed member is loaded whole; an archive of several arrays is not one shard."""
    images, texts = pairs
    np.savez(tmp_path / "x.npz", emb=images)
    np.savez_compressed(tmp_path / "t.npz", texts)
    x, t = row_source(str(tmp_path / "x.npz"), "images"), row_source(str(tmp_path / "t.npz"), "texts")
    assert isinstance(x.parts[0], NpyPart) and isinstance(t.parts[0], ArrayPart)
    np.testing.assert_array_equal(x.read(17, 1499), images[17:1499])
    # float32 rows both ways, computed in float64 (float32 block products would round per block of 200)
    got = clipcore.sce(str(tmp_path / "x.npz"), str(tmp_path / "t.npz"), block_size=200, progress=False,
                       dtype="float64")
    agree(got, clipcore.sce(images, texts, dtype="float64"))
    bad = images.copy()
    bad[900, 1] = np.nan
    np.savez(tmp_path / "bad.npz", bad)
    with pytest.raises(ValueError, match=r"x: contains NaN at row 900 \(bad.npz, row 900\)"):
        clipcore.vendi(str(tmp_path / "bad.npz"), progress=False)
    np.savez(tmp_path / "two.npz", images, texts)
    with pytest.raises(ValueError, match=r"two.npz holds 2 arrays \['arr_0', 'arr_1'\]; a shard holds one"):
        row_source(str(tmp_path / "two.npz"), "images")


def test_bad_sources(stream_all, tmp_path, pairs):
    images, texts = pairs
    np.save(tmp_path / "a.npy", images[:100])
    np.save(tmp_path / "b.npy", images[:100, :10])
    with pytest.raises(ValueError, match="images: shard b.npy has dimension 10 but a.npy has 24"):
        row_source([str(tmp_path / "a.npy"), str(tmp_path / "b.npy")], "images")
    with pytest.raises(ValueError, match="texts: 100 rows but images has 1500"):
        write_shards(tmp_path / "s", images, texts)  # fine
        clipcore.sce(str(tmp_path / "s" / "images-*.npy"), str(tmp_path / "a.npy"), progress=False)
    with pytest.raises(FileNotFoundError, match="images: no file matches"):
        clipcore.sce(str(tmp_path / "nothing-*.npy"), str(tmp_path / "a.npy"))
    with pytest.raises(FileNotFoundError, match="texts: file not found"):
        clipcore.sce(str(tmp_path / "a.npy"), str(tmp_path / "missing.npy"))
    np.save(tmp_path / "f.npy", np.asfortranarray(images))
    with pytest.raises(ValueError, match="Fortran-ordered"):
        row_source(str(tmp_path / "f.npy"), "images")
    raw = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "trunc.npy").write_bytes(raw[:-100])
    with pytest.raises(ValueError, match="truncated"):
        row_source(str(tmp_path / "trunc.npy"), "images")
    np.save(tmp_path / "i.npy", np.ones((5, 3), np.int64))
    with pytest.raises(ValueError, match="int64; expected float32 or float64"):
        row_source(str(tmp_path / "i.npy"), "images")
    with pytest.raises(ValueError, match=r"yield \(images_block, texts_block\) pairs"):
        clipcore.sce(iter([images[:10]]), progress=False)
    with pytest.raises(ValueError, match="yielded no rows"):
        clipcore.sce(iter([]), progress=False)


def test_reader_details(tmp_path, pairs):
    """Reads across shards, scattered takes (any order, repeats), mixed dtypes, and where a row lives (the
    manifest's own fields: test_writer.test_manifest_fields)."""
    images, texts = pairs
    write_shards(tmp_path / "s", images, texts, shard_rows=600, extra={"model": "synthetic"})
    src = paired_source(str(tmp_path / "s"))
    np.testing.assert_array_equal(src.images.read(550, 1250), images[550:1250])  # across two shards
    np.testing.assert_array_equal(src.texts.take(np.array([0, 599, 600, 1499])), texts[[0, 599, 600, 1499]])
    rows = np.array([1499, 3, 600, 599, 3, 1200])  # any order, repeats, across shards
    np.testing.assert_array_equal(src.images.take(rows), images[rows])
    assert src.images.take(np.array([], int)).shape == (0, images.shape[1])
    with pytest.raises(IndexError, match=r"images: rows out of range \[0, 1500\)"):
        src.images.take(np.array([1500]))
    np.save(tmp_path / "f64.npy", images[:10].astype(np.float64))  # a float64 shard beside float32 ones
    mixed = row_source([str(tmp_path / "s" / "images-00000.npy"), str(tmp_path / "f64.npy")], "images")
    assert mixed.dtype == np.float64
    np.testing.assert_array_equal(mixed.take(np.array([605, 2])), images[[5, 2]].astype(np.float64))
    assert src.images.locate(1499) == "images-00002.npy, row 299"


def test_half_precision_embeddings_are_widened(stream_all, tmp_path, pairs):
    """float16 (how CLIP outputs are often saved) and bfloat16 embeddings are read as float32, which holds
    them exactly: with dtype="float64", arrays, .npy files and iterator blocks give the scores of the same
    values in float64, on every path (including the Nyström core, which takes float32 / float64 only); by
    default precision follows the input (issue 18): float32 products, within 1e-6 of float64."""
    import jax.numpy as jnp

    images, texts = pairs
    x16, t16 = images.astype(np.float16), texts.astype(np.float16)
    x64, t64 = x16.astype(np.float64), t16.astype(np.float64)
    np.save(tmp_path / "x16.npy", x16)
    np.save(tmp_path / "t16.npy", t16)
    want = clipcore.sce(x64, t64)
    assert want.dtype == "float64"

    def forms(**kw):
        return (clipcore.sce(x16, t16, **kw),
                clipcore.sce(str(tmp_path / "x16.npy"), str(tmp_path / "t16.npy"), progress=False, **kw),
                clipcore.sce(iter([(x16[:700], t16[:700]), (x16[700:], t16[700:])]), progress=False, **kw))

    for got in forms(dtype="float64"):
        assert got.sce == pytest.approx(want.sce, rel=1e-12)
    for got in forms():
        assert got.dtype == "float32"
        assert got.sce == pytest.approx(want.sce, rel=1e-6)
    assert row_source(str(tmp_path / "x16.npy"), "images").read(0, 5).dtype == np.float32
    kw = dict(kernel="gaussian", sigma=4.0, landmarks=images[::50].astype(np.float16), estimate="missing-mass")
    v = clipcore.vendi(str(tmp_path / "x16.npy"), progress=False, dtype="float64", **kw)
    assert v.score == pytest.approx(clipcore.vendi(x64, **dict(kw, landmarks=x64[::50])).score, rel=1e-9)
    xb = jnp.asarray(images, dtype=jnp.bfloat16)
    want_b = clipcore.vendi(np.asarray(xb.astype(jnp.float32)).astype(np.float64))
    assert want_b.dtype == "float64"
    assert clipcore.vendi(xb, dtype="float64").score == pytest.approx(want_b.score, rel=1e-12)
    got_b = clipcore.vendi(xb)
    assert got_b.dtype == "float32" and got_b.score == pytest.approx(want_b.score, rel=1e-6)


def test_large_numpy_arrays_stream_andagree(stream_all, pairs, capsys):
    import jax.numpy as jnp

    images, texts = pairs
    # float32 rows both ways, computed in float64 (float32 block products would round per block of 400)
    got = clipcore.sce(images, texts, progress=True, block_size=400, dtype="float64")
    assert "rows" in capsys.readouterr().err  # streamed: the bar shows
    want = clipcore.sce(jnp.asarray(images), jnp.asarray(texts), dtype="float64")  # device arrays: in-memory path
    agree(got, want)
    v = clipcore.vendi(images, progress=False, dtype="float64")
    assert v.score == pytest.approx(clipcore.vendi(jnp.asarray(images), dtype="float64").score, rel=1e-10)


def test_reads_are_fresh_aligned_buffers(tmp_path, pairs):
    """A block read from a .npy shard is a fresh 64-byte-aligned host buffer (XLA's CPU client then uses
    it in place), not a view of a memory map; reads across parts are one contiguous array."""
    images, _ = pairs
    paths = []
    for k, (a, b) in enumerate([(0, 700), (700, 1500)]):
        paths.append(str(tmp_path / f"x{k}.npy"))
        np.save(paths[-1], images[a:b])
    src = row_source(paths, "images")
    assert (src.n, src.d, src.dtype) == (1500, 24, np.float32) and not src.in_memory
    np.testing.assert_array_equal(src.starts, [0, 700, 1500])
    for a, b in [(0, 10), (5, 700), (700, 701), (900, 1500)]:  # within one part: aligned, read in place
        block = src.read(a, b)
        assert block.ctypes.data % 64 == 0 and block.flags.c_contiguous and not isinstance(block, np.memmap)
        np.testing.assert_array_equal(block, images[a:b])
    for a, b in [(690, 710), (0, 1500)]:  # across parts: one contiguous array
        block = src.read(a, b)
        assert block.flags.c_contiguous and block.shape == (b - a, 24)
        np.testing.assert_array_equal(block, images[a:b])
    assert row_source(images, "images").in_memory
    with pytest.raises(ValueError, match="images: expected a 2-D array"):
        row_source(images[0], "images")
    with pytest.raises(ValueError, match="images: expected a floating-point array"):
        row_source(np.ones((3, 2), np.int32), "images")
    with pytest.raises(ValueError, match="images: expected an array, a path, a directory, a glob or a list"):
        row_source(3, "images")
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(ValueError, match=r"images: .*x.txt: expected .npy, .npz or .parquet shards, got .txt"):
        row_source(str(tmp_path / "x.txt"), "images")
