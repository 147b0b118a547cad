"""Scheduled runs in the daemon: they happen, never overlap, respect the lock, stop cleanly.

The daemon runs in the test's event loop (`Daemon.serve()`), with its real
APScheduler, moto's S3 and a SQLite file. A test cannot wait for a real
schedule, so it moves the job's next run time to now through the scheduler
(`modify_job`), which is exactly what happens when the time comes.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from service_support import (
    CONNECTION,
    GOAL,
    GateProgress,
    customers_csv,
    eventually,
    finished_runs,
    fire_now,
    put_files,
    running_daemon,
    runs_of,
    service_settings,
    write_connection,
)

from connector.config import load_workspace
from connector.goals.runner import RunOptions, run_connection
from connector.storage import RunStatus, SQLiteStore, Trigger

Events = list[MutableMapping[str, Any]]


def events_named(events: Events, name: str) -> list[MutableMapping[str, Any]]:
    return [event for event in events if event.get("event") == name]


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> GateProgress:
    """Every daemon run reports its progress to a gate that holds it after one batch."""
    progress = GateProgress()
    monkeypatch.setattr("connector.cli.progress.LogProgress", progress)
    return progress


async def test_a_scheduled_fire_runs_the_connection_and_records_it(
    root: Path, endpoint: str
) -> None:
    write_connection(root / "goals", endpoint)
    await put_files(endpoint, {"in/day1.csv": customers_csv(5)})
    settings = service_settings(root)
    async with running_daemon(settings) as daemon:
        fire_now(daemon)
        [run] = await eventually(lambda: finished_runs(settings.database), what="a finished run")
        # the job stays scheduled for its next fire, one interval (a day) away
        assert daemon._scheduler is not None
        job = daemon._scheduler.get_job(CONNECTION)
        assert job is not None
        assert datetime.now(UTC) < job.next_run_time <= datetime.now(UTC) + timedelta(days=1)
    assert run.trigger is Trigger.SCHEDULE
    assert run.status is RunStatus.SUCCESS
    assert run.goal is None
    assert (run.counts.files, run.counts.rows_read, run.counts.profiles_created) == (1, 5, 5)
    store = SQLiteStore(settings.database)
    try:
        assert store.count_profiles() == 5
    finally:
        store.close()


async def test_a_fire_while_the_run_still_goes_is_skipped_and_logged(
    root: Path, endpoint: str, gate: GateProgress, log_events: Events
) -> None:
    write_connection(root / "goals", endpoint)
    await put_files(endpoint, {"in/big.csv": customers_csv(30)})
    settings = service_settings(root, batch_size=10)
    async with running_daemon(settings) as daemon:
        fire_now(daemon)
        await eventually(gate.entered.is_set, what="the run to be mid-file")
        fire_now(daemon)  # the next fire comes while the first run holds its file
        skipped = await eventually(
            lambda: events_named(log_events, "scheduled run skipped"), what="the skip"
        )
        gate.release.set()
        await eventually(lambda: finished_runs(settings.database), what="the first run")
        await eventually(lambda: not daemon._runs, what="the run task to end")
    assert skipped[0]["connection"] == CONNECTION
    assert skipped[0]["reason"] == "still running"
    assert skipped[0]["level"] == "warning"
    [run] = runs_of(settings.database)
    assert run.status is RunStatus.SUCCESS
    assert run.counts.rows_read == 30


async def test_a_fire_while_another_process_holds_the_lock_is_skipped(
    root: Path, endpoint: str, log_events: Events
) -> None:
    write_connection(root / "goals", endpoint)
    await put_files(endpoint, {"in/day1.csv": customers_csv(3)})
    settings = service_settings(root)
    holder = SQLiteStore(settings.database)
    other_process = f"{socket.gethostname()}:{os.getppid()}"  # alive, and not this process
    holder.acquire_run_lock(CONNECTION, other_process)
    try:
        async with running_daemon(settings) as daemon:
            fire_now(daemon)
            [skipped] = await eventually(
                lambda: events_named(log_events, "scheduled run skipped"), what="the skip"
            )
            await eventually(lambda: not daemon._runs, what="the run task to end")
            assert runs_of(settings.database) == []
            # once the other run is done, the next fire runs
            holder.release_run_lock(CONNECTION, other_process)
            fire_now(daemon)
            [run] = await eventually(lambda: finished_runs(settings.database), what="the run")
    finally:
        holder.close()
    assert skipped["connection"] == CONNECTION
    assert "already running" in skipped["reason"]
    assert other_process in skipped["reason"]
    assert run.status is RunStatus.SUCCESS


async def test_stop_mid_import_rolls_the_file_back_and_records_interrupted(
    root: Path,
    endpoint: str,
    gate: GateProgress,
    log_events: Events,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write_connection(root / "goals", endpoint)
    await put_files(endpoint, {"in/big.csv": customers_csv(30)})
    settings = service_settings(root, batch_size=10)
    async with running_daemon(settings) as daemon:
        fire_now(daemon)
        await eventually(gate.entered.is_set, what="the run to be mid-file")
        daemon.request_stop()  # what SIGTERM and SIGINT call
        assert daemon.stopping.is_set()
        gate.release.set()
    # serve() returned 0 (checked on leaving the block) after the run ended, and the
    # scheduler saw its job end normally: no "Error running job" from APScheduler
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    names = [event["event"] for event in log_events]
    assert names.index("run finished") < names.index("daemon stopped")
    assert "runs did not finish in time; cancelled" not in names
    [run] = runs_of(settings.database)
    assert run.status is RunStatus.INTERRUPTED
    assert run.ended_at is not None
    assert run.error is not None
    assert "big.csv" in run.error
    assert "rolled back" in run.error
    assert gate.batches == 1  # the first batch was applied inside the file's transaction...
    store = SQLiteStore(settings.database)
    try:
        assert store.count_profiles() == 0  # ...and rolled back with it
        assert store.ledger(CONNECTION, GOAL) == {}
        # the next run applies the whole file exactly once (`sum` included)
        outcome = await run_connection(
            store, load_workspace(settings.goals_dir), CONNECTION, RunOptions(batch_size=10)
        )
        assert outcome.record.status is RunStatus.SUCCESS
        assert store.count_profiles() == 30
        assert {tuple(p.properties["points"]) for p in store.iter_profiles()} == {("2",)}
        assert set(store.ledger(CONNECTION, GOAL)) == {"in/big.csv"}
    finally:
        store.close()


async def test_every_line_of_a_scheduled_run_names_connection_and_run(
    root: Path, endpoint: str, log_events: Events
) -> None:
    write_connection(root / "goals", endpoint)
    await put_files(endpoint, {"in/a.csv": customers_csv(2), "in/b.csv": customers_csv(2, start=3)})
    settings = service_settings(root)
    async with running_daemon(settings) as daemon:
        fire_now(daemon)
        [run] = await eventually(lambda: finished_runs(settings.database), what="the run")
        await eventually(lambda: not daemon._runs, what="the run task to end")
    names = [event["event"] for event in log_events]
    first = names.index("run started")
    last = names.index("run finished")
    run_lines = log_events[first : last + 1]
    assert len(run_lines) >= 6  # started, 2 x (file started, file imported), finished
    for event in run_lines:
        assert event["connection"] == CONNECTION, event
        assert event["run_id"] == run.id, event
        assert event["trigger"] == "schedule", event
    file_lines = [event for event in run_lines if "key" in event]
    assert {event["key"] for event in file_lines} == {"in/a.csv", "in/b.csv"}
    assert {event["goal"] for event in file_lines} == {GOAL}


async def test_a_failing_run_is_recorded_and_the_daemon_keeps_going(
    root: Path, endpoint: str
) -> None:
    write_connection(root / "goals", endpoint)  # its bucket does not exist: the goal fails
    settings = service_settings(root)
    async with running_daemon(settings) as daemon:
        fire_now(daemon)
        [failed] = await eventually(lambda: finished_runs(settings.database), what="a run")
        await put_files(endpoint, {"in/late.csv": customers_csv(1)})
        fire_now(daemon)
        runs = await eventually(
            lambda: len(finished_runs(settings.database)) == 2 and finished_runs(settings.database),
            what="a second run",
        )
    assert failed.status is RunStatus.FAILURE
    assert failed.error is not None
    assert GOAL in failed.error
    assert runs[1].status is RunStatus.SUCCESS
