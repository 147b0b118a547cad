"""systemd's notify protocol, datagram by datagram, and when the watchdog applies."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from service_support import NotifyListener

from connector.service.notify import SystemdNotifier, watchdog_interval

Events = list[MutableMapping[str, Any]]


def test_ready_status_reloading_watchdog_stopping(notify_socket: NotifyListener) -> None:
    notifier = SystemdNotifier(str(notify_socket.path))
    try:
        assert notifier.enabled
        notifier.ready("2 connection(s) scheduled")
        notifier.status("running crm")
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        notifier.reloading()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        notifier.watchdog()
        notifier.stopping()
    finally:
        notifier.close()
    ready, status, reloading, watchdog, stopping = notify_socket.drain()
    assert ready == {
        "READY": "1",
        "STATUS": "2 connection(s) scheduled",
        "MAINPID": str(os.getpid()),
    }
    assert status == {"STATUS": "running crm"}
    assert reloading["RELOADING"] == "1"
    assert before <= int(reloading["MONOTONIC_USEC"]) <= after
    assert watchdog == {"WATCHDOG": "1"}
    assert stopping == {"STOPPING": "1", "STATUS": "stopping"}


def test_an_abstract_socket_address_starts_with_at() -> None:
    name = f"connector-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(f"\0{name}")
        receiver.settimeout(5)
        notifier = SystemdNotifier(f"@{name}")
        try:
            notifier.watchdog()
        finally:
            notifier.close()
        assert receiver.recv(4096) == b"WATCHDOG=1"


def test_without_notify_socket_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SystemdNotifier()
    assert not notifier.enabled
    notifier.ready("x")  # a no-op, not an error


def test_a_socket_that_went_away_is_logged_not_raised(tmp_path: Path, log_events: Events) -> None:
    notifier = SystemdNotifier(str(tmp_path / "gone.sock"))
    try:
        notifier.watchdog()
    finally:
        notifier.close()
    [event] = log_events
    assert event["event"] == "systemd notification failed"
    assert event["level"] == "warning"


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("400000", None, 0.2),
        ("60000000", None, 30.0),
        ("60000000", "self", 30.0),
        ("60000000", "other", None),  # meant for another process (e.g. a parent shell)
        (None, None, None),
        ("soon", None, None),
    ],
)
def test_watchdog_interval_is_half_the_timeout_for_this_process(
    monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None, expected: float | None
) -> None:
    if usec is None:
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    else:
        monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid is None:
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
    else:
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() if pid == "self" else os.getpid() + 1))
    assert watchdog_interval() == expected
