"""`PostgresStore`: the profile store in a PostgreSQL database that several daemons share.

Reads and short writes use a small connection pool; a write transaction
keeps one pooled connection until it commits; run locks live on a session
of their own (see `_locks`). Every error names the server as host:port and
database, never the password.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import TypeVar

import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from connector.errors import StoreError, StoreNotFoundError, StoreUnavailableError
from connector.limits import (
    MAX_REJECTS_STORED,
    POSTGRES_CONNECT_TIMEOUT_SECONDS,
    POSTGRES_POOL_TIMEOUT_SECONDS,
    STORE_PAGE_ROWS,
)
from connector.redaction import redact_text, register_secrets
from connector.storage import _json
from connector.storage.base import PROFILE_ID, ProfileStore, StoreTransaction
from connector.storage.batches import BatchTransaction
from connector.storage.postgres import _runs
from connector.storage.postgres._batches import PostgresBatchTransaction
from connector.storage.postgres._changes import ChangeSequence
from connector.storage.postgres._columns import PropertyColumns
from connector.storage.postgres._db import Conn
from connector.storage.postgres._locks import RunLocks, claim_fire
from connector.storage.postgres._profiles import fetch_profiles, having_value
from connector.storage.postgres._schema import has_store, migrate, schema_version
from connector.storage.postgres._transaction import PostgresTransaction
from connector.storage.postgres._url import parse_postgres_url, redact_url, url_secrets
from connector.storage.records import (
    ExportWatermark,
    Group,
    LedgerEntry,
    OpenUpload,
    Profile,
    RowReject,
    RunCounts,
    RunRecord,
    RunStatus,
    Trigger,
)

CONNECT_TIMEOUT_S = POSTGRES_CONNECT_TIMEOUT_SECONDS
POOL_TIMEOUT_S = POSTGRES_POOL_TIMEOUT_SECONDS
T = TypeVar("T")
_AMONG_CHUNK = 100_000
"""Ids a statement of `count_changed_among` takes at once."""


class PostgresStore(ProfileStore):
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
            configure=_configure,
            timeout=POOL_TIMEOUT_S,
            name="connector-store",
            open=True,
        )
        self._registry = PropertyColumns()
        self._changes = ChangeSequence(self.schema)
        self._locks = RunLocks(self._connect, self._write_conn, self.schema)
        self._unique: frozenset[str] | None = None
        self._in_transaction = False

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self.url)!r})"

    # -- connections and errors ------------------------------------------------------------
    def _connect(self) -> Conn:
        """A session of its own (migrations, run locks)."""
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as error:
            raise StoreUnavailableError(
                f"cannot connect to {self.where}: {self._clean(error)}"
            ) from None
        _configure(conn)
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

    def _read_unique(self, conn: Conn) -> frozenset[str]:
        rows = conn.execute("SELECT name FROM unique_properties").fetchall()
        self._unique = frozenset(str(name) for (name,) in rows)
        return self._unique

    def ensure_unique_properties(self, names: Collection[str]) -> None:
        missing = set(names) - self.unique_properties() - {PROFILE_ID}
        if not missing:
            return
        with self._write_conn() as conn:
            # waits for running write transactions, which maintain the identifiers they know of
            conn.execute("LOCK TABLE unique_properties IN EXCLUSIVE MODE")
            self._registry.refresh(conn)
            for name in sorted(missing):
                conn.execute(
                    "INSERT INTO unique_properties (name) VALUES (%s) ON CONFLICT DO NOTHING",
                    (name,),
                )
                column = self._registry.column_of(name)
                if column is not None:
                    conn.execute(
                        sql.SQL(
                            "INSERT INTO identifiers (property, value, profile_id) "
                            "SELECT %s, v, id FROM profiles, unnest({}) AS v "
                            "ORDER BY id ON CONFLICT DO NOTHING"
                        ).format(sql.Identifier(column)),
                        (name,),
                    )
        self._unique = None

    def key_normalization(self, name: str) -> str:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT normalize FROM unique_properties WHERE name = %s", (name,)
            ).fetchone()
        return "trim" if row is None else str(row[0])

    def identifier_values(self, name: str) -> Iterator[tuple[str, str]]:
        with self._conn() as conn:
            conn.autocommit = False  # a server-side cursor lives in a transaction
            try:
                with conn.cursor(name="identifier_values") as cursor:
                    cursor.execute(
                        "SELECT value, profile_id FROM identifiers WHERE property = %s", (name,)
                    )
                    while rows := cursor.fetchmany(5000):
                        yield from ((str(value), str(owner)) for value, owner in rows)
            finally:
                conn.rollback()
                conn.autocommit = True

    def ensure_properties(self, names: Collection[str]) -> None:
        """Add the columns of new properties in a short transaction of their own.

        A writer that knows its properties up front (an import goal's mapping)
        calls this before its file's transaction, so two long imports never
        wait for each other to add a column.
        """
        if all(self._registry.column_of(name) is not None for name in names):
            return  # columns are never dropped: a cached one exists (a rollback clears the cache)
        with self._write_conn() as conn:
            self._registry.ensure(conn, names)

    def unique_properties(self) -> frozenset[str]:
        if self._unique is None:
            with self._conn() as conn:
                return self._read_unique(conn)
        return self._unique

    # -- profiles --------------------------------------------------------------------------
    def get_profile(self, profile_id: str) -> Profile | None:
        with self._conn() as conn:
            found = fetch_profiles(conn, self._registry, sql.SQL("WHERE id = %s"), (profile_id,))
        return found[0] if found else None

    def find_profiles(self, property_name: str, value: str) -> list[Profile]:
        if property_name == PROFILE_ID:
            profile = self.get_profile(value)
            return [profile] if profile else []
        with self._conn() as conn:
            if property_name in self.unique_properties():
                return fetch_profiles(
                    conn,
                    self._registry,
                    sql.SQL(
                        "WHERE id IN (SELECT profile_id FROM identifiers "
                        "WHERE property = %s AND value = %s) ORDER BY id"
                    ),
                    (property_name, value),
                )
            condition = having_value(conn, self._registry, property_name)
            if condition is None:
                return []
            return fetch_profiles(conn, self._registry, condition, (value,))

    def iter_profiles(
        self, *, changed_after: int | None = None, batch_size: int = STORE_PAGE_ROWS
    ) -> Iterator[Profile]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        return self._iter_profiles(changed_after, batch_size)

    def _iter_profiles(self, changed_after: int | None, batch_size: int) -> Iterator[Profile]:
        # keyset pages, each its own statement: no transaction stays open while a caller works
        if changed_after is None:
            first = sql.SQL("ORDER BY id LIMIT %s")
            after = sql.SQL("WHERE id > %s ORDER BY id LIMIT %s")
            params: tuple[object, ...] = (batch_size,)
        else:
            # strictly after: a profile stamped with `changed_after` was exported by then
            first = sql.SQL("WHERE change_seq > %s ORDER BY change_seq, id LIMIT %s")
            after = sql.SQL("WHERE (change_seq, id) > (%s, %s) ORDER BY change_seq, id LIMIT %s")
            params = (changed_after, batch_size)
        condition = first
        while True:
            with self._conn() as conn:
                page = fetch_profiles(conn, self._registry, condition, params)
            yield from page
            if len(page) < batch_size:
                return
            last = page[-1]
            condition = after
            if changed_after is None:
                params = (last.id, batch_size)
            else:
                params = (last.change_seq, last.id, batch_size)

    def count_profiles(self) -> int:
        return self._scalar("SELECT count(*) FROM profiles")

    def change_seq(self) -> int:
        with self._conn() as conn:
            return self._changes.safe(conn)

    def count_profiles_changed_in(self, change_seqs: Collection[int]) -> int:
        seqs = sorted(set(change_seqs))
        if not seqs:
            return 0
        return self._scalar("SELECT count(*) FROM profiles WHERE change_seq = ANY(%s)", (seqs,))

    def count_changed_among(self, change_seqs: Collection[int], ids: pa.Array) -> int:
        seqs = sorted(set(change_seqs))
        return sum(
            self._scalar(
                "SELECT count(*) FROM profiles WHERE id = ANY(%s) AND change_seq = ANY(%s)",
                (ids.slice(start, _AMONG_CHUNK).to_pylist(), seqs),
            )
            for start in range(0, len(ids), _AMONG_CHUNK)
        )

    def _scalar(self, query: str, params: tuple[object, ...] = ()) -> int:
        with self._conn() as conn:
            row = conn.execute(query, params).fetchone()
        return int(row[0]) if row else 0

    # -- groups ----------------------------------------------------------------------------
    def get_group(self, group_type: str, group_id: str) -> Group | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT type, id, properties, created_at, updated_at FROM groups "
                "WHERE type = %s AND id = %s",
                (group_type, group_id),
            ).fetchone()
            if row is None:
                return None
            members = conn.execute(
                "SELECT profile_id FROM group_members WHERE type = %s AND group_id = %s "
                "ORDER BY profile_id",
                (group_type, group_id),
            ).fetchall()
        return Group(row[0], row[1], row[2], [str(m) for (m,) in members], row[3], row[4])

    def groups_of_profile(self, profile_id: str) -> dict[str, list[str]]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT type, group_id FROM group_members WHERE profile_id = %s "
                "ORDER BY type, group_id",
                (profile_id,),
            ).fetchall()
        result: dict[str, list[str]] = {}
        for group_type, group_id in rows:
            result.setdefault(group_type, []).append(group_id)
        return result

    def groups_of_profiles(
        self, profile_ids: Collection[str], group_type: str
    ) -> dict[str, list[str]]:
        ids = list(dict.fromkeys(profile_ids))
        if not ids:
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT profile_id, group_id FROM group_members WHERE type = %s "
                "AND profile_id = ANY(%s) ORDER BY group_id",
                (group_type, ids),
            ).fetchall()
        result: dict[str, list[str]] = {}
        for profile_id, group_id in rows:
            result.setdefault(profile_id, []).append(group_id)
        return result

    # -- ledger ------------------------------------------------------------------------------
    def ledger(self, connection: str, goal: str) -> dict[str, LedgerEntry]:
        with self._conn() as conn:
            return _runs.ledger(conn, connection, goal)

    # -- runs ----------------------------------------------------------------------------------
    def start_run(
        self, connection: str, goal: str | None, trigger: Trigger, *, dry_run: bool = False
    ) -> RunRecord:
        with self._write_conn() as conn:
            return _runs.start_run(conn, connection, goal, trigger, dry_run=dry_run)

    def finish_run(
        self, run_id: int, status: RunStatus, counts: RunCounts, error: str | None = None
    ) -> RunRecord:
        with self._write_conn() as conn:
            return _runs.finish_run(conn, run_id, status, counts, error)

    def add_rejects(self, run_id: int, rejects: Iterable[RowReject]) -> None:
        with self._write_conn() as conn:
            _runs.add_rejects(conn, run_id, rejects)

    def list_runs(
        self, connection: str | None = None, *, limit: int = 50, since: datetime | None = None
    ) -> list[RunRecord]:
        with self._conn() as conn:
            return _runs.list_runs(conn, connection, limit, since)

    def get_run(self, run_id: int) -> RunRecord | None:
        with self._conn() as conn:
            return _runs.get_run(conn, run_id)

    def run_rejects(self, run_id: int, *, limit: int = MAX_REJECTS_STORED) -> list[RowReject]:
        with self._conn() as conn:
            return _runs.run_rejects(conn, run_id, limit)

    # -- locks and fire claims ------------------------------------------------------------------
    def acquire_run_lock(self, connection: str, owner: str) -> None:
        if self._in_transaction:
            raise StoreError("cannot take a run lock while a transaction is open on the same store")
        self._translate(lambda: self._locks.acquire(connection, owner))

    def release_run_lock(self, connection: str, owner: str) -> None:
        self._translate(lambda: self._locks.release(connection, owner))

    def claim_fire(self, connection: str, fire_time: datetime, owner: str) -> bool:
        with self._write_conn() as conn:
            return claim_fire(conn, connection, fire_time, owner)

    # -- open multipart uploads ------------------------------------------------------------------
    def note_upload(self, upload: OpenUpload) -> None:
        with self._write_conn() as conn:
            conn.execute(
                "INSERT INTO uploads (upload_id, connection, goal, bucket, key, started_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (upload_id) DO NOTHING",
                (
                    upload.upload_id,
                    upload.connection,
                    upload.goal,
                    upload.bucket,
                    upload.key,
                    upload.started_at,
                ),
            )

    def forget_upload(self, upload_id: str) -> None:
        with self._write_conn() as conn:
            conn.execute("DELETE FROM uploads WHERE upload_id = %s", (upload_id,))

    def open_uploads(self, connection: str, started_before: datetime) -> list[OpenUpload]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT upload_id, connection, goal, bucket, key, started_at FROM uploads "
                "WHERE connection = %s AND started_at < %s ORDER BY started_at",
                (connection, started_before),
            ).fetchall()
        return [OpenUpload(*row) for row in rows]

    # -- export watermarks ------------------------------------------------------------------------
    def export_watermark(self, connection: str, goal: str) -> ExportWatermark | None:
        with self._conn() as conn:
            return _runs.export_watermark(conn, connection, goal)

    def set_export_watermark(
        self,
        connection: str,
        goal: str,
        change_seq: int,
        exported_at: datetime,
        *,
        members: bool = False,
    ) -> None:
        with self._write_conn() as conn:
            _runs.set_export_watermark(conn, connection, goal, change_seq, exported_at)
            if members:
                _runs.replace_export_members(conn, connection, goal)

    # -- export members (exits) -----------------------------------------------------------------
    def export_members(
        self, connection: str, goal: str, *, after: str = "", limit: int = 10000
    ) -> list[str]:
        with self._conn() as conn:
            return _runs.export_members(conn, connection, goal, after, limit)

    def stage_export_members(
        self, connection: str, goal: str, profile_ids: Sequence[str], *, fresh: bool = False
    ) -> None:
        with self._write_conn() as conn:
            _runs.stage_export_members(conn, connection, goal, profile_ids, fresh=fresh)

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        self._locks.close()
        self._pool.close()


CONNECTION_LOST_STATES = ("08", "57P01", "57P02", "57P03")
"""SQLSTATE class 08 (connection exception) and the server shutting down or starting up."""


def _connection_lost(error: psycopg.Error) -> bool:
    if not isinstance(error, psycopg.OperationalError):
        return False
    state = error.sqlstate
    return state is None or state.startswith(CONNECTION_LOST_STATES)


def _configure(conn: Conn) -> None:
    """Every session reads and writes time stamps in UTC, and jsonb through orjson
    (7x psycopg's default `json.dumps` on group properties; the server normalises jsonb)."""
    conn.execute("SET TIME ZONE 'UTC'")
    set_json_dumps(_json.dumps, conn)
    set_json_loads(_json.loads, conn)
