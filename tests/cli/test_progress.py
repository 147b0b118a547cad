"""`connector run`'s progress: totals on a terminal, nothing drawn without one.

The renderer draws into a real rich Console that believes it is a terminal
(`force_terminal=True`) and writes into a StringIO the test reads; the
no-terminal case is a real `connector run` with its output piped.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from io import StringIO
from pathlib import Path

import pytest
from helpers import CONNECTION, Harness, csv_bytes, import_goal
from rich.console import Console
from structlog.testing import capture_logs

from connector.cli.progress import LogProgress, TerminalProgress, choose_progress
from connector.goals.context import SizedProgress

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def drawn(console: Console) -> str:
    """What the terminal shows, colours and cursor moves removed."""
    assert isinstance(console.file, StringIO)
    return ANSI.sub("", console.file.getvalue())


def terminal() -> Console:
    return Console(file=StringIO(), force_terminal=True, width=160, color_system="standard")


def test_the_bar_shows_file_i_of_n_bytes_against_the_size_percentage_rows_and_time_left() -> None:
    console = terminal()
    with TerminalProgress(console) as progress:
        progress.files_planned("customers", 3)
        progress.file_started("customers", "in/a.csv", 4_000_000)
        progress.bytes_read(1_000_000)
        progress.advance(25_000)
    shown = drawn(console)
    assert "file 1 of 3" in shown
    assert "in/a.csv" in shown
    assert "25%" in shown
    assert "1.0 MB/4.0 MB" in shown
    assert "25,000 rows of ~100,000" in shown
    assert re.search(r"ETA \d+:\d\d:\d\d", shown), shown
    assert "rows/s" in shown


def test_the_bar_counts_files_as_they_finish_and_says_how_each_ended() -> None:
    console = terminal()
    with TerminalProgress(console) as progress:
        progress.files_planned("customers", 2)
        for key in ("in/a.csv", "in/b.csv"):
            progress.file_started("customers", key, 100)
            progress.bytes_read(100)
            progress.advance(4)
            progress.file_finished("customers", key, "imported")
    shown = drawn(console)
    assert "file 2 of 2" in shown
    assert "customers: in/a.csv: imported" in shown
    assert "customers: in/b.csv: imported" in shown
    assert "100%" in shown
    assert "4 rows of ~4" in shown


def test_a_file_of_unknown_size_shows_its_rows_only() -> None:
    console = terminal()
    with TerminalProgress(console) as progress:
        progress.file_started("export", "out/profiles.csv", 0)  # exports: size unknown
        progress.advance(7)
    shown = drawn(console)
    assert "7 rows" in shown
    assert "ETA" not in shown


def test_both_progress_kinds_take_the_totals() -> None:
    assert isinstance(TerminalProgress(terminal()), SizedProgress)
    assert isinstance(LogProgress(), SizedProgress)


def test_without_a_terminal_the_run_draws_no_bar() -> None:
    # pytest captures stdout: not a terminal
    assert isinstance(choose_progress(quiet=False), LogProgress)
    assert isinstance(choose_progress(quiet=True), LogProgress)


@pytest.fixture
async def harness(tmp_path: Path, moto_endpoint: str, reset_moto: None) -> AsyncIterator[Harness]:
    h = Harness(tmp_path, moto_endpoint)
    await h.bucket()
    h.write_connection(import_goal())
    yield h
    await h.aclose()


async def test_a_piped_run_prints_no_progress(harness: Harness) -> None:
    rows = [f"C{n},c{n}@example.com" for n in range(2000)]
    await harness.put({"in/a.csv": csv_bytes("customer_id,email", *rows)})

    result = harness.cli("run", CONNECTION)

    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "\x1b[" not in output
    assert "file 1 of" not in output
    assert "%" not in output
    assert "ETA" not in output
    assert result.stdout.startswith("run 1 success: 1 file(s), 2000 rows read")


def test_the_log_line_of_a_piped_run_gives_the_percentage_read() -> None:
    progress = LogProgress(interval=0)
    with capture_logs() as logs:
        progress.file_started("customers", "in/a.csv", 1000)
        progress.bytes_read(250)
        progress.advance(10)
    [line] = [event for event in logs if event["event"] == "progress"]
    assert (line["rows"], line["percent"]) == (10, 25)


def test_a_goal_that_plans_no_files_counts_its_own_from_one() -> None:
    console = terminal()
    with TerminalProgress(console) as progress:
        progress.files_planned("customers", 1)
        progress.file_started("customers", "in/a.csv", 10)
        progress.file_finished("customers", "in/a.csv", "imported")
        progress.file_started("export", "out/profiles.csv", 0)
    shown = drawn(console)
    assert "file 1 of 1" in shown
    assert "export" in shown
    assert "file 2" not in shown
