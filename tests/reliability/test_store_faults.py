"""The store cannot be written (locked by another process, or the disk is full): a clear
failure, nothing lost — the store is as before the file, the file is not in the ledger, and
the next run after the condition clears imports it.

Locks: another SQLite connection holds `BEGIN IMMEDIATE` past the busy timeout
(`connector.storage.sqlite.store._BUSY_TIMEOUT_MS`, shortened here so the wait is
short). Disk full: the store lives on a 1 MiB tmpfs when this process may
mount one (root), otherwise `connector run` runs under RLIMIT_FSIZE with
SIGXFSZ ignored, so a write past the limit fails with an OSError, as a full
disk does; the condition clears by growing the tmpfs (remount) or running
without the limit.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import CONNECTION, GOAL, PREFIX, Harness, csv_bytes, import_goal
from reliability_support import ledger_etags, profiles_by_customer

import connector.storage.sqlite.store as sqlite_module
from connector.cli import main
from connector.storage import RunStatus, SQLiteStore

HEADER = "customer_id,email,points"
GOAL_DEFINITION = import_goal(
    mappings=[
        {"column": "email", "property": "email", "rule": "set"},
        {"column": "points", "property": "points", "rule": "sum", "type": "number"},
    ]
)
FIRST = csv_bytes(HEADER, "A1,a1@x.org,1", "A2,a2@x.org,2")
SECOND = csv_bytes(HEADER, "B1,b1@x.org,3", "A1,a1@x.org,4")


@pytest.fixture
async def harness(
    tmp_path: Path, moto_endpoint: str, reset_moto: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    monkeypatch.setattr(sqlite_module, "_BUSY_TIMEOUT_MS", 300)  # before any store opens
    harness = Harness(tmp_path, moto_endpoint)
    harness.write_connection(GOAL_DEFINITION)
    yield harness
    await harness.aclose()


@contextlib.contextmanager
def write_lock(database: Path) -> Iterator[sqlite3.Connection]:
    """Another process's connection holding the store's write lock until the block ends."""
    other = sqlite3.connect(database, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.execute("ROLLBACK")
        other.close()


class LockDuring:
    """Progress that takes the write lock when `key` starts and lets go when it is done."""

    def __init__(self, database: Path, key: str) -> None:
        self.database = database
        self.key = key
        self.lock: contextlib.ExitStack | None = None

    def file_started(self, goal: str, key: str, size: int) -> None:
        if key == self.key:
            self.lock = contextlib.ExitStack()
            self.lock.enter_context(write_lock(self.database))

    def advance(self, rows: int) -> None:
        return None

    def file_finished(self, goal: str, key: str, outcome: str) -> None:
        if key == self.key and self.lock is not None:
            self.lock.close()


async def test_a_store_locked_past_the_busy_timeout_fails_the_file_and_the_next_run_imports_it(
    harness: Harness,
) -> None:
    await harness.put({f"{PREFIX}1-first.csv": FIRST})
    await harness.run()  # the first file is in
    await harness.put({f"{PREFIX}2-second.csv": SECOND})
    before = profiles_by_customer(harness.store)

    locked = await harness.run(progress=LockDuring(harness.db_path, f"{PREFIX}2-second.csv"))

    assert locked.record.status is RunStatus.FAILURE
    [error] = locked.result.errors
    assert f"the profile store {harness.db_path} is busy or locked" in error
    assert profiles_by_customer(harness.store) == before
    assert f"{PREFIX}2-second.csv" not in ledger_etags(harness.store, CONNECTION, GOAL)

    again = await harness.run()

    assert again.record.status is RunStatus.SUCCESS
    assert again.record.counts.files == 1
    assert {c: p["points"] for c, p in profiles_by_customer(harness.store).items()} == {
        "A1": ["5"],
        "A2": ["2"],
        "B1": ["3"],
    }


def test_a_run_that_cannot_even_start_on_a_locked_store_exits_1_with_a_clear_message(
    harness: Harness,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in harness.env().items():
        if name.startswith("CONNECTOR_"):
            monkeypatch.setenv(name, value)
    SQLiteStore(harness.db_path).close()  # an existing store, locked by someone else
    with write_lock(harness.db_path):
        assert main(["run", CONNECTION, "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert f"the profile store {harness.db_path} is busy or locked" in out + err
    assert "Traceback" not in out + err
    store = SQLiteStore(harness.db_path)
    try:
        assert store.list_runs(CONNECTION) == []  # nothing half-started either
    finally:
        store.close()


# -- disk full ------------------------------------------------------------------------------


@dataclass
class FullDisk:
    """A store folder whose writes fail beyond about 1 MiB, and a way to make room."""

    folder: Path
    mounted: bool
    limited: bool = True
    """Without a tmpfs: whether runs are still started under RLIMIT_FSIZE."""

    def run(self, harness: Harness) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "connector", "run", CONNECTION, "--quiet"]
        if not self.mounted and self.limited:
            command = [sys.executable, "-c", _LIMITED, *command[1:]]
        return subprocess.run(
            command,
            env=harness.env(CONNECTOR_LOG_FORMAT="json"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def make_room(self) -> None:
        if self.mounted:
            assert _mount("-o", "remount,size=64m", str(self.folder)).returncode == 0
        self.limited = False


_LIMITED = (
    "import os, resource, signal, sys; "
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20)); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def _mount(*argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["mount", *argv], capture_output=True, check=False, timeout=30)


@pytest.fixture
def full_disk(harness: Harness) -> Iterator[FullDisk]:
    folder = harness.db_path.parent
    folder.mkdir(parents=True)
    mounted = _mount("-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(folder)).returncode == 0
    try:
        yield FullDisk(folder, mounted)
    finally:
        if mounted:
            harness.store.close()
            harness._store = None
            subprocess.run(["umount", str(folder)], check=True, timeout=30)


async def test_a_full_disk_fails_the_file_and_loses_nothing_and_the_next_run_imports_it(
    harness: Harness, full_disk: FullDisk
) -> None:
    await harness.put({f"{PREFIX}1-first.csv": FIRST})
    assert full_disk.run(harness).returncode == 0
    big = csv_bytes(HEADER, *(f"C{i:05d},c{i}@example.org,1" for i in range(30_000)))
    await harness.put({f"{PREFIX}2-big.csv": big})
    before = profiles_by_customer(harness.store)

    failed = full_disk.run(harness)

    assert failed.returncode == 1, failed.stdout + failed.stderr
    error_lines = [line for line in failed.stdout.splitlines() if "error:" in line]
    assert len(error_lines) == 1, failed.stdout
    full = "database or disk is full" if full_disk.mounted else "disk I/O error"
    assert full in error_lines[0]
    assert profiles_by_customer(harness.store) == before
    assert set(ledger_etags(harness.store, CONNECTION, GOAL)) == {f"{PREFIX}1-first.csv"}
    [latest, *_] = harness.store.list_runs(CONNECTION)
    assert latest.status is RunStatus.FAILURE
    assert latest.error is not None
    assert full in latest.error

    full_disk.make_room()
    again = full_disk.run(harness)

    assert again.returncode == 0, again.stdout + again.stderr
    profiles = profiles_by_customer(harness.store)
    assert len(profiles) == 30_002
    assert profiles["C00000"]["points"] == ["1"]
    assert profiles["A1"]["points"] == ["1"]


async def test_a_full_disk_is_reported_as_a_store_error_without_a_traceback(
    harness: Harness, full_disk: FullDisk
) -> None:
    big = csv_bytes(HEADER, *(f"C{i:05d},c{i}@example.org,1" for i in range(30_000)))
    await harness.put({f"{PREFIX}big.csv": big})

    failed = full_disk.run(harness)

    assert failed.returncode == 1
    assert "unexpected error" not in failed.stdout
    assert "Traceback" not in failed.stderr
    assert f"the profile store {harness.db_path}" in failed.stdout
