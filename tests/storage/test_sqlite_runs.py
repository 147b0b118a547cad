"""Run history, run locks and export watermarks in the SQLite store."""

from __future__ import annotations

import dataclasses
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from connector.errors import RunInProgressError, StoreError
from connector.storage import (
    RowReject,
    RunCounts,
    RunStatus,
    SQLiteStore,
    Trigger,
    default_owner,
)

HOST = socket.gethostname()


def every_count_distinct() -> RunCounts:
    counts = RunCounts()
    for number, field in enumerate(dataclasses.fields(RunCounts), start=1):
        setattr(counts, field.name, number * 11)
    return counts


def dead_owner() -> str:
    """`host:pid` of a process that has ended (and been reaped) on this host."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=30)
    return f"{HOST}:{process.pid}"


# -- runs ---------------------------------------------------------------------------


def test_start_run_records_a_running_run(store: SQLiteStore) -> None:
    before = datetime.now(UTC)

    run = store.start_run("crm", "nightly", Trigger.SCHEDULE, dry_run=True)

    assert run.status is RunStatus.RUNNING
    assert (run.connection, run.goal, run.trigger, run.dry_run) == (
        "crm",
        "nightly",
        Trigger.SCHEDULE,
        True,
    )
    assert run.started_at >= before
    assert run.ended_at is None
    assert store.get_run(run.id) == run


def test_finish_run_stores_status_counts_and_error(store: SQLiteStore) -> None:
    run = store.start_run("crm", None, Trigger.MANUAL)
    counts = every_count_distinct()

    finished = store.finish_run(
        run.id, RunStatus.FAILURE, counts, "s3://crm-exports: access denied"
    )

    assert finished.status is RunStatus.FAILURE
    assert finished.counts == counts
    assert finished.error == "s3://crm-exports: access denied"
    assert finished.goal is None
    assert finished.dry_run is False
    assert finished.ended_at is not None
    assert finished.ended_at >= finished.started_at
    assert store.get_run(run.id) == finished
    assert finished.as_json()["counts"] == counts.as_dict()


def test_finish_run_of_an_unknown_run_raises(store: SQLiteStore) -> None:
    with pytest.raises(StoreError, match="run 42"):
        store.finish_run(42, RunStatus.SUCCESS, RunCounts())


def test_get_run_of_an_unknown_run_is_none(store: SQLiteStore) -> None:
    assert store.get_run(1) is None


def test_list_runs_latest_first_filtered_by_connection_and_limited(store: SQLiteStore) -> None:
    ids = [store.start_run(conn, None, Trigger.MANUAL).id for conn in ["crm", "shop", "crm", "crm"]]

    assert [run.id for run in store.list_runs()] == ids[::-1]
    assert [run.id for run in store.list_runs("crm")] == [ids[3], ids[2], ids[0]]
    assert [run.id for run in store.list_runs("shop")] == [ids[1]]
    assert store.list_runs("none") == []
    assert [run.id for run in store.list_runs(limit=2)] == [ids[3], ids[2]]
    assert [run.id for run in store.list_runs("crm", limit=1)] == [ids[3]]


def test_rejects_are_stored_in_order_counted_and_limited(store: SQLiteStore) -> None:
    run = store.start_run("crm", "nightly", Trigger.MANUAL)
    other = store.start_run("crm", "nightly", Trigger.MANUAL)
    rejects = [
        RowReject("daily/a.csv", 3, "points", "'12,x' is not a number"),
        RowReject("daily/a.csv", 9, None, "no customer_id"),
        RowReject("daily/b.csv", 2, "birth", "'31-02-1990' is not a date"),
    ]

    store.add_rejects(run.id, rejects)
    store.add_rejects(run.id, [])

    assert store.run_rejects(run.id) == rejects
    assert store.run_rejects(run.id, limit=2) == rejects[:2]
    assert store.run_rejects(other.id) == []
    stored = store.get_run(run.id)
    assert stored is not None
    assert stored.rejects_stored == 3
    assert [r.rejects_stored for r in store.list_runs()] == [0, 3]
    assert str(rejects[0]) == "daily/a.csv:3 column 'points': '12,x' is not a number"


# -- run locks ------------------------------------------------------------------------


def test_second_owner_gets_run_in_progress_error_naming_the_holder(store: SQLiteStore) -> None:
    holder = default_owner()  # this very process: certainly alive
    store.acquire_run_lock("crm", holder)

    with pytest.raises(RunInProgressError) as caught:
        store.acquire_run_lock("crm", "other-host:123")

    message = str(caught.value)
    assert "'crm' is already running" in message
    assert holder in message
    assert "wait for it to finish" in message


def test_lock_held_on_another_host_is_assumed_alive(store: SQLiteStore) -> None:
    store.acquire_run_lock("crm", "elsewhere.example:1")

    with pytest.raises(RunInProgressError, match=r"elsewhere\.example:1"):
        store.acquire_run_lock("crm", default_owner())


def test_same_owner_reacquires_its_lock(store: SQLiteStore) -> None:
    owner = default_owner()
    store.acquire_run_lock("crm", owner)

    store.acquire_run_lock("crm", owner)

    with pytest.raises(RunInProgressError):
        store.acquire_run_lock("crm", "other-host:1")


def test_released_lock_can_be_taken_by_another_owner(store: SQLiteStore) -> None:
    store.acquire_run_lock("crm", "host-a:1")

    store.release_run_lock("crm", "host-b:2")  # not the holder: nothing happens
    with pytest.raises(RunInProgressError):
        store.acquire_run_lock("crm", "host-b:2")

    store.release_run_lock("crm", "host-a:1")
    store.acquire_run_lock("crm", "host-b:2")


def test_locks_are_per_connection(store: SQLiteStore) -> None:
    store.acquire_run_lock("crm", "host-a:1")

    store.acquire_run_lock("shop", "host-b:2")


def test_lock_of_a_dead_process_is_taken_over_and_its_runs_interrupted(store: SQLiteStore) -> None:
    gone = dead_owner()
    store.acquire_run_lock("crm", gone)
    finished = store.start_run("crm", None, Trigger.SCHEDULE)
    store.finish_run(finished.id, RunStatus.SUCCESS, RunCounts(files=1))
    killed = store.start_run("crm", None, Trigger.SCHEDULE)
    elsewhere = store.start_run("shop", None, Trigger.SCHEDULE)

    store.acquire_run_lock("crm", default_owner())

    interrupted = store.get_run(killed.id)
    assert interrupted is not None
    assert interrupted.status is RunStatus.INTERRUPTED
    assert interrupted.ended_at is not None
    assert interrupted.error is not None
    assert gone in interrupted.error
    assert "stopped before it finished" in interrupted.error
    still_success = store.get_run(finished.id)
    assert still_success is not None
    assert still_success.status is RunStatus.SUCCESS
    other_connection = store.get_run(elsewhere.id)
    assert other_connection is not None
    assert other_connection.status is RunStatus.RUNNING
    with pytest.raises(RunInProgressError, match=re.escape(default_owner())):
        store.acquire_run_lock("crm", "other-host:1")


def test_failed_lock_attempt_changes_nothing(store: SQLiteStore) -> None:
    store.acquire_run_lock("crm", default_owner())
    run = store.start_run("crm", None, Trigger.MANUAL)

    with pytest.raises(RunInProgressError):
        store.acquire_run_lock("crm", "other-host:1")

    still = store.get_run(run.id)
    assert still is not None
    assert still.status is RunStatus.RUNNING


# -- export watermarks ------------------------------------------------------------------


def test_export_watermarks_are_set_and_read_per_goal(store: SQLiteStore) -> None:
    assert store.export_watermark("crm", "out") is None
    first = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
    later = datetime(2024, 5, 2, 6, 0, tzinfo=UTC)

    store.set_export_watermark("crm", "out", 5, first)
    store.set_export_watermark("crm", "other", 2, first)
    store.set_export_watermark("crm", "out", 9, later)

    mark = store.export_watermark("crm", "out")
    assert mark is not None
    assert (mark.connection, mark.goal, mark.change_seq, mark.exported_at) == (
        "crm",
        "out",
        9,
        later,
    )
    other = store.export_watermark("crm", "other")
    assert other is not None
    assert other.change_seq == 2
    assert store.export_watermark("shop", "out") is None
