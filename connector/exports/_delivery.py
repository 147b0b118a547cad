"""Delivering a run: the parts uploaded as the rows come, then the manifests, then stale parts.

The worker thread builds the rows one batch ahead of the upload (`Prefetch`),
so building rows and sending bytes overlap. Each part is its own upload (and
gpg message), opened at its first bytes and completed in turn; the manifests
are written after the last part. A failed or stopped run deletes the parts it
completed, so it leaves no partial export; a successful run with a fixed name
deletes the higher-numbered parts an earlier, larger export left behind.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connector.errors import SourceError
from connector.exports._manifest import ManifestFacts, manifest_contents, put_manifest
from connector.exports._part_writer import Chunk
from connector.exports._rows import RowSource, Step
from connector.exports._sink import DataFile, Part
from connector.exports.keys import RunKeys, part_number, parts_prefix
from connector.exports.model import ExportProfilesGoal
from connector.goals.context import GoalContext
from connector.sources import s3_client

if TYPE_CHECKING:
    from connector.sources.s3 import S3Client

__all__ = ["Delivery", "Stopped", "deliver"]


class Stopped(Exception):  # noqa: N818 -- a control-flow signal, not an error
    """A graceful stop arrived mid-export: abandon the upload so nothing half-written lands."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """What reached S3 (or was built, in a dry run); `files` is empty when nothing was written."""

    files: list[DataFile]
    manifest_size: int = 0
    stale_error: str | None = None


async def deliver(
    ctx: GoalContext,
    goal: ExportProfilesGoal,
    streams: list[RunKeys],
    source: RowSource,
    *,
    manifest: ManifestFacts,
    run_log: Any,
    before_upload: Callable[[S3Client], Awaitable[None]] | None = None,
) -> Delivery:
    """Data files, then the manifests, then stale parts; a failure deletes the parts it completed.

    `streams` holds the data file's keys and, with `exits: file`, the `_exited` sibling's:
    each file gets its own parts and manifest. The first batch of rows is
    built while the S3 client starts (its library loads on first use: a
    quarter of a second of a 1M-row export, py-spy); `before_upload` runs on
    that client before any part of this run is opened (the goal aborts the
    uploads killed exports left).
    """
    async with AsyncExitStack() as stack:
        stack.push_async_callback(asyncio.to_thread, source.close)
        prefetch = _Prefetch(source.step)
        stack.push_async_callback(prefetch.close)  # before the source closes: no step runs
        prefetch.start()
        s3 = None
        if not ctx.dry_run:
            s3 = await stack.enter_async_context(s3_client(ctx.credentials))
            if before_upload is not None:
                await before_upload(s3)
        outputs = [_Parts(ctx, goal, s3, keys, streams[0].part(1)) for keys in streams]

        def files() -> list[DataFile]:
            return [file for parts in outputs for file in parts.files]

        try:
            wrote = await _write_data(ctx, prefetch, outputs)
            if not wrote or s3 is None:
                return Delivery(files())
            manifest_size = 0
            if goal.manifest:
                for keys, parts in zip(streams, outputs, strict=True):
                    manifest_size += await put_manifest(
                        s3,
                        ctx,
                        goal=goal,
                        key=keys.manifest,
                        files=parts.files,
                        facts=manifest,
                        contents=manifest_contents(goal, exited=keys is not streams[0]),
                    )
        except BaseException:
            if s3 is not None and files():
                await _delete_quietly(s3, goal.destination.bucket, files(), run_log)
            raise
        stale_error = None
        for keys, parts in zip(streams, outputs, strict=True):
            if keys.split and not goal.destination.time_based:
                stale_error = (
                    await _delete_stale_parts(s3, goal, keys, len(parts.files), run_log)
                    or stale_error
                )
        return Delivery(files(), manifest_size, stale_error)


class _Prefetch:
    """Runs the next step in a worker thread while the caller uploads the previous one.

    The thread is awaited through `shield`, and `close()` waits for a step
    still running: a cancelled export never leaves a thread using the store
    while the runner records the outcome.
    """

    def __init__(self, step: Callable[[], Step]) -> None:
        self._step = step
        self._pending: asyncio.Future[Step] | None = None

    def start(self) -> None:
        """Start the first step in its thread now, before anything awaits it."""
        if self._pending is None:
            self._pending = self._start()

    async def next(self) -> Step:
        self.start()
        assert self._pending is not None  # noqa: S101 -- start() set it
        step = await asyncio.shield(self._pending)
        self._pending = None if step.done else self._start()
        return step

    async def close(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        await asyncio.wait([pending])
        if not pending.cancelled():
            pending.exception()

    def _start(self) -> asyncio.Future[Step]:
        # submitted to the thread now (as `asyncio.to_thread` does, context included), not
        # at the event loop's next turn: the caller may block the loop before it awaits
        context = contextvars.copy_context()
        return asyncio.get_running_loop().run_in_executor(
            None, functools.partial(context.run, self._step)
        )


class _Parts:
    """The data files of one output file, opened at their first bytes and completed in turn.

    Each part has its own exit stack, so the parts of a split export open
    and complete one after another while the S3 client stays open; `files`
    holds the completed ones, for the manifest or for the clean-up of a
    failed run.
    """

    def __init__(
        self,
        ctx: GoalContext,
        goal: ExportProfilesGoal,
        s3: S3Client | None,
        keys: RunKeys,
        first_key: str,
    ) -> None:
        self._ctx = ctx
        self._goal = goal
        self._s3 = s3
        self._keys = keys
        self._first_key = first_key
        self._open: Part | None = None
        self._outcome = "dry run; built, not uploaded" if ctx.dry_run else "exported"
        self.files: list[DataFile] = []

    @property
    def started(self) -> bool:
        return self._open is not None or bool(self.files)

    async def add(self, chunk: Chunk) -> None:
        progress, goal_name = self._ctx.progress, self._goal.name
        if self._open is None:
            key = self._keys.part(len(self.files) + 1)
            if key != self._first_key:  # the run itself announced its first file
                progress.file_started(goal_name, key, 0)
            self._open = await Part.open(self._ctx, self._goal, self._s3, key)
        await self._open.write(chunk.data)
        if chunk.part_rows is not None:
            part, self._open = self._open, None
            self.files.append(await part.close(chunk.part_rows))
            progress.file_finished(goal_name, part.key, self._outcome)

    async def abort(self, error: BaseException) -> None:
        part, self._open = self._open, None
        if part is not None:
            await part.abort(error)


async def _write_data(ctx: GoalContext, prefetch: _Prefetch, outputs: list[_Parts]) -> bool:
    """Stream the rows into the parts; False when an incremental run has nothing to write.

    A part's upload (and gpg) open at its first bytes, so a skipped run
    creates nothing. Completing a part completes gpg, then the upload; an
    exception kills gpg and aborts the open uploads, so no partial object is
    left (the caller deletes the parts already completed, and closes `prefetch`).
    """
    try:
        return await _pump(ctx, prefetch, outputs)
    except BaseException as error:
        for parts in outputs:
            await parts.abort(error)
        raise


async def _pump(ctx: GoalContext, prefetch: _Prefetch, outputs: list[_Parts]) -> bool:
    while True:
        step = await prefetch.next()
        for chunk in step.chunks:
            await outputs[chunk.stream].add(chunk)
        ctx.progress.advance(step.rows)
        if step.done:
            return any(parts.started for parts in outputs)
        if ctx.stopping.is_set():
            raise Stopped


async def _delete_quietly(s3: S3Client, bucket: str, files: list[DataFile], run_log: Any) -> None:
    """Best effort: the error that failed the run matters more than a failed clean-up."""
    for file in files:
        try:
            await s3.delete_object(bucket, file.key)
        except SourceError as error:
            run_log.warning(
                "could not delete a part of the failed export", part=file.key, error=str(error)
            )


async def _delete_stale_parts(
    s3: S3Client, goal: ExportProfilesGoal, keys: RunKeys, parts: int, run_log: Any
) -> str | None:
    """Delete the parts numbered above `parts` that an earlier run of a fixed name left.

    Without this a partner listing the folder would read a smaller export
    plus the tail of a larger, older one. Returns the S3 error, if any, so
    the run can report it: the data itself is complete by then.
    """
    bucket = goal.destination.bucket
    try:
        stale = [
            obj.key
            async for obj in s3.list_objects(bucket, parts_prefix(keys.base))
            if (part_number(keys.base, obj.key) or 0) > parts
        ]
        for key in stale:
            await s3.delete_object(bucket, key)
    except SourceError as error:
        return str(error)
    if stale:
        run_log.info("deleted parts left by an earlier, larger export", parts=stale)
    return None
