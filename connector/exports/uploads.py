"""Multipart uploads a killed export left behind: remembered in the store, aborted later.

S3 keeps the parts of an upload that was neither completed nor aborted, and
bills them, for ever (unless a lifecycle rule removes them). An export tells
the store each upload it starts and each it completes or aborts; one that a
killed process left open stays recorded, and a later export of the same
connection aborts it once it is older than the goal's `abandoned_upload_hours`
(never a younger one: another daemon may still be writing it).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from connector.errors import ConnectorError
from connector.exports.model import ExportProfilesGoal
from connector.goals.context import GoalContext
from connector.sources import s3_client
from connector.storage import ExportState, OpenUpload

if TYPE_CHECKING:
    from connector.sources.s3 import S3Client

log = structlog.get_logger("connector.export")


class StoreUploadJournal:
    """`UploadJournal` for one export goal, kept in the profile store."""

    def __init__(self, store: ExportState, connection: str, goal: str) -> None:
        self._store = store
        self._connection = connection
        self._goal = goal

    async def started(self, bucket: str, key: str, upload_id: str) -> None:
        upload = OpenUpload(upload_id, self._connection, self._goal, bucket, key, datetime.now(UTC))
        await asyncio.to_thread(self._store.note_upload, upload)

    async def ended(self, upload_id: str) -> None:
        await asyncio.to_thread(self._store.forget_upload, upload_id)


async def abort_abandoned_uploads(
    s3: S3Client, store: ExportState, connection: str, older_than: timedelta
) -> int:
    """Abort the connection's recorded uploads older than `older_than`; how many S3 had."""
    cutoff = datetime.now(UTC) - older_than
    aborted = 0
    for upload in await asyncio.to_thread(store.open_uploads, connection, cutoff):
        existed = await s3.abort_upload(upload.bucket, upload.key, upload.upload_id)
        await asyncio.to_thread(store.forget_upload, upload.upload_id)
        aborted += existed
        log.warning(
            "aborted a multipart upload an earlier export left behind"
            if existed
            else "forgot a multipart upload S3 no longer has",
            connection=connection,
            goal=upload.goal,
            bucket=upload.bucket,
            key=upload.key,
            started_at=upload.started_at.isoformat(),
        )
    return aborted


async def tidy_uploads(
    ctx: GoalContext, goal: ExportProfilesGoal, run_log: Any, s3: S3Client | None = None
) -> int:
    """Abort what killed exports of this connection left open; never fails the export.

    `s3` is the export's own client, when it has one open; otherwise one is opened here.
    """
    older_than = timedelta(hours=goal.abandoned_upload_hours)
    try:
        async with AsyncExitStack() as stack:
            if s3 is None:
                s3 = await stack.enter_async_context(s3_client(ctx.credentials))
            return await abort_abandoned_uploads(s3, ctx.store, ctx.connection.id, older_than)
    except ConnectorError as error:
        run_log.warning("could not abort abandoned multipart uploads", error=str(error))
        return 0


__all__ = ["StoreUploadJournal", "abort_abandoned_uploads", "tidy_uploads"]
