"""`connector daemon` as systemd runs it: a real process, real signals, a notify socket.

The test plays systemd: it binds the AF_UNIX datagram socket named in
$NOTIFY_SOCKET, sets WATCHDOG_USEC, sends SIGHUP and SIGTERM, and reads the
JSON log lines the daemon writes to stderr (not a terminal).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from service_support import (
    CONNECTION,
    NotifyListener,
    start_daemon,
    write_connection,
)

pytestmark = pytest.mark.slow
STOP_WITHIN = 10.0


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the log; each must be one JSON object."""
    lines = path.read_text("utf-8").splitlines()
    assert lines, "the daemon logged nothing"
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON log line: {line!r}")
    return events


def stop(process: subprocess.Popen[bytes]) -> None:
    """Make sure a daemon the test started is gone (the test itself sends SIGTERM)."""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def test_the_daemon_speaks_systemds_notify_protocol(
    root: Path, endpoint: str, notify_socket: NotifyListener
) -> None:
    goals = root / "goals"
    write_connection(goals, endpoint)
    log = root / "daemon.log"
    process = start_daemon(
        root,
        log,
        NOTIFY_SOCKET=str(notify_socket.path),
        WATCHDOG_USEC="400000",  # pings every 0.2 s
        CONNECTOR_WATCH_INTERVAL="0.2",
    )
    try:
        ready = notify_socket.wait_for(lambda m: m.get("READY") == "1", timeout=30)
        message = notify_socket.messages[ready]
        assert message["MAINPID"] == str(process.pid)
        assert message["STATUS"] == "1 connection(s) scheduled"

        # the watchdog keeps pinging at half the timeout
        started = time.monotonic()
        seen = ready
        for _ in range(4):
            seen = notify_socket.wait_for(lambda m: m == {"WATCHDOG": "1"}, after=seen + 1)
        assert time.monotonic() - started < 3.0

        # SIGHUP: RELOADING=1 (with the monotonic time systemd asks for), then READY=1
        mark = len(notify_socket.drain())
        process.send_signal(signal.SIGHUP)
        reloading = notify_socket.wait_for(lambda m: m.get("RELOADING") == "1", after=mark)
        assert int(notify_socket.messages[reloading]["MONOTONIC_USEC"]) > 0
        notify_socket.wait_for(lambda m: m.get("READY") == "1", after=reloading + 1)

        # a new goal file is picked up without a signal, and the status says so
        mark = len(notify_socket.drain())
        write_connection(goals, endpoint, "shop")
        notify_socket.wait_for(
            lambda m: m.get("STATUS") == "2 connection(s) scheduled" and m.get("READY") == "1",
            after=mark,
        )

        # SIGTERM: STOPPING=1 and a clean exit, in bounded time
        mark = len(notify_socket.drain())
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_WITHIN) == 0
        assert time.monotonic() - sent < STOP_WITHIN
        notify_socket.wait_for(lambda m: m.get("STOPPING") == "1", after=mark, timeout=1)
    finally:
        stop(process)

    events = json_lines(log)
    names = [event["event"] for event in events]
    for expected in ("daemon started", "goals reloaded", "daemon stopped"):
        assert expected in names, names
    assert names[-1] == "daemon stopped"
    started_event = events[names.index("daemon started")]
    assert started_event["pid"] == process.pid
    assert started_event["level"] == "info"
    assert started_event["timestamp"].endswith("Z")
    added = [event["added"] for event in events if event["event"] == "goals reloaded"]
    assert ["shop"] in added


def test_the_daemon_refuses_to_start_on_invalid_goal_files(
    root: Path, notify_socket: NotifyListener
) -> None:
    broken = root / "goals" / f"{CONNECTION}.yaml"
    broken.write_text("id: crm\nschedule:\n  every_hours: 5\ngoals: []\n", "utf-8")
    log = root / "daemon.log"
    process = start_daemon(root, log, NOTIFY_SOCKET=str(notify_socket.path))
    try:
        assert process.wait(timeout=30) == 2  # a configuration error
    finally:
        stop(process)
    problems = [event["problem"] for event in json_lines(log) if "problem" in event]
    assert problems
    assert all(problem.startswith(f"{broken}:") for problem in problems), problems
    assert any(problem.startswith(f"{broken}:3: ") for problem in problems), problems
    # systemd is never told it is ready
    assert not [m for m in notify_socket.drain() if m.get("READY") == "1"]


def test_without_notify_socket_the_daemon_runs_and_stops_the_same(root: Path) -> None:
    (root / "goals" / "segments.yaml").write_text("segments: []\n", "utf-8")
    log = root / "daemon.log"
    process = start_daemon(root, log)
    try:
        deadline = time.monotonic() + 30
        while "daemon started" not in log.read_text("utf-8"):
            assert process.poll() is None, log.read_text("utf-8")
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGINT)
        assert process.wait(timeout=STOP_WITHIN) == 0
    finally:
        stop(process)
    assert json_lines(log)[-1]["event"] == "daemon stopped"
