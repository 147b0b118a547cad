"""systemd's notify protocol: READY, RELOADING, STOPPING, STATUS and WATCHDOG datagrams.

A dozen lines of socket code; the `sdnotify` package is unmaintained and
does not handle abstract sockets, so we do not depend on it.
"""

from __future__ import annotations

import os
import socket
import time

import structlog

log = structlog.get_logger("connector.systemd")


class SystemdNotifier:
    """Sends to $NOTIFY_SOCKET when systemd (or a test) provides one; otherwise does nothing."""

    def __init__(self, address: str | None = None) -> None:
        self._address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self._socket: socket.socket | None = None
        if self._address:
            target = "\0" + self._address[1:] if self._address.startswith("@") else self._address
            self._target = target
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def send(self, *fields: str) -> None:
        if self._socket is None:
            return
        try:
            self._socket.sendto("\n".join(fields).encode(), self._target)
        except OSError as error:
            log.warning("systemd notification failed", error=str(error))

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval() -> float | None:
    """Half the watchdog timeout systemd set for us, in seconds, if it set one for this PID."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000
