"""The reader threads: a generator of blocks run ahead of its consumer, on threads kept for the process.

:func:`prefetched` runs a generator in a reader thread at most ``depth`` items
ahead (so ``depth + 2`` blocks are alive: the queued ones, the one being read
and the one in use) and re-raises the reader's errors in the consumer.  The
threads are kept and reused (:func:`start_reader`): a fresh thread per pass
took a fresh glibc malloc arena each time, and the resident set grew ~15 MB
per streamed call.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, TypeVar

__all__ = ["prefetched", "start_reader", "READERS_MAX", "THREAD_NAME"]

T = TypeVar("T")

#: Reader threads kept for the process; beyond, a task gets a one-off thread.
READERS_MAX = 4
#: The name of every reader thread.
THREAD_NAME = "clipcore-prefetch"

_DONE = object()
_readers_lock = threading.Lock()
_readers_idle: list = []
_readers_count = 0


def prefetched(gen: Iterator[T], depth: int = 2) -> Iterator[T]:
    """The items of ``gen``, produced by a reader thread ``depth`` items ahead; its errors re-raised here.

    Closing the returned generator early (``break``, an error in the consumer) stops the reader.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def worker():
        try:
            for item in gen:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    done = start_reader(worker)
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        done.wait(timeout=5)


def _reader_loop(inbox: "queue.Queue") -> None:
    while True:
        task, done = inbox.get()
        try:
            task()
        finally:
            done.set()
            with _readers_lock:
                _readers_idle.append(inbox)


def start_reader(task: Callable[[], None]) -> threading.Event:
    """Run ``task`` on an idle kept reader thread (or a new one, up to :data:`READERS_MAX` kept; beyond, a
    one-off thread); returns an Event set when it has finished."""
    global _readers_count
    done = threading.Event()
    with _readers_lock:
        inbox = _readers_idle.pop() if _readers_idle else None
        keep = inbox is None and _readers_count < READERS_MAX
        if keep:
            _readers_count += 1
    if inbox is None and keep:
        inbox = queue.Queue()
        threading.Thread(target=_reader_loop, args=(inbox,), name=THREAD_NAME, daemon=True).start()
    if inbox is not None:
        inbox.put((task, done))
        return done

    def once():
        try:
            task()
        finally:
            done.set()

    threading.Thread(target=once, name=THREAD_NAME, daemon=True).start()
    return done
