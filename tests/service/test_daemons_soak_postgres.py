"""Two real daemon processes on one PostgreSQL store, for three scheduled minutes.

Six connections fire every minute; each (connection, scheduled minute) must run
exactly once across both daemons, and both must take a share. In the second
minute the daemon importing a large file is killed (SIGKILL) mid-file: the store
holds none of that file, and the surviving daemon imports it at the next fire.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
from service_support import (
    GOAL,
    PREFIX,
    connector_env,
    customers_csv,
    import_goal,
    put_files,
    wait_until,
    write_connection,
)

from connector.storage import ProfileStore, RunRecord, RunStatus, Trigger
from connector.storage.postgres import PostgresStore

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CONNECTIONS = [f"shop{number}" for number in range(1, 7)]
BIG = CONNECTIONS[-1]
"""The connection whose second file is large enough to be killed in the middle of."""
SMALL_ROWS = 50
BIG_ROWS = 1_000_000
MINUTE = 60.0


def bucket(connection: str) -> str:
    return f"soak-{connection}"


def upload(endpoint: str, connection: str, name: str, data: bytes) -> None:
    asyncio.run(put_files(endpoint, {f"{PREFIX}{name}": data}, bucket=bucket(connection)))


def log_events(path: Path) -> list[dict[str, Any]]:
    """The JSON lines a daemon wrote so far (a line still being written is left out)."""
    events = []
    for line in path.read_text("utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def started(process: subprocess.Popen[bytes], log: Path) -> bool:
    """Whether the daemon logged that it started (or exited, which the caller checks)."""
    if process.poll() is not None:
        return True
    return any(event["event"] == "daemon started" for event in log_events(log))


def history(store: ProfileStore) -> dict[str, list[RunRecord]]:
    return {name: list(reversed(store.list_runs(name, limit=100))) for name in CONNECTIONS}


def finished_since(
    store: ProfileStore, moment: datetime, connections: list[str] = CONNECTIONS
) -> bool:
    """Whether each of `connections` has a finished run fired at or after `moment`."""
    runs = history(store)
    return all(
        any(run.started_at >= moment and run.ended_at is not None for run in runs[name])
        for name in connections
    )


def poll(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """`wait_until` at a pace the shared database does not notice (twice a second)."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.5)
    return value


def fire_claims(url: str) -> dict[tuple[str, datetime], str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT connection, fire_time, owner FROM fire_claims").fetchall()
    # A claim's owner is the daemon's host:pid plus a per-daemon token (host:pid/token), so a
    # daemon whose pid is reused after a restart never mistakes an old claim for its own.
    return {
        (connection, fire_time): owner.partition("/")[0] for connection, fire_time, owner in rows
    }


def minute_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def next_minute() -> datetime:
    return minute_of(datetime.now(UTC)) + timedelta(minutes=1)


def start_daemon(root: Path, log: Path, database: str) -> subprocess.Popen[bytes]:
    """`python -m connector daemon` on `root`'s goals folder and the PostgreSQL store."""
    env = connector_env(root) | {"CONNECTOR_DATABASE": database}
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "connector", "daemon"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def test_two_daemon_processes_share_every_fire_and_survive_a_kill(
    root: Path, endpoint: str, postgres_url: str
) -> None:
    began = time.monotonic()
    uploaded: dict[str, dict[str, int]] = {name: {} for name in CONNECTIONS}
    start = 1

    def add_file(connection: str, rows: int) -> None:
        nonlocal start
        name = f"part{len(uploaded[connection]) + 1}.csv"
        upload(endpoint, connection, name, customers_csv(rows, start=start))
        uploaded[connection][name] = rows
        start += rows

    for connection in CONNECTIONS:
        schedule = {"timezone": "UTC", "every_minutes": 1, "at": "00:00"}
        goal = import_goal(bucket=bucket(connection))
        write_connection(root / "goals", endpoint, connection, schedule=schedule, goals=[goal])
        add_file(connection, SMALL_ROWS)

    store = PostgresStore(postgres_url)  # migrates the schema before the daemons open it
    logs = {name: root / f"daemon-{name}.log" for name in ("a", "b")}
    # both daemons are up before the first fire: start well clear of a minute's end
    poll(lambda: datetime.now(UTC).second < 45, timeout=20, what="a minute's start")
    daemons = {name: start_daemon(root, log, postgres_url) for name, log in logs.items()}
    try:
        for name, process in daemons.items():
            wait_until(partial(started, process, logs[name]), what=f"daemon {name}")
            assert process.poll() is None, logs[name].read_text("utf-8")
        owners = {f"{socket.gethostname()}:{process.pid}" for process in daemons.values()}

        # minute 1: every connection imports its small file
        first = next_minute()
        poll(lambda: finished_since(store, first), timeout=MINUTE + 45, what="minute 1")
        for connection in CONNECTIONS:
            add_file(connection, BIG_ROWS if connection == BIG else SMALL_ROWS)

        # minute 2: kill the daemon importing the big file once it is inside that file
        second = first + timedelta(minutes=1)
        running = poll(
            lambda: [
                run
                for run in history(store)[BIG]
                if run.started_at >= second and run.ended_at is None
            ],
            timeout=MINUTE + 30,
            what="the big file's run to start",
        )[0]
        victim_name, victim = next(
            (name, process)
            for name, process in daemons.items()
            if running.ran_by is not None and running.ran_by.endswith(f":{process.pid}")
        )
        wait_until(
            lambda: any(
                e["event"] == "progress" and e.get("connection") == BIG
                for e in log_events(logs[victim_name])
            ),
            timeout=MINUTE,
            what="the big file to be half imported",
        )
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=10) == -signal.SIGKILL
        killed_at = datetime.now(UTC)
        cut = store.get_run(running.id)
        assert cut is not None
        assert cut.ended_at is None
        assert set(store.ledger(BIG, GOAL)) == {f"{PREFIX}part1.csv"}
        small_total = sum(rows for files in uploaded.values() for rows in files.values())
        assert store.count_profiles() == small_total - BIG_ROWS
        small = [name for name in CONNECTIONS if name != BIG]
        poll(lambda: finished_since(store, second, small), timeout=MINUTE, what="minute 2")
        for connection in small:
            add_file(connection, SMALL_ROWS)

        # minute 3: the survivor imports the big file again, from the start
        third = minute_of(killed_at) + timedelta(minutes=1)
        poll(lambda: finished_since(store, third), timeout=MINUTE + 90, what="minute 3")
        survivor = next(p for p in daemons.values() if p is not victim)
        assert survivor.poll() is None
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=20) == 0
    finally:
        for process in daemons.values():
            stop(process)
        store.close()

    with PostgresStore(postgres_url) as reader:
        runs = history(reader)
        ledgers = {name: set(reader.ledger(name, GOAL)) for name in CONNECTIONS}
    claims = fire_claims(postgres_url)
    for connection, connection_runs in runs.items():
        per_minute = Counter(minute_of(run.started_at) for run in connection_runs)
        assert all(count == 1 for count in per_minute.values()), (connection, per_minute)
        assert {first, second, third} <= per_minute.keys(), (connection, per_minute)
        assert min(per_minute) == first, (connection, per_minute)
        claimed = {fire: owner for (name, fire), owner in claims.items() if name == connection}
        assert {minute_of(fire) for fire in claimed} == set(per_minute), connection
        for run in connection_runs:
            assert run.trigger is Trigger.SCHEDULE
            assert run.ran_by == claimed[minute_of(run.started_at)]
            assert run.ran_by in owners
            if connection != BIG and minute_of(run.started_at) <= third:
                assert run.status is RunStatus.SUCCESS, run
                assert run.counts.profiles_created == SMALL_ROWS, run  # a new file each minute
        assert ledgers[connection] == {f"{PREFIX}{name}" for name in uploaded[connection]}
    succeeded = [run for rs in runs.values() for run in rs if run.status is RunStatus.SUCCESS]
    assert {run.ran_by for run in succeeded} == owners, "both daemons must run some fires"

    [interrupted] = [run for run in runs[BIG] if run.id == running.id]
    assert interrupted.status is RunStatus.INTERRUPTED
    [retried] = [run for run in runs[BIG] if minute_of(run.started_at) == third]
    assert retried.status is RunStatus.SUCCESS
    assert retried.ran_by != interrupted.ran_by
    assert retried.counts.profiles_created == BIG_ROWS

    total = sum(rows for files in uploaded.values() for rows in files.values())
    with PostgresStore(postgres_url) as reader:
        assert reader.count_profiles() == total
        assert reader.find_profiles("points", "4") == []  # no row was summed twice
    rates = [
        e["rows_per_second"] for e in log_events(logs[victim_name]) if e["event"] == "progress"
    ]
    print(f"soak took {time.monotonic() - began:.0f}s; big-file rates {rates} rows/s")
