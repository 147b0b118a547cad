"""PostgreSQL's side of the columnar engine: batches staged by COPY, then set-based statements.

One file is one transaction, as on the row path: its profiles, identifiers
and ledger entry commit together. The transaction opens lazily, in
`prepare`: the file's new property columns are added first, each in a short
transaction of its own (`PostgresStore.ensure_properties`), because
`ALTER TABLE` inside a long import would wait for every other import that
reads `profiles`, and two such imports would deadlock.

New profiles go straight into `profiles` and `identifiers` by binary COPY
(`_copy_binary` builds the bytes natively, on the engine's rules' thread;
the writes' thread only sends them); an update batch is copied into a
temporary staging table and applied with one `UPDATE ... FROM`; a lookup copies the
distinct keys in and the matching profiles out as CSV. Joins probe indexes
per key: inside a long import the planner's statistics still describe the
store as it was before, and its hash joins scanned all of `profiles` for
every batch.

Why not the ADBC PostgreSQL driver? It reads `text[]` into Arrow natively
(measured 2x faster than the CSV read here; its ingest was on par with these
COPY bytes), but it cannot share psycopg's connection, so the whole file
transaction, with the change-sequence and run-lock protocol built on
psycopg, would have to move onto it, for a gain in lookups only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from hashlib import blake2b

import psycopg
import pyarrow as pa
from psycopg import sql

from connector.errors import StoreError
from connector.storage.batches import BatchTransaction, Write, no_write
from connector.storage.postgres._columns import PropertyColumns
from connector.storage.postgres._copy import json_lists, read_csv
from connector.storage.postgres._copy_binary import (
    CopyRows,
    bigint_field,
    copy_binary,
    text_array_fields,
    text_fields,
    timestamp_field,
)
from connector.storage.postgres._db import Conn, now
from connector.storage.postgres._transaction import PostgresTransaction
from connector.storage.profiles import PROFILE_ID
from connector.storage.records import LedgerEntry

_KEYS = "engine_keys"
_GROUP_STAGE = "engine_groups"
_MEMBER_STAGE = "engine_members"

Opener = Callable[[Collection[str]], PostgresTransaction]
"""Adds the columns of these properties, then opens the file's transaction."""


class PostgresBatchTransaction(BatchTransaction):
    """One file's writes; the transaction is opened by `prepare` (or the first write)."""

    writes_release_the_gil = True
    """psycopg waits for the server without the GIL, and the COPY bytes are built before
    (`encoded_insert`): the writes' thread holds the GIL only to hand them over."""

    def __init__(self, open_transaction: Opener, registry: PropertyColumns) -> None:
        self._open_transaction = open_transaction
        self._registry = registry
        self._writes: PostgresTransaction | None = None
        self._staged: tuple[str, ...] = ()
        self._stage_table = "engine_stage"
        self._used: set[str] = set()
        """Temporary tables written in this transaction (empty again only after a TRUNCATE)."""
        self._now: datetime = now()

    # -- the transaction ------------------------------------------------------------------
    def _tx(self, properties: Collection[str] = ()) -> PostgresTransaction:
        if self._writes is None:
            self._writes = self._open_transaction(properties)
            # a batch's keys are a sliver of the store: probe the indexes for them. The
            # planner otherwise hashes all of `profiles` for every batch's UPDATE
            # (measured: a 1M-row import 3x slower, and slower with every batch)
            self._writes.conn.execute("SET LOCAL enable_hashjoin = off")
            self._writes.conn.execute("SET LOCAL enable_mergejoin = off")
        return self._writes

    @property
    def _conn(self) -> Conn:
        return self._tx().conn

    def prepare(self, properties: Sequence[str]) -> None:
        writes = self._tx(properties)
        # a column another process dropped the cache for, or a second prepare: add it here
        self._registry.ensure(writes.conn, properties)
        writes.change_sequence()
        columns = tuple(dict.fromkeys(self._column(name) for name in properties))
        if not set(columns) <= set(self._staged):
            self._create_stage(tuple(dict.fromkeys((*self._staged, *columns))))

    def _create_stage(self, columns: tuple[str, ...]) -> None:
        """A staging table for these columns, kept by the session for the next file like it.

        Temporary tables that outlive the transaction (emptied at each commit)
        spare every file the catalog writes of creating and dropping them.
        """
        self._stage_table = (
            f"engine_stage_{blake2b(' '.join(columns).encode(), digest_size=8).hexdigest()}"
        )
        self._conn.execute(
            sql.SQL(
                'CREATE TEMP TABLE IF NOT EXISTS {} (id text COLLATE "C"{}) ON COMMIT DELETE ROWS'
            ).format(
                sql.Identifier(self._stage_table),
                sql.SQL("").join(
                    sql.SQL(", {} text[]").format(sql.Identifier(column)) for column in columns
                ),
            )
        )
        self._staged = columns

    def _empty(self, table: str) -> None:
        """Empty a temporary table if this transaction wrote it (a commit empties it too)."""
        if table in self._used:
            self._conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
        self._used.add(table)

    def _column(self, name: str) -> str:
        column = self._registry.column_of(name)
        if column is None:
            raise StoreError(f"property {name!r} was not prepared for this file")
        return column

    # -- reading --------------------------------------------------------------------------
    def lookup(self, match_property: str, keys: pa.Array, properties: Sequence[str]) -> pa.Table:
        conn = self._conn
        if _KEYS not in self._used:
            conn.execute(
                sql.SQL(
                    'CREATE TEMP TABLE IF NOT EXISTS {} (key text COLLATE "C") '
                    "ON COMMIT DELETE ROWS"
                ).format(sql.Identifier(_KEYS))
            )
        self._empty(_KEYS)
        self._copy_in(_KEYS, ["key"], copy_binary([text_fields(keys)]))
        values = sql.SQL("").join(
            sql.SQL(", array_to_json(nullif(p.{}, '{{}}'))").format(
                sql.Identifier(self._column(name))
            )
            for name in properties
        )
        # one index probe per key, whatever the planner believes: inside a long import
        # the statistics still describe the store before it. `= ANY` of the keys is an
        # index scan over the sorted keys (half the time of a LATERAL probe per staged
        # key); OFFSET 0 keeps the profile's LATERAL subquery a per-row lookup
        keys = sql.SQL("ARRAY(SELECT key FROM {})").format(sql.Identifier(_KEYS))
        if match_property == PROFILE_ID:
            query = sql.SQL(
                "COPY (SELECT p.id, p.id{} FROM profiles p WHERE p.id = ANY({})) "
                "TO STDOUT (FORMAT csv)"
            ).format(values, keys)
        else:
            query = sql.SQL(
                "COPY (SELECT i.value, p.id{} FROM identifiers i "
                "CROSS JOIN LATERAL (SELECT * FROM profiles WHERE id = i.profile_id OFFSET 0) p "
                "WHERE i.property = {} AND i.value = ANY({})) TO STDOUT (FORMAT csv)"
            ).format(values, sql.Literal(match_property), keys)
        chunks: list[bytes] = []
        with conn.cursor() as cursor, cursor.copy(query) as copy:
            chunks.extend(bytes(chunk) for chunk in copy)
        names = ["key", "id", *(f"v{index}" for index in range(len(properties)))]
        found = read_csv(b"".join(chunks), names)
        arrays = [found.column(0).combine_chunks(), found.column(1).combine_chunks()]
        arrays += [json_lists(found.column(name)) for name in names[2:]]
        return pa.Table.from_arrays(arrays, names=["key", "id", *properties])

    # -- writing --------------------------------------------------------------------------
    # The COPY bytes are built by `encoded_insert` / `encoded_update` in the caller's
    # thread (the engine's rules' thread); the writes they return only send them.
    def _copy_in(self, table: str, columns: list[str], rows: CopyRows) -> None:
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
            sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(column) for column in columns)
        )
        with self._conn.cursor() as cursor, cursor.copy(statement) as copy:
            for piece in rows:
                copy.write(memoryview(piece))

    def encoded_insert(self, profiles: pa.Table, *, identifier: str | None) -> Write:
        """New profiles go straight into `profiles` (and `identifiers`) by COPY: no staging."""
        if profiles.num_rows == 0:
            return no_write
        writes = self._tx()
        names = [name for name in profiles.column_names if name not in ("id", "key")]
        columns = ["id", "created_at", "updated_at", "change_seq", *map(self._column, names)]
        ids = text_fields(profiles.column("id"))
        stamp = timestamp_field(self._now)
        profile_rows = copy_binary(
            [ids, stamp, stamp, bigint_field(writes.change_sequence())]
            + [text_array_fields(profiles.column(name)) for name in names]
        )
        identifier_rows = (
            None
            if identifier is None
            else copy_binary(
                [text_fields(pa.array([identifier]))[0], text_fields(profiles.column("key")), ids]
            )
        )

        def write() -> None:
            try:
                self._copy_in("profiles", columns, profile_rows)
                if identifier_rows is not None:
                    self._copy_in(
                        "identifiers", ["property", "value", "profile_id"], identifier_rows
                    )
            except psycopg.errors.UniqueViolation as error:
                detail = error.diag.message_detail or str(error)
                raise StoreError(
                    f"a new profile's unique value is taken ({detail.strip()}): another "
                    "import wrote it at the same time; nothing of this file was kept, it is "
                    "applied again next run"
                ) from None

        return write

    def encoded_update(self, profiles: pa.Table, places: pa.Array | None = None) -> Write:
        """The batch is copied into the staging table, then applied by one `UPDATE ... FROM`."""
        if profiles.num_rows == 0:
            return no_write
        writes = self._tx()
        seq = writes.change_sequence()
        names = [name for name in profiles.column_names if name not in ("id", "key")]
        columns = [self._column(name) for name in names]
        rows = copy_binary(
            [text_fields(profiles.column("id"))]
            + [text_array_fields(profiles.column(name)) for name in names]
        )

        def write() -> None:
            if not set(columns) <= set(self._staged):
                self._create_stage(tuple(dict.fromkeys((*self._staged, *columns))))
            self._empty(self._stage_table)
            self._copy_in(self._stage_table, ["id", *columns], rows)
            assignments = sql.SQL("").join(
                sql.SQL(", {0} = s.{0}").format(sql.Identifier(column)) for column in columns
            )
            writes.conn.execute(
                sql.SQL(
                    "UPDATE profiles p SET updated_at = %s, change_seq = %s{} FROM {} s "
                    "WHERE p.id = s.id"
                ).format(assignments, sql.Identifier(self._stage_table)),
                (self._now, seq),
            )

        return write

    # -- groups ---------------------------------------------------------------------------
    # Groups and memberships are staged by COPY, then written by one statement each;
    # lookups and deletions use the row path's statements (`= ANY` of a `text[]`).
    def load_groups(self, group_type: str, ids: pa.Array) -> pa.Table:
        rows = self._conn.execute(
            "SELECT id, properties::text FROM groups WHERE type = %s AND id = ANY(%s)",
            (group_type, ids.to_pylist()),
        ).fetchall()
        columns = [pa.array(column, pa.string()) for column in zip(*rows, strict=True)]
        if not rows:
            columns = [pa.array([], pa.string()), pa.array([], pa.string())]
        return pa.Table.from_arrays(columns, names=["id", "properties"])

    def save_groups(self, group_type: str, ids: pa.Array, patches: pa.Array) -> None:
        if not len(ids):
            return
        writes = self._tx()
        self._stage_pairs(_GROUP_STAGE, ids, patches)
        writes.conn.execute(
            sql.SQL(
                "INSERT INTO groups (type, id, properties, created_at, updated_at, change_seq) "
                "SELECT %s, a, b::jsonb, %s, %s, %s FROM {} "
                "ON CONFLICT (type, id) DO UPDATE SET "
                "properties = groups.properties || excluded.properties, "
                "updated_at = excluded.updated_at, change_seq = excluded.change_seq"
            ).format(sql.Identifier(_GROUP_STAGE)),
            (group_type, self._now, self._now, writes.change_sequence()),
        )

    def resolve_profiles(self, property_name: str, values: pa.Array) -> pa.Table:
        found = self._tx().resolve_profiles(property_name, values.to_pylist())
        return pa.table(
            {
                "value": pa.array(list(found), pa.string()),
                "id": pa.array(list(found.values()), pa.string()),
            }
        )

    def add_members(self, group_type: str, groups: pa.Array, profiles: pa.Array) -> int:
        if not len(groups):
            return 0
        self._stage_pairs(_MEMBER_STAGE, groups, profiles)
        return self._join_staged(group_type)

    def _join_staged(self, group_type: str) -> int:
        """The staged memberships that do not exist yet; the profiles that joined are
        stamped in the same statement (exports send them again)."""
        writes = self._tx()
        row = writes.conn.execute(
            sql.SQL(
                "WITH joined AS (INSERT INTO group_members (type, group_id, profile_id) "
                "SELECT DISTINCT %s, a, b FROM {} ON CONFLICT DO NOTHING RETURNING profile_id), "
                "stamped AS (UPDATE profiles p SET change_seq = %s, updated_at = %s "
                "FROM (SELECT DISTINCT profile_id FROM joined) j WHERE p.id = j.profile_id) "
                "SELECT count(*) FROM joined"
            ).format(sql.Identifier(_MEMBER_STAGE)),
            (group_type, writes.change_sequence(), self._now),
        ).fetchone()
        return int(row[0]) if row else 0

    def _stage_pairs(self, table: str, first: pa.Array, second: pa.Array) -> None:
        """Two text columns into a temporary table by COPY (bytes built natively)."""
        self._conn.execute(
            sql.SQL(
                'CREATE TEMP TABLE IF NOT EXISTS {} (a text COLLATE "C", b text COLLATE "C") '
                "ON COMMIT DELETE ROWS"
            ).format(sql.Identifier(table))
        )
        if table == _MEMBER_STAGE:
            self._conn.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (a, b)").format(
                    sql.Identifier(f"{table}_pairs"), sql.Identifier(table)
                )
            )
        self._empty(table)
        self._copy_in(table, ["a", "b"], copy_binary([text_fields(first), text_fields(second)]))

    def replace_members(
        self, group_type: str, groups: pa.Array, member_groups: pa.Array, members: pa.Array
    ) -> tuple[int, int]:
        if not len(groups):
            return 0, 0
        writes = self._tx()
        self._stage_pairs(_MEMBER_STAGE, member_groups, members)
        # staged and indexed: with hash joins off in this transaction, an anti-join against
        # UNNEST of a parameter would compare every membership with every wanted pair
        row = writes.conn.execute(
            sql.SQL(
                "WITH left_ AS (DELETE FROM group_members m WHERE m.type = %s "
                "AND m.group_id = ANY(%s) AND NOT EXISTS (SELECT 1 FROM {} w "
                "WHERE w.a = m.group_id AND w.b = m.profile_id) RETURNING m.profile_id), "
                "stamped AS (UPDATE profiles p SET change_seq = %s, updated_at = %s "
                "FROM (SELECT DISTINCT profile_id FROM left_) j WHERE p.id = j.profile_id) "
                "SELECT count(*) FROM left_"
            ).format(sql.Identifier(_MEMBER_STAGE)),
            (group_type, groups.to_pylist(), writes.change_sequence(), self._now),
        ).fetchone()
        left = int(row[0]) if row else 0
        return self._join_staged(group_type), left

    def delete_groups(self, group_type: str, groups: pa.Array) -> tuple[int, int]:
        return self._tx().delete_groups(group_type, groups.to_pylist())

    def record_file(self, entry: LedgerEntry) -> None:
        self._tx().record_file(entry)

    def changed_profiles(self) -> tuple[int, int]:
        return self._tx().changed_profiles()

    def change_sequence(self) -> int:
        return self._tx().change_sequence()
