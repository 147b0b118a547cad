"""Which store a `database` setting names: a PostgreSQL URL, or a SQLite file path."""

from __future__ import annotations

from pathlib import Path

from connector.storage.base import ProfileStore
from connector.storage.postgres._url import is_postgres_url
from connector.storage.sqlite import SQLiteStore


def open_store(database: Path | str) -> ProfileStore:
    """A `postgresql://` URL opens a PostgresStore; anything else is a SQLite file path."""
    if isinstance(database, str) and is_postgres_url(database):
        # imported here: psycopg and its pool load only for stores that use them
        from connector.storage.postgres.store import PostgresStore  # noqa: PLC0415

        return PostgresStore(database)
    return SQLiteStore(database)
