"""Progress of `connector run`: a live bar on a terminal, a log line every few seconds otherwise.

rich draws the bar: it handles terminal width, redraw and thread safety
(rows are counted in the parsing thread) better than hand-written escapes.
On a terminal each file shows its bytes read against its size, a percentage,
its rows (with the total they point to) and the time left; a line above
counts the goal's files (file i of n).
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType

import structlog
from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
)

log = structlog.get_logger("connector.progress")


def _clock(seconds: float) -> str:
    whole = max(round(seconds), 0)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class _FileTally:
    """The current file's figures; `detail` is what the bar shows beside it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.bytes = 0
        self.rows = 0
        self.started = time.monotonic()

    def detail(self) -> str:
        rows = f"{self.rows:,} rows"
        if not self.size:
            return rows
        parts = [f"{decimal(self.bytes)}/{decimal(self.size)}"]
        if self.bytes and self.rows:
            parts.append(f"{rows} of ~{round(self.rows * self.size / self.bytes):,}")
        else:
            parts.append(rows)
        elapsed = time.monotonic() - self.started
        if 0 < self.bytes < self.size and elapsed > 0:
            parts.append(f"ETA {_clock(elapsed * (self.size - self.bytes) / self.bytes)}")
        elif self.bytes >= self.size:
            parts.append("ETA 0:00:00")
        else:
            parts.append("ETA -:--:--")
        rate = self.rows / max(elapsed, 1e-9)
        parts.append(f"{rate:,.0f} rows/s")
        return ", ".join(parts)


class TerminalProgress:
    """The goal's files (file i of n), and the current file's bytes, rows and time left."""

    def __init__(self, console: Console | None = None) -> None:
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            console=console or Console(file=sys.stderr),
            transient=False,
        )
        self._files: TaskID | None = None
        self._file: TaskID | None = None
        self._goal = ""
        self._planned = 0
        self._started = 0
        self._tally = _FileTally(0)
        self._lock = threading.Lock()

    def __enter__(self) -> TerminalProgress:
        self._bar.start()
        self._files = self._bar.add_task("files", total=None, detail="")
        self._file = self._bar.add_task("", total=None, detail="", visible=False)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def files_planned(self, goal: str, count: int) -> None:
        assert self._files is not None  # noqa: S101 -- entered before use
        self._goal, self._planned, self._started = goal, count, 0
        self._bar.reset(self._files, total=count or None, description=goal, detail="")

    def file_started(self, goal: str, key: str, size: int) -> None:
        assert self._files is not None  # noqa: S101 -- entered before use
        assert self._file is not None  # noqa: S101
        if goal != self._goal:  # a goal that plans no files (an export): count from one
            self.files_planned(goal, 0)
        with self._lock:
            self._tally = _FileTally(size)
            self._started += 1
            detail = self._tally.detail()
        of = f" of {self._planned}" if self._planned >= self._started else ""
        self._bar.update(self._files, description=goal, detail=f"file {self._started}{of}")
        self._bar.reset(
            self._file, total=size or None, description=key, detail=detail, visible=True
        )

    def bytes_read(self, done: int) -> None:
        with self._lock:
            self._tally.bytes = done

    def advance(self, rows: int) -> None:
        assert self._file is not None  # noqa: S101 -- entered before use
        with self._lock:
            self._tally.rows += rows
            done, detail = self._tally.bytes, self._tally.detail()
        self._bar.update(self._file, completed=done, detail=detail)

    def file_finished(self, goal: str, key: str, outcome: str) -> None:
        assert self._files is not None  # noqa: S101 -- entered before use
        self._bar.update(self._files, advance=1)
        self._bar.console.print(f"{goal}: {key}: {outcome}")


def choose_progress(*, quiet: bool) -> TerminalProgress | LogProgress:
    """The bar only where a person watches: stdout and stderr both terminals, not --quiet."""
    if not quiet and sys.stdout.isatty() and sys.stderr.isatty():
        return TerminalProgress()
    return LogProgress()


class LogProgress:
    """For pipes and journald: a structured line every `interval` seconds, with the file's
    percentage read when its size is known; nothing drawn."""

    def __init__(self, interval: float = 5.0) -> None:
        self._interval = interval
        self._tally = _FileTally(0)
        self._last = self._tally.started

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def files_planned(self, goal: str, count: int) -> None:
        return None

    def file_started(self, goal: str, key: str, size: int) -> None:
        self._tally = _FileTally(size)
        self._last = self._tally.started

    def bytes_read(self, done: int) -> None:
        self._tally.bytes = done

    def advance(self, rows: int) -> None:
        tally = self._tally
        tally.rows += rows
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            rate = tally.rows / max(now - tally.started, 1e-9)
            percent = {"percent": round(100 * tally.bytes / tally.size)} if tally.size else {}
            log.info("progress", rows=tally.rows, rows_per_second=round(rate), **percent)

    def file_finished(self, goal: str, key: str, outcome: str) -> None:
        return None


__all__ = ["LogProgress", "TerminalProgress", "choose_progress"]
