"""`StopOnSignals` in one process: which handler holds SIGINT before, during and after a run."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from connector.cli import interrupts
from connector.cli.interrupts import StopOnSignals


@pytest.fixture
def saved_handlers() -> Iterator[None]:
    """Whatever a test leaves installed, pytest gets its own handlers back (and `main` does
    not take this process for one a signal stopped)."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        interrupts._stopped_by_signal.clear()


def _signal_self(signum: int, stopping: threading.Event) -> None:
    os.kill(os.getpid(), signum)
    deadline = time.monotonic() + 5
    while not stopping.is_set():  # the handler runs between bytecodes of the main thread
        assert time.monotonic() < deadline, "the handler never ran"
        time.sleep(0.01)


@pytest.mark.usefixtures("saved_handlers")
def test_without_a_signal_the_previous_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    stop = StopOnSignals(threading.Event())
    with stop.installed():
        assert signal.getsignal(signal.SIGINT) != before
    assert signal.getsignal(signal.SIGINT) == before
    assert not stop.stopping.is_set()


@pytest.mark.usefixtures("saved_handlers")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_after_a_signalled_stop_the_next_signal_still_exits_at_once(signum: int) -> None:
    """A second Ctrl-C while the summary prints or the interpreter joins its threads must
    take the exit-at-once path, not Python's KeyboardInterrupt (a traceback at shutdown)."""
    stop = StopOnSignals(threading.Event())
    with stop.installed():
        _signal_self(signum, stop.stopping)
    handler = signal.getsignal(signal.SIGINT)
    assert handler is not signal.default_int_handler
    assert getattr(handler, "__self__", None) is stop
    assert getattr(signal.getsignal(signal.SIGTERM), "__self__", None) is stop
    assert interrupts.stopped_by_signal()  # so `main` ends the process with `leave`
