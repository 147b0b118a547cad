"""Ctrl-C and SIGTERM during `connector run`: a graceful stop, as the daemon does on SIGTERM.

The first signal sets the run's `stopping` event: the file in progress rolls
back at its next batch boundary (it is imported again next run), no other file
or goal starts, and the history records the run as interrupted. No
KeyboardInterrupt unwinds the event loop, so nothing is half-applied and no
traceback is printed. A second signal exits at once (130); the store's
transaction is then rolled back by SQLite's journal or by PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_INTERRUPTED = 130
"""128 + SIGINT, what shells report for a command stopped by Ctrl-C."""

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals(stopping: threading.Event) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into `stopping.set()` while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread (tests call run() in others)
        return

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        # os.write, not sys.stderr: a signal handler must not re-enter a buffered stream
        if stopping.is_set():
            os.write(2, b"\nconnector: second interrupt: exiting now\n")
            os._exit(EXIT_INTERRUPTED)
        stopping.set()
        os.write(
            2,
            b"\nconnector: interrupted: rolling back the file in progress "
            b"(press Ctrl-C again to exit at once)\n",
        )

    previous = {signum: signal.signal(signum, request_stop) for signum in _SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


__all__ = ["EXIT_INTERRUPTED", "stop_on_signals"]
