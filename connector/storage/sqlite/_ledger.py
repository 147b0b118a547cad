"""The ledger concern in SQLite: the files each goal has applied.

`record_file` runs inside the file's own write transaction (either kind),
so a file's rows and its ledger entry commit together.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from connector.storage.ledger import LEDGER_COLUMNS, FileLedger, ledger_entry, ledger_row
from connector.storage.records import LedgerEntry
from connector.storage.sqlite._db import Session


class SQLiteLedger(Session, FileLedger):
    """`FileLedger` on the store's connection."""

    def ledger(self, connection: str, goal: str) -> dict[str, LedgerEntry]:
        rows = self._db.execute(
            f"SELECT {LEDGER_COLUMNS} FROM ledger WHERE connection = ? AND goal = ?",
            (connection, goal),
        ).fetchall()
        return {row[2]: ledger_entry(row, datetime.fromisoformat(row[6])) for row in rows}


def record_file(db: sqlite3.Connection, entry: LedgerEntry) -> None:
    """Note in the ledger, inside the open transaction, that a goal applied this file."""
    db.execute(
        f"INSERT OR REPLACE INTO ledger ({LEDGER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ledger_row(entry, entry.imported_at.isoformat()),
    )
