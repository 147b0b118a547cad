"""The ledger concern of the store: which version of which file each goal has applied.

What it guarantees: exactly once. An entry is written only by the
transaction that applies the file (`record_file` on either transaction
kind), so a file's rows and its ledger entry commit together or not at
all: a process killed at any moment leaves the file either applied and
noted, or neither, and the next run applies it again from the start.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from connector.storage.records import LedgerEntry

LEDGER_COLUMNS = "connection, goal, key, etag, config_fingerprint, rows, imported_at, run_id"
"""The `ledger` table's columns in `LedgerEntry` order (both backends' schema)."""


class FileLedger(ABC):
    """The files a goal has applied, read before a run decides what to apply."""

    @abstractmethod
    def ledger(self, connection: str, goal: str) -> dict[str, LedgerEntry]:
        """The files a goal has applied, by key."""


def ledger_row(entry: LedgerEntry, imported_at: Any) -> tuple[Any, ...]:
    """The values of `LEDGER_COLUMNS` for `entry`, its time as the backend keeps it."""
    return (
        entry.connection,
        entry.goal,
        entry.key,
        entry.etag,
        entry.config_fingerprint,
        entry.rows,
        imported_at,
        entry.run_id,
    )


def ledger_entry(row: Sequence[Any], imported_at: datetime) -> LedgerEntry:
    """An entry from a row of `LEDGER_COLUMNS`, its time read by the backend."""
    run_id = row[7]
    return LedgerEntry(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        int(row[5]),
        imported_at,
        None if run_id is None else int(run_id),
    )
