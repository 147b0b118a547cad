"""The locks concern in PostgreSQL: run locks as session advisory locks, fire claims.

A run lock is `pg_try_advisory_lock` on a key hashed from the connection id,
held on a connection of its own: when the process holding it dies, its
session ends and the lock with it, with nothing to clean up by hand. The
`run_locks` table only remembers who holds it, for the message another
process gets, and which runs to mark interrupted when a lock is taken over.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from connector.errors import RunInProgressError, StoreError
from connector.storage.locks import RunLocks, already_running
from connector.storage.owners import process_alive
from connector.storage.postgres._db import Conn, now
from connector.storage.postgres._history import interrupt_runs
from connector.storage.postgres._keys import bigint_key
from connector.storage.postgres._session import Session

CLAIMS_KEPT = timedelta(days=7)
"""Fire claims older than this are deleted when the connection claims its next fire."""

Writer = Callable[[], AbstractContextManager[Conn]]


class AdvisoryLocks:
    """The run locks this store holds, on one dedicated session opened when first needed."""

    def __init__(self, connect: Callable[[], Conn], write: Writer, schema: str) -> None:
        self._connect = connect
        self._write = write
        self._schema = schema
        self._session: Conn | None = None
        self._held: dict[str, str] = {}

    def _key(self, connection: str) -> int:
        return bigint_key("run-lock", self._schema, connection)

    def acquire(self, connection: str, owner: str) -> None:
        holder = self._held.get(connection)
        if holder == owner:
            return
        if holder is not None:
            # two owners in one process: the lock is ours either way; settle it by the owner
            if process_alive(holder):
                self._refuse(connection, holder)
            self._take_over(connection, owner)
            return
        if self._session is None or self._session.closed:
            self._session = self._connect()
        row = self._session.execute(
            "SELECT pg_try_advisory_lock(%s)", (self._key(connection),)
        ).fetchone()
        if not (row and row[0]):
            self._refuse(connection, None)
        try:
            self._take_over(connection, owner)
        except BaseException:
            self._unlock(connection)
            raise

    def _refuse(self, connection: str, holder: str | None) -> None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT owner, acquired_at FROM run_locks WHERE connection = %s", (connection,)
            ).fetchone()
        if row is not None and (holder is None or row[0] == holder):
            started = f"started {row[1].isoformat()} by {row[0]}"
        else:
            started = f"by {holder}" if holder else "by another process"
        raise RunInProgressError(already_running(connection, started))

    def _take_over(self, connection: str, owner: str) -> None:
        """Note the new holder; the runs of a previous holder that is gone are interrupted."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT owner FROM run_locks WHERE connection = %s FOR UPDATE", (connection,)
            ).fetchone()
            if row is not None and row[0] != owner:
                interrupt_runs(conn, connection, row[0])
            conn.execute(
                "INSERT INTO run_locks (connection, owner, acquired_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (connection) DO UPDATE SET owner = excluded.owner, "
                "acquired_at = excluded.acquired_at",
                (connection, owner, now()),
            )
        self._held[connection] = owner

    def release(self, connection: str, owner: str) -> None:
        if self._held.get(connection) != owner:
            return
        with self._write() as conn:
            conn.execute(
                "DELETE FROM run_locks WHERE connection = %s AND owner = %s", (connection, owner)
            )
        self._unlock(connection)
        del self._held[connection]

    def _unlock(self, connection: str) -> None:
        if self._session is not None and not self._session.closed:
            self._session.execute("SELECT pg_advisory_unlock(%s)", (self._key(connection),))

    def close(self) -> None:
        """End the lock session: every lock it holds is released by the server."""
        self._held.clear()
        if self._session is not None:
            self._session.close()
            self._session = None


class PostgresLocks(Session, RunLocks):
    """`RunLocks` on the store's lock session (`AdvisoryLocks`) and its pool (fire claims)."""

    def acquire_run_lock(self, connection: str, owner: str) -> None:
        if self._in_transaction:
            raise StoreError("cannot take a run lock while a transaction is open on the same store")
        self._translate(lambda: self._locks.acquire(connection, owner))

    def release_run_lock(self, connection: str, owner: str) -> None:
        self._translate(lambda: self._locks.release(connection, owner))

    def claim_fire(self, connection: str, fire_time: datetime, owner: str) -> bool:
        """Insert the (connection, fire time) claim; True when it is `owner`'s.

        Also True when `owner` claimed it before: a retry after a lost connection, whose
        first claim committed without the answer reaching us, still runs its fire.
        """
        with self._write_conn() as conn:
            conn.execute(
                "DELETE FROM fire_claims WHERE connection = %s AND fire_time < %s",
                (connection, fire_time - CLAIMS_KEPT),
            )
            inserted = conn.execute(
                "INSERT INTO fire_claims (connection, fire_time, owner, claimed_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (connection, fire_time, owner, now()),
            ).rowcount
            if inserted == 1:
                return True
            row = conn.execute(
                "SELECT owner FROM fire_claims WHERE connection = %s AND fire_time = %s",
                (connection, fire_time),
            ).fetchone()
        return row is not None and row[0] == owner


__all__ = ["AdvisoryLocks", "PostgresLocks"]
