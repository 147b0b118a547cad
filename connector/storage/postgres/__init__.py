"""The PostgreSQL profile store: one database that several daemons share.

`PostgresStore` is imported on first use, so commands on a SQLite store
never load psycopg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector.storage.postgres._url import is_postgres_url, parse_postgres_url, redact_url

if TYPE_CHECKING:
    from connector.storage.postgres.store import PostgresStore


def __getattr__(name: str) -> object:
    if name == "PostgresStore":
        from connector.storage.postgres.store import PostgresStore  # noqa: PLC0415

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PostgresStore", "is_postgres_url", "parse_postgres_url", "redact_url"]
