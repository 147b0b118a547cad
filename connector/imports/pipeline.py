"""The file loop every import goal shares: scan, download ahead, import each file, mark it.

One file is one store transaction, rows and ledger entry together (see
`_apply_file`, whose names are re-exported here): a process killed at any
moment leaves the file either wholly applied and recorded, or not at all,
and the next run applies it exactly once. Profiles and groups differ only
in the `Applier` that turns a batch of rows into writes.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import structlog

from connector.config.connection import ImportGoal
from connector.config.goal_parts import MoveTo
from connector.errors import (
    FormatError,
    ObjectChangedError,
    RunStopped,
    SourceError,
    StoreError,
)
from connector.goals.context import GoalContext, GoalResult, tell_files_planned
from connector.imports._apply_file import (
    Applier,
    ApplierFactory,
    PieceApplier,
    PieceApplierFactory,
    apply_file,
)
from connector.imports.channel import ChunkChannel
from connector.imports.files import (
    DONE_SUFFIX,
    FileState,
    ScannedFile,
    SkippedFile,
    goal_fingerprint,
    scan_files,
    unchanged_reason,
)
from connector.imports.model import ImportProfilesGoal
from connector.limits import PREFETCH_FILES, PREFETCH_MAX_BYTES
from connector.sources import S3Object, s3_client

if TYPE_CHECKING:
    from connector.sources.s3 import S3Client

log = structlog.get_logger("connector.import")


async def run_import(
    ctx: GoalContext,
    goal: ImportGoal,
    make_applier: ApplierFactory,
    *,
    extra_column: str | None = None,
    make_piece_applier: PieceApplierFactory | None = None,
) -> GoalResult:
    """Import every new or changed file of `goal`, oldest first.

    `make_piece_applier`: the engine's applier for a group goal (profile goals have theirs).
    """
    result = GoalResult()
    fingerprint = goal_fingerprint(goal, ctx.connection.objectives)
    ledger = await asyncio.to_thread(ctx.store.ledger, ctx.connection.id, goal.name)
    async with s3_client(ctx.credentials) as s3:
        files = await scan_files(s3, goal, ledger, fingerprint, result.skipped)
        todo = [scanned for scanned in files if scanned.state is not FileState.IMPORTED]
        done = 0
        tell_files_planned(ctx.progress, goal.name, len(todo))
        streams = _Downloads(s3, goal.source.bucket)
        try:
            for scanned in files:
                if scanned.state is FileState.IMPORTED:
                    result.counts.files_skipped += 1
                    result.skipped.append(SkippedFile(scanned.key, unchanged_reason(scanned)))
                    if goal.after_import != "keep" and not ctx.dry_run:
                        await _mark_left_over(ctx, goal, s3, scanned.object)
                    continue
                if ctx.stopping.is_set():
                    log.info("stopping: file left for the next run", key=scanned.key)
                    break
                done += 1  # todo[done:] are the files after this one, in order
                streams.prefetch(todo[done : done + PREFETCH_FILES])
                await _import_one(
                    ctx,
                    goal,
                    s3,
                    scanned,
                    streams.take(scanned.object),
                    fingerprint,
                    make_applier,
                    extra_column,
                    result,
                    make_piece_applier,
                )
        finally:
            await streams.close()
    return result


Download = tuple[ChunkChannel, "asyncio.Task[None]"]


class _Downloads:
    """Each file's download: started when the file's turn comes, or earlier for small files."""

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._ahead: dict[str, Download] = {}

    def _start(self, obj: S3Object) -> Download:
        channel = ChunkChannel()
        chunks = self._s3.iter_object(self._bucket, obj.key, etag=obj.etag)
        return channel, asyncio.create_task(channel.pump(chunks))

    def prefetch(self, upcoming: list[ScannedFile]) -> None:
        for scanned in upcoming:
            obj = scanned.object
            if obj.size <= PREFETCH_MAX_BYTES and obj.key not in self._ahead:
                self._ahead[obj.key] = self._start(obj)

    def take(self, obj: S3Object) -> Download:
        return self._ahead.pop(obj.key, None) or self._start(obj)

    async def close(self) -> None:
        """Drop downloads never used (a stop, an error): nothing keeps running after the goal."""
        ahead, self._ahead = list(self._ahead.values()), {}
        for channel, _producer in ahead:
            channel.abandon()
        await asyncio.gather(*(producer for _channel, producer in ahead))


async def _import_one(
    ctx: GoalContext,
    goal: ImportGoal,
    s3: S3Client,
    scanned: ScannedFile,
    download: Download,
    fingerprint: str,
    make_applier: ApplierFactory,
    extra_column: str | None,
    result: GoalResult,
    make_piece_applier: PieceApplierFactory | None,
) -> None:
    obj = scanned.object
    file_log = log.bind(
        connection=ctx.connection.id, goal=goal.name, run_id=ctx.run_id, key=obj.key
    )
    file_log.info("file started", state=str(scanned.state), size=obj.size, etag=obj.etag)
    ctx.progress.file_started(goal.name, obj.key, obj.size)
    channel, producer = download
    started = time.monotonic()
    outcome = "failed"
    try:
        file_result = await asyncio.to_thread(
            apply_file,
            ctx,
            goal,
            obj,
            channel,
            fingerprint,
            make_applier,
            extra_column,
            make_piece_applier,
        )
    except ObjectChangedError:
        # a normal race with the writer, not a failure: the new version is imported next run
        outcome = "changed while read; left for the next run"
        file_log.warning("file changed while it was read; nothing applied, retried next run")
        result.counts.files_skipped += 1
        result.skipped.append(SkippedFile(obj.key, "changed while read; left for the next run"))
    except RunStopped as error:
        outcome = "stopped; rolled back"
        file_log.warning("stop requested: file rolled back, imported again next run")
        result.errors.append(str(error))
    except (FormatError, SourceError, StoreError) as error:
        file_log.error("file not imported", error=str(error))
        result.errors.append(str(error))
    else:
        outcome = "dry run" if ctx.dry_run else "imported"
        result.merge(file_result, ctx.max_rejects)
        result.counts.files += 1
        result.counts.bytes_transferred += obj.size
        if scanned.state is FileState.CHANGED:
            _count_changed_file(goal, scanned, result, file_log)
        elapsed = max(time.monotonic() - started, 1e-9)
        file_log.info(
            "file imported" if not ctx.dry_run else "file checked (dry run, nothing written)",
            rows=file_result.counts.rows_read,
            applied=file_result.counts.rows_applied,
            rejected=file_result.counts.rows_rejected,
            rows_per_second=round(file_result.counts.rows_read / elapsed),
        )
        if not ctx.dry_run:
            await _mark_imported(s3, goal, obj, file_log)
    finally:
        channel.abandon()
        await producer
        ctx.progress.file_finished(goal.name, obj.key, outcome)


def _count_changed_file(
    goal: ImportGoal, scanned: ScannedFile, result: GoalResult, file_log: Any
) -> None:
    """A file applied before, applied again: say which way, loudly when sums count twice."""
    if isinstance(goal, ImportProfilesGoal) and goal.on_change == "replace":
        result.counts.files_replaced += 1
        return
    result.counts.files_reapplied += 1
    accumulating = sorted({m.property for m in goal.mappings if m.rule in ("sum", "add")})
    if accumulating:
        file_log.warning(
            "changed file applied again on top of its earlier version: its sums and added "
            "values count twice (on_change: replace takes the earlier version back first)",
            why=scanned.reason,
            properties=accumulating,
        )


async def _mark_left_over(ctx: GoalContext, goal: ImportGoal, s3: S3Client, obj: S3Object) -> None:
    """Mark a file the ledger knows but `after_import` did not move (it failed, or the goal
    only now asks for it): it is never imported again, so it would otherwise stay for ever."""
    if ctx.stopping.is_set():
        return
    file_log = log.bind(
        connection=ctx.connection.id, goal=goal.name, run_id=ctx.run_id, key=obj.key
    )
    file_log.info("file imported earlier is still in place; marking it now")
    await _mark_imported(s3, goal, obj, file_log)


def _relative_key(key: str, prefix: str) -> str:
    """The key below the source prefix, as the goal's patterns see it."""
    relative = key.removeprefix(prefix)
    if prefix and not prefix.endswith("/"):
        relative = relative.removeprefix("/")  # prefix "in" lists "in/a.csv" as "a.csv"
    return relative


async def _mark_imported(s3: S3Client, goal: ImportGoal, obj: S3Object, file_log: Any) -> None:
    """Rename an applied file (`KEY.done`) or move it, as the goal's `after_import` asks.

    Runs after the file's transaction committed: if marking fails halfway
    (copied, not deleted), the ledger still knows the file, so it is never
    applied twice; the failure is logged for the operator. Copy and delete
    are conditional on the imported ETag: a version written meanwhile stays
    in place and is imported by the next run.
    """
    after = goal.after_import
    if after == "keep":
        return
    key = obj.key
    if isinstance(after, MoveTo):
        target = after.move_to + _relative_key(key, goal.source.prefix)
    else:
        target = key + DONE_SUFFIX
    try:
        await s3.copy_object(goal.source.bucket, key, target, if_match=obj.etag)
        await s3.delete_object(goal.source.bucket, key, if_match=obj.etag)
    except ObjectChangedError:
        file_log.warning(
            "file replaced after it was imported; the new version stays for the next run",
            target=target,
        )
    except SourceError as error:
        file_log.warning(
            "file applied but not marked; the ledger keeps it from a second import",
            target=target,
            error=str(error),
        )
    else:
        file_log.info("file marked as imported", target=target)


__all__ = [
    "Applier",
    "ApplierFactory",
    "PieceApplier",
    "PieceApplierFactory",
    "apply_file",
    "run_import",
]
