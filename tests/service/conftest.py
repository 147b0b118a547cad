"""Fixtures of the service tests: a folder per test, moto reset, a short notify-socket path."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from service_support import NotifyListener
from structlog.testing import LogCapture

from connector.logging import redact_secrets


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The test's folder: `goals/` for connection files, `store/` for the SQLite file."""
    (tmp_path / "goals").mkdir()
    return tmp_path


@pytest.fixture
def endpoint(moto_endpoint: str, reset_moto: None) -> str:
    """The session's moto S3 server, emptied for this test."""
    return moto_endpoint


@pytest.fixture
def notify_socket() -> Iterator[NotifyListener]:
    """A datagram socket standing in for systemd's; AF_UNIX paths must stay short."""
    with tempfile.TemporaryDirectory(prefix="nfy") as folder:
        listener = NotifyListener(Path(folder) / "notify.sock")
        try:
            yield listener
        finally:
            listener.close()


@pytest.fixture
def log_events() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every structlog event of this test, after the production processors up to rendering.

    Context variables are merged and secrets redacted as in `configure_logging`;
    only the renderer is replaced by a list the test reads.
    """
    capture = LogCapture()
    previous = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            redact_secrets,
            capture,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    try:
        yield capture.entries
    finally:
        structlog.configure(**previous)
