"""The row path's write transaction in SQLite: profiles, identifiers, groups, contributions.

Runs inside `SQLiteStore.transaction()` (one `BEGIN IMMEDIATE`): the file's
rows, its contributions and its ledger entry commit together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Mapping

from connector.errors import StoreError
from connector.storage import _json
from connector.storage.columns import PropertyColumns, encode_values
from connector.storage.profiles import PROFILE_ID
from connector.storage.records import Contribution, FileKey, Group, Profile, unique_identifiers
from connector.storage.sqlite._batches import FileWrites
from connector.storage.sqlite._db import chunks, now, placeholders, time_of
from connector.storage.sqlite._profiles import read_profile
from connector.storage.transaction import StoreTransaction, identifier_conflict

_dump_properties = _json.dumps  # {str: [str]}: orjson's own fast path


class SQLiteTransaction(FileWrites, StoreTransaction):
    """The row path's writes inside an open `SQLiteStore` transaction."""

    def __init__(
        self, db: sqlite3.Connection, unique: frozenset[str], columns: PropertyColumns
    ) -> None:
        self._db = db
        self._unique = unique
        self._columns = columns
        columns.refresh(db)  # under the write lock: columns other processes added count
        self._seq: int | None = None
        self._indexed: dict[str, list[tuple[str, str]]] = {}
        """Unique identifiers of loaded profiles, to rewrite only those that changed."""

    def resolve_profiles(self, property_name: str, values: Collection[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        distinct = list(set(values))
        for chunk in chunks(distinct):
            if property_name == PROFILE_ID:
                rows = self._db.execute(
                    f"SELECT id, id FROM profiles WHERE id IN ({placeholders(len(chunk))})", chunk
                )
            else:
                rows = self._db.execute(
                    f"SELECT value, profile_id FROM identifiers WHERE property = ? "
                    f"AND value IN ({placeholders(len(chunk))})",
                    (property_name, *chunk),
                )
            found.update(rows)
        return found

    def load_profiles(self, profile_ids: Collection[str]) -> dict[str, Profile]:
        # remember identifiers for this batch only: a file-long memory would grow with the file
        self._indexed.clear()
        loaded: dict[str, Profile] = {}
        names = list(self._columns.by_name)
        fields = "".join(f', "{column}"' for column in self._columns.by_name.values())
        for chunk in chunks(list(profile_ids)):
            for row in self._db.execute(
                f"SELECT id, created_at, updated_at, change_seq{fields} FROM profiles "
                f"WHERE id IN ({placeholders(len(chunk))})",
                chunk,
            ):
                profile = read_profile(row, names)
                loaded[profile.id] = profile
                if self._unique:
                    self._indexed[profile.id] = unique_identifiers(profile, self._unique)
        return loaded

    def save_profiles(self, profiles: Iterable[Profile]) -> int:
        seq = self._next_seq()
        stamp = now()
        profiles = list(profiles)
        columns = self._columns.ensure(self._db, (n for p in profiles for n in p.properties))
        names = list(columns)
        rows = []
        reindex: dict[str, list[tuple[str, str]]] = {}
        for profile in profiles:
            properties = profile.properties
            rows.append(
                (
                    profile.id,
                    stamp,
                    stamp,
                    seq,
                    *(encode_values(properties.get(name)) for name in names),
                )
            )
            profile.change_seq = seq
            if self._unique:
                identifiers = unique_identifiers(profile, self._unique)
                # a profile not loaded in this transaction may still have stored
                # identifiers (it is saved whole, without a load): rewrite them too
                if identifiers != self._indexed.pop(profile.id, None):
                    reindex[profile.id] = identifiers
        quoted = [f'"{column}"' for column in columns.values()]
        assignments = "".join(f", {column} = excluded.{column}" for column in quoted)
        self._db.executemany(
            f"INSERT INTO profiles (id, created_at, updated_at, change_seq{''.join(', ' + c for c in quoted)}) "
            f"VALUES ({placeholders(4 + len(quoted))}) ON CONFLICT (id) DO UPDATE SET "
            f"updated_at = excluded.updated_at, change_seq = excluded.change_seq{assignments}",
            rows,
        )
        if reindex:
            self._db.executemany(
                "DELETE FROM identifiers WHERE profile_id = ?", ((pid,) for pid in reindex)
            )
            fresh = [(name, value, pid) for pid, pairs in reindex.items() for name, value in pairs]
            try:
                self._db.executemany(
                    "INSERT INTO identifiers (property, value, profile_id) VALUES (?, ?, ?)", fresh
                )
            except sqlite3.IntegrityError as error:
                raise StoreError(identifier_conflict(fresh, self._holder)) from error
        return len(rows)

    def _holder(self, name: str, value: str) -> str | None:
        row = self._db.execute(
            "SELECT profile_id FROM identifiers WHERE property = ? AND value = ?", (name, value)
        ).fetchone()
        return None if row is None else str(row[0])

    def delete_profiles(self, profile_ids: Collection[str]) -> int:
        ids = [(profile_id,) for profile_id in profile_ids]
        self._db.executemany("DELETE FROM identifiers WHERE profile_id = ?", ids)
        self._db.executemany("DELETE FROM group_members WHERE profile_id = ?", ids)
        self._db.executemany("DELETE FROM contributions WHERE profile_id = ?", ids)
        before = self._db.total_changes
        self._db.executemany("DELETE FROM profiles WHERE id = ?", ids)
        for (profile_id,) in ids:
            self._indexed.pop(profile_id, None)
        return self._db.total_changes - before

    def set_key_normalization(self, name: str, mode: str) -> None:
        self._db.execute("UPDATE unique_properties SET normalize = ? WHERE name = ?", (mode, name))

    # -- what each file contributed (on_change: replace) --------------------------------------
    def file_contributions(self, file: FileKey) -> list[Contribution]:
        rows = self._db.execute(
            "SELECT profile_id, property, kind, value, added FROM contributions "
            "WHERE connection = ? AND goal = ? AND key = ? ORDER BY rowid",
            (file.connection, file.goal, file.key),
        )
        return [Contribution(row[0], row[1], row[2], row[3], bool(row[4])) for row in rows]

    def replace_file_contributions(
        self, file: FileKey, contributions: Iterable[Contribution]
    ) -> None:
        where = (file.connection, file.goal, file.key)
        self._db.execute(
            "DELETE FROM contributions WHERE connection = ? AND goal = ? AND key = ?", where
        )
        self._db.executemany(
            "INSERT INTO contributions (connection, goal, key, profile_id, property, kind, "
            "value, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (*where, c.profile_id, c.property, c.kind, c.value, int(c.added))
                for c in contributions
            ),
        )

    def hand_over(
        self, file: FileKey, kind: str, slots: Collection[tuple[str, str, str]]
    ) -> set[tuple[str, str, str]]:
        kept: set[tuple[str, str, str]] = set()
        for profile_id, name, value in slots:
            handed = self._db.execute(
                "UPDATE contributions SET added = 1 WHERE profile_id = ? AND property = ? "
                "AND kind = ? AND (kind = 'sum' OR value = ?) "
                "AND NOT (connection = ? AND goal = ? AND key = ?)",
                (profile_id, name, kind, value, file.connection, file.goal, file.key),
            ).rowcount
            if handed:
                kept.add((profile_id, name, value))
        return kept

    def load_groups(self, group_type: str, group_ids: Collection[str]) -> dict[str, Group]:
        loaded: dict[str, Group] = {}
        for chunk in chunks(list(group_ids)):
            for row in self._db.execute(
                "SELECT type, id, properties, created_at, updated_at FROM groups "
                f"WHERE type = ? AND id IN ({placeholders(len(chunk))})",
                (group_type, *chunk),
            ):
                loaded[row[1]] = Group(
                    row[0], row[1], _json.loads(row[2]), [], time_of(row[3]), time_of(row[4])
                )
        return loaded

    def save_groups(self, groups: Iterable[Group]) -> int:
        seq = self._next_seq()
        stamp = now()
        rows = [(g.type, g.id, _dump_properties(g.properties), stamp, stamp, seq) for g in groups]
        self._db.executemany(
            "INSERT INTO groups (type, id, properties, created_at, updated_at, change_seq) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (type, id) DO UPDATE SET "
            "properties = excluded.properties, updated_at = excluded.updated_at, "
            "change_seq = excluded.change_seq",
            rows,
        )
        return len(rows)

    def replace_members(
        self, group_type: str, members: Mapping[str, Collection[str]]
    ) -> tuple[int, int]:
        joined: list[str] = []
        left: list[str] = []
        for group_id, wanted in members.items():
            current = {
                profile_id
                for (profile_id,) in self._db.execute(
                    "SELECT profile_id FROM group_members WHERE type = ? AND group_id = ?",
                    (group_type, group_id),
                )
            }
            leaving = sorted(current - set(wanted))
            joining = [
                profile_id for profile_id in dict.fromkeys(wanted) if profile_id not in current
            ]
            self._db.executemany(
                "DELETE FROM group_members WHERE type = ? AND group_id = ? AND profile_id = ?",
                ((group_type, group_id, profile_id) for profile_id in leaving),
            )
            self._db.executemany(
                "INSERT INTO group_members (type, group_id, profile_id) VALUES (?, ?, ?)",
                ((group_type, group_id, profile_id) for profile_id in joining),
            )
            joined += joining
            left += leaving
        self._stamp([*joined, *left])
        return len(joined), len(left)

    def delete_groups(self, group_type: str, group_ids: Collection[str]) -> tuple[int, int]:
        left: list[str] = []
        deleted = 0
        for group_id in group_ids:
            left += [
                profile_id
                for (profile_id,) in self._db.execute(
                    "DELETE FROM group_members WHERE type = ? AND group_id = ? "
                    "RETURNING profile_id",
                    (group_type, group_id),
                ).fetchall()
            ]
            deleted += self._db.execute(
                "DELETE FROM groups WHERE type = ? AND id = ?", (group_type, group_id)
            ).rowcount
        self._stamp(left)
        return deleted, len(left)

    def _stamp(self, profile_ids: list[str]) -> None:
        """A membership that begins or ends changes what a profile exports (a groups
        column): stamp it, so incremental exports send it again."""
        if profile_ids:
            seq, stamp = self._next_seq(), now()
            self._db.executemany(
                "UPDATE profiles SET change_seq = ?, updated_at = ? WHERE id = ?",
                ((seq, stamp, profile_id) for profile_id in dict.fromkeys(profile_ids)),
            )

    def add_members(self, group_type: str, memberships: Iterable[tuple[str, str]]) -> int:
        joined: list[str] = []
        for group_id, profile_id in memberships:
            added = self._db.execute(
                "INSERT OR IGNORE INTO group_members (type, group_id, profile_id) VALUES (?, ?, ?)",
                (group_type, group_id, profile_id),
            )
            if added.rowcount:
                joined.append(profile_id)
        self._stamp(joined)
        return len(joined)
