"""clipcore._progress: the one progress convention — ``None`` shows a bar after DELAY = 2 s, ``True`` at once,
``False`` never — read off the tqdm object ``bar`` returns (``disable`` / ``delay``) and off ``busy``'s
thread and its output."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from clipcore import _progress as P


def _busy_threads():
    return [t for t in threading.enumerate() if t.name == "clipcore-busy"]


def test_check_progress():
    assert P.check_progress(None) is None
    assert P.check_progress(True) is True and P.check_progress(False) is False
    for bad in (1, 0, "yes", 2.0):
        with pytest.raises(ValueError, match=r"^progress: expected None \(a bar after 2 s\), True or False"):
            P.check_progress(bad)


def test_check_progress_accepts_numpy_bools():
    """The docstring's promise: NumPy bools are accepted (a flag read from an array or a config)."""
    assert P.check_progress(np.bool_(True)) is True
    assert P.check_progress(np.bool_(False)) is False


@pytest.mark.parametrize("progress, disable, delay", [(None, False, 2.0), (True, False, 0), (False, True, None)])
def test_bar_follows_the_convention(progress, disable, delay):
    assert P.DELAY == 2.0
    with P.bar(100, "test", progress) as b:
        assert b.disable is disable
        if not disable:
            assert b.delay == delay
            assert b.total == 100 and b.desc == "test" and b.unit == "rows"
        b.update(10)
    with pytest.raises(ValueError, match="progress"):
        P.bar(10, "test", "always")


def test_bar_iterates_and_prints_only_when_asked(capsys):
    assert list(P.bar(None, "it", False, iterable=range(3))) == [0, 1, 2]
    with P.bar(5, "quiet", None) as b:  # short: under the 2 s delay nothing is shown
        b.update(5)
    with P.bar(5, "loud", False) as b:
        b.update(5)
    assert capsys.readouterr().err == ""
    with P.bar(5, "shown", True) as b:
        b.update(5)
    assert "shown" in capsys.readouterr().err


def test_busy_false_starts_no_thread(capsys):
    with P.busy("never", False):
        assert _busy_threads() == []
        time.sleep(0.05)
    assert capsys.readouterr().err == ""


def test_busy_true_shows_at_once_and_joins_its_thread(capsys):
    with P.busy("at once", True):
        assert len(_busy_threads()) == 1
    assert _busy_threads() == []  # joined when the step ends
    assert "at once" in capsys.readouterr().err


def test_busy_none_waits_for_the_delay(capsys):
    with P.busy("short step", None):  # the default 2 s: a short step prints nothing
        assert len(_busy_threads()) == 1
    assert _busy_threads() == [] and capsys.readouterr().err == ""
    with P.busy("long step", None, delay=0.05):
        time.sleep(0.6)
    assert _busy_threads() == []
    err = capsys.readouterr().err
    assert "long step" in err and "elapsed" in err


def test_busy_joins_its_thread_when_the_step_fails():
    with pytest.raises(RuntimeError, match="boom"):
        with P.busy("failing", True):
            raise RuntimeError("boom")
    assert _busy_threads() == []
    with pytest.raises(ValueError, match="progress"):
        with P.busy("bad", 3):
            pass
