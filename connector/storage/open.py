"""Which store a `database` setting names: a PostgreSQL URL, or a SQLite file path."""

from __future__ import annotations

from pathlib import Path

from connector.errors import StoreNotFoundError
from connector.storage.base import ProfileStore
from connector.storage.postgres._url import is_postgres_url
from connector.storage.sqlite.store import SQLiteStore


def open_store(database: Path | str, *, create: bool = True) -> ProfileStore:
    """A `postgresql://` URL opens a PostgresStore; anything else is a SQLite file path.

    With `create=False` (the read commands) a missing store is StoreNotFoundError and
    nothing is written: no file, no folder, no schema.
    """
    if isinstance(database, str) and is_postgres_url(database):
        # imported here: psycopg and its pool load only for stores that use them
        from connector.storage.postgres.store import PostgresStore  # noqa: PLC0415

        return PostgresStore(database, create=create)
    path = Path(database)
    if not create and not _sqlite_store_at(path):
        raise StoreNotFoundError(f"no store at {path} (a run creates it)")
    return SQLiteStore(path)


def _sqlite_store_at(path: Path) -> bool:
    """A file with something in it (an empty one is what older read commands left behind)."""
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False
