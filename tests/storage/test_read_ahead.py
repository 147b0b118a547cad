"""`read_ahead`: the next batch is read in a thread, one ahead, and nothing outlives the loop."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from connector.read_ahead import read_ahead
from connector.storage import Profile, SQLiteStore


class _Source:
    """Numbered batches that note which thread read them and how far reading got."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.read = 0
        self.threads: set[str] = set()
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[int]:
        return self.batches()

    def batches(self) -> Iterator[int]:
        try:
            for number in range(self.count):
                self.threads.add(threading.current_thread().name)
                if number == self.fail_at:
                    raise ValueError(f"page {number} is unreadable")
                self.read += 1
                yield number
        finally:
            self.closed.set()


def _readers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "test-reader"]


def test_every_batch_in_order_read_in_another_thread() -> None:
    source = _Source(50)
    assert list(read_ahead(iter(source), name="test-reader")) == list(range(50))
    assert source.threads == {"test-reader"}
    assert source.closed.is_set()
    assert _readers() == []


def test_reads_one_batch_ahead_never_more() -> None:
    source = _Source(10)
    batches = read_ahead(iter(source), name="test-reader")
    for taken in range(1, 6):
        assert next(batches) == taken - 1
        # the reader may have started the batch after the one taken; give it time to try more
        threading.Event().wait(0.05)
        assert source.read <= taken + 1
    batches.close()


def test_an_error_reaches_the_caller_at_the_batch_it_failed_on() -> None:
    source = _Source(10, fail_at=3)
    batches = read_ahead(iter(source), name="test-reader")
    assert [next(batches) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="page 3 is unreadable"):
        next(batches)
    assert source.closed.is_set()
    assert _readers() == []


def test_leaving_the_loop_early_stops_the_reader_and_closes_the_source() -> None:
    source = _Source(1000)
    batches = read_ahead(iter(source), name="test-reader")
    for number in batches:
        if number == 2:
            break
    batches.close()
    assert source.closed.is_set()
    assert source.read <= 4
    assert _readers() == []


def test_an_unstarted_read_ahead_starts_no_thread() -> None:
    source = _Source(3)
    read_ahead(iter(source), name="test-reader").close()
    assert _readers() == []
    assert source.read == 0


def _profiles(count: int) -> list[Profile]:
    return [Profile(f"p{n:05d}", {"name": [f"n{n}"], "tags": ["a", "b"]}) for n in range(count)]


def test_store_pages_closed_early_leave_the_store_free_to_close(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "connector.db")
    with store.transaction() as tx:
        tx.save_profiles(_profiles(500))
    pages = store.profile_batches(["name"], batch_size=100)
    first = next(pages)
    assert first.column("id").to_pylist()[:2] == ["p00000", "p00001"]
    pages.close()  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name == "sqlite-profile-pages"]
    store.close()


def test_store_pages_inside_a_transaction_see_its_writes(tmp_path: Path) -> None:
    # the reader uses the caller's connection: the same view as before, uncommitted rows included
    with SQLiteStore(tmp_path / "connector.db") as store, store.transaction() as tx:
        tx.save_profiles(_profiles(250))
        tables = list(store.profile_batches(["tags"], batch_size=100))
        assert [table.num_rows for table in tables] == [100, 100, 50]
        whole = pa.concat_tables(tables)
        assert whole.column("tags").to_pylist() == [["a", "b"]] * 250


def test_finalized_on_its_own_reader_thread_it_does_not_wait_for_itself() -> None:
    """An abandoned generator in a reference cycle can be finalized by the garbage collector
    on whichever thread runs it, its own reader included (an export's cells were)."""
    ahead: dict[str, Iterator[int]] = {}
    errors: list[BaseException] = []
    done = threading.Event()

    def batches() -> Iterator[int]:
        try:
            yield 1
            try:
                ahead["batches"].close()  # as the collector would, on the reader thread
            except BaseException as error:  # what the test looks for
                errors.append(error)
            yield 2
        finally:
            done.set()

    ahead["batches"] = read_ahead(batches(), name="test-reader")
    assert next(ahead["batches"]) == 1
    assert done.wait(5)
    assert errors == []
    for thread in _readers():
        thread.join(5)
    assert _readers() == []
