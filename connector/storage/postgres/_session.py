"""What every part of the PostgreSQL store shares: its connections and how errors read.

`PostgresStore` is composed of one part per concern (`_profiles`, `_groups`,
`_ledger`, `_export_state`, `_history`, `_locks`); each part is a `Session`:
it reads on a pooled connection (`self._conn()`), writes in a short
transaction of its own (`self._write_conn()`), and every error it raises
names the server as host:port and database, never the password.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import psycopg
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from connector.errors import StoreError, StoreUnavailableError
from connector.limits import POSTGRES_CONNECT_TIMEOUT_SECONDS, POSTGRES_POOL_TIMEOUT_SECONDS
from connector.redaction import redact_text
from connector.storage import _json
from connector.storage.postgres._changes import ChangeSequence
from connector.storage.postgres._columns import PropertyColumns
from connector.storage.postgres._db import Conn

if TYPE_CHECKING:
    from connector.storage.postgres._locks import AdvisoryLocks

CONNECT_TIMEOUT_S = POSTGRES_CONNECT_TIMEOUT_SECONDS
POOL_TIMEOUT_S = POSTGRES_POOL_TIMEOUT_SECONDS
CONNECTION_LOST_STATES = ("08", "57P01", "57P02", "57P03")
"""SQLSTATE class 08 (connection exception) and the server shutting down or starting up."""
T = TypeVar("T")


class Session:
    """The store's address, pool and shared state, and the connections its parts use."""

    url: str
    where: str
    schema: str
    _secrets: list[str]
    _pool: ConnectionPool[Conn]
    _registry: PropertyColumns
    _changes: ChangeSequence
    _locks: AdvisoryLocks
    _unique: frozenset[str] | None
    _in_transaction: bool

    def _connect(self) -> Conn:
        """A session of its own (migrations, run locks)."""
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as error:
            raise StoreUnavailableError(
                f"cannot connect to {self.where}: {self._clean(error)}"
            ) from None
        configure(conn)
        return conn

    def _clean(self, error: BaseException) -> str:
        return redact_text(str(error).strip(), also=self._secrets)

    def _store_error(self, error: psycopg.Error, failed: str) -> StoreError:
        """A lost or refused connection is `StoreUnavailableError` (worth retrying); a
        statement the server refused is a plain `StoreError`."""
        message = f"{self.where} {failed}: {self._clean(error)}"
        if _connection_lost(error):
            return StoreUnavailableError(message)
        return StoreError(message)

    def _translate(self, work: Callable[[], T]) -> T:
        try:
            return work()
        except psycopg.Error as error:
            raise self._store_error(error, "failed") from None

    @contextmanager
    def _conn(self, failed: str = "failed") -> Iterator[Conn]:
        """A pooled connection in autocommit mode; server errors become StoreError."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout:
            raise StoreUnavailableError(
                f"cannot connect to {self.where}: no connection within {POOL_TIMEOUT_S:.0f}s"
            ) from None
        except psycopg.Error as error:
            raise self._store_error(error, failed) from None
        except UnicodeEncodeError as error:
            raise StoreError(f"{self.where} {failed}: a value is not valid text: {error}") from None

    @contextmanager
    def _write_conn(self) -> Iterator[Conn]:
        """A short transaction outside a caller's (history, locks, watermarks)."""
        if self._in_transaction:
            raise StoreError(
                "cannot write run history, locks, watermarks or unique properties "
                "while a transaction is open on the same store"
            )
        with self._conn() as conn, conn.transaction():
            yield conn

    def _scalar(self, query: str, params: tuple[object, ...] = ()) -> int:
        with self._conn() as conn:
            row = conn.execute(query, params).fetchone()
        return int(row[0]) if row else 0


def _connection_lost(error: psycopg.Error) -> bool:
    if not isinstance(error, psycopg.OperationalError):
        return False
    state = error.sqlstate
    return state is None or state.startswith(CONNECTION_LOST_STATES)


def configure(conn: Conn) -> None:
    """Every session reads and writes time stamps in UTC, and jsonb through orjson
    (7x psycopg's default `json.dumps` on group properties; the server normalises jsonb).

    JIT is off: the engine's statements each touch one batch, but the planner
    prices them by stale statistics (a temporary table it has never analysed,
    a store that grew inside the file's transaction) far above
    `jit_above_cost`, and compiling took 65-100 ms of each 50,000-key lookup
    that ran in 45-180 ms without it (PostgreSQL 15, 1M profiles).
    """
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute("SET jit = off")
    set_json_dumps(_json.dumps, conn)
    set_json_loads(_json.loads, conn)
