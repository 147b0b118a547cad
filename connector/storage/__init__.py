"""The profile store: an abstract interface, the embedded SQLite backend and PostgreSQL."""

from connector.storage.base import PROFILE_ID, ProfileStore, StoreTransaction
from connector.storage.open import open_store
from connector.storage.owners import default_owner
from connector.storage.records import (
    Contribution,
    ExportWatermark,
    FileKey,
    Group,
    LedgerEntry,
    OpenUpload,
    Profile,
    RowReject,
    RunCounts,
    RunRecord,
    RunStatus,
    Trigger,
)
from connector.storage.sqlite.store import SQLiteStore

__all__ = [
    "PROFILE_ID",
    "Contribution",
    "ExportWatermark",
    "FileKey",
    "Group",
    "LedgerEntry",
    "OpenUpload",
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
