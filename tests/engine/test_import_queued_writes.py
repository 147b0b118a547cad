"""An import's writes run on a thread of their own, queued behind the next piece's lookup.

The engine looks up piece N+1's keys before piece N's writes have run, and
takes piece N's keys from what it left them (`ProfileBatchApplier._pending`).
These tests pin the queue (order, failures, close) and the read-back; that
every rule sees a key exactly as the pieces before left it, and that a write
that fails fails the file with nothing kept and no thread left, is pinned on
whole files in `test_import_pieces_in_order.py`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from test_import_pieces_in_order import _write_threads

from connector.errors import StoreError
from connector.imports._store_queue import StoreQueue
from connector.imports.columnar import _LastPiece

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


def _every_later_call_raises(queue: StoreQueue, asked: Any, ran: list[str]) -> None:
    """After a failed write: the read queued behind it, a drain and a new write all raise it."""
    with pytest.raises(StoreError, match="disk full"):
        queue.answer(asked)
    with pytest.raises(StoreError, match="disk full"):
        queue.drain()
    with pytest.raises(StoreError, match="disk full"):
        queue.write(lambda: ran.append("later"))


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
        _every_later_call_raises(queue, asked, ran)
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
    assert not _write_threads()


def test_without_a_thread_each_statement_runs_when_queued_and_fails_the_same_way() -> None:
    """`background=False` (stores whose writes hold the GIL): same order, same errors."""
    queue = StoreQueue(background=False)
    ran: list[str] = []
    caller = threading.current_thread()

    def failing() -> None:
        raise StoreError("disk full")

    try:
        queue.write(lambda: ran.append("write 1"))
        asked = queue.ask(lambda: (list(ran), threading.current_thread()))
        assert ran == ["write 1"]  # already ran, in the caller's thread
        assert queue.answer(asked) == (["write 1"], caller)
        queue.write(failing)
        asked = queue.ask(lambda: ran.append("read"))
        _every_later_call_raises(queue, asked, ran)
    finally:
        queue.close()
    assert ran == ["write 1"]
    assert not _write_threads()


# ------------------------------------------------------------------------ read back
# whole files split into pieces of a row or two: tests/engine/test_import_pieces_in_order.py


def test_the_last_pieces_keys_read_back_as_a_store_lookup_reads_them() -> None:
    lists = pa.list_(pa.string())
    schema = pa.schema([("key", pa.string()), ("id", pa.string()), ("tags", lists)])
    last = _LastPiece(
        pa.array(["a", "b", "c", "d"]),
        pa.array(["p1", "p2", None, "p4"]),
        [pa.array([["stored"], ["old"], None, ["kept"]], lists)],  # as the lookup found them
        [pa.array([["x", ""], [], None, ["merged"]], lists)],  # as the rules left them
        kept=np.array([True, True, False, True]),
        unchanged=np.array([False, False, False, True]),
    )
    # only the keys asked for; an empty list is stored as "no values" and read back as
    # null; c was not kept; d was stored and not changed, so it reads back as stored
    assert last.read_back(pa.array(["d", "b", "a", "c", "z"]), schema).to_pylist() == [
        {"key": "a", "id": "p1", "tags": ["x", ""]},
        {"key": "b", "id": "p2", "tags": None},
        {"key": "d", "id": "p4", "tags": ["kept"]},
    ]
    assert last.read_back(pa.array(["b"]), schema).to_pylist() == [
        {"key": "b", "id": "p2", "tags": None}
    ]
    assert last.read_back(pa.array(["c", "z"]), schema).num_rows == 0
    assert last.read_back(pa.array([], pa.string()), schema).schema == schema
