"""The PostgreSQL side of `connector store copy`: listing and restoring what the interface cannot."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, LiteralString

from psycopg import sql
from psycopg.types.json import Jsonb

from connector.limits import STORE_PAGE_ROWS
from connector.storage.archive import CLEARED, COUNTED, batches, by_file
from connector.storage.postgres._history import add_rejects
from connector.storage.postgres.store import PostgresStore
from connector.storage.records import Contribution, FileKey, Group, Profile, RowReject, RunRecord

_CLEARED = ("fire_claims", *CLEARED)
"""A PostgreSQL store also remembers which daemon claimed each scheduled fire."""


class PostgresArchive:
    """`StoreArchive` for a PostgreSQL store, through its pool."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def counts(self) -> dict[str, int]:
        with self._store._conn() as conn:
            return {
                kind: int(row[0])
                for kind in COUNTED
                if (
                    row := conn.execute(
                        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(kind))
                    ).fetchone()
                )
            }

    def clear(self) -> None:
        with self._store._write_conn() as conn:
            for table in _CLEARED:
                conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
            conn.execute("UPDATE meta SET value = '0' WHERE key = 'change_seq'")
        self._store._unique = None

    def rows(self, query: LiteralString) -> list[tuple[Any, ...]]:
        with self._store._conn() as conn:
            return conn.execute(query).fetchall()

    def contributions(self) -> Iterator[tuple[FileKey, list[Contribution]]]:
        with self._store._conn() as conn:
            rows = conn.execute(
                "SELECT connection, goal, key, profile_id, property, kind, value, added "
                "FROM contributions ORDER BY connection, goal, key, ctid"
            ).fetchall()
        return by_file(
            (FileKey(*row[:3]), Contribution(row[3], row[4], row[5], row[6], row[7]))
            for row in rows
        )

    def restore_profiles(self, profiles: Iterable[Profile]) -> None:
        registry = self._store._registry
        with self._store._write_conn() as conn:
            for batch in batches(profiles, STORE_PAGE_ROWS):
                registry.ensure(conn, {name for p in batch for name in p.properties})
                columns = registry.columns()
                names = [registry.name_of(column) for column in columns]
                query = sql.SQL("INSERT INTO profiles ({}) VALUES ({})").format(
                    sql.SQL(", ").join(
                        sql.Identifier(c)
                        for c in ("id", "created_at", "updated_at", "change_seq", *columns)
                    ),
                    sql.SQL(", ").join(
                        [sql.Placeholder()] * 4 + [sql.SQL("%s::text[]")] * len(columns)
                    ),
                )
                rows = [
                    (
                        p.id,
                        p.created_at,
                        p.updated_at,
                        p.change_seq,
                        *[p.properties.get(name or "") for name in names],
                    )
                    for p in batch
                ]
                with conn.cursor() as cursor:
                    cursor.executemany(query, rows)

    def restore_groups(self, groups: Iterable[Group]) -> None:
        with self._store._write_conn() as conn:
            for group in groups:
                conn.execute(
                    "INSERT INTO groups (type, id, properties, created_at, updated_at, change_seq) "
                    "VALUES (%s, %s, %s, %s, %s, 0)",
                    (
                        group.type,
                        group.id,
                        Jsonb(group.properties),
                        group.created_at,
                        group.updated_at,
                    ),
                )
                conn.execute(
                    "INSERT INTO group_members (type, group_id, profile_id) "
                    "SELECT %s, %s, unnest(%s::text[])",
                    (group.type, group.id, group.members),
                )

    def restore_runs(self, runs: Iterable[tuple[RunRecord, list[RowReject]]]) -> None:
        with self._store._write_conn() as conn:
            for run, rejects in runs:
                conn.execute(
                    "INSERT INTO runs (id, connection, goal, trigger, status, started_at, "
                    "ended_at, dry_run, counts, error, host, pid) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        run.id,
                        run.connection,
                        run.goal,
                        str(run.trigger),
                        str(run.status),
                        run.started_at,
                        run.ended_at,
                        run.dry_run,
                        Jsonb(run.counts.as_dict()),
                        run.error,
                        *_host_and_pid(run.ran_by),
                    ),
                )
                add_rejects(conn, run.id, rejects)
            conn.execute(
                "SELECT setval(pg_get_serial_sequence('runs', 'id'), "
                "greatest((SELECT max(id) FROM runs), 1), (SELECT count(*) > 0 FROM runs))"
            )

    def restore_change_seq(self, change_seq: int) -> None:
        with self._store._write_conn() as conn:
            conn.execute(
                "SELECT setval('change_seqs', greatest(%s, 1), %s)", (change_seq, change_seq > 0)
            )
            conn.execute("UPDATE meta SET value = %s WHERE key = 'change_seq'", (str(change_seq),))


def _host_and_pid(ran_by: str | None) -> tuple[str | None, int | None]:
    """`host:pid` back into the two columns PostgreSQL keeps them in."""
    if ran_by is None:
        return None, None
    host, _, pid = ran_by.rpartition(":")
    return host, int(pid) if pid.isdigit() else None
