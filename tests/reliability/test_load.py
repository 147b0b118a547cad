"""Load: 200 connections scheduled every minute in one daemon, and 10,000 files in one goal.

Schedules are checked twice:
- the trigger math alone: the daemon's trigger for each of 200 `every_minutes: 1`
  schedules (five time zones, a DST change in the window) fires once a
  minute, every minute, for four simulated hours;
- the real `Daemon` (APScheduler, run lock, store, S3 client, history) with
  200 connection files on an accelerated clock: APScheduler's clock runs four
  times faster than the wall clock (its `datetime.now` and its timer are
  scaled), so two and a quarter simulated minutes pass in about 34 seconds.
  Every connection's run is a real run over an empty bucket folder. Each
  connection must run once per simulated minute — no fire missed or skipped
  as still running — and its runs must never overlap (history rows). All
  200 fire in the same second (the interval is anchored at `at`), so each
  minute starts with 200 concurrent runs; at four times the real rate the
  real schedule has room to spare.

The 10,000 files are put straight into the moto server's backend (the
session's server runs in this process): uploading them over HTTP would take
the test longer than the import it checks. Importing them goes through S3
as always.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import apscheduler.executors.base
import apscheduler.schedulers.base
import pytest
import structlog
import yaml
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from helpers import BUCKET, CONNECTION, Harness, import_goal
from reliability_support import moto_s3_backend

from connector.config.schedule import Schedule
from connector.service.daemon import Daemon
from connector.service.scheduling import build_trigger
from connector.settings import Settings
from connector.storage import RunRecord, RunStatus, SQLiteStore

CONNECTIONS = 200
ZONES = ["UTC", "Europe/Amsterdam", "America/New_York", "Asia/Kathmandu", "Australia/Adelaide"]


# -- the trigger math -------------------------------------------------------------------------


def test_two_hundred_every_minute_schedules_fire_every_minute_without_a_gap() -> None:
    start = datetime(2026, 10, 24, 23, 0, 30, tzinfo=UTC)  # Europe falls back at 01:00 UTC
    minutes = 240
    end = start + timedelta(minutes=minutes)
    for number in range(CONNECTIONS):
        schedule = Schedule.model_validate(
            {
                "timezone": ZONES[number % len(ZONES)],
                "every_minutes": 1,
                "at": f"{number % 24:02d}:{number * 7 % 60:02d}",
            }
        )
        trigger = build_trigger(schedule, now=start)
        fires: list[datetime] = []
        previous, now = None, start
        while True:
            fire = trigger.get_next_fire_time(previous, now)
            assert fire is not None
            if fire >= end:
                break
            fires.append(fire)
            previous, now = fire, fire
        assert len(fires) == minutes, schedule
        assert fires[0] - start < timedelta(minutes=1)
        # in UTC: two times of one zone subtract as wall clocks, DST change ignored
        gaps = {(b.astimezone(UTC) - a.astimezone(UTC)).total_seconds() for a, b in pairwise(fires)}
        assert gaps == {60.0}, (schedule, gaps)


# -- the real daemon on an accelerated clock -----------------------------------------------------

SPEED = 4.0
SIMULATED_MINUTES = 2.25


class _Clock:
    """Simulated time, SPEED times faster than the wall clock.

    It starts when APScheduler first asks (as the daemon schedules its jobs),
    one second before a minute boundary: the first fire follows at once.
    """

    def __init__(self) -> None:
        now = datetime.now(UTC)
        boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        self.start = boundary - timedelta(seconds=1)
        self.real: float | None = None

    def now(self, tz: Any = None) -> datetime:
        if self.real is None:
            self.real = time.monotonic()
        moment = self.start + timedelta(seconds=(time.monotonic() - self.real) * SPEED)
        return moment.astimezone(tz) if tz is not None else moment.replace(tzinfo=None)


@pytest.fixture
def accelerated(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    """APScheduler sees the simulated clock; its timer waits simulated seconds / SPEED."""
    clock = _Clock()

    class SimulatedDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return clock.now(tz)

    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", SimulatedDatetime)
    monkeypatch.setattr(apscheduler.executors.base, "datetime", SimulatedDatetime)
    start_timer = AsyncIOScheduler._start_timer

    def scaled(self: AsyncIOScheduler, wait_seconds: float | None) -> None:
        start_timer(self, None if wait_seconds is None else wait_seconds / SPEED)

    monkeypatch.setattr(AsyncIOScheduler, "_start_timer", scaled)
    return clock


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    """Four info lines a run, 800 runs: keep only warnings while the load runs."""
    config = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        yield
    finally:
        structlog.configure(**config)


def write_connections(goals_dir: Path, endpoint: str) -> None:
    goals_dir.mkdir(parents=True, exist_ok=True)
    for number in range(CONNECTIONS):
        data = {
            "id": f"c{number:03d}",
            "storage": {
                "region": "eu-west-1",
                "endpoint_url": endpoint,
                "access_key_id": "testing",
                "secret_access_key": "testing",
            },
            "schedule": {"timezone": ZONES[number % len(ZONES)], "every_minutes": 1},
            "goals": [import_goal(prefix=f"load/c{number:03d}/")],
        }
        (goals_dir / f"c{number:03d}.yaml").write_text(yaml.safe_dump(data), "utf-8")


@pytest.mark.slow
async def test_two_hundred_connections_every_minute_in_one_daemon_never_miss_or_overlap(
    plain_harness: Harness,
    moto_endpoint: str,
    reset_moto: None,
    accelerated: _Clock,
    quiet_logs: None,
) -> None:
    harness = plain_harness
    await harness.bucket()  # the bucket exists; every connection's folder in it is empty
    write_connections(harness.goals_dir, moto_endpoint)
    settings = Settings(goals_dir=harness.goals_dir, database=harness.db_path, watch_goals=False)
    daemon = Daemon(settings)
    skipped: list[str] = []
    daemon._on_skipped_fire = lambda event: skipped.append(event.job_id)  # type: ignore[method-assign]
    served = asyncio.create_task(daemon.serve())
    try:
        while daemon._scheduler is None or not daemon._scheduler.running:
            assert not served.done(), served.result()
            await asyncio.sleep(0.01)
        assert len(daemon._scheduler.get_jobs()) == CONNECTIONS
        # the window, then the last minute's runs may finish (before the next minute fires)
        await asyncio.sleep(SIMULATED_MINUTES * 60 / SPEED)
        deadline = time.monotonic() + (60 - SIMULATED_MINUTES % 1 * 60) / SPEED - 1
        while daemon._runs and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(served, timeout=60) == 0

    runs = runs_by_connection(harness.db_path)
    fires = int(SIMULATED_MINUTES) + 1  # at 1 s, 61 s and 121 s of simulated time
    print(
        "SKIPPED",
        skipped[:5],
        {c: len(h) for c, h in list(runs.items())[:5]},
        [(r.started_at, r.ended_at) for r in runs.get("c000", [])],
    )
    assert skipped == []
    assert set(runs) == {f"c{number:03d}" for number in range(CONNECTIONS)}
    counts = {connection: len(history) for connection, history in runs.items()}
    assert set(counts.values()) == {fires}, counts
    for connection, history in runs.items():
        assert {run.status for run in history} == {RunStatus.SUCCESS}, connection
        for earlier, later in pairwise(history):
            assert earlier.ended_at is not None
            assert later.started_at >= earlier.ended_at, f"{connection} runs overlap"


def runs_by_connection(database: Path) -> dict[str, list[RunRecord]]:
    store = SQLiteStore(database)
    try:
        runs: dict[str, list[RunRecord]] = defaultdict(list)
        for run in reversed(store.list_runs(limit=100_000)):
            runs[run.connection].append(run)
        return dict(runs)
    finally:
        store.close()


# -- 10,000 files in one goal ---------------------------------------------------------------------

FILES = 10_000


@pytest.mark.slow
async def test_ten_thousand_small_files_in_one_goal_are_all_imported_and_then_skipped_quickly(
    plain_harness: Harness, reset_moto: None, quiet_logs: None
) -> None:
    harness = plain_harness
    harness.write_connection(import_goal(prefix="many/"))
    await harness.bucket()
    backend = moto_s3_backend()
    for number in range(FILES):
        body = f"customer_id,email\nC{number:05d},c{number}@x.org\n".encode()
        backend.put_object(BUCKET, f"many/f{number:05d}.csv", body)

    # `connector run` in its own process: it and the S3 server (this process) use a core each
    first = harness.cli("run", CONNECTION, "--quiet", timeout=600)

    assert first.returncode == 0, first.stdout + first.stderr
    [record] = harness.store.list_runs(CONNECTION)
    assert (record.status, record.counts.files, record.counts.rows_applied) == (
        RunStatus.SUCCESS,
        FILES,
        FILES,
    )
    assert harness.store.count_profiles() == FILES
    assert len(harness.store.ledger(CONNECTION, "customers")) == FILES

    started = time.monotonic()
    second = harness.cli("run", CONNECTION, "--quiet", timeout=600)
    elapsed = time.monotonic() - started

    assert second.returncode == 0, second.stdout + second.stderr
    [again, _] = harness.store.list_runs(CONNECTION)
    assert (again.counts.files, again.counts.files_skipped) == (0, FILES)
    assert elapsed < 15, f"the second run took {elapsed:.1f} s to skip {FILES} files"
