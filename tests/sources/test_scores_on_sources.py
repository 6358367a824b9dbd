"""Scores on sources: which path a file input takes (in memory or streamed), the progress a streamed pass
shows, the elapsed-time lines of opaque steps.

These check clipcore.scores (and its host pipeline) fed by sources; they moved here from test_sources.py and
belong with the scores / pipeline tests once those are laid out.
"""

import numpy as np
import pytest

import clipcore
from clipcore import _progress
from clipcore.sources import write_shards

from .helpers import agree


def test_small_files_take_the_in_memory_path(tmp_path, pairs):
    images, texts = pairs
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "t.npy", texts)
    # the exact Gaussian kernel needs n×n: fine for a small file read whole
    got = clipcore.sce(str(tmp_path / "x.npy"), str(tmp_path / "t.npy"), kernel="gaussian", sigma=1.0)
    want = clipcore.sce(images, texts, kernel="gaussian", sigma=1.0)
    agree(got, want)
    v = clipcore.vendi(str(tmp_path / "x.npy"), order=2)
    assert v.score == pytest.approx(clipcore.rke(images).score, rel=1e-12)


def test_streamed_inputs_refuse_what_needs_n_by_n(stream_all, tmp_path, pairs):
    """Streamed inputs never form n×n: an explicit dual is refused (the Gaussian kernel's default there,
    Nyström with DEFAULT_LANDMARKS, is the plan's: tests/_pipeline/test_plan.py, and the slow test below)."""
    images, texts = pairs
    write_shards(tmp_path / "s", images, texts)
    with pytest.raises(ValueError, match="method: streamed inputs take the primal"):
        clipcore.sce(str(tmp_path / "s"), method="dual")
    with pytest.raises(ValueError, match="method"):
        clipcore.sce(str(tmp_path / "s"), kernel="gaussian", sigma=1.0, method="dual")


@pytest.mark.slow
def test_streamed_gaussian_defaults_to_nystrom(stream_all, tmp_path, pairs):
    """The Gaussian kernel without rff_features defaults to Nyström on streamed inputs (the large-n default,
    bench/accuracy.py), equal to the same call in memory."""
    from clipcore import scores as S

    images, texts = pairs
    write_shards(tmp_path / "s", images, texts)
    got = clipcore.sce(str(tmp_path / "s"), kernel="gaussian", sigma=1.0, progress=False)
    assert got.method == "primal/nystrom" and got.nystrom["landmarks"] == S.DEFAULT_LANDMARKS
    want = clipcore.sce(images, texts, kernel="gaussian", sigma=1.0, landmarks=S.DEFAULT_LANDMARKS)
    assert got.log_sce == pytest.approx(want.log_sce, rel=1e-9)


def test_progress_bar(stream_all, tmp_path, pairs, capsys):
    images, texts = pairs
    write_shards(tmp_path / "s", images, texts)
    clipcore.sce(str(tmp_path / "s"), progress=True, block_size=500)
    assert "rows" in capsys.readouterr().err
    clipcore.sce(str(tmp_path / "s"), progress=False, block_size=500)
    assert capsys.readouterr().err == ""


def test_opaque_steps_show_elapsed_time(pairs, capsys):
    """In-memory steps with no progress of their own (the exact ‖K‖_F² in one call, an n×n or D×D decomposition, the
    Nyström eigenvalues) show an elapsed-time line: at once with progress=True, after 2 s by default (so a
    short call prints nothing), never with progress=False; the line is cleared and its thread ends."""
    import threading
    import time

    images, texts = pairs
    x = np.concatenate([images] * 4)  # 6000 rows: rke takes the exact ‖K‖_F² path (> FROBENIUS_ROWS)
    # float32 rows: both backends compute in float64, so they agree to rounding
    want = clipcore.rke(x, kernel="gaussian", sigma=2.0, progress=False, dtype="float64")
    assert want.method == "frobenius/exact" and capsys.readouterr().err == ""
    got = clipcore.rke(x, kernel="gaussian", sigma=2.0, progress=True, backend="jax",
                       dtype="float64")  # one call: elapsed time
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
    with _progress.busy("slow step", None, delay=0.2):
        time.sleep(0.8)
    err = capsys.readouterr().err
    assert "slow step: 00:00 elapsed" in err and err.endswith("\r")  # cleared at the end
    with pytest.raises(KeyError):
        with _progress.busy("failing step", True):
            raise KeyError("boom")
    assert not [t for t in threading.enumerate() if t.name == "clipcore-busy"]
