"""One run of a connection at a time: `connector run` against a run that holds the lock.

The lock lives in the store, so it holds across processes: the daemon's run
and an analyst's `connector run` exclude each other. A lock left by a process
that died is taken over, and that process's run is marked interrupted.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from service_support import (
    CONNECTION,
    connector,
    customers_csv,
    put_files,
    runs_of,
    write_connection,
)

from connector.storage import RunStatus, SQLiteStore, Trigger, default_owner

pytestmark = pytest.mark.slow


async def test_a_manual_run_while_the_connection_runs_exits_1_already_running(
    root: Path, endpoint: str
) -> None:
    write_connection(root / "goals", endpoint)
    await put_files(endpoint, {"in/a.csv": customers_csv(3)})
    database = root / "store" / "connector.db"
    holder = SQLiteStore(database)
    owner = default_owner()  # this test process: alive, and not the `connector run` process
    holder.acquire_run_lock(CONNECTION, owner)
    try:
        result = connector(root, "run", CONNECTION)
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"connection '{CONNECTION}' is already running" in result.stderr
        assert owner in result.stderr
        assert "Traceback" not in result.stderr
        assert runs_of(database) == []  # a refused run leaves no history row
        assert holder.count_profiles() == 0
    finally:
        holder.close()


async def test_a_lock_left_by_a_dead_process_is_taken_over(root: Path, endpoint: str) -> None:
    write_connection(root / "goals", endpoint)
    await put_files(endpoint, {"in/a.csv": customers_csv(3)})
    database = root / "store" / "connector.db"
    dead = subprocess.Popen(["true"])
    dead.wait()
    owner = default_owner().rsplit(":", 1)[0] + f":{dead.pid}"
    store = SQLiteStore(database)
    try:
        # a daemon that was killed mid-run: its run row says running, its lock stays
        store.start_run(CONNECTION, None, Trigger.SCHEDULE)
        store.acquire_run_lock(CONNECTION, owner)
    finally:
        store.close()
    result = connector(root, "run", CONNECTION)
    assert result.returncode == 0, result.stdout + result.stderr
    killed, manual = runs_of(database)
    assert killed.status is RunStatus.INTERRUPTED
    assert killed.error is not None
    assert owner in killed.error
    assert manual.status is RunStatus.SUCCESS
    assert manual.counts.rows_read == 3
