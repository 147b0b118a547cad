"""What every part of the SQLite store shares: its connection, short writes, the clock.

`SQLiteStore` is composed of one part per concern (`_profiles`, `_groups`,
`_ledger`, `_export_state`, `_history`, `_locks`); each part is a `Session`
and reads through `self._db` or writes through `self._write()`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from connector.errors import StoreError
from connector.storage.columns import PropertyColumns

CHUNK = 500
"""Bound for `IN (...)` lists, well under SQLite's variable limit."""


def now() -> str:
    """Time stamps are ISO text in UTC with microseconds: they sort and compare as written."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def time_of(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def chunks(values: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def placeholders(count: int) -> str:
    return ",".join("?" * count)


class Session:
    """The store's one connection and the state its parts share."""

    path: Path
    _db: sqlite3.Connection
    _columns: PropertyColumns
    _unique: frozenset[str] | None
    _in_transaction: bool
    binds_arrow_natively: bool
    """Rows go between Arrow and SQLite through `_arrow_bind` (see `_arrow_rows`)."""

    def _rollback(self) -> None:
        # SQLite rolls back by itself after some errors (disk full, I/O); a second
        # ROLLBACK would then fail and hide the error that matters
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _begin(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise StoreError(f"the profile store {self.path} is busy or locked: {error}") from error

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A short write outside a caller's transaction (history, locks, watermarks)."""
        if self._in_transaction:
            raise StoreError(
                "cannot write run history, locks, watermarks or unique properties "
                "while a transaction is open on the same store"
            )
        self._begin()
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
