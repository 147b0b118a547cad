"""The history concern in SQLite: runs with their counts (JSON text) and rejected rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from connector.errors import StoreError
from connector.limits import MAX_REJECTS_STORED
from connector.storage import _json
from connector.storage.history import RunHistory
from connector.storage.owners import default_owner
from connector.storage.records import RowReject, RunCounts, RunRecord, RunStatus, Trigger
from connector.storage.sqlite._db import Session, now, time_of


class SQLiteHistory(Session, RunHistory):
    """`RunHistory` on the store's connection."""

    def start_run(
        self, connection: str, goal: str | None, trigger: Trigger, *, dry_run: bool = False
    ) -> RunRecord:
        started = now()
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO runs (connection, goal, trigger, status, started_at, dry_run, ran_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    connection,
                    goal,
                    str(trigger),
                    str(RunStatus.RUNNING),
                    started,
                    int(dry_run),
                    default_owner(),
                ),
            )
        run_id = cursor.lastrowid
        assert run_id is not None  # noqa: S101 -- an INSERT into a rowid table always has one
        return RunRecord(
            run_id,
            connection,
            goal,
            trigger,
            RunStatus.RUNNING,
            datetime.fromisoformat(started),
            dry_run=dry_run,
            ran_by=default_owner(),
        )

    def finish_run(
        self, run_id: int, status: RunStatus, counts: RunCounts, error: str | None = None
    ) -> RunRecord:
        with self._write() as db:
            db.execute(
                "UPDATE runs SET status = ?, ended_at = ?, counts = ?, error = ? WHERE id = ?",
                (str(status), now(), _json.dumps(counts.as_dict()), error, run_id),
            )
        record = self.get_run(run_id)
        if record is None:
            raise StoreError(f"run {run_id} vanished from the history")
        return record

    def add_rejects(self, run_id: int, rejects: Iterable[RowReject]) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT INTO run_rejects (run_id, file, line, column_name, reason) VALUES (?, ?, ?, ?, ?)",
                ((run_id, r.file, r.line, r.column, r.reason) for r in rejects),
            )

    _RUN_COLUMNS = (
        "id, connection, goal, trigger, status, started_at, ended_at, dry_run, counts, error, "
        "(SELECT count(*) FROM run_rejects WHERE run_id = runs.id), ran_by"
    )

    def list_runs(
        self, connection: str | None = None, *, limit: int = 50, since: datetime | None = None
    ) -> list[RunRecord]:
        # started_at is ISO text in UTC with microseconds: it sorts and compares as written
        after = since.astimezone(UTC).isoformat(timespec="microseconds") if since else ""
        rows = self._db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs WHERE (? IS NULL OR connection = ?) "
            "AND started_at >= ? ORDER BY id DESC LIMIT ?",
            (connection, connection, after, limit),
        ).fetchall()
        return [_record(row) for row in rows]

    def get_run(self, run_id: int) -> RunRecord | None:
        row = self._db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        return _record(row) if row else None

    def run_rejects(self, run_id: int, *, limit: int = MAX_REJECTS_STORED) -> list[RowReject]:
        rows = self._db.execute(
            "SELECT file, line, column_name, reason FROM run_rejects WHERE run_id = ? "
            "ORDER BY rowid LIMIT ?",
            (run_id, limit),
        ).fetchall()
        return [RowReject(*row) for row in rows]


def _record(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        id=row[0],
        connection=row[1],
        goal=row[2],
        trigger=Trigger(row[3]),
        status=RunStatus(row[4]),
        started_at=datetime.fromisoformat(row[5]),
        ended_at=time_of(row[6]),
        dry_run=bool(row[7]),
        counts=RunCounts.from_dict(_json.loads(row[8])),
        error=row[9],
        rejects_stored=row[10],
        ran_by=row[11],
    )
