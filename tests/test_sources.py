"""Streamed inputs (files, shard directories, iterators) give the in-memory numbers."""

import json
import os

import numpy as np
import pytest

import clipcore
import clipcore.scores as scores_mod
from clipcore.sources import paired_source, row_source, write_shards


@pytest.fixture
def stream_all(monkeypatch):
    """Force the streamed path even for small test files."""
    monkeypatch.setattr(scores_mod, "IN_MEMORY_ROWS", 0)


@pytest.fixture(scope="module")
def pairs():
    d = clipcore.synthetic_pairs(n=1500, d=24, num_modes=4, seed=3)
    return d.images, d.texts


def _save_uneven_shards(tmp_path, name, a, sizes):
    paths, start = [], 0
    for k, s in enumerate(sizes):
        p = tmp_path / f"{name}-{k:03d}.npy"
        np.save(p, a[start:start + s])
        paths.append(str(p))
        start += s
    assert start == a.shape[0]
    return paths


def _agree(a, b, rtol=1e-10):
    assert a.sce == pytest.approx(b.sce, rel=rtol)
    assert a.text_score == pytest.approx(b.text_score, rel=rtol)
    assert a.image_score == pytest.approx(b.image_score, rel=rtol)
    np.testing.assert_allclose(a.complement_eigenvalues, b.complement_eigenvalues, rtol=0,
                               atol=rtol * b.complement_eigenvalues.max())


KERNELS = [dict(), dict(kernel="gaussian", rff_features=40, key=2), dict(convention="clip-dissection"),
           dict(kernel="gaussian", rff_features=30, sigma=0.8, normalize=True)]


@pytest.mark.parametrize("kw", KERNELS)
@pytest.mark.parametrize("block", [97, 512, 4096])
def test_shard_directory_matches_arrays(stream_all, tmp_path, pairs, kw, block):
    images, texts = pairs
    write_shards(tmp_path / "shards", images, texts, shard_rows=400)
    got = clipcore.sce(str(tmp_path / "shards"), block_size=block, progress=False, **kw)
    want = clipcore.sce(images, texts, **kw)
    _agree(got, want)
    assert got.n == 1500 and got.method.startswith("primal")
    assert got.sigma == want.sigma  # the σ heuristic samples the same rows


def test_npy_paths_globs_lists_and_plain_directories(stream_all, tmp_path, pairs):
    images, texts = pairs
    want = clipcore.sce(images, texts)
    (tmp_path / "img").mkdir()
    (tmp_path / "txt").mkdir()
    ip = _save_uneven_shards(tmp_path / "img", "part", images, [1, 700, 3, 796])
    tp = _save_uneven_shards(tmp_path / "txt", "part", texts, [500, 1000])  # other boundaries
    np.save(tmp_path / "all_images.npy", images)
    np.save(tmp_path / "all_texts.npy", texts)
    for got in (
        clipcore.sce(str(tmp_path / "all_images.npy"), str(tmp_path / "all_texts.npy"), block_size=256, progress=False),
        clipcore.sce(ip, tp, block_size=256, progress=False),
        clipcore.sce(str(tmp_path / "img" / "part-*.npy"), str(tmp_path / "txt"), block_size=333, progress=False),
    ):
        _agree(got, want)


def test_iterator_of_pairs(pairs):
    images, texts = pairs
    want = clipcore.sce(images, texts, kernel="gaussian", rff_features=40, key=1, sigma=0.9)
    blocks = ((images[i:i + 300], texts[i:i + 300]) for i in range(0, 1500, 300))
    got = clipcore.sce(blocks, kernel="gaussian", rff_features=40, key=1, sigma=0.9, block_size=128, progress=False)
    _agree(got, want)
    assert got.n == 1500


def test_iterator_sigma_comes_from_the_first_block(pairs):
    images, texts = pairs
    blocks = iter([(images[:1000], texts[:1000]), (images[1000:], texts[1000:])])
    got = clipcore.sce(blocks, kernel="gaussian", rff_features=20, progress=False)
    assert got.sigma == pytest.approx(clipcore.median_sigma(images[:1000]))


def test_small_files_take_the_in_memory_path(tmp_path, pairs):
    images, texts = pairs
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "t.npy", texts)
    # the exact Gaussian kernel needs n×n: fine for a small file read whole
    got = clipcore.sce(str(tmp_path / "x.npy"), str(tmp_path / "t.npy"), kernel="gaussian", sigma=1.0)
    want = clipcore.sce(images, texts, kernel="gaussian", sigma=1.0)
    _agree(got, want)
    v = clipcore.vendi(str(tmp_path / "x.npy"), order=2)
    assert v.score == pytest.approx(clipcore.rke(images).score, rel=1e-12)


@pytest.mark.parametrize("order", [1.0, 2.0, float("inf")])
def test_vendi_and_rke_stream(stream_all, tmp_path, pairs, order):
    images, _ = pairs
    paths = _save_uneven_shards(tmp_path, "x", images, [600, 600, 300])
    for kw in (dict(), dict(kernel="gaussian", rff_features=50, key=0)):
        got = clipcore.vendi(paths, order=order, block_size=250, progress=False, **kw)
        want = clipcore.vendi(images, order=order, method="primal", **kw)
        assert got.score == pytest.approx(want.score, rel=1e-10)
    assert clipcore.rke(paths, progress=False).score == pytest.approx(clipcore.rke(images).score, rel=1e-10)


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
    for order in (1.0, 2.0):
        blocks = (images[a:b] for a, b in [(0, 700), (700, 703), (703, 1500)])
        got = clipcore.vendi(blocks, order=order, block_size=256, progress=False, **kw)
        want = clipcore.vendi(images, order=order, method="primal", **kw)
        assert got.n == 1500 and got.score == pytest.approx(want.score, rel=1e-10)
    got = clipcore.rke(iter([images[:800], images[800:]]), progress=False)
    assert got.score == pytest.approx(clipcore.rke(images).score, rel=1e-10)


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
    _agree(got, clipcore.sce(images, texts))
    v = clipcore.vendi(str(tmp_path / "img"), progress=False)
    assert v.n == 1500 and v.score == pytest.approx(clipcore.vendi(images).score, rel=1e-12)
    (tmp_path / "none").mkdir()
    with pytest.raises(ValueError, match="x: directory .* has no .npy or .npz files"):
        clipcore.vendi(str(tmp_path / "none"))


def test_uncompressed_npz_is_read_by_rows(stream_all, tmp_path, pairs):
    """np.savez stores its array uncompressed: its rows are read by offset like a .npy (bounded memory);
    a compressed member is loaded whole; an archive of several arrays is not one shard."""
    from clipcore.sources import _ArrayPart, _NpyPart

    images, texts = pairs
    np.savez(tmp_path / "x.npz", emb=images)
    np.savez_compressed(tmp_path / "t.npz", texts)
    x, t = row_source(str(tmp_path / "x.npz"), "images"), row_source(str(tmp_path / "t.npz"), "texts")
    assert isinstance(x.parts[0], _NpyPart) and isinstance(t.parts[0], _ArrayPart)
    np.testing.assert_array_equal(x.read(17, 1499), images[17:1499])
    got = clipcore.sce(str(tmp_path / "x.npz"), str(tmp_path / "t.npz"), block_size=200, progress=False)
    _agree(got, clipcore.sce(images, texts))
    bad = images.copy()
    bad[900, 1] = np.nan
    np.savez(tmp_path / "bad.npz", bad)
    with pytest.raises(ValueError, match=r"x: contains NaN at row 900 \(bad.npz, row 900\)"):
        clipcore.vendi(str(tmp_path / "bad.npz"), progress=False)
    np.savez(tmp_path / "two.npz", images, texts)
    with pytest.raises(ValueError, match=r"two.npz holds 2 arrays \['arr_0', 'arr_1'\]; a shard holds one"):
        row_source(str(tmp_path / "two.npz"), "images")


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


def test_streamed_inputs_refuse_what_needs_n_by_n(stream_all, tmp_path, pairs):
    """Streamed inputs never form n×n: the Gaussian kernel without rff_features defaults to
    Nyström (the large-n default, bench/accuracy.py); an explicit dual is refused."""
    from clipcore import scores as S

    images, texts = pairs
    write_shards(tmp_path / "s", images, texts)
    got = clipcore.sce(str(tmp_path / "s"), kernel="gaussian", sigma=1.0, progress=False)
    assert got.method == "primal/nystrom" and got.nystrom["landmarks"] == S.DEFAULT_LANDMARKS
    want = clipcore.sce(images, texts, kernel="gaussian", sigma=1.0, landmarks=S.DEFAULT_LANDMARKS)
    assert got.log_sce == pytest.approx(want.log_sce, rel=1e-9)
    with pytest.raises(ValueError, match="method: streamed inputs take the primal"):
        clipcore.sce(str(tmp_path / "s"), method="dual")
    with pytest.raises(ValueError, match="method"):
        clipcore.sce(str(tmp_path / "s"), kernel="gaussian", sigma=1.0, method="dual")


def test_manifest_and_reader_details(tmp_path, pairs):
    images, texts = pairs
    path = write_shards(tmp_path / "s", images, texts, shard_rows=600, extra={"model": "synthetic"})
    man = json.loads(open(path).read())
    assert man["n"] == 1500 and [s["rows"] for s in man["shards"]] == [600, 600, 300] and man["model"] == "synthetic"
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


def test_progress_bar(stream_all, tmp_path, pairs, capsys):
    images, texts = pairs
    write_shards(tmp_path / "s", images, texts)
    clipcore.sce(str(tmp_path / "s"), progress=True, block_size=500)
    assert "rows" in capsys.readouterr().err
    clipcore.sce(str(tmp_path / "s"), progress=False, block_size=500)
    assert capsys.readouterr().err == ""


def test_half_precision_embeddings_are_widened(stream_all, tmp_path, pairs):
    """float16 (how CLIP outputs are often saved) and bfloat16 embeddings are read as float32, which holds
    them exactly: arrays, .npy files and iterator blocks give the scores of the same values in float64,
    on every path (including the Nyström core, which takes float32 / float64 only)."""
    import jax.numpy as jnp

    images, texts = pairs
    x16, t16 = images.astype(np.float16), texts.astype(np.float16)
    x64, t64 = x16.astype(np.float64), t16.astype(np.float64)
    np.save(tmp_path / "x16.npy", x16)
    np.save(tmp_path / "t16.npy", t16)
    want = clipcore.sce(x64, t64)
    for got in (clipcore.sce(x16, t16), clipcore.sce(str(tmp_path / "x16.npy"), str(tmp_path / "t16.npy"),
                                                    progress=False),
                clipcore.sce(iter([(x16[:700], t16[:700]), (x16[700:], t16[700:])]), progress=False)):
        assert got.sce == pytest.approx(want.sce, rel=1e-12)
    assert row_source(str(tmp_path / "x16.npy"), "images").read(0, 5).dtype == np.float32
    kw = dict(kernel="gaussian", sigma=4.0, landmarks=images[::50].astype(np.float16), estimate="missing-mass")
    v = clipcore.vendi(str(tmp_path / "x16.npy"), progress=False, **kw)
    assert v.score == pytest.approx(clipcore.vendi(x64, **dict(kw, landmarks=x64[::50])).score, rel=1e-9)
    xb = jnp.asarray(images, dtype=jnp.bfloat16)
    want_b = clipcore.vendi(np.asarray(xb.astype(jnp.float32)).astype(np.float64))
    assert clipcore.vendi(xb).score == pytest.approx(want_b.score, rel=1e-12)


def test_opaque_steps_show_elapsed_time(pairs, capsys):
    """In-memory steps with no progress of their own (the exact ‖K‖_F² in one call, an n×n or D×D decomposition, the
    Nyström eigenvalues) show an elapsed-time line: at once with progress=True, after 2 s by default (so a
    short call prints nothing), never with progress=False; the line is cleared and its thread ends."""
    import threading
    import time

    from clipcore.scores import _busy

    images, texts = pairs
    x = np.concatenate([images] * 4)  # 6000 rows: rke takes the exact ‖K‖_F² path (> FROBENIUS_ROWS)
    want = clipcore.rke(x, kernel="gaussian", sigma=2.0, progress=False)
    assert want.method == "frobenius/exact" and capsys.readouterr().err == ""
    got = clipcore.rke(x, kernel="gaussian", sigma=2.0, progress=True, backend="jax")  # one call: elapsed time
    err = capsys.readouterr().err
    assert "rke (exact ‖K‖_F²): 00:0" in err and "elapsed" in err
    assert got.score == pytest.approx(want.score, rel=1e-12)
    clipcore.rke(x, kernel="gaussian", sigma=2.0, progress=True)  # the compiled core by panels: a bar of pairs
    assert "pairs" in capsys.readouterr().err
    clipcore.sce(images, texts, progress=True)
    assert "sce: 00:0" in capsys.readouterr().err
    clipcore.vendi(images, kernel="gaussian", sigma=1.0, landmarks=30, progress=True)
    err = capsys.readouterr().err
    assert "vendi (nyström): landmarks" in err and "vendi (nyström): eigenvalues" in err
    clipcore.sce(images, texts)  # default: short, silent
    assert capsys.readouterr().err == ""
    with _busy("slow step", None, delay=0.2):
        time.sleep(0.8)
    err = capsys.readouterr().err
    assert "slow step: 00:00 elapsed" in err and err.endswith("\r")  # cleared at the end
    with pytest.raises(KeyError):
        with _busy("failing step", True):
            raise KeyError("boom")
    assert not [t for t in threading.enumerate() if t.name == "clipcore-busy"]


def test_reader_error_in_prefetch_thread_reaches_the_caller(stream_all, tmp_path, pairs):
    images, texts = pairs
    write_shards(tmp_path / "s", images, texts, shard_rows=500)
    os.remove(tmp_path / "s" / "texts-00002.npy")
    with pytest.raises(FileNotFoundError, match="texts-00002.npy"):
        clipcore.sce(str(tmp_path / "s"), progress=False)


def test_large_numpy_arrays_stream_and_agree(stream_all, pairs, capsys):
    import jax.numpy as jnp

    images, texts = pairs
    got = clipcore.sce(images, texts, progress=True, block_size=400)
    assert "rows" in capsys.readouterr().err  # streamed: the bar shows
    want = clipcore.sce(jnp.asarray(images), jnp.asarray(texts))  # device arrays: in-memory path
    _agree(got, want)
    v = clipcore.vendi(images, progress=False)
    assert v.score == pytest.approx(clipcore.vendi(jnp.asarray(images)).score, rel=1e-10)


def test_streamed_passes_reuse_their_threads(tmp_path, monkeypatch):
    """Repeated streamed calls reuse the kept reader threads and the compiled core's host pool: no thread (and
    so no fresh malloc arena, which kept ~15-48 MB resident per call) is started per call once warm."""
    import threading

    import clipcore

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    monkeypatch.setattr(clipcore.scores, "IN_MEMORY_ROWS", 1000)  # stream this small file

    def threads():
        return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else threading.active_count()

    scores = []
    for i in range(6):
        r = clipcore.vendi(str(tmp_path / "x.npy"), kernel="gaussian", sigma=4.0, landmarks=50,
                           landmark_method="uniform", progress=False, block_size=500)
        scores.append(r.score)
        if i == 1:
            warm = threads()
    assert threads() == warm
    readers = [t for t in threading.enumerate() if t.name == "clipcore-prefetch"]
    assert 1 <= len(readers) <= 4
    assert len(set(scores)) == 1  # same seed, same data: the same score every call
