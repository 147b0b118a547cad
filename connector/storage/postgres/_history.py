"""The history concern in PostgreSQL: runs with the host and process that ran them."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from connector.errors import StoreError
from connector.limits import MAX_REJECTS_STORED
from connector.storage.history import RunHistory, interruption
from connector.storage.postgres._db import Conn, now
from connector.storage.postgres._session import Session
from connector.storage.records import RowReject, RunCounts, RunRecord, RunStatus, Trigger

RUN_COLUMNS = (
    "id, connection, goal, trigger, status, started_at, ended_at, dry_run, counts, error, "
    "(SELECT count(*) FROM run_rejects WHERE run_id = runs.id), host, pid"
)


class PostgresHistory(Session, RunHistory):
    """`RunHistory` on the store's pool."""

    def start_run(
        self, connection: str, goal: str | None, trigger: Trigger, *, dry_run: bool = False
    ) -> RunRecord:
        """Record a running run, with the host and process that runs it."""
        started = now()
        host, pid = socket.gethostname(), os.getpid()
        with self._write_conn() as conn:
            row = conn.execute(
                "INSERT INTO runs (connection, goal, trigger, status, started_at, dry_run, host, "
                "pid) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    connection,
                    goal,
                    str(trigger),
                    str(RunStatus.RUNNING),
                    started,
                    dry_run,
                    host,
                    pid,
                ),
            ).fetchone()
        assert row is not None  # noqa: S101 -- INSERT ... RETURNING returns the row
        return RunRecord(
            int(row[0]),
            connection,
            goal,
            trigger,
            RunStatus.RUNNING,
            started,
            dry_run=dry_run,
            ran_by=f"{host}:{pid}",
        )

    def finish_run(
        self, run_id: int, status: RunStatus, counts: RunCounts, error: str | None = None
    ) -> RunRecord:
        with self._write_conn() as conn:
            conn.execute(
                "UPDATE runs SET status = %s, ended_at = %s, counts = %s, error = %s WHERE id = %s",
                (str(status), now(), Jsonb(counts.as_dict()), error, run_id),
            )
            record = _get_run(conn, run_id)
            if record is None:
                raise StoreError(f"run {run_id} vanished from the history")
        return record

    def add_rejects(self, run_id: int, rejects: Iterable[RowReject]) -> None:
        with self._write_conn() as conn:
            add_rejects(conn, run_id, rejects)

    def list_runs(
        self, connection: str | None = None, *, limit: int = 50, since: datetime | None = None
    ) -> list[RunRecord]:
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE (%s::text IS NULL OR connection = %s) "
                "AND (%s::timestamptz IS NULL OR started_at >= %s) ORDER BY id DESC LIMIT %s",
                (connection, connection, since, since, limit),
            ).fetchall()
        return [_run_record(row) for row in rows]

    def get_run(self, run_id: int) -> RunRecord | None:
        with self._conn() as conn:
            return _get_run(conn, run_id)

    def run_rejects(self, run_id: int, *, limit: int = MAX_REJECTS_STORED) -> list[RowReject]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT file, line, column_name, reason FROM run_rejects WHERE run_id = %s "
                "ORDER BY id LIMIT %s",
                (run_id, limit),
            ).fetchall()
        return [RowReject(file, int(line), column, reason) for file, line, column, reason in rows]


def add_rejects(conn: Conn, run_id: int, rejects: Iterable[RowReject]) -> None:
    """Rejected rows of a run, by COPY (also how `connector store copy` restores them)."""
    with conn.cursor().copy(
        "COPY run_rejects (run_id, file, line, column_name, reason) FROM STDIN"
    ) as copy:
        for reject in rejects:
            copy.write_row((run_id, reject.file, reject.line, reject.column, reject.reason))


def interrupt_runs(conn: Conn, connection: str, holder: str) -> None:
    """Mark a connection's running runs interrupted: the process running them is gone."""
    conn.execute(
        "UPDATE runs SET status = %s, ended_at = %s, error = %s "
        "WHERE connection = %s AND status = %s",
        interruption(connection, holder, now()),
    )


def _get_run(conn: Conn, run_id: int) -> RunRecord | None:
    row = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = %s", (run_id,)).fetchone()
    return _run_record(row) if row else None


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        id=int(row[0]),
        connection=row[1],
        goal=row[2],
        trigger=Trigger(row[3]),
        status=RunStatus(row[4]),
        started_at=row[5],
        ended_at=row[6],
        dry_run=bool(row[7]),
        counts=RunCounts.from_dict(row[8]),
        error=row[9],
        rejects_stored=int(row[10]),
        ran_by=f"{row[11]}:{row[12]}" if row[11] is not None else None,
    )
