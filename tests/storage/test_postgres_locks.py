"""Run locks and fire claims shared by several processes on one PostgreSQL store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest

from connector.errors import RunInProgressError
from connector.storage import RunStatus, Trigger, default_owner
from connector.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

HOLDER = """
import sys, time
from connector.storage import Trigger, default_owner
from connector.storage.postgres import PostgresStore
store = PostgresStore(sys.argv[1])
store.acquire_run_lock("crm", default_owner())
store.start_run("crm", None, Trigger.SCHEDULE)
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(postgres_url: str) -> subprocess.Popen[str]:
    """Another process that holds crm's run lock in the middle of a run."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, postgres_url], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
    process.stdout.close()


def test_a_lock_held_by_another_process_is_refused_naming_it(
    postgres_url: str, holder: subprocess.Popen[str]
) -> None:
    with PostgresStore(postgres_url) as store:
        with pytest.raises(RunInProgressError) as caught:
            store.acquire_run_lock("crm", default_owner())
        store.acquire_run_lock("shop", default_owner())  # other connections are free

    message = str(caught.value)
    assert "'crm' is already running" in message
    assert f"{socket.gethostname()}:{holder.pid}" in message


def test_killing_the_holder_frees_the_lock_and_interrupts_its_run(
    postgres_url: str, holder: subprocess.Popen[str]
) -> None:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)

    with PostgresStore(postgres_url) as store:
        store.acquire_run_lock("crm", default_owner())  # the dead session's lock is gone
        [run] = store.list_runs("crm")

    assert run.status is RunStatus.INTERRUPTED
    assert run.error is not None
    assert f":{holder.pid}) stopped before it finished" in run.error


def test_a_released_lock_is_free_for_another_store(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as daemon, PostgresStore(postgres_url) as cli:
        daemon.acquire_run_lock("crm", "host-a:1")
        with pytest.raises(RunInProgressError, match="host-a:1"):
            cli.acquire_run_lock("crm", "host-b:2")
        daemon.release_run_lock("crm", "host-a:1")

        cli.acquire_run_lock("crm", "host-b:2")


def test_closing_a_store_releases_its_locks(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as first:
        first.acquire_run_lock("crm", "host-a:1")
    with PostgresStore(postgres_url) as second:
        second.acquire_run_lock("crm", "host-b:2")
        run = second.start_run("crm", None, Trigger.MANUAL)
        assert run.status is RunStatus.RUNNING


def test_each_fire_is_claimed_by_exactly_one_of_several_stores(postgres_url: str) -> None:
    stores = [PostgresStore(postgres_url) for _ in range(3)]
    start = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    fires = [start + timedelta(minutes=minute) for minute in range(20)]
    wins: list[list[datetime]] = [[] for _ in stores]

    def daemon(number: int) -> None:
        for fire in fires:
            if stores[number].claim_fire("crm", fire, f"host:{number}"):
                wins[number].append(fire)

    try:
        threads = [threading.Thread(target=daemon, args=(n,)) for n in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(fire for won in wins for fire in won) == fires
        assert stores[0].claim_fire("shop", fires[0], "host:0")  # per connection
    finally:
        for store in stores:
            store.close()


def test_a_claim_asked_again_by_its_owner_is_still_its_own(postgres_url: str) -> None:
    """A daemon retrying after a lost connection (its claim committed, the answer lost)."""
    fire = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    with PostgresStore(postgres_url) as store:
        assert store.claim_fire("crm", fire, "host-a:1")
        assert store.claim_fire("crm", fire, "host-a:1")
        assert not store.claim_fire("crm", fire, "host-b:2")


def test_old_fire_claims_are_pruned(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as store:
        old = datetime(2026, 1, 1, tzinfo=UTC)
        assert store.claim_fire("crm", old, "host:1")
        assert store.claim_fire("crm", old + timedelta(days=30), "host:1")

        assert store.claim_fire("crm", old, "host:2")  # forgotten: long past
