"""The ledger concern in PostgreSQL: the files each goal has applied.

`record_file` runs inside the file's own write transaction (either kind),
so a file's rows and its ledger entry commit together.
"""

from __future__ import annotations

from connector.storage.ledger import LEDGER_COLUMNS, FileLedger, ledger_entry, ledger_row
from connector.storage.postgres._db import Conn
from connector.storage.postgres._session import Session
from connector.storage.records import LedgerEntry


class PostgresLedger(Session, FileLedger):
    """`FileLedger` on the store's pool."""

    def ledger(self, connection: str, goal: str) -> dict[str, LedgerEntry]:
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {LEDGER_COLUMNS} FROM ledger WHERE connection = %s AND goal = %s",
                (connection, goal),
            ).fetchall()
        return {row[2]: ledger_entry(row, row[6]) for row in rows}


def record_file(conn: Conn, entry: LedgerEntry) -> None:
    """Note in the ledger, inside the open transaction, that a goal applied this file."""
    conn.execute(
        f"INSERT INTO ledger ({LEDGER_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (connection, goal, key) DO UPDATE SET etag = excluded.etag, "
        "config_fingerprint = excluded.config_fingerprint, rows = excluded.rows, "
        "imported_at = excluded.imported_at, run_id = excluded.run_id",
        ledger_row(entry, entry.imported_at),
    )
