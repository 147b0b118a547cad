"""The export state concern in PostgreSQL: watermarks, export members, open multipart uploads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from connector.storage.export_state import ExportState
from connector.storage.postgres._session import Session
from connector.storage.records import ExportWatermark, OpenUpload


class PostgresExportState(Session, ExportState):
    """`ExportState` on the store's pool; the staged members swap in with the watermark."""

    def export_watermark(self, connection: str, goal: str) -> ExportWatermark | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT change_seq, exported_at FROM export_watermarks "
                "WHERE connection = %s AND goal = %s",
                (connection, goal),
            ).fetchone()
        return None if row is None else ExportWatermark(connection, goal, int(row[0]), row[1])

    def set_export_watermark(
        self,
        connection: str,
        goal: str,
        change_seq: int,
        exported_at: datetime,
        *,
        members: bool = False,
    ) -> None:
        key = (connection, goal)
        with self._write_conn() as conn:
            conn.execute(
                "INSERT INTO export_watermarks (connection, goal, change_seq, exported_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (connection, goal) DO UPDATE SET "
                "change_seq = excluded.change_seq, exported_at = excluded.exported_at",
                (*key, change_seq, exported_at),
            )
            if members:  # the staged members become the goal's members
                conn.execute("DELETE FROM export_members WHERE connection = %s AND goal = %s", key)
                conn.execute(
                    "INSERT INTO export_members (connection, goal, profile_id) "
                    "SELECT connection, goal, profile_id FROM export_members_next "
                    "WHERE connection = %s AND goal = %s",
                    key,
                )
                conn.execute(
                    "DELETE FROM export_members_next WHERE connection = %s AND goal = %s", key
                )

    # -- export members (exits) -----------------------------------------------------------
    def export_members(
        self, connection: str, goal: str, *, after: str = "", limit: int = 10000
    ) -> list[str]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT profile_id FROM export_members WHERE connection = %s AND goal = %s "
                "AND profile_id > %s ORDER BY profile_id LIMIT %s",
                (connection, goal, after, limit),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def stage_export_members(
        self, connection: str, goal: str, profile_ids: Sequence[str], *, fresh: bool = False
    ) -> None:
        with self._write_conn() as conn:
            if fresh:
                conn.execute(
                    "DELETE FROM export_members_next WHERE connection = %s AND goal = %s",
                    (connection, goal),
                )
            if profile_ids:
                conn.execute(
                    "INSERT INTO export_members_next (connection, goal, profile_id) "
                    "SELECT %s, %s, unnest(%s::text[]) ON CONFLICT DO NOTHING",
                    (connection, goal, list(profile_ids)),
                )

    # -- open multipart uploads ------------------------------------------------------------------
    def note_upload(self, upload: OpenUpload) -> None:
        with self._write_conn() as conn:
            conn.execute(
                "INSERT INTO uploads (upload_id, connection, goal, bucket, key, started_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (upload_id) DO NOTHING",
                (
                    upload.upload_id,
                    upload.connection,
                    upload.goal,
                    upload.bucket,
                    upload.key,
                    upload.started_at,
                ),
            )

    def forget_upload(self, upload_id: str) -> None:
        with self._write_conn() as conn:
            conn.execute("DELETE FROM uploads WHERE upload_id = %s", (upload_id,))

    def open_uploads(self, connection: str, started_before: datetime) -> list[OpenUpload]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT upload_id, connection, goal, bucket, key, started_at FROM uploads "
                "WHERE connection = %s AND started_at < %s ORDER BY started_at",
                (connection, started_before),
            ).fetchall()
        return [OpenUpload(*row) for row in rows]
