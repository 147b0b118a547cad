"""The SQLite side of `connector store copy`: listing and restoring what the interface cannot."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, LiteralString

from connector.limits import STORE_PAGE_ROWS
from connector.storage.archive import CLEARED, COUNTED, batches, by_file
from connector.storage.records import Contribution, FileKey, Group, Profile, RowReject, RunRecord
from connector.storage.sqlite.store import SQLiteStore


def _text(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="microseconds") if moment else None


class SQLiteArchive:
    """`StoreArchive` for a SQLite store, through its own connection."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._db = store._db

    def counts(self) -> dict[str, int]:
        return {
            kind: int(self._db.execute(f"SELECT count(*) FROM {kind}").fetchone()[0])
            for kind in COUNTED
        }

    def clear(self) -> None:
        with self._store._write() as db:
            for table in CLEARED:
                db.execute(f"DELETE FROM {table}")
            db.execute("UPDATE meta SET value = '0' WHERE key = 'change_seq'")
        self._store._unique = None

    def rows(self, query: LiteralString) -> list[tuple[Any, ...]]:
        return self._db.execute(query).fetchall()

    def contributions(self) -> Iterator[tuple[FileKey, list[Contribution]]]:
        rows = self._db.execute(
            "SELECT connection, goal, key, profile_id, property, kind, value, added "
            "FROM contributions ORDER BY connection, goal, key, rowid"
        )
        yield from by_file(
            (FileKey(*row[:3]), Contribution(row[3], row[4], row[5], row[6], bool(row[7])))
            for row in rows
        )

    def restore_profiles(self, profiles: Iterable[Profile]) -> None:
        with self._store.transaction() as tx:
            for batch in batches(profiles, STORE_PAGE_ROWS):
                # before saving: save_profiles stamps its own number on the objects
                stamps = [
                    (_text(p.created_at), _text(p.updated_at), p.change_seq, p.id) for p in batch
                ]
                tx.save_profiles(batch)
                self._db.executemany(
                    "UPDATE profiles SET created_at = ?, updated_at = ?, change_seq = ? WHERE id = ?",
                    stamps,
                )

    def restore_groups(self, groups: Iterable[Group]) -> None:
        with self._store.transaction() as tx:
            for group in groups:
                tx.save_groups([group])
                tx.add_members(group.type, [(group.id, member) for member in group.members])
                self._db.execute(
                    "UPDATE groups SET created_at = ?, updated_at = ? WHERE type = ? AND id = ?",
                    (_text(group.created_at), _text(group.updated_at), group.type, group.id),
                )

    def restore_runs(self, runs: Iterable[tuple[RunRecord, list[RowReject]]]) -> None:
        with self._store._write() as db:
            for run, rejects in runs:
                db.execute(
                    "INSERT INTO runs (id, connection, goal, trigger, status, started_at, "
                    "ended_at, dry_run, counts, error, ran_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run.id,
                        run.connection,
                        run.goal,
                        str(run.trigger),
                        str(run.status),
                        _text(run.started_at),
                        _text(run.ended_at),
                        int(run.dry_run),
                        json.dumps(run.counts.as_dict()),
                        run.error,
                        run.ran_by,
                    ),
                )
                db.executemany(
                    "INSERT INTO run_rejects (run_id, file, line, column_name, reason) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(run.id, r.file, r.line, r.column, r.reason) for r in rejects],
                )

    def restore_change_seq(self, change_seq: int) -> None:
        with self._store._write() as db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'change_seq'", (str(change_seq),))
