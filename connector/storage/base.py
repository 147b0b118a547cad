"""The profile store: the one interface every layer above storage uses.

Nothing above `connector.storage` knows SQL. `ProfileStore` is the
composition of one interface per concern, each in a module of its own
(APScheduler 4's data store split the same way):

    profiles.py      StoredProfiles  profiles, unique properties, change counts
    groups.py        StoredGroups    groups and the groups of profiles
    ledger.py        FileLedger      the files each goal has applied
    export_state.py  ExportState     watermarks, export members, open uploads
    history.py       RunHistory      runs and their rejected rows
    locks.py         RunLocks        run locks and fire claims
    transaction.py   StoreTransaction  the row path's writes (one file at a time)
    batches.py       BatchTransaction  the columnar engine's writes

plus the two ways to write and the store's lifecycle. A backend
(`connector.storage.sqlite`, `connector.storage.postgres`) implements each
concern in a private module of its own and composes them. Code that needs
one concern takes the narrow interface; code that needs several, or writes,
takes a `ProfileStore`.

Stores are synchronous and used from one thread at a time; async code calls
them through `asyncio.to_thread`.
"""

from __future__ import annotations

from abc import abstractmethod
from contextlib import AbstractContextManager

from connector.storage.batches import BatchTransaction
from connector.storage.export_state import ExportState
from connector.storage.groups import StoredGroups
from connector.storage.history import RunHistory
from connector.storage.ledger import FileLedger
from connector.storage.locks import RunLocks
from connector.storage.profiles import PROFILE_ID, StoredProfiles
from connector.storage.transaction import StoreTransaction


class ProfileStore(StoredProfiles, StoredGroups, FileLedger, ExportState, RunHistory, RunLocks):
    """Profiles, groups, the file ledger, export state, run history and run locks."""

    # -- writing ------------------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractContextManager[StoreTransaction]:
        """Open a write transaction; at most one is open at a time per store."""

    columnar: bool = False
    """Whether `batch_transaction` is available (the columnar import engine)."""

    def batch_transaction(self) -> AbstractContextManager[BatchTransaction]:
        """Open a write transaction for the columnar engine (one file's batches and ledger)."""
        raise NotImplementedError(f"{type(self).__name__} has no columnar engine")

    # -- lifecycle -----------------------------------------------------------
    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> ProfileStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["PROFILE_ID", "ProfileStore", "StoreTransaction"]
