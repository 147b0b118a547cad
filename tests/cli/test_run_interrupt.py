"""Ctrl-C during `connector run`: a real process, a real SIGINT, at several moments of an import.

The test plays the terminal: the run starts in a session of its own and the
signal goes to its whole process group (`killpg`), as Ctrl-C does. Every file
holds the same customers with `points` 1 (rule `sum`), so a profile's points
count the files applied to it: any file applied in part, or twice, shows as
profiles with different points, or points that differ from the ledger.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import CONNECTION, GOAL, Harness, import_goal

from connector.storage import RunStatus, open_store

pytestmark = pytest.mark.slow
INTERRUPTED = 130
MAPPINGS = [
    {"column": "email", "property": "email", "rule": "set"},
    {"column": "points", "property": "points", "rule": "sum", "type": "number"},
]


def customers(rows: int) -> bytes:
    lines = ["customer_id,email,points", *(f"C{n:06d},c{n}@example.com,1" for n in range(rows))]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
async def harness(tmp_path: Path, moto_endpoint: str, reset_moto: None) -> AsyncIterator[Harness]:
    h = Harness(tmp_path, moto_endpoint)
    await h.bucket()
    h.write_connection(import_goal(mappings=MAPPINGS))
    yield h
    await h.aclose()


class RunProcess:
    """`python -m connector run` in its own process group, its JSON log read as it comes."""

    def __init__(self, harness: Harness, *argv: str, **env: str) -> None:
        self.log = harness.root / "run.log"
        self.out = harness.root / "run.out"
        with self.log.open("wb") as stderr, self.out.open("wb") as stdout:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "connector", "run", CONNECTION, *argv],
                env=harness.env(CONNECTOR_LOG_LEVEL="info", CONNECTOR_LOG_FORMAT="json", **env),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )

    def events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log.read_text("utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line still being written, or not a log line (checked at the end)
        return events

    def wait_for(self, check: Callable[[dict[str, Any]], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not any(check(event) for event in self.events()):
            assert self.process.poll() is None, self.log.read_text("utf-8")
            assert time.monotonic() < deadline, "the run never reached the moment"
            time.sleep(0.01)

    def ctrl_c(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)  # the whole group, as a terminal does

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return code, self.out.read_text("utf-8"), self.log.read_text("utf-8")


def points_per_file_applied(harness: Harness) -> set[int]:
    """The distinct `points` over every profile: {n} when each file was applied 0 or 1 time."""
    store = open_store(harness.database)
    try:
        return {int(float(p.properties["points"][0])) for p in store.iter_profiles()}
    finally:
        store.close()


def assert_interrupted_cleanly(harness: Harness, run: RunProcess, files: int, rows: int) -> int:
    """Exit 130, no trace, history `interrupted`, and every file wholly applied or not at all."""
    code, out, err = run.finish()
    assert code == INTERRUPTED, out + err
    assert "Traceback" not in err + out
    assert "interrupted" in out
    store = open_store(harness.database)
    try:
        [record] = store.list_runs(CONNECTION)
        assert record.status is RunStatus.INTERRUPTED, record
        assert record.ended_at is not None
        applied = len(store.ledger(CONNECTION, GOAL))
        assert applied < files
        assert record.counts.files == applied
        assert store.count_profiles() == (rows if applied else 0)
    finally:
        store.close()
    if applied:
        assert points_per_file_applied(harness) == {applied}
    return applied


def assert_next_run_applies_each_file_once(harness: Harness, files: int, rows: int) -> None:
    again = harness.cli("run", CONNECTION, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert points_per_file_applied(harness) == {files}
    store = open_store(harness.database)
    try:
        assert store.count_profiles() == rows
        assert len(store.ledger(CONNECTION, GOAL)) == files
    finally:
        store.close()


def started(key: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event.get("event") == "file started" and event.get("key") == key


def imported(key: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event.get("event") == "file imported" and event.get("key") == key


BIG_FILES, BIG_ROWS = 3, 120_000


async def put_big_files(harness: Harness) -> None:
    data = customers(BIG_ROWS)
    # one after the other: a run takes files oldest first, and the tests name them in that order
    for index in range(1, BIG_FILES + 1):
        await harness.put({f"in/part-{index}.csv": data})


async def test_ctrl_c_before_the_first_file_records_interrupted_and_exits_130(
    harness: Harness,
) -> None:
    await put_big_files(harness)
    run = RunProcess(harness)
    run.wait_for(lambda event: event.get("event") == "run started")
    run.ctrl_c()  # opening the S3 client and listing take most of a second: no file started
    assert assert_interrupted_cleanly(harness, run, BIG_FILES, BIG_ROWS) == 0
    assert "file started" not in run.log.read_text("utf-8")
    assert_next_run_applies_each_file_once(harness, BIG_FILES, BIG_ROWS)


@pytest.mark.parametrize("engine", ["columnar", "rows"])
async def test_ctrl_c_mid_file_rolls_the_file_back_and_the_next_run_applies_it_once(
    harness: Harness, engine: str
) -> None:
    await put_big_files(harness)
    run = RunProcess(harness, CONNECTOR_COLUMNAR_ENGINE=str(engine == "columnar").lower())
    run.wait_for(imported("in/part-1.csv"))
    run.wait_for(started("in/part-2.csv"))
    # inside the file: 120,000 short rows take about half a second on the columnar
    # engine, and nothing between this log line and its apply checks for a stop
    time.sleep(0.05)
    run.ctrl_c()
    assert assert_interrupted_cleanly(harness, run, BIG_FILES, BIG_ROWS) == 1
    assert "in/part-2.csv: stopped; rolled back" in run.out.read_text("utf-8")
    assert_next_run_applies_each_file_once(harness, BIG_FILES, BIG_ROWS)


async def test_ctrl_c_between_small_files_leaves_each_file_applied_once_or_not_at_all(
    harness: Harness,
) -> None:
    files, rows = 40, 500
    data = customers(rows)
    await harness.put({f"in/part-{index:02d}.csv": data for index in range(1, files + 1)})
    run = RunProcess(harness)
    run.wait_for(imported("in/part-01.csv"))
    run.ctrl_c()
    applied = assert_interrupted_cleanly(harness, run, files, rows)
    assert applied >= 1
    assert_next_run_applies_each_file_once(harness, files, rows)


@pytest.mark.postgres
async def test_ctrl_c_mid_file_on_postgresql_rolls_the_file_back(
    tmp_path: Path, moto_endpoint: str, reset_moto: None, postgres_url: str
) -> None:
    harness = Harness(tmp_path, moto_endpoint, postgres_url)
    try:
        await harness.bucket()
        harness.write_connection(import_goal(mappings=MAPPINGS))
        await put_big_files(harness)
        run = RunProcess(harness)
        run.wait_for(started("in/part-1.csv"))
        time.sleep(0.3)
        run.ctrl_c()
        applied = assert_interrupted_cleanly(harness, run, BIG_FILES, BIG_ROWS)
        assert applied == 0
        assert_next_run_applies_each_file_once(harness, BIG_FILES, BIG_ROWS)
    finally:
        await harness.aclose()


async def test_a_second_ctrl_c_exits_at_once_and_the_next_run_still_applies_each_file_once(
    harness: Harness,
) -> None:
    await put_big_files(harness)
    run = RunProcess(harness)
    run.wait_for(started("in/part-1.csv"))
    time.sleep(0.3)
    run.ctrl_c()
    deadline = time.monotonic() + 30
    while "rolling back the file in progress" not in run.log.read_text("utf-8"):
        assert time.monotonic() < deadline, "the first Ctrl-C was never acknowledged"
        time.sleep(0.005)
    alive = run.process.poll() is None  # the rollback takes a moment: almost always still open
    run.ctrl_c()
    code, out, err = run.finish()
    assert code == INTERRUPTED, out + err
    assert "Traceback" not in out + err
    if alive:
        assert "second interrupt: exiting now" in err
    assert_next_run_applies_each_file_once(harness, BIG_FILES, BIG_ROWS)
    store = open_store(harness.database)
    try:
        first = store.get_run(1)
        assert first is not None
        assert first.status is RunStatus.INTERRUPTED  # marked when the next run took the lock
    finally:
        store.close()
