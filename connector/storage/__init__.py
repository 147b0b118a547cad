"""The profile store: an abstract interface and its embedded SQLite backend."""

from pathlib import Path

from connector.storage.base import PROFILE_ID, ProfileStore, StoreTransaction
from connector.storage.records import (
    ExportWatermark,
    Group,
    LedgerEntry,
    Profile,
    RowReject,
    RunCounts,
    RunRecord,
    RunStatus,
    Trigger,
)
from connector.storage.sqlite import SQLiteStore, default_owner


def open_store(database: Path | str) -> ProfileStore:
    """Open the store a `database` setting names: a SQLite file path (the embedded default)."""
    return SQLiteStore(database)


__all__ = [
    "PROFILE_ID",
    "ExportWatermark",
    "Group",
    "LedgerEntry",
    "Profile",
    "ProfileStore",
    "RowReject",
    "RunCounts",
    "RunRecord",
    "RunStatus",
    "SQLiteStore",
    "StoreTransaction",
    "Trigger",
    "default_owner",
    "open_store",
]
