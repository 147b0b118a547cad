"""`connector history` for people: a run a line that fits a 100-column terminal, and one run
in full. Programs read `--json`, which keeps every field and every count."""

from __future__ import annotations

import io
import shutil
import sys
from datetime import UTC, timedelta
from typing import TextIO

from connector.cli.output import print_table
from connector.storage import RunRecord

HEADERS = ["RUN", "CONNECTION", "STARTED UTC", "TOOK", "STATUS", "FILES", "ROWS", "REJ", "UNIQUE"]
"""ROWS is rows read, REJ rows rejected, UNIQUE distinct profiles written or exported."""
CONNECTION_WIDTH = 24
"""`connection/goal` longer than this is cut (with `…`); `--run ID` and `--json` show it all."""


def terminal_width() -> int:
    """$COLUMNS, else the terminal's width, else 100 (a pipe)."""
    return shutil.get_terminal_size(fallback=(100, 24)).columns


def print_runs(runs: list[RunRecord], *, stream: TextIO | None = None) -> None:
    """One line a run; a failed run's error on an indented line below, cut to the width."""
    width = max(terminal_width(), 40)
    rows = [
        (
            run.id,
            cut(f"{run.connection}/{run.goal}" if run.goal else run.connection, CONNECTION_WIDTH),
            run.started_at.astimezone(UTC).strftime("%m-%d %H:%M"),
            took(run.ended_at - run.started_at) if run.ended_at else "",
            f"{run.status}{' dry' if run.dry_run else ''}",
            compact(run.counts.files),
            compact(run.counts.rows_read),
            compact(run.counts.rows_rejected),
            compact(run.counts.unique_profiles),
        )
        for run in runs
    ]
    errors = {
        index: cut(f"    error: {' '.join(run.error.split())}", width)
        for index, run in enumerate(runs)
        if run.error
    }
    table = io.StringIO()
    print_table(HEADERS, rows, stream=table)
    header, *body = table.getvalue().splitlines()
    _write(stream, header)
    for index, line in enumerate(body):
        _write(stream, line)
        if index in errors:
            _write(stream, errors[index])


def print_run(run: RunRecord, *, stream: TextIO | None = None) -> None:
    """Everything the history holds about one run (the list leaves some counts out)."""
    name = f"{run.connection}/{run.goal}" if run.goal else run.connection
    status = f"{run.status}{' (dry run: nothing written)' if run.dry_run else ''}"
    _write(stream, f"run {run.id}  {name}  {status}")
    started = run.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    ended = run.ended_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if run.ended_at else ""
    _write(stream, f"  trigger   {run.trigger}")
    _write(stream, f"  started   {started}")
    if run.ended_at:
        _write(stream, f"  ended     {ended} (took {took(run.ended_at - run.started_at)})")
    counts = [f"{name} {value}" for name, value in run.counts.as_dict().items() if value]
    _write(stream, f"  counts    {', '.join(counts) or 'none'}")
    if run.error:
        _write(stream, f"  error     {run.error}")


def took(span: timedelta) -> str:
    """A duration in at most six characters: 0.4s, 12s, 3m04s, 1h02m, 4d02h."""
    seconds = max(span.total_seconds(), 0.0)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, second = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{second:02d}s"
    hours, minute = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minute:02d}m"
    days, hour = divmod(hours, 24)
    return f"{days}d{hour:02d}h"


def compact(number: int) -> str:
    """A count in at most five characters: 9999, 12.3k, 123k, 4.5M, 45M, 1.2G."""
    if number < 10_000:
        return str(number)
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if number >= scale:
            value = number / scale
            return f"{value:.1f}{unit}" if value < 99.95 else f"{value:.0f}{unit}"
    return str(number)  # pragma: no cover -- every number >= 10 000 has a unit


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _write(stream: TextIO | None, line: str) -> None:
    (stream or sys.stdout).write(line + "\n")
