"""The profiles concern in PostgreSQL: reading profiles, unique properties, change counts.

A profile is a row of `profiles` with one `text[]` column per property (see
`_columns`); a unique property's values are also rows of `identifiers`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

import pyarrow as pa
from psycopg import sql

from connector.limits import STORE_PAGE_ROWS
from connector.storage.postgres._columns import PropertyColumns
from connector.storage.postgres._db import Conn
from connector.storage.postgres._session import Session
from connector.storage.profiles import PROFILE_ID, StoredProfiles, id_slices
from connector.storage.records import Profile

_FIXED = 4  # id, created_at, updated_at, change_seq: the columns before the properties


class PostgresProfiles(Session, StoredProfiles):
    """`StoredProfiles` on the store's pool; keyset pages, no transaction left open."""

    # -- unique properties and property columns ---------------------------------------------
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
                (chunk, seqs),
            )
            for chunk in id_slices(ids)
        )


def fetch_profiles(
    conn: Conn,
    registry: PropertyColumns,
    condition: sql.Composable,
    params: Sequence[object] = (),
) -> list[Profile]:
    """`SELECT * FROM profiles <condition>` as profiles; absent (NULL) properties left out."""
    cursor = conn.execute(sql.SQL("SELECT * FROM profiles ") + condition, params)
    assert cursor.description is not None  # noqa: S101 -- a SELECT always describes its columns
    columns = [column.name for column in cursor.description[_FIXED:]]
    rows = cursor.fetchall()
    if not registry.knows_columns(columns):
        registry.refresh(conn)  # another process added a property since the cache was filled
    names = [registry.name_of(column) for column in columns]
    profiles = []
    for row in rows:
        properties = {
            name: list(values)
            for name, values in zip(names, row[_FIXED:], strict=True)
            if values is not None and name is not None
        }
        profiles.append(Profile(row[0], properties, row[1], row[2], row[3]))
    return profiles


def having_value(
    conn: Conn, registry: PropertyColumns, property_name: str
) -> sql.Composable | None:
    """The condition "has the value (one parameter) among `property_name`'s values", ordered by id.

    None when no profile ever had the property.
    """
    column = registry.column_of(property_name)
    if column is None:
        registry.refresh(conn)
        column = registry.column_of(property_name)
    if column is None:
        return None
    return sql.SQL("WHERE {} @> ARRAY[%s]::text[] ORDER BY id").format(sql.Identifier(column))
