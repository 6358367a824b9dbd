"""clipcore.sources.prefetch: the reader threads (read ahead, bounded, errors reach the caller, kept)."""

import os
import threading
import time

import numpy as np
import pytest

import clipcore
from clipcore._pipeline import inputs as inputs_mod
from clipcore.sources import paired_source, prefetched, write_shards
from clipcore.sources import prefetch as prefetch_mod


def test_reader_error_in_prefetch_thread_reaches_the_caller(stream_all, tmp_path, pairs):
    images, texts = pairs
    write_shards(tmp_path / "s", images, texts, shard_rows=500)
    os.remove(tmp_path / "s" / "texts-00002.npy")
    with pytest.raises(FileNotFoundError, match="texts-00002.npy"):
        clipcore.sce(str(tmp_path / "s"), progress=False)


def test_streamed_passes_reuse_their_threads(tmp_path, monkeypatch):
    """Repeated streamed calls reuse the kept reader threads and the compiled core's host pool: no thread (and
    so no fresh malloc arena, which kept ~15-48 MB resident per call) is started per call once warm."""
    import threading

    import clipcore

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    monkeypatch.setattr(inputs_mod, "IN_MEMORY_ROWS", 1000)  # stream this small file

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


def test_prefetched_reads_ahead_in_order_and_bounded():
    """Items arrive in order; the reader runs at most depth queued + one in hand + the consumer's ahead."""
    produced = []

    def gen():
        for i in range(50):
            produced.append(i)
            yield i

    for depth in (1, 2, 4):
        produced.clear()
        it = prefetched(gen(), depth)
        assert next(it) == 0
        time.sleep(0.3)
        assert len(produced) <= depth + 2
        assert [0] + list(it) == list(range(50))


def test_prefetched_reraises_and_stops_early():
    def failing():
        yield 1
        yield 2
        raise KeyError("boom")

    it = prefetched(failing(), 2)
    assert next(it) == 1 and next(it) == 2
    with pytest.raises(KeyError, match="boom"):
        next(it)
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    it = prefetched(endless(), 2)
    assert next(it) == 0
    it.close()  # the consumer stops: so does the reader
    time.sleep(0.3)
    n = len(produced)
    time.sleep(0.3)
    assert len(produced) == n <= 4


def test_a_file_changed_under_the_reader_fails_in_the_caller(tmp_path, pairs):
    """A shard cut short after the source was opened: the reader thread's error reaches the consumer."""
    images, texts = pairs
    write_shards(tmp_path / "s", images, texts, shard_rows=500)
    src = paired_source(str(tmp_path / "s"))
    path = tmp_path / "s" / "images-00002.npy"
    os.truncate(path, os.path.getsize(path) - 100)
    got = []
    with pytest.raises(ValueError, match=r"images-00002.npy: unexpected end of file"):
        for block in src.blocks(250, nonzero=True):
            got.append(block.start)
    assert got == [0, 250, 500, 750, 1000]  # the last 100 bytes are gone: rows 1250 ... 1499
    readers = [t for t in threading.enumerate() if t.name == prefetch_mod.THREAD_NAME]
    assert len(readers) <= prefetch_mod.READERS_MAX  # the failed walk's reader went back to the kept ones
