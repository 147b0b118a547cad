"""Read the next batch in a thread while the caller works on this one.

Two stages of a row's path use it. A store's page read (exports, segment
counts) spends most of its time in C with the GIL released (SQLite stepping
through its B-tree, PostgreSQL's COPY, Arrow parsing the page) while the
caller builds cells, writes CSV and compresses; an import parses and
converts the next piece of its file while the current one is written to the
store. On two cores the two halves overlap. One batch ahead, never more, so
memory holds two batches at most.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

__all__ = ["read_ahead"]

T = TypeVar("T")


def read_ahead(batches: Iterator[T], *, name: str = "read-ahead") -> Generator[T, None, None]:
    """The items of `batches`, in order, each produced in a thread while the caller uses the last.

    An exception from `batches` is raised to the caller at the item it failed on.
    Closing this generator (or leaving its loop) stops the thread and closes
    `batches` there, waiting at most for the item being read: nothing is left
    using the store once the caller moves on.
    """
    # an item (in a 1-tuple), the error that ended the batches, or None at their end
    ready: queue.SimpleQueue[tuple[T] | BaseException | None] = queue.SimpleQueue()
    credit = threading.Semaphore(1)  # the reader may start one batch the caller has not taken
    stop = threading.Event()

    def read() -> None:
        try:
            while True:
                credit.acquire()
                if stop.is_set():
                    return
                try:
                    item = next(batches)
                except StopIteration:
                    ready.put(None)
                    return
                except BaseException as error:  # noqa: BLE001 -- raised again in the caller
                    ready.put(error)
                    return
                ready.put((item,))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name=name, daemon=True)
    reader.start()
    try:
        while True:
            got = ready.get()
            if got is None:
                return
            if isinstance(got, BaseException):
                raise got
            credit.release()  # read the next batch while the caller uses this one
            yield got[0]
    finally:
        stop.set()
        credit.release()
        # the garbage collector may finalize an abandoned generator on its own reader
        # thread (a reference cycle through the batches), which is ending anyway
        if reader is not threading.current_thread():
            reader.join()
