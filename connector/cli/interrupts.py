"""Ctrl-C and SIGTERM during `connector run`: a graceful stop, as the daemon does on SIGTERM.

The first signal sets the run's `stopping` event: the file in progress rolls
back at its next batch boundary (it is imported again next run), no other file
or goal starts, and the history records the run as interrupted. No
KeyboardInterrupt unwinds the event loop, so nothing is half-applied and no
traceback is printed. A second signal exits at once (130); the store's
transaction is then rolled back by SQLite's journal or by PostgreSQL.

While the event loop runs, the loop takes the signals (its handlers run as
ordinary callbacks, so they may print through the progress display); before
and after it, a plain signal handler does, writing with `os.write` only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import NoReturn

from connector.cli.exit_codes import ExitCode

EXIT_INTERRUPTED = int(ExitCode.INTERRUPTED)
"""128 + SIGINT, what shells report for a command stopped by Ctrl-C."""

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_FIRST = (
    "connector: interrupted: rolling back the file in progress "
    "(press Ctrl-C again to exit at once)\n"
)
_SECOND = "connector: second interrupt: exiting now\n"

_stopped_by_signal = threading.Event()
"""Set by the first signal a command took: it then ends with `leave`, not interpreter exit."""


def stopped_by_signal() -> bool:
    return _stopped_by_signal.is_set()


def leave(code: int) -> NoReturn:
    """End a command that a signal stopped, without the interpreter's finalisation.

    Finalisation gives SIGINT back to the system's default, so a second Ctrl-C in
    that last moment would kill the process by the signal (status -2), and before
    it Python's own handler would print a KeyboardInterrupt traceback while the
    interpreter joins its threads. The run is recorded and the store closed by now;
    the output is flushed and the process exits with `code` at once.
    """
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


class StopOnSignals:
    """Turns SIGINT/SIGTERM into `stopping.set()`; a second one exits 130 at once."""

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping
        self._active = threading.current_thread() is threading.main_thread()
        self._signalled = False

    def _request(self, write: Callable[[str], object]) -> None:
        if self.stopping.is_set():
            write(_SECOND)
            os._exit(EXIT_INTERRUPTED)
        self._signalled = True
        _stopped_by_signal.set()
        self.stopping.set()
        write(_FIRST)

    def _from_signal(self, _signum: int, _frame: FrameType | None) -> None:
        # a signal handler must not re-enter a buffered stream: raw bytes to fd 2
        self._request(lambda text: os.write(2, f"\n{text}".encode()))

    def _from_loop(self) -> None:
        # an ordinary callback of the loop: sys.stderr goes above a live progress bar
        self._request(lambda text: (sys.stderr.write(text), sys.stderr.flush()))

    @contextmanager
    def installed(self) -> Iterator[StopOnSignals]:
        """Handlers for the whole command (signal handlers exist in the main thread only)."""
        if not self._active:
            yield self
            return
        previous = {signum: signal.signal(signum, self._from_signal) for signum in _SIGNALS}
        try:
            yield self
        finally:
            # once a signal asked to stop, the next one exits at once even after the block,
            # while the summary prints, until `leave` ends the process
            if not self._signalled:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)

    @contextmanager
    def in_loop(self) -> Iterator[None]:
        """While the running loop is inside the block, the loop takes the signals."""
        if not self._active:
            yield
            return
        loop = asyncio.get_running_loop()
        for signum in _SIGNALS:
            loop.add_signal_handler(signum, self._from_loop)
        try:
            yield
        finally:
            for signum in _SIGNALS:
                loop.remove_signal_handler(signum)
                signal.signal(signum, self._from_signal)  # the loop put back the default


__all__ = ["EXIT_INTERRUPTED", "StopOnSignals", "leave", "stopped_by_signal"]
