"""One progress convention for every long step of clipcore (scores, passes, models, encoder, CLI).

``progress`` is ``None``, ``True`` or ``False`` everywhere:

* ``None`` (the default): a bar appears once the step has lasted
  :data:`DELAY` seconds, so short calls print nothing;
* ``True``: the bar is shown at once;
* ``False``: never.

:func:`bar` is a tqdm bar over a known (or unknown) total; :func:`busy` an
elapsed-time line for a step that reports no progress of its own (an n×n
eigendecomposition, a compiled pass without callbacks), refreshed by a
daemon thread that is joined when the step ends.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

import numpy as np

__all__ = ["DELAY", "check_progress", "bar", "busy"]

#: Seconds a step runs before ``progress=None`` shows its bar.
DELAY = 2.0


def check_progress(progress: Any) -> bool | None:
    """``progress`` validated: ``None``, ``True`` or ``False`` (NumPy bools accepted)."""
    if progress is None:
        return None
    if isinstance(progress, (bool, np.bool_)):
        return bool(progress)
    raise ValueError(f"progress: expected None (a bar after {DELAY:g} s), True or False, got {progress!r}")


def bar(total: int | None, desc: str, progress: bool | None, *, unit: str = "rows", unit_scale: bool = True,
        leave: bool = False, iterable: Any = None):
    """A tqdm bar under the convention above (use as a context manager, or iterate it)."""
    from tqdm.auto import tqdm

    progress = check_progress(progress)
    return tqdm(iterable, total=total, desc=desc, unit=unit, unit_scale=unit_scale, disable=progress is False,
                delay=0 if progress else DELAY, leave=leave)


@contextlib.contextmanager
def busy(desc: str, progress: bool | None, delay: float = DELAY) -> Iterator[None]:
    """An elapsed-time line while the ``with`` body runs (shown after ``delay`` s; at once with ``True``)."""
    progress = check_progress(progress)
    if progress is False:
        yield
        return
    from tqdm.auto import tqdm

    def make():
        return tqdm(total=None, desc=desc, bar_format="{desc}: {elapsed} elapsed", leave=False)

    done = threading.Event()
    first = make() if progress else None

    def beat():
        line = first
        if line is None:
            if done.wait(delay):
                return
            line = make()
        while not done.wait(0.5):
            line.refresh()
        line.close()

    thread = threading.Thread(target=beat, name="clipcore-busy", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
