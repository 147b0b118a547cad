"""The change sequence: one number per write transaction, and a watermark that is safe to export to.

Write transactions run concurrently (several daemons), so numbers are taken
from a sequence and can commit out of order; a rolled-back transaction leaves
a gap. An incremental export must never move its watermark past a number
whose transaction may still commit, or that transaction's profiles would be
skipped forever. So every open transaction holds a shared advisory lock on
its number, and `safe_change_seq` answers "the highest number below every
open transaction" (or the sequence's last value when none is open). A gate
lock closes the window between `nextval` and taking that lock.

Numbers are limited to 2^31 - 1 (the advisory key is a 32-bit integer):
two thousand million write transactions.
"""

from __future__ import annotations

from connector.storage.postgres._db import Conn
from connector.storage.postgres._keys import bigint_key, int_key


class ChangeSequence:
    """Numbers and the safe watermark of one schema's change sequence."""

    def __init__(self, schema: str) -> None:
        self._gate = bigint_key("change-seq-gate", schema)
        self._space = int_key("change-seq", schema)

    def next(self, conn: Conn) -> int:
        """A number for the transaction open on `conn`, announced until it ends."""
        conn.execute("SELECT pg_advisory_lock_shared(%s)", (self._gate,))
        try:
            row = conn.execute(
                "SELECT s, pg_advisory_xact_lock_shared(%s, s::integer) "
                "FROM (SELECT nextval('change_seqs') AS s) AS n",
                (self._space,),
            ).fetchone()
        except BaseException:
            # the gate is a session lock: end the session, or every reader waits for it
            conn.close()
            raise
        conn.execute("SELECT pg_advisory_unlock_shared(%s)", (self._gate,))
        assert row is not None  # noqa: S101 -- a SELECT over one row returns one row
        return int(row[0])

    def commit(self, conn: Conn, seq: int) -> None:
        """Record, as the last statement of the transaction that carries it, that `seq` commits."""
        conn.execute(
            "UPDATE meta SET value = greatest(value::bigint, %s)::text WHERE key = 'change_seq'",
            (seq,),
        )

    def safe(self, conn: Conn) -> int:
        """The latest number below which every transaction has committed or rolled back."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._gate,))
            row = conn.execute(
                "SELECT (SELECT min(objid::bigint) - 1 FROM pg_locks "
                "        WHERE locktype = 'advisory' AND classid::bigint = %s AND objsubid = 2 "
                "        AND database = (SELECT oid FROM pg_database "
                "                        WHERE datname = current_database())), "
                "       (SELECT value::bigint FROM meta WHERE key = 'change_seq')",
                (self._space & 0xFFFFFFFF,),
            ).fetchone()
        assert row is not None  # noqa: S101 -- a SELECT without FROM returns one row
        below_open, committed = row
        return int(committed) if below_open is None else min(int(committed), int(below_open))
