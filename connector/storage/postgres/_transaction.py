"""A write transaction on one pooled connection: profiles, identifiers, groups, the ledger."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from psycopg import sql
from psycopg.types.json import Jsonb

from connector.errors import StoreError
from connector.storage.postgres._changes import ChangeSequence
from connector.storage.postgres._columns import PropertyColumns
from connector.storage.postgres._db import Conn, now
from connector.storage.postgres._ledger import record_file
from connector.storage.postgres._profiles import fetch_profiles
from connector.storage.profiles import PROFILE_ID
from connector.storage.records import (
    Contribution,
    FileKey,
    Group,
    LedgerEntry,
    Profile,
    unique_identifiers,
)
from connector.storage.transaction import StoreTransaction, identifier_conflict


class PostgresTransaction(StoreTransaction):
    """Writes that commit together; the caller (`PostgresStore.transaction`) commits."""

    def __init__(
        self,
        conn: Conn,
        registry: PropertyColumns,
        unique: frozenset[str],
        changes: ChangeSequence,
    ) -> None:
        self._conn = conn
        self._registry = registry
        self._unique = unique
        self._changes = changes
        self._seq: int | None = None
        self._indexed: dict[str, list[tuple[str, str]]] = {}
        """Unique identifiers of loaded profiles, to rewrite only those that changed."""

    def before_commit(self) -> None:
        """The transaction's last statement: its change number becomes the committed latest."""
        if self._seq is not None:
            self._changes.commit(self._conn, self._seq)

    def _next_seq(self) -> int:
        """One change sequence number for the whole transaction."""
        if self._seq is None:
            self._seq = self._changes.next(self._conn)
        return self._seq

    @property
    def conn(self) -> Conn:
        """The transaction's connection, for the columnar engine's set-based statements."""
        return self._conn

    def change_sequence(self) -> int:
        """The transaction's change sequence number (taken on first use)."""
        return self._next_seq()

    # -- profiles ------------------------------------------------------------------------
    def resolve_profiles(self, property_name: str, values: Collection[str]) -> dict[str, str]:
        distinct = list(set(values))
        if not distinct:
            return {}
        if property_name == PROFILE_ID:
            rows = self._conn.execute(
                "SELECT id, id FROM profiles WHERE id = ANY(%s)", (distinct,)
            ).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT value, profile_id FROM identifiers WHERE property = %s AND value = ANY(%s)",
                (property_name, distinct),
            ).fetchall()
        return {str(value): str(profile_id) for value, profile_id in rows}

    def load_profiles(self, profile_ids: Collection[str]) -> dict[str, Profile]:
        # identifiers of this batch only: a file-long memory would grow with the file
        self._indexed.clear()
        loaded = fetch_profiles(
            self._conn, self._registry, sql.SQL("WHERE id = ANY(%s)"), (list(profile_ids),)
        )
        if self._unique:
            for profile in loaded:
                self._indexed[profile.id] = unique_identifiers(profile, self._unique)
        return {profile.id: profile for profile in loaded}

    def save_profiles(self, profiles: Iterable[Profile]) -> int:
        batch = list(profiles)
        if not batch:
            return 0
        seq, stamp = self._next_seq(), now()
        self._registry.ensure(self._conn, {name for p in batch for name in p.properties})
        columns = self._registry.columns()
        names = [self._registry.name_of(column) for column in columns]
        rows = []
        reindex: dict[str, list[tuple[str, str]]] = {}
        for profile in batch:
            values = profile.properties
            rows.append((profile.id, stamp, stamp, seq, *[values.get(n) for n in names]))  # type: ignore[arg-type]  # names are registered
            profile.change_seq = seq
            if self._unique:
                identifiers = unique_identifiers(profile, self._unique)
                # a profile saved whole without a load may still have stored identifiers
                if identifiers != self._indexed.pop(profile.id, None):
                    reindex[profile.id] = identifiers
        with self._conn.cursor() as cursor:
            cursor.executemany(_upsert(columns), rows)
        if reindex:
            self._reindex(reindex)
        return len(batch)

    def _reindex(self, reindex: dict[str, list[tuple[str, str]]]) -> None:
        self._conn.execute("DELETE FROM identifiers WHERE profile_id = ANY(%s)", (list(reindex),))
        fresh = [(name, value, pid) for pid, pairs in reindex.items() for name, value in pairs]
        if not fresh:
            return
        names, values, ids = (list(column) for column in zip(*fresh, strict=True))
        inserted = self._conn.execute(
            "INSERT INTO identifiers (property, value, profile_id) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) ON CONFLICT DO NOTHING",
            (names, values, ids),
        ).rowcount
        if inserted < len(fresh):
            raise StoreError(identifier_conflict(fresh, self._holder))

    def _holder(self, name: str, value: str) -> str | None:
        row = self._conn.execute(
            "SELECT profile_id FROM identifiers WHERE property = %s AND value = %s", (name, value)
        ).fetchone()
        return None if row is None else str(row[0])

    def delete_profiles(self, profile_ids: Collection[str]) -> int:
        ids = list(profile_ids)
        self._conn.execute("DELETE FROM identifiers WHERE profile_id = ANY(%s)", (ids,))
        self._conn.execute("DELETE FROM group_members WHERE profile_id = ANY(%s)", (ids,))
        self._conn.execute("DELETE FROM contributions WHERE profile_id = ANY(%s)", (ids,))
        deleted = self._conn.execute("DELETE FROM profiles WHERE id = ANY(%s)", (ids,)).rowcount
        for profile_id in ids:
            self._indexed.pop(profile_id, None)
        return deleted

    def set_key_normalization(self, name: str, mode: str) -> None:
        self._conn.execute(
            "UPDATE unique_properties SET normalize = %s WHERE name = %s", (mode, name)
        )

    # -- what each file contributed (on_change: replace) ---------------------------------
    def file_contributions(self, file: FileKey) -> list[Contribution]:
        rows = self._conn.execute(
            "SELECT profile_id, property, kind, value, added FROM contributions "
            "WHERE connection = %s AND goal = %s AND key = %s ORDER BY ctid",
            (file.connection, file.goal, file.key),
        ).fetchall()
        return [Contribution(*row) for row in rows]

    def replace_file_contributions(
        self, file: FileKey, contributions: Iterable[Contribution]
    ) -> None:
        where = (file.connection, file.goal, file.key)
        self._conn.execute(
            "DELETE FROM contributions WHERE connection = %s AND goal = %s AND key = %s", where
        )
        with self._conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO contributions (connection, goal, key, profile_id, property, kind, "
                "value, added) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (*where, c.profile_id, c.property, c.kind, c.value, c.added)
                    for c in contributions
                ],
            )

    def hand_over(
        self, file: FileKey, kind: str, slots: Collection[tuple[str, str, str]]
    ) -> set[tuple[str, str, str]]:
        if not slots:
            return set()
        ids, names, values = (list(part) for part in zip(*slots, strict=True))
        rows = self._conn.execute(
            "UPDATE contributions AS c SET added = true "
            "FROM unnest(%s::text[], %s::text[], %s::text[]) AS w(profile_id, property, value) "
            "WHERE c.profile_id = w.profile_id AND c.property = w.property AND c.kind = %s "
            "AND (c.kind = 'sum' OR c.value = w.value) "
            "AND NOT (c.connection = %s AND c.goal = %s AND c.key = %s) "
            "RETURNING w.profile_id, w.property, w.value",
            (ids, names, values, kind, file.connection, file.goal, file.key),
        ).fetchall()
        return {(row[0], row[1], row[2]) for row in rows}

    # -- groups --------------------------------------------------------------------------
    def load_groups(self, group_type: str, group_ids: Collection[str]) -> dict[str, Group]:
        rows = self._conn.execute(
            "SELECT type, id, properties, created_at, updated_at FROM groups "
            "WHERE type = %s AND id = ANY(%s)",
            (group_type, list(group_ids)),
        ).fetchall()
        return {row[1]: Group(row[0], row[1], row[2], [], row[3], row[4]) for row in rows}

    def save_groups(self, groups: Iterable[Group]) -> int:
        seq, stamp = self._next_seq(), now()
        rows = [(g.type, g.id, Jsonb(g.properties), stamp, stamp, seq) for g in groups]
        with self._conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO groups (type, id, properties, created_at, updated_at, change_seq) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (type, id) DO UPDATE SET "
                "properties = excluded.properties, updated_at = excluded.updated_at, "
                "change_seq = excluded.change_seq",
                rows,
            )
        return len(rows)

    def add_members(self, group_type: str, memberships: Iterable[tuple[str, str]]) -> int:
        pairs = list(dict.fromkeys(memberships))
        if not pairs:
            return 0
        groups, profiles = (list(column) for column in zip(*pairs, strict=True))
        joined = [
            str(profile_id)
            for (profile_id,) in self._conn.execute(
                "INSERT INTO group_members (type, group_id, profile_id) "
                "SELECT %s, g, p FROM unnest(%s::text[], %s::text[]) AS m (g, p) "
                "ON CONFLICT DO NOTHING RETURNING profile_id",
                (group_type, groups, profiles),
            ).fetchall()
        ]
        self._stamp(joined)
        return len(joined)

    def replace_members(
        self, group_type: str, members: Mapping[str, Collection[str]]
    ) -> tuple[int, int]:
        groups = list(members)
        wanted = [
            (group_id, profile_id)
            for group_id, profile_ids in members.items()
            for profile_id in dict.fromkeys(profile_ids)
        ]
        group_ids, profile_ids = ([g for g, _ in wanted], [p for _, p in wanted])
        left = [
            str(profile_id)
            for (profile_id,) in self._conn.execute(
                "DELETE FROM group_members m WHERE m.type = %s AND m.group_id = ANY(%s) "
                "AND NOT EXISTS (SELECT 1 FROM unnest(%s::text[], %s::text[]) AS w (g, p) "
                "WHERE w.g = m.group_id AND w.p = m.profile_id) RETURNING m.profile_id",
                (group_type, groups, group_ids, profile_ids),
            ).fetchall()
        ]
        joined = [
            str(profile_id)
            for (profile_id,) in self._conn.execute(
                "INSERT INTO group_members (type, group_id, profile_id) "
                "SELECT %s, g, p FROM unnest(%s::text[], %s::text[]) AS w (g, p) "
                "ON CONFLICT DO NOTHING RETURNING profile_id",
                (group_type, group_ids, profile_ids),
            ).fetchall()
        ]
        self._stamp([*joined, *left])
        return len(joined), len(left)

    def delete_groups(self, group_type: str, group_ids: Collection[str]) -> tuple[int, int]:
        ids = list(group_ids)
        left = [
            str(profile_id)
            for (profile_id,) in self._conn.execute(
                "DELETE FROM group_members WHERE type = %s AND group_id = ANY(%s) "
                "RETURNING profile_id",
                (group_type, ids),
            ).fetchall()
        ]
        deleted = self._conn.execute(
            "DELETE FROM groups WHERE type = %s AND id = ANY(%s)", (group_type, ids)
        ).rowcount
        self._stamp(left)
        return deleted, len(left)

    def _stamp(self, profile_ids: list[str]) -> None:
        """A membership that begins or ends changes what a profile exports: stamp it."""
        if profile_ids:
            self._conn.execute(
                "UPDATE profiles SET change_seq = %s, updated_at = %s WHERE id = ANY(%s)",
                (self._next_seq(), now(), list(dict.fromkeys(profile_ids))),
            )

    # -- the file ------------------------------------------------------------------------
    def record_file(self, entry: LedgerEntry) -> None:
        record_file(self._conn, entry)

    def changed_profiles(self) -> tuple[int, int]:
        seq = self._next_seq()
        row = self._conn.execute(
            "SELECT count(*) FROM profiles WHERE change_seq = %s", (seq,)
        ).fetchone()
        return seq, int(row[0]) if row else 0


def _upsert(columns: list[str]) -> sql.Composed:
    """INSERT ... ON CONFLICT for whole profiles: every property column is written."""
    props = [sql.Identifier(column) for column in columns]
    targets = sql.SQL(", ").join(
        [sql.Identifier(name) for name in ("id", "created_at", "updated_at", "change_seq")] + props
    )
    values = sql.SQL(", ").join([sql.Placeholder()] * 4 + [sql.SQL("%s::text[]") for _ in props])
    updates = sql.SQL(", ").join(
        [sql.SQL("updated_at = excluded.updated_at, change_seq = excluded.change_seq")]
        + [sql.SQL("{0} = excluded.{0}").format(prop) for prop in props]
    )
    return sql.SQL(
        "INSERT INTO profiles ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}"
    ).format(targets, values, updates)
