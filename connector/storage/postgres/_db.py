"""Shared small pieces of the PostgreSQL store: the connection type and the clock."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from psycopg.rows import TupleRow

Conn = psycopg.Connection[TupleRow]


def now() -> datetime:
    """Timestamps come from this process, as in the SQLite store (not the server's clock)."""
    return datetime.now(UTC)
