"""The daemon and an unreachable PostgreSQL store: retried with backoff, never a crash,
never the password in a log, and the fire runs once when the server answers again."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from service_support import (
    CONNECTION,
    customers_csv,
    eventually,
    fire_now,
    put_files,
    running_daemon,
    service_settings,
    write_connection,
)
from tcp_gate import TcpGate

from connector.service.backoff import Backoff
from connector.storage import RunStatus
from connector.storage.postgres import PostgresStore

PASSWORD = "not-so-s3cret"  # trust auth ignores it; it must never be logged


def through_gate(url: str, gate: TcpGate) -> str:
    """The store URL, with a password, pointed at the gate instead of the server."""
    parts = urlsplit(url)
    netloc = f"{parts.username}:{PASSWORD}@127.0.0.1:{gate.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def retries(events: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in events if e["event"] == "store unreachable; the run is retried"]


def finished(url: str) -> list[Any]:
    with PostgresStore(url) as store:
        return [run for run in store.list_runs(CONNECTION) if run.ended_at is not None]


def test_backoff_doubles_up_to_its_maximum_with_a_small_spread() -> None:
    backoff = Backoff(initial=2.0, maximum=30.0)
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling * 0.8 <= delay <= ceiling
    assert backoff.failures == 8


@pytest.mark.postgres
async def test_a_fire_waits_for_the_server_and_then_runs_once(
    root: Path,
    endpoint: str,
    postgres_url: str,
    log_events: list[MutableMapping[str, Any]],
) -> None:
    write_connection(root / "goals", endpoint)
    await put_files(endpoint, {"in/day1.csv": customers_csv(5)})
    with TcpGate(5432) as gate:
        url = through_gate(postgres_url, gate)
        settings = service_settings(
            root, database=url, database_retry_initial=0.1, database_retry_max=0.4
        )
        async with running_daemon(settings) as daemon:
            fire_now(daemon)
            await eventually(lambda: len(retries(log_events)) >= 3, what="three retries")
            assert CONNECTION in daemon._runs  # one fire, still being retried
            gate.open()
            await eventually(lambda: finished(postgres_url), what="the run", timeout=15)
            await eventually(lambda: not daemon._runs, what="the daemon to be idle")
    [run] = finished(postgres_url)
    assert run.status is RunStatus.SUCCESS
    assert run.counts.profiles_created == 5
    failed = retries(log_events)
    assert failed[0]["log_level"] == "error"  # the first is an error, the rest warnings
    assert {e["log_level"] for e in failed[1:]} == {"warning"}
    assert f"127.0.0.1:{gate.port}" in failed[0]["error"]
    assert [e["attempt"] for e in failed[:3]] == [1, 2, 3]
    assert any(e["event"] == "store reachable again" for e in log_events)
    assert PASSWORD not in repr(list(log_events))


@pytest.mark.postgres
async def test_a_stop_ends_the_retries_at_once(
    root: Path,
    endpoint: str,
    postgres_url: str,
    log_events: list[MutableMapping[str, Any]],
) -> None:
    write_connection(root / "goals", endpoint)
    with TcpGate(5432) as gate:
        settings = service_settings(
            root,
            database=through_gate(postgres_url, gate),
            database_retry_initial=60,
            database_retry_max=60,
        )
        async with running_daemon(settings) as daemon:
            fire_now(daemon)
            await eventually(lambda: retries(log_events), what="the first retry")
            loop = asyncio.get_running_loop()
            started = loop.time()
            daemon.request_stop()
        assert loop.time() - started < 5  # not the 60 s wait
    assert any(e["event"] == "stop requested: retry abandoned" for e in log_events)
    assert finished(postgres_url) == []
