"""An import's writes run on a thread of their own, queued behind the next piece's lookup.

The engine looks up piece N+1's keys before piece N's writes have run, and
takes piece N's keys from what it left them (`ProfileBatchApplier._pending`).
These tests pin what that must not change: every rule sees a key exactly as
the pieces before left it, a write that fails fails the file with nothing
kept, and no thread outlives the file's transaction.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from test_import_oracle import _apply, _connection

from connector.errors import StoreError
from connector.imports._store_queue import StoreQueue
from connector.imports.columnar import _as_read_back
from connector.storage import PROFILE_ID, ProfileStore, SQLiteStore
from connector.storage.sqlite._batches import SQLiteBatchTransaction

# ------------------------------------------------------------------------ the queue alone


def test_statements_run_in_the_order_they_were_queued_one_at_a_time() -> None:
    queue = StoreQueue()
    ran: list[str] = []
    running = threading.Lock()

    def statement(name: str) -> None:
        assert running.acquire(blocking=False), "two statements ran at once"
        time.sleep(0.01)
        ran.append(name)
        running.release()

    try:
        queue.write(lambda: statement("write 1"))
        asked = queue.ask(lambda: list(ran))
        queue.write(lambda: statement("write 2"))
        assert queue.answer(asked) == ["write 1"]  # after write 1, before write 2
        queue.drain()
    finally:
        queue.close()
    assert ran == ["write 1", "write 2"]


def test_a_failed_write_is_raised_and_nothing_queued_after_it_runs() -> None:
    queue = StoreQueue()
    ran: list[str] = []
    go = threading.Event()

    def failing() -> None:
        go.wait(5)  # everything below is queued before this fails
        raise StoreError("disk full")

    try:
        queue.write(failing)
        queue.write(lambda: ran.append("after"))
        asked = queue.ask(lambda: ran.append("read"))
        go.set()
        with pytest.raises(StoreError, match="disk full"):
            queue.answer(asked)
        with pytest.raises(StoreError, match="disk full"):
            queue.drain()
        with pytest.raises(StoreError, match="disk full"):
            queue.write(lambda: ran.append("later"))
    finally:
        queue.close()
    assert ran == []


def test_close_waits_for_the_statement_in_progress_and_drops_the_rest() -> None:
    queue = StoreQueue()
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def slow() -> None:
        started.set()
        release.wait(5)
        ran.append("slow")

    queue.write(slow)
    queue.write(lambda: ran.append("queued"))
    assert started.wait(5)
    closer = threading.Thread(target=queue.close)
    closer.start()
    time.sleep(0.05)
    assert closer.is_alive()  # still waiting for `slow`
    release.set()
    closer.join(5)
    assert not closer.is_alive()
    assert ran == ["slow"]
    assert not [t for t in threading.enumerate() if t.name.startswith("import-writes")]


# ------------------------------------------------------------------------ whole files

RULES = [
    {"column": "c0", "property": "email", "rule": "set", "type": "text"},
    {"column": "c1", "property": "first", "rule": "set_if_empty", "type": "text"},
    {"column": "c2", "property": "tags", "rule": "add", "type": "text"},
    {"column": "c3", "property": "points", "rule": "sum", "type": "number"},
]


def _file(rows: list[list[str]]) -> bytes:
    return ("id;c0;c1;c2;c3\n" + "".join(";".join(row) + "\n" for row in rows)).encode()


def _scenario(match_property: str) -> dict[str, Any]:
    return {
        "mappings": [dict(rule) for rule in RULES],
        "match": {"column": "id", "property": match_property, "create_missing": True},
    }


def _rows() -> list[list[str]]:
    # 16-byte pieces hold a row or two: k1 in two pieces running, then k2, and so on;
    # k3 once in the middle
    rows = []
    for n in range(12):
        key = ["k1", "k1", "k2"][n % 3]
        rows.append([key, f"e{n}", f"f{n}" if n > 1 else "", f"t{n % 4}", str(n)])
        if n == 5:
            rows.append(["k3", "", "", "", "2,5"])
    return rows


def _stored(store: ProfileStore, match_property: str) -> dict[str, dict[str, list[str]]]:
    profiles = store.iter_profiles()
    if match_property == PROFILE_ID:
        return {profile.id: profile.properties for profile in profiles}
    return {profile.properties[match_property][0]: profile.properties for profile in profiles}


@pytest.mark.parametrize("match_property", ["customer_id", PROFILE_ID])
def test_keys_repeated_in_every_piece_see_what_the_piece_before_left(
    tmp_path: Path, match_property: str
) -> None:
    connection = _connection(_scenario(match_property))
    data = _file(_rows())
    with SQLiteStore(tmp_path / "one.db") as whole, SQLiteStore(tmp_path / "pieces.db") as pieces:
        big = _apply(whole, connection, data, columnar=True, n=1, piece_bytes=8 << 20)
        small = _apply(pieces, connection, data, columnar=True, n=1, piece_bytes=16)
        assert not big.errors
        assert not small.errors
        assert _stored(pieces, match_property) == _stored(whole, match_property)
        counts = (small.counts.profiles_created, small.counts.rows_applied)
        assert counts == (big.counts.profiles_created, big.counts.rows_applied) == (3, 13)
        k1 = _stored(pieces, match_property)["k1"]
    # by hand: k1 has the rows 0, 1, 3, 4, 6, 7, 9, 10
    assert k1["email"] == ["e10"]
    assert k1["first"] == ["f3"]  # rows 0 and 1 have none: the first non-empty one
    assert k1["tags"] == ["t0", "t1", "t3", "t2"]  # union in the rows' order
    assert k1["points"] == ["40"]
    assert not [t for t in threading.enumerate() if t.name.startswith("import-writes")]


def test_a_write_that_fails_mid_file_fails_the_file_and_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = _connection(_scenario("customer_id"))
    real_update = SQLiteBatchTransaction.update_profiles
    calls = {"update": 0}

    def second_update_fails(self: SQLiteBatchTransaction, profiles: Any) -> None:
        calls["update"] += 1
        if calls["update"] == 2:
            raise StoreError("the disk is full")
        real_update(self, profiles)

    monkeypatch.setattr(SQLiteBatchTransaction, "update_profiles", second_update_fails)
    with SQLiteStore(tmp_path / "store.db") as store:
        with pytest.raises(StoreError, match="the disk is full"):
            _apply(store, connection, _file(_rows()), columnar=True, n=1, piece_bytes=16)
        assert calls["update"] == 2  # nothing ran on the store after the failed write
        assert store.count_profiles() == 0
        assert store.ledger("oracle", "in") == {}
    assert not [t for t in threading.enumerate() if t.name.startswith("import-writes")]


def test_the_last_pieces_keys_read_back_as_a_store_lookup_reads_them() -> None:
    lists = pa.list_(pa.string())
    schema = pa.schema([("key", pa.string()), ("id", pa.string()), ("tags", lists)])
    table = _as_read_back(
        pa.array(["a", "b", "c"]),
        pa.array(["p1", "p2", None]),
        [pa.array([["x", ""], [], None], lists)],
        np.array([True, True, False]),
        schema,
    )
    # an empty list is stored as "no values" and read back as null; c was not kept
    assert table.to_pylist() == [
        {"key": "a", "id": "p1", "tags": ["x", ""]},
        {"key": "b", "id": "p2", "tags": None},
    ]
