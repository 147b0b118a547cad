"""Fixtures of the reliability tests: the fault proxy in front of the session's moto server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from helpers import Harness


@pytest.fixture
def fault_proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    """A fresh proxy (no rules) in front of moto; point a connection's endpoint_url at `.url`."""
    with FaultProxy(moto_endpoint) as proxy:
        yield proxy


@pytest.fixture
async def plain_harness(tmp_path: Path, moto_endpoint: str) -> AsyncIterator[Harness]:
    """A goals folder, store and S3 client under `tmp_path`, closed even when the test fails."""
    harness = Harness(tmp_path, moto_endpoint)
    yield harness
    await harness.aclose()
