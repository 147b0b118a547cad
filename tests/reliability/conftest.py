"""Fixtures of the reliability tests: the fault proxy in front of the session's moto server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fault_proxy import FaultProxy


@pytest.fixture
def fault_proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    """A fresh proxy (no rules) in front of moto; point a connection's endpoint_url at `.url`."""
    with FaultProxy(moto_endpoint) as proxy:
        yield proxy
