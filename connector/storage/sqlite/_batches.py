"""SQLite's side of the columnar engine: Arrow batches in, a few set-based statements out.

Runs on the store's own `sqlite3` connection, inside `SQLiteStore.transaction`
like the row path: profiles, identifiers and the ledger entry of one file in
one `BEGIN IMMEDIATE` transaction, exactly once.

Why not the ADBC SQLite driver the spike measured (2-3x faster staging)? It
links its own copy of SQLite. Two copies in one process do not see each
other's POSIX locks, so a daemon running two connections at once could have
two writers in one WAL, and closing one copy's last connection checkpoints
and deletes the WAL under the other (SQLite's "How To Corrupt", 2.2.1). A
store must not be able to corrupt itself, so every SQLite access in a
process goes through the one library `sqlite3` links. New and changed rows
go in, and looked-up profiles come out, as ADBC would move them: straight
between Arrow's buffers and SQLite with the GIL released, by `_arrow_bind`
on that same library and connection (`_arrow_rows`). The batch interface stays the same for a backend that can
stage Arrow natively (PostgreSQL COPY).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.errors import StoreError
from connector.storage._text_bytes import holds_any, holds_control, one_value_each
from connector.storage.batches import BatchTransaction, Write, no_write
from connector.storage.columns import NO_VALUES, VALUE_SEPARATOR, PropertyColumns
from connector.storage.profiles import PROFILE_ID
from connector.storage.records import LedgerEntry
from connector.storage.sqlite import _ledger
from connector.storage.sqlite._arrow_rows import RowWriter, query_table
from connector.storage.sqlite._json_lines import json_lines_table


def encode_cells(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`list<string>` -> one text cell per profile (see `connector.storage.columns`)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    flat = pc.list_flatten(values)
    if holds_any(flat, VALUE_SEPARATOR.encode()):
        raise StoreError("a value contains U+001F, which the store reserves")
    if one_value_each(values):
        return flat  # one value each (most properties): the cell is the value
    joined = pc.binary_join(values, VALUE_SEPARATOR)
    empty = pc.equal(pc.list_value_length(values), 0)
    return pc.if_else(empty, pa.scalar(NO_VALUES), joined)


def decode_cells(cells: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One text cell per profile -> `list<string>`; an empty list reads as no value."""
    if isinstance(cells, pa.ChunkedArray):
        cells = cells.combine_chunks()
    if not holds_any(cells, (NO_VALUES + VALUE_SEPARATOR).encode()):
        return _one_value_lists(cells)
    cells = pc.if_else(pc.equal(cells, NO_VALUES), pa.scalar(None, pa.string()), cells)
    return pc.split_pattern(cells, VALUE_SEPARATOR)


def _one_value_lists(cells: pa.Array) -> pa.ListArray:
    """Cells that hold neither reserved character: each the list of itself (null: null),
    built from offsets. Most properties hold one value a profile; splitting and
    comparing each cell took a fifth of an export's page reads (py-spy)."""
    if not cells.null_count:
        offsets = pa.array(np.arange(len(cells) + 1, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, cells)
    ends = np.cumsum(pc.is_valid(cells).to_numpy(zero_copy_only=False), dtype=np.int32)
    offsets = pa.array(np.concatenate([np.zeros(1, np.int32), ends]))
    return pa.ListArray.from_arrays(offsets, cells.drop_null(), mask=pc.is_null(cells))


def _json_strings(values: pa.Array) -> str | None:
    """A JSON array of these strings, built natively; None when a value needs \\u escapes."""
    if holds_control(values):
        return None
    quoted = values
    if holds_any(values, b'\\"'):
        quoted = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    items = pc.binary_join_element_wise('"', quoted, '"', "")
    # one list of every item, built from offsets: `pa.array([items])` would walk them in Python
    whole = pa.ListArray.from_arrays(pa.array([0, len(items)], pa.int32()), items)
    joined = pc.binary_join(whole, ",")[0].as_py()
    return f"[{joined}]"


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[pa.Array]:
    if not rows:
        return [pa.array([], pa.string()) for _ in range(width)]
    return [pa.array(column, pa.string()) for column in zip(*rows, strict=True)]


def _rows_of(values: dict[str, str | pa.Array], mask: pa.Array) -> dict[str, str | pa.Array]:
    """`values` (arrays, or SQL expressions kept as they are) at the rows of `mask`."""
    return {n: v if isinstance(v, str) else pc.filter(v, mask) for n, v in values.items()}


ROWID = "rowid"
"""The last column of a lookup: the profile's rowid, handed back to `encoded_update`."""


class FileWrites:
    """What both kinds of write transaction do alike: the change sequence and the ledger."""

    _db: sqlite3.Connection
    _seq: int | None

    def _next_seq(self) -> int:
        """One change sequence number for the whole transaction."""
        if self._seq is None:
            self._db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'change_seq'"
            )
            (value,) = self._db.execute(
                "SELECT value FROM meta WHERE key = 'change_seq'"
            ).fetchone()
            self._seq = int(value)
        return self._seq

    def change_sequence(self) -> int:
        return self._next_seq()

    def changed_profiles(self) -> tuple[int, int]:
        seq = self._next_seq()
        (count,) = self._db.execute(
            "SELECT count(*) FROM profiles WHERE change_seq = ?", (seq,)
        ).fetchone()
        return seq, int(count)

    def record_file(self, entry: LedgerEntry) -> None:
        _ledger.record_file(self._db, entry)


class SQLiteBatchTransaction(FileWrites, BatchTransaction):
    """One file's writes inside an open `SQLiteStore` transaction."""

    def __init__(
        self, db: sqlite3.Connection, columns: PropertyColumns, now: str, *, native: bool
    ) -> None:
        self._db = db
        self._rows = RowWriter(db, native=native)
        self.writes_release_the_gil = native
        self._registry = columns
        self._now = now
        self._seq: int | None = None

    def prepare(self, properties: Sequence[str]) -> None:
        self._registry.ensure(self._db, properties)
        self._next_seq()

    def _column(self, name: str) -> str:
        try:
            return self._registry.by_name[name]
        except KeyError:
            raise StoreError(f"property {name!r} was not prepared for this file") from None

    def lookup(self, match_property: str, keys: pa.Array, properties: Sequence[str]) -> pa.Table:
        keys = keys.drop_null()  # a null key matches no profile (and has no JSON text)
        parameters: list[str | pa.RecordBatch]
        native_keys = self._rows.native and self._rows.bindable([keys])
        listed = None if native_keys else _json_strings(keys)
        if native_keys:
            # the keys read straight from Arrow's buffers: no JSON text built and parsed
            source, parameters = "arrow_rows(?1) k", [self._rows.batch([keys])]
            key = "k.c0"
        elif listed is not None:
            source, parameters = "json_each(?1) k", [listed]
            key = "k.value"
        else:
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS engine_keys (key TEXT PRIMARY KEY)")
            self._db.execute("DELETE FROM temp.engine_keys")
            self._db.executemany(
                "INSERT OR IGNORE INTO temp.engine_keys (key) VALUES (?)",
                ((value,) for value in keys.to_pylist()),
            )
            source, parameters = "temp.engine_keys k", []
            key = "k.key"
        # CROSS JOIN fixes the order: the batch's keys outside, each found by primary key;
        # left to the planner, SQLite scans the keys once per stored identifier
        # the rowid last: an update finds the profile by it in one search, where its id
        # takes two (the id's index, then the table)
        if self._rows.native:
            columns = "".join(f', p."{self._column(name)}"' for name in properties)
            line = f"{key}, p.id{columns}, p.rowid"
        else:
            fields = "".join(
                f", 'c{index}', p.\"{self._column(name)}\"" for index, name in enumerate(properties)
            )
            line = f"json_object('k', {key}, 'i', p.id{fields}, 'r', p.rowid) AS line"
        if match_property == PROFILE_ID:
            rows = f"SELECT {line} FROM {source} CROSS JOIN profiles p ON p.id = {key}"
        else:
            parameters.append(match_property)
            rows = (
                f"SELECT {line} FROM {source} "
                f"CROSS JOIN identifiers i ON i.property = ?{len(parameters)} AND i.value = {key} "
                "CROSS JOIN profiles p ON p.id = i.profile_id"
            )
        cells = [f"c{index}" for index in range(len(properties))]
        schema = pa.schema(
            [*((name, pa.string()) for name in ["k", "i", *cells]), ("r", pa.int64())]
        )
        if self._rows.native:
            found = query_table(self._db, rows, tuple(parameters), schema)
        else:
            # the found profiles as JSON lines in one BLOB, read by pyarrow: no Python object
            # per cell (as the export reads its pages without the extension)
            (lines,) = self._db.execute(
                f"SELECT CAST(group_concat(line, char(10)) AS BLOB) FROM ({rows})", parameters
            ).fetchone()
            found = schema.empty_table() if lines is None else json_lines_table(lines, schema)
        arrays = [found.column("k"), found.column("i")]
        arrays += [decode_cells(found.column(name)) for name in cells]
        arrays.append(found.column("r"))
        return pa.Table.from_arrays(arrays, names=["key", "id", *properties, ROWID])

    def _cells(self, profiles: pa.Table) -> tuple[list[str], list[pa.Array]]:
        names = [name for name in profiles.column_names if name not in ("id", "key")]
        cells = [encode_cells(profiles.column(name)) for name in names]
        return [self._column(name) for name in names], cells

    def encoded_insert(self, profiles: pa.Table, *, identifier: str | None) -> Write:
        """The cells encoded now (`encode_cells`), in the caller's thread; the write later."""
        if profiles.num_rows == 0:
            return no_write
        seq, now = self._next_seq(), self._now  # taken by `prepare`: no statement here
        columns, cells = self._cells(profiles)
        ids = profiles.column("id")
        values: dict[str, str | pa.Array | pa.ChunkedArray] = {
            "id": ids,
            "created_at": f"'{now}'",
            "updated_at": f"'{now}'",
            "change_seq": str(seq),
        }
        values.update(zip(columns, cells, strict=True))
        identifiers: dict[str, str | pa.Array | pa.ChunkedArray] | None = None
        if identifier is not None:
            identifiers = {
                "property": pa.repeat(identifier, len(ids)),
                "value": profiles.column("key"),
                "profile_id": ids,
            }

        def write() -> None:
            self._rows.insert("profiles", values)
            if identifiers is not None:
                self._rows.insert("identifiers", identifiers)

        return write

    def encoded_update(self, profiles: pa.Table, places: pa.Array | None = None) -> Write:
        """The cells encoded now, in the caller's thread; the UPDATE later, finding each
        profile by its rowid where the lookup gave it (`places`), else by its id."""
        if profiles.num_rows == 0:
            return no_write
        seq = self._next_seq()
        columns, cells = self._cells(profiles)
        values: dict[str, str | pa.Array] = {"updated_at": f"'{self._now}'", "change_seq": str(seq)}
        values |= dict(zip(columns, cells, strict=True))
        ids = profiles.column("id")
        if places is None or places.null_count == len(places):
            updates = [(values, "id", ids)]
        elif places.null_count == 0:
            updates = [(values, "rowid", places)]
        else:  # profiles the last piece wrote were read back, not looked up: no rowid
            known = places.is_valid()
            updates = [
                (_rows_of(values, known), "rowid", pc.filter(places, known)),
                (_rows_of(values, pc.invert(known)), "id", pc.filter(ids, pc.invert(known))),
            ]

        def write() -> None:
            for assigned, key, keys in updates:
                self._rows.update("profiles", assigned, key=key, keys=keys)

        return write

    # -- groups ---------------------------------------------------------------------------
    # Arrays travel into SQL as one JSON text each, read back by `json_each` (C on both
    # sides): one statement per call, whatever the number of groups or members.
    def load_groups(self, group_type: str, ids: pa.Array) -> pa.Table:
        found = self._db.execute(
            "SELECT g.id, g.properties FROM json_each(?2) k "
            "CROSS JOIN groups g ON g.type = ?1 AND g.id = k.value",
            (group_type, _json_list(ids)),
        ).fetchall()
        return pa.Table.from_arrays(_columns(found, 2), names=["id", "properties"])

    def save_groups(self, group_type: str, ids: pa.Array, patches: pa.Array) -> None:
        if not len(ids):
            return
        seq, now = self._next_seq(), self._now
        self._rows.insert(
            "groups",
            {
                "type": pa.repeat(group_type, len(ids)),
                "id": ids,
                "properties": patches,
                "created_at": f"'{now}'",
                "updated_at": f"'{now}'",
                "change_seq": str(seq),
            },
            tail="ON CONFLICT (type, id) DO UPDATE SET "
            "properties = json_patch(groups.properties, excluded.properties), "
            "updated_at = excluded.updated_at, change_seq = excluded.change_seq",
        )

    def resolve_profiles(self, property_name: str, values: pa.Array) -> pa.Table:
        if property_name == PROFILE_ID:
            sql = "SELECT p.id, p.id FROM json_each(?1) k CROSS JOIN profiles p ON p.id = k.value"
            parameters: tuple[str, ...] = (_json_list(values),)
        else:
            sql = (
                "SELECT i.value, i.profile_id FROM json_each(?1) k CROSS JOIN identifiers i "
                "ON i.property = ?2 AND i.value = k.value"
            )
            parameters = (_json_list(values), property_name)
        found = self._db.execute(sql, parameters).fetchall()
        return pa.Table.from_arrays(_columns(found, 2), names=["value", "id"])

    def add_members(self, group_type: str, groups: pa.Array, profiles: pa.Array) -> int:
        if not len(groups):
            return 0
        self._stage_members(groups, profiles)
        # in key order: the B-tree pages of group_members are each visited once
        joined = self._profile_ids(
            "INSERT OR IGNORE INTO group_members (type, group_id, profile_id) "
            "SELECT ?1, g, p FROM temp.engine_members ORDER BY g, p RETURNING profile_id",
            (group_type,),
        )
        self._stamp(joined)
        return len(joined)

    def _stage_members(self, groups: pa.Array, profiles: pa.Array) -> None:
        """The pairs into a temporary table, distinct."""
        self._db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS engine_members (g TEXT, p TEXT, PRIMARY KEY (g, p))"
        )
        self._db.execute("DELETE FROM temp.engine_members")
        self._rows.insert(
            "temp.engine_members", {"g": groups, "p": profiles}, verb="INSERT OR IGNORE"
        )

    def replace_members(
        self, group_type: str, groups: pa.Array, member_groups: pa.Array, members: pa.Array
    ) -> tuple[int, int]:
        if not len(groups):
            return 0, 0
        self._stage_members(member_groups, members)
        left = self._profile_ids(
            "DELETE FROM group_members WHERE type = ?1 "
            "AND group_id IN (SELECT value FROM json_each(?2)) "
            "AND NOT EXISTS (SELECT 1 FROM temp.engine_members w "
            "WHERE w.g = group_members.group_id AND w.p = group_members.profile_id) "
            "RETURNING profile_id",
            (group_type, _json_list(groups)),
        )
        joined = self._profile_ids(
            "INSERT OR IGNORE INTO group_members (type, group_id, profile_id) "
            "SELECT ?1, g, p FROM temp.engine_members ORDER BY g, p RETURNING profile_id",
            (group_type,),
        )
        self._stamp(pa.concat_arrays([joined, left]))
        return len(joined), len(left)

    def delete_groups(self, group_type: str, groups: pa.Array) -> tuple[int, int]:
        if not len(groups):
            return 0, 0
        listed = _json_list(groups)
        left = self._profile_ids(
            "DELETE FROM group_members WHERE type = ?1 "
            "AND group_id IN (SELECT value FROM json_each(?2)) RETURNING profile_id",
            (group_type, listed),
        )
        deleted = self._db.execute(
            "DELETE FROM groups WHERE type = ?1 AND id IN (SELECT value FROM json_each(?2))",
            (group_type, listed),
        ).rowcount
        self._stamp(left)
        return deleted, len(left)

    def _profile_ids(self, sql: str, parameters: tuple[str, ...]) -> pa.Array:
        """The profile ids a statement's `RETURNING profile_id` gives, in Arrow (natively,
        without a Python object per membership, where the extension runs)."""
        if self._rows.native:
            return query_table(self._db, sql, parameters, _PROFILE_IDS).column(0).combine_chunks()
        rows = self._db.execute(sql, parameters).fetchall()
        return pa.array([profile_id for (profile_id,) in rows], pa.string())

    def _stamp(self, profile_ids: pa.Array) -> None:
        """A membership that begins or ends changes what a profile exports: stamp it."""
        if not len(profile_ids):
            return
        seq = self._next_seq()
        stamp = f"UPDATE profiles SET change_seq = {seq}, updated_at = ?1 WHERE id IN "
        if self._rows.native:
            # `query_table` because it takes a batch beside other parameters; it steps the
            # UPDATE to its end and reads no column
            batch = self._rows.batch([profile_ids])
            query_table(
                self._db, f"{stamp}(SELECT c0 FROM arrow_rows(?2))", (self._now, batch), _NOTHING
            )
        else:
            listed = json.dumps(profile_ids.to_pylist())
            self._db.execute(f"{stamp}(SELECT value FROM json_each(?2))", (self._now, listed))


_PROFILE_IDS = pa.schema([("profile_id", pa.string())])
_NOTHING = pa.schema([])


def _json_list(values: pa.Array) -> str:
    return json.dumps(values.to_pylist())
