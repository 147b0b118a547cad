"""The exactly-once promise: kill `connector run` at any moment, run again, and every profile
ends as if each file had been applied once — *sum* and *add* included.

A real `python -m connector run` subprocess imports several files and is
killed with SIGKILL at four points: before its first commit, right after a
file's commit (between files), and a third and two thirds of the way into a
file (several batches applied, none committed: the store commits once per
file). Each kill point is found by watching the store's run history and
ledger, plus a delay measured from a clean run for the points inside a file.
A plain run then takes over the dead process's run lock and finishes. The
store must equal that of one clean run, and each killed run must show as
interrupted in the history.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import CONNECTION, GOAL, Harness, import_goal

from connector.storage import RunStatus

pytestmark = pytest.mark.slow

FILES = 5
ROWS = 5000
"""Rows per file: enough that applying one takes a good fraction of a second."""
CUSTOMERS = 2000
GOAL_DEFINITION = import_goal(
    format={"field_separator": ";", "decimal_separator": ","},
    mappings=[
        {"column": "email", "property": "email", "rule": "set"},
        {"column": "points", "property": "points", "rule": "sum", "type": "number"},
        {"column": "tags", "property": "tags", "rule": "add"},
    ],
)


def rows_of(part: int) -> list[tuple[str, str, str, str]]:
    """(customer, email, points, tags) of one file; customers recur within and across files."""
    return [
        (
            f"C{(i * 7 + part * 3) % CUSTOMERS:05d}",
            f"c{i % CUSTOMERS}-{part}@x.org",
            f"{i % 97},{part}5",
            f"t{i % 13}|f{part}",
        )
        for i in range(ROWS)
    ]


def file_of(part: int) -> bytes:
    lines = ["customer_id;email;points;tags", *(";".join(row) for row in rows_of(part))]
    return ("\n".join(lines) + "\n").encode()


def expected_points() -> dict[str, str]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for part in range(FILES):
        for customer, _email, points, _tags in rows_of(part):
            totals[customer] += Decimal(points.replace(",", "."))
    return {customer: str(total) for customer, total in totals.items()}


@pytest.fixture
async def harnesses(
    tmp_path: Path, moto_endpoint: str, reset_moto: None, new_database: Callable[[Path], str]
) -> AsyncIterator[tuple[Harness, Harness]]:
    """Two stores on the same goals and files: one run cleanly, one killed again and again."""
    clean, killed = (
        Harness(tmp_path / "clean", moto_endpoint, new_database(tmp_path / "clean")),
        Harness(tmp_path / "killed", moto_endpoint, new_database(tmp_path / "killed")),
    )
    for harness in (clean, killed):
        harness.write_connection(GOAL_DEFINITION)
    await clean.put({f"in/part-{part}.csv": file_of(part) for part in range(FILES)})
    yield clean, killed
    await clean.aclose()
    await killed.aclose()


def run_env(*, parse_in_child: bool) -> dict[str, str]:
    """Small batches; the parse stage in this process or (as for large files) in a child."""
    return {
        "CONNECTOR_BATCH_SIZE": "1000",
        "CONNECTOR_PARSE_IN_CHILD_BYTES": "0" if parse_in_child else str(1 << 40),
    }


def start_run(harness: Harness, *, parse_in_child: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "connector", "run", CONNECTION],
        env=harness.env(**run_env(parse_in_child=parse_in_child)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def kill_when(process: subprocess.Popen[str], ready: Callable[[], bool], delay: float) -> None:
    """SIGKILL the run `delay` seconds after `ready()` holds; it must still be running then."""
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"the run ended (exit {process.returncode}) before it could be killed")
        time.sleep(0.005)
    time.sleep(delay)
    if process.poll() is not None:
        pytest.fail(f"the run ended (exit {process.returncode}) before it could be killed")
    process.kill()
    process.wait(timeout=30)


def dump(harness: Harness) -> dict[str, dict[str, Any]]:
    """`connector profiles dump --json`, keyed by customer_id, without ids, times, sequences."""
    result = harness.cli("profiles", "dump", "--json")
    assert result.returncode == 0, result.stderr
    profiles = [json.loads(line) for line in result.stdout.splitlines()]
    return {profile["properties"]["customer_id"][0]: profile["properties"] for profile in profiles}


async def test_a_run_killed_at_any_point_and_run_again_applies_each_file_exactly_once(
    harnesses: tuple[Harness, Harness],
) -> None:
    clean, killed = harnesses
    started = time.monotonic()
    once = await clean.run(batch_size=1000)
    per_file = (time.monotonic() - started) / FILES  # only to place kills inside a file
    assert once.record.status is RunStatus.SUCCESS
    assert once.record.counts.files == FILES

    store = killed.store  # created (and migrated) here, read while the runs write
    killed_runs = []
    # files this run commits before the kill point, how far into the next file, parse stage
    kill_points = ((0, 0.0, False), (1, 0.0, True), (1, 1 / 3, False), (1, 2 / 3, True))
    for commits, into_file, parse_in_child in kill_points:
        runs_before = len(store.list_runs(CONNECTION))
        files_before = len(store.ledger(CONNECTION, GOAL))

        def ready(runs_before: int = runs_before, at_least: int = files_before + commits) -> bool:
            begun = len(store.list_runs(CONNECTION)) > runs_before
            return begun and len(store.ledger(CONNECTION, GOAL)) >= at_least

        process = start_run(killed, parse_in_child=parse_in_child)
        kill_when(process, ready, delay=into_file * per_file)
        [latest, *_] = store.list_runs(CONNECTION)
        assert latest.status is RunStatus.RUNNING  # it never got to record an end
        killed_runs.append(latest.id)
    assert len(store.ledger(CONNECTION, GOAL)) < FILES

    final = killed.cli("run", CONNECTION, timeout=300, **run_env(parse_in_child=True))

    assert final.returncode == 0, final.stdout + final.stderr
    profiles = dump(killed)
    assert profiles == dump(clean)
    points = {customer: props["points"] for customer, props in profiles.items()}
    assert points == {customer: [total] for customer, total in expected_points().items()}
    history = {run.id: run for run in store.list_runs(CONNECTION)}
    assert [history[run_id].status for run_id in killed_runs] == [RunStatus.INTERRUPTED] * 4
    assert all("stopped before it finished" in (history[i].error or "") for i in killed_runs)
    [last] = [run for run in history.values() if run.id not in killed_runs]
    assert last.status is RunStatus.SUCCESS
    assert last.counts.files + last.counts.files_skipped == FILES
    assert {k: e.etag for k, e in store.ledger(CONNECTION, GOAL).items()} == {
        k: e.etag for k, e in clean.store.ledger(CONNECTION, GOAL).items()
    }
