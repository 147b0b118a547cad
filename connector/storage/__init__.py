"""The profile store: an interface per concern, the embedded SQLite backend and PostgreSQL.

`ProfileStore` (`base.py`) composes the concerns; each has its own module
and interface: `StoredProfiles`, `StoredGroups`, `FileLedger`,
`ExportState`, `RunHistory`, `RunLocks`, and the two write transactions
`StoreTransaction` and `BatchTransaction`.
"""

from connector.storage.base import ProfileStore
from connector.storage.batches import BatchTransaction
from connector.storage.export_state import ExportState
from connector.storage.groups import StoredGroups
from connector.storage.history import RunHistory
from connector.storage.ledger import FileLedger
from connector.storage.locks import RunLocks
from connector.storage.open import open_store
from connector.storage.owners import default_owner
from connector.storage.profiles import PROFILE_ID, StoredProfiles
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
from connector.storage.transaction import StoreTransaction

__all__ = [
    "PROFILE_ID",
    "BatchTransaction",
    "Contribution",
    "ExportState",
    "ExportWatermark",
    "FileKey",
    "FileLedger",
    "Group",
    "LedgerEntry",
    "OpenUpload",
    "Profile",
    "ProfileStore",
    "RowReject",
    "RunCounts",
    "RunHistory",
    "RunLocks",
    "RunRecord",
    "RunStatus",
    "SQLiteStore",
    "StoreTransaction",
    "StoredGroups",
    "StoredProfiles",
    "Trigger",
    "default_owner",
    "open_store",
]
