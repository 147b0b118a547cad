"""A dead or silent S3 endpoint fails within seconds, naming the endpoint and never a secret.

Three real endpoints on 127.0.0.1: a closed port (connections refused), a
listener whose queue is full (connections never complete, like a firewall
that drops packets) and a server that accepts and never answers (a stalled
read). The defaults (1.5 s to connect, 3 attempts) fail the first two in a
few seconds; the connection's `storage` settings shorten or lengthen each.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import BUCKET, CONNECTION, Harness, import_goal

from connector.errors import SourceError
from connector.sources import S3Client, S3Credentials
from connector.storage import RunStatus

KEY_ID = "AKIDTIMEOUTCHECK"
SECRET = "SECRETTIMEOUTCHECK"


class SilentServer:
    """Accepts every connection and never answers: each request waits for its read timeout."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(client)

    def close(self) -> None:
        self._listener.close()
        for sock in self._held:
            with suppress(OSError):
                sock.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose connections never complete: its accept queue is full and nobody accepts."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # takes the queue's only place
    yield port
    filler.close()
    listener.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def credentials(endpoint: str, **settings: Any) -> S3Credentials:
    return S3Credentials(
        endpoint_url=endpoint, access_key_id=KEY_ID, secret_access_key=SECRET, **settings
    )


async def list_failure(creds: S3Credentials) -> tuple[str, float]:
    """The message of a failed listing and the seconds it took."""
    started = time.monotonic()
    async with S3Client(creds) as s3:
        with pytest.raises(SourceError) as caught:
            _ = [obj async for obj in s3.list_objects(BUCKET)]
    return str(caught.value), time.monotonic() - started


def assert_no_secret(text: str) -> None:
    assert KEY_ID not in text
    assert SECRET not in text


async def test_a_closed_port_fails_within_seconds_with_the_defaults_naming_the_endpoint() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"

    message, seconds = await list_failure(credentials(endpoint))

    assert seconds < 6  # 3 attempts, backoff up to 1 s then 2 s (was 6 attempts: up to 31 s)
    assert message.startswith(
        f"s3://{BUCKET}: listing objects failed: could not reach the S3 endpoint {endpoint}, "
        "3 attempts: "
    )
    assert_no_secret(message)


async def test_an_endpoint_that_never_completes_a_connection_fails_on_the_connect_timeout(
    unanswered_port: int,
) -> None:
    endpoint = f"http://127.0.0.1:{unanswered_port}"

    message, seconds = await list_failure(credentials(endpoint))

    assert seconds < 9  # 3 x 1.5 s, backoff up to 3 s
    assert message == (
        f"s3://{BUCKET}: listing objects failed: could not reach the S3 endpoint {endpoint}: "
        "no connection within 1.5 s, 3 attempts (storage.connect_timeout_seconds; check "
        "endpoint_url and the network)"
    )
    assert_no_secret(message)


async def test_an_endpoint_that_accepts_and_never_answers_is_retried_then_fails_on_the_read_timeout(
    silent: SilentServer,
) -> None:
    endpoint = f"http://127.0.0.1:{silent.port}"

    message, seconds = await list_failure(credentials(endpoint, read_timeout=1, max_attempts=2))

    assert seconds < 6  # 2 x 1 s, backoff up to 1 s
    assert silent.accepted == 2  # retried like any transient failure
    assert message == (
        f"s3://{BUCKET}: listing objects failed: the S3 endpoint {endpoint} did not answer "
        "within 1 s, 2 attempts (storage.read_timeout_seconds)"
    )
    assert_no_secret(message)


@pytest.fixture
def silent_connection(tmp_path: Path, silent: SilentServer) -> Harness:
    """A connection whose endpoint is the silent server, with short timeouts in its file."""
    harness = Harness(tmp_path, f"http://127.0.0.1:{silent.port}")
    data = {
        "id": CONNECTION,
        "storage": {
            "region": "eu-west-1",
            "endpoint_url": harness.endpoint,
            "access_key_id": KEY_ID,
            "secret_access_key": SECRET,
            "connect_timeout_seconds": 1,
            "read_timeout_seconds": 1.5,
            "max_attempts": 2,
        },
        "goals": [import_goal()],
    }
    (harness.goals_dir / f"{CONNECTION}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return harness


def test_a_run_against_a_silent_endpoint_fails_in_seconds_and_the_history_says_why(
    silent_connection: Harness, silent: SilentServer
) -> None:
    harness = silent_connection
    started = time.monotonic()

    ran = harness.cli("run", CONNECTION, timeout=30)

    assert time.monotonic() - started < 15  # the process's start-up included
    assert ran.returncode != 0
    expected = (
        f"the S3 endpoint {harness.endpoint} did not answer within 1.5 s, 2 attempts "
        "(storage.read_timeout_seconds)"
    )
    assert expected in ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr
    assert_no_secret(ran.stdout + ran.stderr)
    assert silent.accepted == 2
    [record] = harness.store.list_runs()
    assert record.status is RunStatus.FAILURE
    assert record.error is not None
    assert expected in record.error
    assert_no_secret(record.error)
