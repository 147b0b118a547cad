"""Two daemons on one PostgreSQL store: a scheduled fire runs once, whichever daemon wins it."""

from __future__ import annotations

from collections.abc import MutableMapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from service_support import (
    CONNECTION,
    customers_csv,
    eventually,
    put_files,
    running_daemon,
    service_settings,
    write_connection,
)

from connector.service.daemon import Daemon
from connector.storage import RunStatus
from connector.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres


def fire_at(daemon: Daemon, moment: datetime) -> None:
    """Make the scheduler fire the connection now, as the fire scheduled for `moment`."""
    assert daemon._scheduler is not None
    daemon._scheduler.modify_job(CONNECTION, next_run_time=moment)


def finished(url: str) -> list[Any]:
    with PostgresStore(url) as store:
        return [run for run in store.list_runs(CONNECTION) if run.ended_at is not None]


async def test_a_fire_both_daemons_schedule_runs_once(
    root: Path,
    endpoint: str,
    postgres_url: str,
    log_events: list[MutableMapping[str, Any]],
) -> None:
    write_connection(root / "goals", endpoint)
    await put_files(endpoint, {"in/day1.csv": customers_csv(5)})
    settings = service_settings(root, database=postgres_url)
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(running_daemon(settings))
        second = await stack.enter_async_context(running_daemon(settings))
        moment = datetime.now(UTC).replace(microsecond=0)
        fire_at(first, moment)
        fire_at(second, moment)
        [run] = await eventually(lambda: finished(postgres_url), what="the run")
        skipped = await eventually(
            lambda: [
                e for e in log_events if e.get("reason") == "another daemon claimed this fire"
            ],
            what="the other daemon to skip",
        )
        await eventually(lambda: not first._runs and not second._runs, what="both to be idle")
    assert run.status is RunStatus.SUCCESS
    assert run.counts.profiles_created == 5
    assert len(skipped) == 1
    assert skipped[0]["fire_time"] == moment.isoformat()
    assert len(finished(postgres_url)) == 1
