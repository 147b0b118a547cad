"""Several connections on one store file: WAL snapshots for readers, busy writers fail clearly."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector.errors import StoreError
from connector.storage import Profile, SQLiteStore, Trigger
from connector.storage.sqlite import store as sqlite_module

READER = """
import json, sys
from connector.storage import SQLiteStore
with SQLiteStore(sys.argv[1]) as store:
    print(json.dumps({
        "count": store.count_profiles(),
        "ids": [p.id for p in store.iter_profiles()],
        "p1": store.get_profile("p1").properties,
        "change_seq": store.change_seq(),
    }))
"""


def read_in_another_process(path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", READER, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_another_process_reads_the_last_commit_while_a_transaction_is_open(
    db_path: Path,
) -> None:
    with SQLiteStore(db_path) as store:
        with store.transaction() as tx:
            tx.save_profiles([Profile("p1", {"name": ["Ann"]})])

        with store.transaction() as tx:
            tx.save_profiles([Profile("p1", {"name": ["Changed"]}), Profile("p2")])
            during = read_in_another_process(db_path)

        after = read_in_another_process(db_path)

    assert during == {"count": 1, "ids": ["p1"], "p1": {"name": ["Ann"]}, "change_seq": 1}
    assert after == {"count": 2, "ids": ["p1", "p2"], "p1": {"name": ["Changed"]}, "change_seq": 2}


def test_transaction_on_a_store_busy_with_another_writer_raises_after_the_timeout(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "_BUSY_TIMEOUT_MS", 200)
    with SQLiteStore(db_path) as writer, SQLiteStore(db_path) as second:
        with writer.transaction() as tx:
            tx.save_profiles([Profile("p1")])
            started = time.monotonic()
            with pytest.raises(StoreError, match="busy or locked"), second.transaction():
                pytest.fail("the second transaction must not begin")
            waited = time.monotonic() - started

            with pytest.raises(StoreError, match="busy or locked"):
                second.start_run("crm", None, Trigger.MANUAL)

        assert waited >= 0.15  # it waited for the writer, then gave up
        with second.transaction() as tx:  # free again once the writer committed
            tx.save_profiles([Profile("p2")])
        assert second.count_profiles() == 2


def _hold_a_write_lock_on_a_new_file(path: Path) -> sqlite3.Connection:
    """A file still in rollback mode, with another connection's write lock on it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE other_tool (x)")
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_opening_a_new_store_waits_for_another_connections_write_lock(db_path: Path) -> None:
    # SQLite refuses the switch to WAL at once here, without its busy handler
    holder = _hold_a_write_lock_on_a_new_file(db_path)
    released = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    started = time.monotonic()
    released.start()
    try:
        with SQLiteStore(db_path) as store:
            waited = time.monotonic() - started
            assert store.count_profiles() == 0
    finally:
        released.join()
        holder.close()
    assert waited >= 0.25
    with sqlite3.connect(db_path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_opening_a_store_locked_past_the_timeout_names_the_file(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "_BUSY_TIMEOUT_MS", 200)
    holder = _hold_a_write_lock_on_a_new_file(db_path)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match=f"cannot open the profile store {db_path}: .*locked"):
            SQLiteStore(db_path)
        assert time.monotonic() - started >= 0.15
    finally:
        holder.close()


def test_many_runs_opening_a_new_store_at_once_all_open_it(tmp_path: Path) -> None:
    # a daemon's first fire: every connection's run opens the store in its own thread
    failures: list[str] = []

    def open_and_claim(path: Path, number: int) -> None:
        try:
            with SQLiteStore(path) as store:
                store.claim_fire(f"c{number}", datetime(2026, 12, 5, tzinfo=UTC), "test")
        except StoreError as error:
            failures.append(str(error))

    for attempt in range(15):
        path = tmp_path / f"store-{attempt}" / "connector.db"
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda n, p=path: open_and_claim(p, n), range(16)))
        with SQLiteStore(path) as store:
            assert store.schema_version() > 0
    assert failures == []
