"""`PostgresStore`: the profile store in a PostgreSQL database that several daemons share.

Reads and short writes use a small connection pool; a write transaction
keeps one pooled connection until it commits; run locks live on a session
of their own (see `_locks`). Every error names the server as host:port and
database, never the password.

`PostgresStore` connects, migrates and owns the transactions; each concern
of `ProfileStore` is a part of its own, in this package: `_profiles`,
`_groups`, `_ledger`, `_export_state`, `_history`, `_locks`, and the two
write transactions `_transaction` and `_batches`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import ExitStack, contextmanager

from psycopg_pool import ConnectionPool

from connector.errors import StoreError, StoreNotFoundError
from connector.redaction import register_secrets
from connector.storage.base import ProfileStore
from connector.storage.batches import BatchTransaction
from connector.storage.postgres._batches import PostgresBatchTransaction
from connector.storage.postgres._changes import ChangeSequence
from connector.storage.postgres._columns import PropertyColumns
from connector.storage.postgres._export_state import PostgresExportState
from connector.storage.postgres._groups import PostgresGroups
from connector.storage.postgres._history import PostgresHistory
from connector.storage.postgres._ledger import PostgresLedger
from connector.storage.postgres._locks import AdvisoryLocks, PostgresLocks
from connector.storage.postgres._profiles import PostgresProfiles
from connector.storage.postgres._schema import has_store, migrate, schema_version
from connector.storage.postgres._session import CONNECT_TIMEOUT_S, POOL_TIMEOUT_S, configure
from connector.storage.postgres._transaction import PostgresTransaction
from connector.storage.postgres._url import parse_postgres_url, redact_url, url_secrets
from connector.storage.transaction import StoreTransaction


class PostgresStore(
    PostgresProfiles,
    PostgresGroups,
    PostgresLedger,
    PostgresExportState,
    PostgresHistory,
    PostgresLocks,
    ProfileStore,
):
    """A `ProfileStore` in PostgreSQL; the schema is migrated on open."""

    def __init__(self, url: str, *, pool_size: int = 4, create: bool = True) -> None:
        register_secrets(url_secrets(url))
        try:
            address = parse_postgres_url(url)
        except ValueError as error:
            raise StoreError(str(error)) from None
        self.url = url
        self.where = f"PostgreSQL at {address.host}:{address.port} (database {address.dbname})"
        self._secrets = url_secrets(url)
        with self._connect() as conn:
            row = conn.execute("SELECT current_schema()").fetchone()
            if row is None or row[0] is None:
                if not create:
                    raise StoreNotFoundError(f"no store at {redact_url(url)}: no schema")
                raise StoreError(f"{self.where} has no schema to create the store in")
            self.schema = str(row[0])
            if not create and not has_store(conn, self.schema):
                raise StoreNotFoundError(
                    f"no store at {redact_url(url)}: schema {self.schema!r} holds no connector "
                    "store (a run or `connector store copy` creates one)"
                )
            self._translate(lambda: migrate(conn, self.schema, self.where))
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            configure=configure,
            timeout=POOL_TIMEOUT_S,
            name="connector-store",
            open=True,
        )
        self._registry = PropertyColumns()
        self._changes = ChangeSequence(self.schema)
        self._locks = AdvisoryLocks(self._connect, self._write_conn, self.schema)
        self._unique = None
        self._in_transaction = False

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self.url)!r})"

    def schema_version(self) -> int:
        with self._conn() as conn:
            return schema_version(conn)

    # -- transactions ----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        with self._transaction() as writes:
            yield writes

    columnar = True

    @contextmanager
    def batch_transaction(self) -> Iterator[BatchTransaction]:
        """The columnar engine's file transaction, opened once it knows its properties."""
        with ExitStack() as stack:

            def open_transaction(properties: Collection[str]) -> PostgresTransaction:
                if properties:
                    self.ensure_properties(properties)  # before, never inside, the long one
                return stack.enter_context(self._transaction())

            yield PostgresBatchTransaction(open_transaction, self._registry)

    @contextmanager
    def _transaction(self) -> Iterator[PostgresTransaction]:
        if self._in_transaction:
            raise StoreError("a write transaction is already open on this store")
        self._in_transaction = True
        try:
            with self._conn("failed; nothing of this transaction was kept") as conn:
                try:
                    with conn.transaction():
                        # ALTER TABLE waits for a transaction that uses `profiles`: lock it
                        # first, and the registry read next stays true until the commit
                        conn.execute("LOCK TABLE profiles IN ACCESS SHARE MODE")
                        # and a declaration of a unique property waits for this transaction
                        conn.execute("LOCK TABLE unique_properties IN ROW SHARE MODE")
                        self._registry.refresh(conn)
                        unique = self._read_unique(conn)
                        writes = PostgresTransaction(conn, self._registry, unique, self._changes)
                        yield writes
                        writes.before_commit()
                except BaseException:
                    self._registry.forget()  # columns it added are gone with the rollback
                    raise
        finally:
            self._in_transaction = False

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        self._locks.close()
        self._pool.close()
