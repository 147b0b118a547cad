"""The export state concern in SQLite: watermarks, export members, open multipart uploads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from connector.storage.export_state import ExportState
from connector.storage.records import ExportWatermark, OpenUpload
from connector.storage.sqlite._db import Session


class SQLiteExportState(Session, ExportState):
    """`ExportState` on the store's connection."""

    def export_watermark(self, connection: str, goal: str) -> ExportWatermark | None:
        row = self._db.execute(
            "SELECT change_seq, exported_at FROM export_watermarks WHERE connection = ? AND goal = ?",
            (connection, goal),
        ).fetchone()
        if row is None:
            return None
        return ExportWatermark(connection, goal, row[0], datetime.fromisoformat(row[1]))

    def set_export_watermark(
        self,
        connection: str,
        goal: str,
        change_seq: int,
        exported_at: datetime,
        *,
        members: bool = False,
    ) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO export_watermarks (connection, goal, change_seq, exported_at) "
                "VALUES (?, ?, ?, ?)",
                (connection, goal, change_seq, exported_at.isoformat()),
            )
            if members:
                key = (connection, goal)
                db.execute("DELETE FROM export_members WHERE connection = ? AND goal = ?", key)
                db.execute(
                    "INSERT INTO export_members (connection, goal, profile_id) "
                    "SELECT connection, goal, profile_id FROM export_members_next "
                    "WHERE connection = ? AND goal = ?",
                    key,
                )
                db.execute("DELETE FROM export_members_next WHERE connection = ? AND goal = ?", key)

    # -- export members (exits) -----------------------------------------------------------
    def export_members(
        self, connection: str, goal: str, *, after: str = "", limit: int = 10000
    ) -> list[str]:
        rows = self._db.execute(
            "SELECT profile_id FROM export_members WHERE connection = ? AND goal = ? "
            "AND profile_id > ? ORDER BY profile_id LIMIT ?",
            (connection, goal, after, limit),
        ).fetchall()
        return [row[0] for row in rows]

    def stage_export_members(
        self, connection: str, goal: str, profile_ids: Sequence[str], *, fresh: bool = False
    ) -> None:
        with self._write() as db:
            if fresh:
                db.execute(
                    "DELETE FROM export_members_next WHERE connection = ? AND goal = ?",
                    (connection, goal),
                )
            db.executemany(
                "INSERT OR IGNORE INTO export_members_next (connection, goal, profile_id) "
                "VALUES (?, ?, ?)",
                ((connection, goal, profile_id) for profile_id in profile_ids),
            )

    # -- open multipart uploads -----------------------------------------------------------
    def note_upload(self, upload: OpenUpload) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO uploads (upload_id, connection, goal, bucket, key, "
                "started_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    upload.upload_id,
                    upload.connection,
                    upload.goal,
                    upload.bucket,
                    upload.key,
                    upload.started_at.isoformat(),
                ),
            )

    def forget_upload(self, upload_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))

    def open_uploads(self, connection: str, started_before: datetime) -> list[OpenUpload]:
        rows = self._db.execute(
            "SELECT upload_id, connection, goal, bucket, key, started_at FROM uploads "
            "WHERE connection = ? ORDER BY started_at",
            (connection,),
        ).fetchall()
        uploads = [
            OpenUpload(row[0], row[1], row[2], row[3], row[4], datetime.fromisoformat(row[5]))
            for row in rows
        ]
        return [upload for upload in uploads if upload.started_at < started_before]
