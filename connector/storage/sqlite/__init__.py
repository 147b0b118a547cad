"""The embedded SQLite profile store: one file, one daemon (the default)."""

from connector.storage.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
