"""Files a run passes over are counted and, with `--verbose`, named with why.

Real objects on the session's moto server, `connector run` and `history` as
subprocesses on a SQLite file.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import BUCKET, CONNECTION, Harness, csv_bytes, import_goal

A = csv_bytes("customer_id,email", "C1,a@example.com")
B = csv_bytes("customer_id,email", "C2,b@example.com")


@pytest.fixture
async def harness(tmp_path: Path, moto_endpoint: str, reset_moto: None) -> AsyncIterator[Harness]:
    h = Harness(tmp_path, moto_endpoint)
    await h.bucket()
    h.write_connection(import_goal())
    yield h
    await h.aclose()


def skipped_lines(stdout: str) -> dict[str, str]:
    """`--verbose` lines `  skipped KEY: WHY`, by key."""
    found = {}
    for line in stdout.splitlines():
        if line.startswith("  skipped ") and ": " in line:
            key, why = line.removeprefix("  skipped ").split(": ", 1)
            found[key] = why
    return found


async def test_a_run_counts_unchanged_files_as_skipped_in_its_summary_and_history(
    harness: Harness,
) -> None:
    await harness.put({"in/a.csv": A, "in/b.csv": B})
    assert harness.cli("run", CONNECTION).returncode == 0
    await harness.put({"in/c.csv": csv_bytes("customer_id,email", "C3,c@example.com")})

    result = harness.cli("run", CONNECTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "  2 file(s) skipped: already imported, unchanged (--verbose names them)\n" in (
        result.stdout
    )
    [record] = harness.store.list_runs(CONNECTION, limit=1)
    assert (record.counts.files, record.counts.files_skipped) == (1, 2)
    history = harness.cli("history", "--run", str(record.id))
    assert history.returncode == 0, history.stderr
    assert "  2 file(s) skipped: already imported, unchanged" in history.stdout
    as_json = harness.cli("history", "--run", str(record.id), "--json")
    assert json.loads(as_json.stdout)["counts"]["files_skipped"] == 2


@pytest.mark.slow
async def test_verbose_names_each_skipped_file_with_why(harness: Harness) -> None:
    await harness.put({"in/a.csv": A})
    assert harness.cli("run", CONNECTION).returncode == 0
    await harness.put({"in/notes.txt": b"not a goal file", "in/b.csv": B})

    result = harness.cli("run", CONNECTION, "--verbose")

    assert result.returncode == 0, result.stdout + result.stderr
    skipped = skipped_lines(result.stdout)
    assert set(skipped) == {"in/a.csv", "in/notes.txt"}
    assert skipped["in/a.csv"].startswith("already imported, unchanged (same ETag); imported ")
    assert skipped["in/notes.txt"] == "does not match the goal's files ['*.csv']"
    quiet = harness.cli("run", CONNECTION)
    assert skipped_lines(quiet.stdout) == {}  # without --verbose: the count only

    # a window that starts tomorrow: every file is before it
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    source = {"bucket": BUCKET, "prefix": "in/", "files": ["*.csv"], "modified_since": tomorrow}
    harness.write_connection(import_goal(source=source))

    late = harness.cli("run", CONNECTION, "--verbose")

    assert late.returncode == 0, late.stdout + late.stderr
    skipped = skipped_lines(late.stdout)
    assert set(skipped) == {"in/a.csv", "in/b.csv", "in/notes.txt"}
    window = f"before the goal's window (modified_since {tomorrow.isoformat()})"
    assert skipped["in/a.csv"].startswith("last modified ")
    assert skipped["in/a.csv"].endswith(window)
    assert skipped["in/b.csv"].endswith(window)
