"""Progress of `connector run`: a live bar on a terminal, a log line every few seconds otherwise.

rich draws the bar: it handles terminal width, redraw and thread safety
(rows are counted in the parsing thread) better than hand-written escapes.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

log = structlog.get_logger("connector.progress")


class TerminalProgress:
    """Files done of files started, and rows with a live rows/s figure."""

    def __init__(self) -> None:
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
            transient=False,
        )
        self._files: TaskID | None = None
        self._rows: TaskID | None = None
        self._started = time.monotonic()
        self._count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> TerminalProgress:
        self._bar.start()
        self._files = self._bar.add_task("files", total=None, rate="")
        self._rows = self._bar.add_task("rows", total=None, rate="")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def file_started(self, goal: str, key: str, size: int) -> None:
        assert self._files is not None  # noqa: S101 -- entered before use
        self._bar.update(self._files, description=f"{goal}: {key}")

    def advance(self, rows: int) -> None:
        assert self._rows is not None  # noqa: S101 -- entered before use
        with self._lock:
            self._count += rows
            rate = self._count / max(time.monotonic() - self._started, 1e-9)
        self._bar.update(self._rows, advance=rows, rate=f"{rate:,.0f} rows/s")

    def file_finished(self, goal: str, key: str, outcome: str) -> None:
        assert self._files is not None  # noqa: S101 -- entered before use
        self._bar.update(self._files, advance=1)
        self._bar.console.print(f"{goal}: {key}: {outcome}")


class LogProgress:
    """For pipes and journald: one structured line per file and every `interval` seconds."""

    def __init__(self, interval: float = 5.0) -> None:
        self._interval = interval
        self._rows = 0
        self._started = time.monotonic()
        self._last = self._started

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def file_started(self, goal: str, key: str, size: int) -> None:
        self._rows = 0
        self._started = self._last = time.monotonic()

    def advance(self, rows: int) -> None:
        self._rows += rows
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            rate = self._rows / max(now - self._started, 1e-9)
            log.info("progress", rows=self._rows, rows_per_second=round(rate))

    def file_finished(self, goal: str, key: str, outcome: str) -> None:
        return None


__all__ = ["LogProgress", "TerminalProgress"]
