"""Issue 15 item 14: `connector history` fits a 100-column terminal, keeps `--json` whole,
and chooses runs with `--limit` and `--since` (ISO or relative; a bad value exits 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from connector.cli import main
from connector.cli.history_table import compact, took
from connector.cli.since import parse_since
from connector.storage import ProfileStore, RunCounts, RunStatus, SQLiteStore, Trigger, open_store

LONG_CONNECTION = "emea-loyalty-programme-customers-nightly"
LONG_GOAL = "import-every-customer-with-a-very-long-goal-name"
LONG_ERROR = "s3://crm-exports/in/2026/12/customers.csv: " + "access denied by policy " * 20
BIG = RunCounts(
    files=12_345,
    rows_read=123_456_789,
    rows_applied=123_000_000,
    rows_rejected=456_789,
    profiles_created=9_876_543,
    profiles_updated=1_234_567,
    profiles_exported=98_765_432,
    unique_profiles=99_999_999,
)


def fill(store: ProfileStore) -> list[int]:
    """Runs as wide as they come: long names, huge counts, a long error, every status."""
    ids = []
    for connection, goal, status, dry, error in [
        (LONG_CONNECTION, LONG_GOAL, RunStatus.FAILURE, False, LONG_ERROR),
        (LONG_CONNECTION, None, RunStatus.INTERRUPTED, True, None),
        ("crm", "customers", RunStatus.PARTIAL, False, None),
        ("crm", None, RunStatus.SUCCESS, True, None),
    ]:
        run = store.start_run(connection, goal, Trigger.SCHEDULE, dry_run=dry)
        store.finish_run(run.id, status, BIG, error)
        ids.append(run.id)
    ids.append(store.start_run(LONG_CONNECTION, LONG_GOAL, Trigger.MANUAL).id)  # running
    return ids


def history(
    root: Path, database: str, *argv: str, columns: int = 100
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONNECTOR_")}
    env.update(
        CONNECTOR_GOALS_DIR=str(root / "goals"),
        CONNECTOR_DATABASE=database,
        CONNECTOR_LOG_LEVEL="warning",
        COLUMNS=str(columns),
    )
    return subprocess.run(
        [sys.executable, "-m", "connector", "history", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def history_here(
    database: str, *argv: str, capsys: pytest.CaptureFixture[str]
) -> subprocess.CompletedProcess[str]:
    """`history` run by `main` in this process (quicker), as a finished process would look."""
    os.environ["CONNECTOR_DATABASE"] = database
    try:
        code = main(["history", *argv])
    except SystemExit as stopped:
        code = int(stopped.code or 0)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, captured.out, captured.err)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment `history_here` runs in (its store is set per call)."""
    for key in [key for key in os.environ if key.startswith("CONNECTOR_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("CONNECTOR_GOALS_DIR", str(tmp_path / "goals"))
    monkeypatch.setenv("CONNECTOR_DATABASE", "")
    monkeypatch.setenv("CONNECTOR_LOG_FORMAT", "json")
    monkeypatch.setenv("COLUMNS", "100")


@pytest.fixture
def database(tmp_path: Path) -> str:
    (tmp_path / "goals").mkdir()
    path = tmp_path / "connector.db"
    with SQLiteStore(path) as store:
        fill(store)
    return str(path)


def test_no_line_of_the_history_is_wider_than_100_columns(tmp_path: Path, database: str) -> None:
    result = history(tmp_path, database)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 + 5 + 1  # header, five runs, the failed run's error line
    assert max(len(line) for line in lines) <= 100, "\n" + result.stdout
    header = lines[0].split()
    assert header == ["RUN", "CONNECTION", "STARTED", "UTC", "TOOK", "STATUS", "FILES", "ROWS",
                      "REJ", "UNIQUE"]  # fmt: skip
    failed = next(line for line in lines if "failure" in line)
    assert failed.split()[-4:] == ["12.3k", "123M", "457k", "100M"]
    error = lines[lines.index(failed) + 1]
    assert error.startswith("    error: s3://crm-exports/in/2026/12/customers.csv: access denied")
    assert error.endswith("…")
    assert any("interrupted dry" in line for line in lines)


def test_narrower_terminals_cut_only_the_error_line(tmp_path: Path, database: str) -> None:
    result = history(tmp_path, database, columns=80)

    assert result.returncode == 0, result.stderr
    error_lines = [line for line in result.stdout.splitlines() if line.startswith("    error:")]
    assert [len(line) for line in error_lines] == [80]


def test_json_keeps_every_field_whole(
    database: str, capsys: pytest.CaptureFixture[str], env: None
) -> None:
    result = history_here(database, "--json", capsys=capsys)

    runs = [json.loads(line) for line in result.stdout.splitlines()]
    failed = next(run for run in runs if run["status"] == "failure")
    assert (failed["connection"], failed["goal"], failed["error"]) == (
        LONG_CONNECTION,
        LONG_GOAL,
        LONG_ERROR,
    )
    assert failed["counts"]["rows_read"] == 123_456_789
    assert failed["trigger"] == "schedule"


def test_one_run_in_full_shows_every_count(
    database: str, capsys: pytest.CaptureFixture[str], env: None
) -> None:
    result = history_here(database, "--run", "1", capsys=capsys)

    assert result.returncode == 0, result.stderr
    assert f"run 1  {LONG_CONNECTION}/{LONG_GOAL}  failure" in result.stdout
    assert "rows_read 123456789" in result.stdout
    assert "profiles_exported 98765432" in result.stdout
    assert LONG_ERROR in result.stdout


def test_limit_shows_the_latest_runs(
    database: str, capsys: pytest.CaptureFixture[str], env: None
) -> None:
    result = history_here(database, "--json", "--limit", "2", capsys=capsys)

    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [5, 4]


def _age(database: str, ages: dict[int, timedelta]) -> None:
    """Move runs back in time (the store stamps them with now)."""
    now = datetime.now(UTC)
    if database.startswith("postgresql://"):
        with psycopg.connect(database) as conn:
            for run_id, age in ages.items():
                conn.execute("UPDATE runs SET started_at = %s WHERE id = %s", (now - age, run_id))
        return
    import sqlite3  # noqa: PLC0415

    with sqlite3.connect(database) as conn:
        for run_id, age in ages.items():
            stamp = (now - age).isoformat(timespec="microseconds")
            conn.execute("UPDATE runs SET started_at = ? WHERE id = ?", (stamp, run_id))
    conn.close()


AGES = {1: timedelta(days=10), 2: timedelta(days=2), 3: timedelta(hours=5), 4: timedelta(hours=1)}


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("2h", [5, 4]),
        ("6h", [5, 4, 3]),
        ("3d", [5, 4, 3, 2]),
        ("2w", [5, 4, 3, 2, 1]),
        ("ISO-4d", [5, 4, 3, 2]),
    ],
)
def test_since_takes_a_span_or_an_iso_time(
    database: str, since: str, expected: list[int], capsys: pytest.CaptureFixture[str], env: None
) -> None:
    _age(database, AGES)
    if since == "ISO-4d":
        since = (datetime.now(UTC) - timedelta(days=4)).replace(tzinfo=None).isoformat()

    result = history_here(database, "--json", "--since", since, capsys=capsys)

    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == expected


@pytest.mark.parametrize("since", ["yesterday", "3 days", "2026-13-01", "2x", ""])
def test_a_bad_since_exits_2_with_a_clear_message(
    database: str, since: str, capsys: pytest.CaptureFixture[str], env: None
) -> None:
    result = history_here(database, "--since", since, capsys=capsys)

    assert result.returncode == 2
    assert result.stdout == ""
    assert f"argument --since: cannot read {since!r} as a time" in result.stderr
    assert "90m, 2h, 3d, 1w" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.postgres
def test_since_and_limit_on_postgresql(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        fill(store)
        _age(postgres_url, AGES)
        since = parse_since("6h")
        assert [run.id for run in store.list_runs(since=since)] == [5, 4, 3]
        assert [run.id for run in store.list_runs("crm", since=since)] == [4, 3]
        assert [run.id for run in store.list_runs(limit=2, since=parse_since("2w"))] == [5, 4]


def test_since_reads_offsets_and_dates_as_utc() -> None:
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert parse_since("90m", now=now) == datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
    assert parse_since("1w", now=now) == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert parse_since("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_since("2026-12-01T08:30+01:00") == datetime(2026, 12, 1, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        (0, "0"),
        (9999, "9999"),
        (12_345, "12.3k"),
        (99_960, "100k"),
        (123_456, "123k"),
        (4_500_000, "4.5M"),
        (1_234_567_890, "1.2G"),
    ],
)
def test_counts_take_at_most_five_characters(number: int, shown: str) -> None:
    assert compact(number) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.44, "0.4s"), (12.4, "12s"), (184, "3m04s"), (3720, "1h02m"), (7 * 86400 + 7200, "7d02h")],
)
def test_durations_take_at_most_six_characters(seconds: float, shown: str) -> None:
    assert took(timedelta(seconds=seconds)) == shown
