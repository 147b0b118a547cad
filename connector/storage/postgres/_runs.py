"""Run history, rejected rows, the file ledger and export watermarks in PostgreSQL."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from connector.errors import StoreError
from connector.storage.postgres._db import Conn, now
from connector.storage.records import (
    ExportWatermark,
    LedgerEntry,
    RowReject,
    RunCounts,
    RunRecord,
    RunStatus,
    Trigger,
)

RUN_COLUMNS = (
    "id, connection, goal, trigger, status, started_at, ended_at, dry_run, counts, error, "
    "(SELECT count(*) FROM run_rejects WHERE run_id = runs.id), host, pid"
)


def run_record(row: tuple[Any, ...]) -> RunRecord:
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


def start_run(
    conn: Conn, connection: str, goal: str | None, trigger: Trigger, *, dry_run: bool
) -> RunRecord:
    """Record a running run, with the host and process that runs it."""
    started = now()
    row = conn.execute(
        "INSERT INTO runs (connection, goal, trigger, status, started_at, dry_run, host, pid) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            connection,
            goal,
            str(trigger),
            str(RunStatus.RUNNING),
            started,
            dry_run,
            socket.gethostname(),
            os.getpid(),
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
        ran_by=f"{socket.gethostname()}:{os.getpid()}",
    )


def finish_run(
    conn: Conn, run_id: int, status: RunStatus, counts: RunCounts, error: str | None
) -> RunRecord:
    conn.execute(
        "UPDATE runs SET status = %s, ended_at = %s, counts = %s, error = %s WHERE id = %s",
        (str(status), now(), Jsonb(counts.as_dict()), error, run_id),
    )
    record = get_run(conn, run_id)
    if record is None:
        raise StoreError(f"run {run_id} vanished from the history")
    return record


def add_rejects(conn: Conn, run_id: int, rejects: Iterable[RowReject]) -> None:
    with conn.cursor().copy(
        "COPY run_rejects (run_id, file, line, column_name, reason) FROM STDIN"
    ) as copy:
        for reject in rejects:
            copy.write_row((run_id, reject.file, reject.line, reject.column, reject.reason))


def list_runs(
    conn: Conn, connection: str | None, limit: int, since: datetime | None = None
) -> list[RunRecord]:
    rows = conn.execute(
        f"SELECT {RUN_COLUMNS} FROM runs WHERE (%s::text IS NULL OR connection = %s) "
        "AND (%s::timestamptz IS NULL OR started_at >= %s) ORDER BY id DESC LIMIT %s",
        (connection, connection, since, since, limit),
    ).fetchall()
    return [run_record(row) for row in rows]


def get_run(conn: Conn, run_id: int) -> RunRecord | None:
    row = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = %s", (run_id,)).fetchone()
    return run_record(row) if row else None


def run_rejects(conn: Conn, run_id: int, limit: int) -> list[RowReject]:
    rows = conn.execute(
        "SELECT file, line, column_name, reason FROM run_rejects WHERE run_id = %s "
        "ORDER BY id LIMIT %s",
        (run_id, limit),
    ).fetchall()
    return [RowReject(file, int(line), column, reason) for file, line, column, reason in rows]


def interrupt_runs(conn: Conn, connection: str, holder: str) -> None:
    """Mark a connection's running runs interrupted: the process running them is gone."""
    conn.execute(
        "UPDATE runs SET status = %s, ended_at = %s, error = %s "
        "WHERE connection = %s AND status = %s",
        (
            str(RunStatus.INTERRUPTED),
            now(),
            f"the process running it ({holder}) stopped before it finished",
            connection,
            str(RunStatus.RUNNING),
        ),
    )


# -- ledger ------------------------------------------------------------------------------

LEDGER_COLUMNS = "connection, goal, key, etag, config_fingerprint, rows, imported_at, run_id"


def ledger_entry(row: tuple[Any, ...]) -> LedgerEntry:
    return LedgerEntry(
        row[0], row[1], row[2], row[3], row[4], int(row[5]), row[6], _int_or_none(row[7])
    )


def ledger(conn: Conn, connection: str, goal: str) -> dict[str, LedgerEntry]:
    rows = conn.execute(
        f"SELECT {LEDGER_COLUMNS} FROM ledger WHERE connection = %s AND goal = %s",
        (connection, goal),
    ).fetchall()
    return {row[2]: ledger_entry(row) for row in rows}


def record_file(conn: Conn, entry: LedgerEntry) -> None:
    conn.execute(
        f"INSERT INTO ledger ({LEDGER_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (connection, goal, key) DO UPDATE SET etag = excluded.etag, "
        "config_fingerprint = excluded.config_fingerprint, rows = excluded.rows, "
        "imported_at = excluded.imported_at, run_id = excluded.run_id",
        (
            entry.connection,
            entry.goal,
            entry.key,
            entry.etag,
            entry.config_fingerprint,
            entry.rows,
            entry.imported_at,
            entry.run_id,
        ),
    )


# -- export watermarks ------------------------------------------------------------------------


def export_watermark(conn: Conn, connection: str, goal: str) -> ExportWatermark | None:
    row = conn.execute(
        "SELECT change_seq, exported_at FROM export_watermarks WHERE connection = %s AND goal = %s",
        (connection, goal),
    ).fetchone()
    return None if row is None else ExportWatermark(connection, goal, int(row[0]), row[1])


def set_export_watermark(
    conn: Conn, connection: str, goal: str, change_seq: int, exported_at: datetime
) -> None:
    conn.execute(
        "INSERT INTO export_watermarks (connection, goal, change_seq, exported_at) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (connection, goal) DO UPDATE SET "
        "change_seq = excluded.change_seq, exported_at = excluded.exported_at",
        (connection, goal, change_seq, exported_at),
    )


def replace_export_members(conn: Conn, connection: str, goal: str) -> None:
    """The staged members become the goal's members (inside the caller's transaction)."""
    key = (connection, goal)
    conn.execute("DELETE FROM export_members WHERE connection = %s AND goal = %s", key)
    conn.execute(
        "INSERT INTO export_members (connection, goal, profile_id) "
        "SELECT connection, goal, profile_id FROM export_members_next "
        "WHERE connection = %s AND goal = %s",
        key,
    )
    conn.execute("DELETE FROM export_members_next WHERE connection = %s AND goal = %s", key)


def export_members(conn: Conn, connection: str, goal: str, after: str, limit: int) -> list[str]:
    rows = conn.execute(
        "SELECT profile_id FROM export_members WHERE connection = %s AND goal = %s "
        "AND profile_id > %s ORDER BY profile_id LIMIT %s",
        (connection, goal, after, limit),
    ).fetchall()
    return [str(row[0]) for row in rows]


def stage_export_members(
    conn: Conn, connection: str, goal: str, profile_ids: Sequence[str], *, fresh: bool
) -> None:
    if fresh:
        conn.execute(
            "DELETE FROM export_members_next WHERE connection = %s AND goal = %s",
            (connection, goal),
        )
    if not profile_ids:
        return
    conn.execute(
        "INSERT INTO export_members_next (connection, goal, profile_id) "
        "SELECT %s, %s, unnest(%s::text[]) ON CONFLICT DO NOTHING",
        (connection, goal, list(profile_ids)),
    )


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(str(value))
