"""The locks concern in SQLite: a row of `run_locks` per running connection.

One SQLite file has one daemon, so every scheduled fire is its own (the
default `claim_fire`); a lock whose holder process is gone is taken over.
"""

from __future__ import annotations

from connector.errors import RunInProgressError
from connector.storage.history import interruption
from connector.storage.locks import RunLocks, already_running
from connector.storage.owners import process_alive
from connector.storage.sqlite._db import Session, now


class SQLiteLocks(Session, RunLocks):
    """`RunLocks` on the store's connection."""

    def acquire_run_lock(self, connection: str, owner: str) -> None:
        with self._write() as db:
            row = db.execute(
                "SELECT owner, acquired_at FROM run_locks WHERE connection = ?", (connection,)
            ).fetchone()
            if row is not None and row[0] != owner:
                if process_alive(row[0]):
                    raise RunInProgressError(
                        already_running(connection, f"started {row[1]} by {row[0]}")
                    )
                db.execute(
                    "UPDATE runs SET status = ?, ended_at = ?, error = ? "
                    "WHERE connection = ? AND status = ?",
                    interruption(connection, row[0], now()),
                )
            db.execute(
                "INSERT OR REPLACE INTO run_locks (connection, owner, acquired_at) VALUES (?, ?, ?)",
                (connection, owner, now()),
            )

    def release_run_lock(self, connection: str, owner: str) -> None:
        with self._write() as db:
            db.execute(
                "DELETE FROM run_locks WHERE connection = ? AND owner = ?", (connection, owner)
            )
