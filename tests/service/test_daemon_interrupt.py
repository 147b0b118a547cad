"""Ctrl-C to `connector daemon` in a terminal, mid-import: the same clean stop as SIGTERM.

The daemon runs in a session of its own and the SIGINT goes to its whole
process group, as a terminal's Ctrl-C does. The run in progress rolls its
file back, the history says interrupted, the daemon exits 0 without a trace,
and the next run applies every file once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from service_support import (
    CONNECTION,
    GOAL,
    connector,
    connector_env,
    customers_csv,
    put_files,
    runs_of,
    write_connection,
)

from connector.storage import RunStatus, SQLiteStore

pytestmark = pytest.mark.slow
ROWS = 150_000


async def test_ctrl_c_to_the_daemon_mid_import_stops_it_cleanly(root: Path, endpoint: str) -> None:
    # every minute from midnight: the first fire comes within a minute
    write_connection(
        root / "goals", endpoint, schedule={"timezone": "UTC", "every_minutes": 1, "at": "00:00"}
    )
    await put_files(endpoint, {"in/a.csv": customers_csv(ROWS), "in/b.csv": customers_csv(ROWS)})
    log = root / "daemon.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "connector", "daemon"],
            env=connector_env(root),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while '"file started"' not in log.read_text("utf-8"):
            assert process.poll() is None, log.read_text("utf-8")
            assert time.monotonic() < deadline, "no scheduled run started"
            time.sleep(0.02)
        # inside the first file: 150,000 short rows take about half a second on the
        # columnar engine, and nothing between this log line and its apply checks for a stop
        time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    text = log.read_text("utf-8")
    assert "Traceback" not in text
    events = [json.loads(line)["event"] for line in text.splitlines()]
    assert events[-1] == "daemon stopped"
    [run] = runs_of(root / "store" / "connector.db")
    assert run.status is RunStatus.INTERRUPTED
    assert run.error is not None
    assert "rolled back" in run.error

    store = SQLiteStore(root / "store" / "connector.db")
    try:
        assert store.ledger(CONNECTION, GOAL) == {}
        assert store.count_profiles() == 0
    finally:
        store.close()
    again = connector(root, "run", CONNECTION, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    store = SQLiteStore(root / "store" / "connector.db")
    try:
        assert store.count_profiles() == ROWS
        assert {tuple(p.properties["points"]) for p in store.iter_profiles()} == {("4",)}
    finally:
        store.close()
