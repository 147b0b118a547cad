"""Builders shared by the service tests: goals folders, a real SMTP server, a notify socket.

Everything here is real: connection files on disk, moto's S3 over HTTP, SQLite
files, aiosmtpd listening on 127.0.0.1, an AF_UNIX datagram socket standing in
for systemd's $NOTIFY_SOCKET. Nothing is mocked; the one seam is `GateProgress`,
which holds an import between two batches so a test can act mid-file.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from connector.service.daemon import Daemon
from connector.service.notify import SystemdNotifier
from connector.settings import Settings
from connector.sources import S3Client, S3Credentials
from connector.storage import RunRecord, SQLiteStore

BUCKET = "svc-exports"
PREFIX = "in/"
CONNECTION = "crm"
GOAL = "customers"
SMTP_USER = "mailer"
SMTP_PASSWORD = "smtp-Pl4nted-Passw0rd-81c2"  # a planted secret: must never be shown
S3_KEY_ID = "AKIAPLANTEDKEY0000042"
S3_SECRET = "s3-Pl4nted-Secret-Key-5d9e0b"  # a planted secret: must never be shown
SECRET_ENV = {"SVC_S3_KEY_ID": S3_KEY_ID, "SVC_S3_SECRET": S3_SECRET}

# -- goals folders ---------------------------------------------------------------------


def import_goal(name: str = GOAL, *, bucket: str = BUCKET) -> dict[str, Any]:
    return {
        "type": "import-profiles",
        "name": name,
        "source": {"bucket": bucket, "prefix": PREFIX, "files": ["*.csv"]},
        "match": {"column": "customer_id", "property": "customer_id", "create_missing": True},
        "mappings": [
            {"column": "email", "property": "email", "rule": "set"},
            {"column": "points", "property": "points", "rule": "sum", "type": "number"},
        ],
    }


def write_connection(
    goals_dir: Path,
    endpoint: str,
    connection_id: str = CONNECTION,
    *,
    schedule: dict[str, Any] | None = None,
    emails: list[str] | None = None,
    on_success: bool = False,
    goals: list[dict[str, Any]] | None = None,
    secrets_from_env: bool = False,
    enabled: bool = True,
) -> Path:
    """`goals/<id>.yaml`: storage on moto, a schedule (default `quiet_schedule()`), goals.

    `schedule=None` writes the quiet default; pass `{}` for none (on demand only).
    """
    data: dict[str, Any] = {
        "id": connection_id,
        "name": f"Service test {connection_id}",
        "enabled": enabled,
        "storage": {
            "region": "eu-west-1",
            "endpoint_url": endpoint,
            "access_key_id": "${SVC_S3_KEY_ID}" if secrets_from_env else "svc-key-id",
            "secret_access_key": "${SVC_S3_SECRET}" if secrets_from_env else "svc-secret-key",
        },
        "schedule": schedule if schedule is not None else quiet_schedule(),
        "goals": goals if goals is not None else [import_goal()],
    }
    if not data["schedule"]:
        del data["schedule"]
    if emails is not None:
        data["notifications"] = {"email": emails, "on_success": on_success}
    path = goals_dir / f"{connection_id}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")
    return path


def quiet_schedule() -> dict[str, Any]:
    """Once a day, twelve hours from now: a test never meets a fire it did not make."""
    later = datetime.now(UTC) + timedelta(hours=12)
    return {"timezone": "UTC", "every_minutes": 1440, "at": later.strftime("%H:%M")}


def customers_csv(count: int, *, start: int = 1, bad_points: set[int] | None = None) -> bytes:
    """`count` customer rows; rows listed in `bad_points` get a non-number (rejected)."""
    lines = ["customer_id,email,points"]
    for number in range(start, start + count):
        points = "lots" if bad_points and number in bad_points else "2"
        lines.append(f"C{number:05d},c{number}@example.com,{points}")
    return ("\n".join(lines) + "\n").encode()


async def put_files(endpoint: str, files: dict[str, bytes], *, bucket: str = BUCKET) -> None:
    credentials = S3Credentials(
        region="eu-west-1",
        endpoint_url=endpoint,
        access_key_id="svc-key-id",
        secret_access_key="svc-secret-key",
    )
    async with S3Client(credentials) as s3:
        await s3.ensure_bucket(bucket)
        for key, data in files.items():
            await s3.put_object(bucket, key, data)


def service_settings(root: Path, **overrides: Any) -> Settings:
    """Daemon settings on a goals folder and store under `root`, polling goal files fast."""
    values: dict[str, Any] = {
        "goals_dir": root / "goals",
        "database": root / "store" / "connector.db",
        "watch_interval": 0.2,
        "shutdown_timeout": 10,
        **overrides,
    }
    return Settings(**values)


# -- waiting -------------------------------------------------------------------------


async def eventually(
    check: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def wait_until(check: Callable[[], Any], *, timeout: float = 15.0, what: str = "condition") -> Any:
    """`eventually` for code outside the event loop (subprocess tests)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def runs_of(database: Path, connection: str = CONNECTION) -> list[RunRecord]:
    """The history as a separate reader sees it (oldest first)."""
    store = SQLiteStore(database)
    try:
        return list(reversed(store.list_runs(connection)))
    finally:
        store.close()


def finished_runs(database: Path, connection: str = CONNECTION) -> list[RunRecord]:
    return [run for run in runs_of(database, connection) if run.ended_at is not None]


# -- the daemon in this process ------------------------------------------------------


@asynccontextmanager
async def running_daemon(settings: Settings) -> AsyncIterator[Daemon]:
    """`Daemon.serve()` in the test's event loop; stopped (as by SIGTERM) on exit.

    Its notifier is off whatever $NOTIFY_SOCKET says: the subprocess tests cover systemd.
    """
    daemon = Daemon(settings, SystemdNotifier(address=""))
    served = asyncio.create_task(daemon.serve())
    await eventually(
        lambda: served.done() or (daemon._scheduler is not None and daemon._scheduler.running),
        what="the daemon to start",
    )
    if served.done():
        raise AssertionError(f"the daemon did not start: serve() returned {served.result()}")
    try:
        yield daemon
    finally:
        if not daemon.stopping.is_set():
            daemon.request_stop()
        assert await asyncio.wait_for(served, timeout=20) == 0


def fire_now(daemon: Daemon, connection_id: str = CONNECTION) -> None:
    """Make the scheduler fire a connection's job now, through APScheduler itself."""
    assert daemon._scheduler is not None
    daemon._scheduler.modify_job(connection_id, next_run_time=datetime.now(UTC))


def job_ids(daemon: Daemon) -> set[str]:
    assert daemon._scheduler is not None
    return {job.id for job in daemon._scheduler.get_jobs()}


class GateProgress:
    """A run's progress that stops the import after its first batch until released.

    `advance` is called in the import's worker thread after a batch is applied
    inside the file's (still open) transaction: holding it there is "mid-file".
    """

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches = 0

    def __call__(self) -> GateProgress:  # stands in for the LogProgress class
        return self

    def __enter__(self) -> GateProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def file_started(self, goal: str, key: str, size: int) -> None:
        return None

    def advance(self, rows: int) -> None:
        self.batches += 1
        self.entered.set()
        if not self.release.wait(timeout=30):
            raise AssertionError("the test never released the gated import")

    def file_finished(self, goal: str, key: str, outcome: str) -> None:
        return None


# -- a real SMTP server --------------------------------------------------------------


@dataclass
class Received:
    envelope_from: str | None
    recipients: list[str]
    message: Message
    authenticated: bool
    tls: bool

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        payload = self.message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode().replace("\r\n", "\n")  # SMTP carries CRLF line ends

    @property
    def raw(self) -> str:
        return self.message.as_string()


@dataclass
class MailHandler:
    received: list[Received] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 -- aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                message_from_bytes(content),
                bool(session.authenticated),
                session.ssl is not None,
            )
        )
        return "250 OK"


def password_authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


class LocalSMTP(Controller):
    """aiosmtpd on 127.0.0.1 and a free port (the controller's own check needs the real port)."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@contextmanager
def smtp_server(**options: Any) -> Iterator[tuple[LocalSMTP, MailHandler]]:
    """A running aiosmtpd server and the messages it received."""
    handler = MailHandler()
    controller = LocalSMTP(handler, hostname="127.0.0.1", port=0, **options)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- systemd's notify socket -----------------------------------------------------------


class NotifyListener:
    """The receiving end of $NOTIFY_SOCKET: every datagram, as a dict of its fields."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.setblocking(False)
        self.messages: list[dict[str, str]] = []

    def drain(self) -> list[dict[str, str]]:
        while True:
            try:
                data = self.socket.recv(4096)
            except BlockingIOError:
                return self.messages
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            self.messages.append(fields)

    def wait_for(
        self, predicate: Callable[[dict[str, str]], bool], *, after: int = 0, timeout: float = 15
    ) -> int:
        """The index of the first message from `after` on that matches; fails on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for index, message in enumerate(self.drain()[after:], start=after):
                if predicate(message):
                    return index
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching notification; got {self.messages[after:]}")
            time.sleep(0.02)

    def close(self) -> None:
        self.socket.close()


# -- the command line in a subprocess ------------------------------------------------------


def connector_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a `connector` process on `root`'s goals folder and store."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CONNECTOR_", "NOTIFY_SOCKET", "WATCHDOG_"))
        and key != "PYTEST_CURRENT_TEST"
    }
    env.update(
        CONNECTOR_GOALS_DIR=str(root / "goals"),
        CONNECTOR_DATABASE=str(root / "store" / "connector.db"),
        CONNECTOR_LOG_FORMAT="json",
        **extra,
    )
    return env


def connector(
    root: Path, *argv: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m connector ARGV`, no terminal, output captured; `env` adds variables."""
    return subprocess.run(
        [sys.executable, "-m", "connector", *argv],
        env=connector_env(root, **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def start_daemon(root: Path, stderr_path: Path, **env: str) -> subprocess.Popen[bytes]:
    """`python -m connector daemon` in the background; its stderr (the log) goes to a file."""
    with stderr_path.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "connector", "daemon"],
            env=connector_env(root, **env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
