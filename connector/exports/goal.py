"""The export-profiles goal: a segment's consented members to delimited files in S3.

The export streams end to end, so memory stays flat whatever the segment
size: a worker thread pulls profiles from the store one Arrow batch at a
time (only the properties the goal reads), selects the members with
whole-column masks (segment, consent, change sequence), builds each output
column for the batch at once and writes the rows as delimited text (and
igzip); no Python runs per row unless the goal hashes, groups or dedupes.
The event loop pushes the bytes, through gpg when the goal encrypts,
into a multipart upload. The thread works one batch ahead of the upload, so
building rows and sending bytes overlap.

With `max_rows_per_file` the thread closes a part when it holds that many
rows and starts the next (header included); each part is its own gzip
stream, gpg message and upload, so a partner can open any part alone. The
one manifest lists every part and is written after the last one. A failed
or stopped run deletes the parts it completed, so it leaves no partial
export; a successful run with a fixed name deletes the higher-numbered
parts an earlier, larger export left behind.

Incremental exports follow the store's change sequence, never clocks: the
sequence is read *before* the profiles are, so a profile written during
the export is exported again next time rather than lost, and the goal's
watermark moves only after the data file (and its manifest) are complete
in S3. A failed or dry run leaves it where it was, so delivery is at least
once: a run that fails after its upload sends those profiles again.

With exits (`exits: rows | file`), an incremental run reads every profile
in id order beside the members of the goal's last export (also in id
order, a page at a time) to find who left; the members it finds are staged
in the store and replace the old ones in the transaction that moves the
watermark, so a killed run leaves both as they were and its re-run finds
the same exits.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import structlog

from connector.engine.segment_index import SegmentIndex
from connector.engine.segments import any_value_in, profile_columns
from connector.errors import ConnectorError, SourceError
from connector.exports.columns import ExportColumns, RowRules
from connector.exports.encryption import GpgEncryptor
from connector.exports.keys import (
    check_key,
    data_key,
    exited_key,
    manifest_key,
    part_key,
    part_number,
    parts_prefix,
)
from connector.exports.model import ExportProfilesGoal
from connector.exports.uploads import StoreUploadJournal, abort_abandoned_uploads
from connector.formats.arrow_writer import ArrowWriter
from connector.goals.consent import CONSENT_PROPERTY
from connector.goals.context import GoalContext, GoalResult
from connector.limits import EXPORT_BATCH_ROWS, EXPORT_MEMBER_PAGE
from connector.sources import S3Client
from connector.storage import ExportWatermark, ProfileStore

__all__ = ["MANIFEST_VERSION", "export_profiles"]

log = structlog.get_logger("connector.export")

MANIFEST_VERSION = 1
_MAX_NAME_WAIT = timedelta(seconds=1)

Write = Callable[[bytes], Awaitable[None]]


class _Stopped(Exception):  # noqa: N818 -- a control-flow signal, not an error
    """A graceful stop arrived mid-export: abandon the upload so nothing half-written lands."""


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Bytes of the current part; `part_rows` is set on the chunk that completes the part."""

    data: bytes
    part_rows: int | None = None
    stream: int = 0
    """0: the data file; 1: the `_exited` sibling (`exits: file`)."""


@dataclass(frozen=True, slots=True)
class _Step:
    chunks: list[_Chunk]
    rows: int
    done: bool


@dataclass(slots=True)
class _Tally:
    """Why profiles were or were not written; logged so an analyst can explain a count."""

    examined: int = 0
    in_segment: int = 0
    without_consent: int = 0
    without_value: int = 0


@dataclass(frozen=True, slots=True)
class _DataFile:
    key: str
    size: int
    records: int
    sha256: str
    md5: str


@dataclass(frozen=True, slots=True)
class _Keys:
    """The keys of one run: `base` is the unsplit data key, the manifest's stem."""

    base: str
    split: bool

    def part(self, number: int) -> str:
        return check_key(part_key(self.base, number) if self.split else self.base)

    @property
    def manifest(self) -> str:
        return check_key(manifest_key(self.base))

    def exited(self) -> _Keys:
        """The keys of the `_exited` sibling (`exits: file`)."""
        return _Keys(exited_key(self.base), self.split)


class _Previous:
    """The members of the goal's last export, read in pages in id order beside the profiles.

    Profiles come in id order too, so each batch takes the previous members up
    to its last id: those not in the batch were deleted since. Memory holds one
    page, whatever the segment size.
    """

    def __init__(self, fetch: Callable[[str], list[str]], page: int) -> None:
        self._fetch = fetch
        self._page = page
        self._buffer: list[str] = []
        self._after = ""
        self._exhausted = False

    def through(self, last: str | None) -> list[str]:
        """The previous members up to and including `last` (every one left when None)."""
        taken: list[str] = []
        while True:
            if not self._buffer:
                if self._exhausted:
                    return taken
                self._buffer = self._fetch(self._after)
                self._exhausted = len(self._buffer) < self._page
                if not self._buffer:
                    return taken
                self._after = self._buffer[-1]
            cut = len(self._buffer) if last is None else bisect.bisect_right(self._buffer, last)
            taken += self._buffer[:cut]
            self._buffer = self._buffer[cut:]
            if self._buffer:
                return taken


@dataclass(frozen=True, slots=True)
class _Exits:
    """An incremental export that reports exits: the last export's members, where the members
    found now are staged (None in a dry run), and whether exits go to their own file."""

    previous: _Previous
    stage: Callable[[list[str]], None] | None
    since: int | None
    to_file: bool


@dataclass(slots=True)
class _Stream:
    """One output file (split into parts): the data file, or the `_exited` sibling."""

    number: int
    new_writer: Callable[[int], ArrowWriter]
    writer: ArrowWriter | None = None
    parts: int = 0


class _RowSource:
    """The producing half, called in a worker thread one Arrow batch at a time.

    Each step takes the next batch of profiles from the store and keeps, as
    whole-column masks, the segment's consented members that have a value in
    a property column; it looks up their groups in one call per group type,
    builds their cells column by column, keeps the rows the row rules admit
    (`required`, `dedupe_by`) and writes them, closing a part whenever it
    reaches `max_rows` rows; it returns what the writers have ready. Only
    this object touches the store during the export, from one thread at a
    time, as the store asks.

    With exits, every profile is read (in id order) beside the last export's
    members: a member written as `realized` when it changed since or entered,
    a former member that left (or withdrew consent) as `exited`, a former
    member no longer in the store as its id alone; the members found now are
    staged for the transaction that completes the export. A profile changed
    after the export's watermark keeps its former membership and is the next
    run's, so no exit is lost or written twice.

    A part is opened at its first row, so a part never ends up empty; only
    an export without any row gets one (header-only) file when `empty_file`
    (a full or first export), because an empty segment is news too. With
    exits in their own file, a run that writes either file writes both.
    """

    def __init__(
        self,
        store: ProfileStore,
        plan: ExportColumns,
        rules: RowRules,
        new_writers: list[Callable[[int], ArrowWriter]],
        *,
        segments: SegmentIndex,
        segment_id: str,
        objectives: list[str],
        since: int | None,
        until: int | None,
        batch_size: int,
        max_rows: int | None,
        exits: _Exits | None = None,
        exit_rules: RowRules | None = None,
    ) -> None:
        self._store = store
        self._plan = plan
        self._rules = rules
        self._exit_rules = exit_rules or rules
        self._streams = [_Stream(n, new) for n, new in enumerate(new_writers)]
        self._segments = segments
        self._segment_id = segment_id
        self._objectives = objectives
        self._until = until
        self._max_rows = max_rows
        self._exits = exits
        self._empty_file = since is None
        wanted = [*plan.properties, *segments.properties(segment_id)]
        if plan.needs_segments:
            wanted += segments.properties()
        if objectives:
            wanted.append(CONSENT_PROPERTY)
        self._properties = list(dict.fromkeys(wanted))
        self._batches = store.profile_batches(
            self._properties,
            changed_after=since if exits is None else None,
            batch_size=batch_size,
        )
        self.rows_written = 0
        self.exits_written = 0
        self.tally = _Tally()
        self.exported_ids: list[pa.Array] = []
        """Ids of the profiles written, for the run's distinct-profile count."""

    def step(self) -> _Step:
        table = next(self._batches, None)
        done = table is None
        outputs = self._rows(table) if table is not None else self._rest()
        chunks: list[_Chunk] = []
        rows = 0
        for stream, cells in zip(self._streams, outputs, strict=True):
            chunks += self._write(stream, cells)
            rows += cells.num_rows
        if done:
            wrote = any(stream.parts or stream.writer for stream in self._streams)
            for stream in self._streams:
                if stream.writer is not None or (stream.parts == 0 and (wrote or self._empty_file)):
                    if stream.writer is None:
                        self._open_part(stream)
                    chunks.append(self._close_part(stream))
        self.rows_written += rows
        return _Step(chunks, rows, done)

    def _write(self, stream: _Stream, cells: pa.Table) -> list[_Chunk]:
        chunks: list[_Chunk] = []
        rows, start = cells.num_rows, 0
        while start < rows:
            writer = stream.writer or self._open_part(stream)
            end = rows if self._max_rows is None else start + self._max_rows - writer.rows_written
            writer.write_table(cells.slice(start, min(end, rows) - start))
            chunks += self._drain(stream, writer)
            start = end
            if self._max_rows is not None and writer.rows_written >= self._max_rows:
                chunks.append(self._close_part(stream))
        return chunks

    def _rows(self, table: pa.Table) -> list[pa.Table]:
        """The batch's rows to write, per stream: members selected, cells built, rules applied."""
        count = table.num_rows
        self.tally.examined += count
        columns = profile_columns(table, self._properties)
        selected = self._segments.mask(self._segment_id, columns, count)
        # an incremental run stops at the sequence it read first; later changes are the next run's
        if self._until is not None and self._exits is None:
            selected = pc.and_(selected, pc.less_equal(table.column(1), self._until))
        self.tally.in_segment += _count(selected)
        if self._objectives:
            consented = any_value_in(columns[CONSENT_PROPERTY], self._objectives)
            self.tally.without_consent += _count(pc.and_not(selected, consented))
            selected = pc.and_(selected, consented)
        valued = self._plan.has_property_value(columns, count)
        if self._exits is not None:
            return self._with_exits(self._exits, table, selected, valued)
        self.tally.without_value += _count(pc.and_not(selected, valued))
        members = table.filter(pc.and_(selected, valued))
        return self._arrange(
            self._admit(self._rules, self._cells(members), members.column(0)), None
        )

    def _with_exits(
        self, exits: _Exits, table: pa.Table, member: pa.Array, valued: pa.Array
    ) -> list[pa.Table]:
        ids = table.column(0).combine_chunks()
        seqs = table.column(1)
        last = ids[-1].as_py() if len(ids) else ""
        previous = pa.array(exits.previous.through(last), pa.string())
        was_member = pc.is_in(ids, value_set=previous)
        deleted = previous.filter(pc.invert(pc.is_in(previous, value_set=ids)))
        # changes after the watermark are the next run's: such a profile keeps its old membership
        fresh = pc.less_equal(seqs, self._until)
        news = pc.invert(was_member)
        if exits.since is not None:
            news = pc.or_(news, pc.greater(seqs, exits.since))
        realized = pc.and_(pc.and_(member, fresh), pc.and_(news, valued))
        left = pc.and_(pc.and_(was_member, fresh), pc.invert(member))
        if exits.stage is not None:
            keep = pc.or_(pc.and_(member, fresh), pc.and_(pc.invert(fresh), was_member))
            exits.stage(ids.filter(keep).to_pylist())
        written = pc.or_(realized, left)
        exited = left.filter(written)
        cells = self._cells(table.filter(written), exited)
        written_ids = ids.filter(written)
        staying = pc.invert(exited)
        members = self._admit(self._rules, cells.filter(staying), written_ids.filter(staying))
        left_rows = (cells.filter(exited), written_ids.filter(exited))
        return self._arrange(members, self._exit_cells(left_rows, deleted))

    def _rest(self) -> list[pa.Table]:
        """After the last batch: the previous members beyond the last profile were deleted."""
        if self._exits is None:
            return [self._plan.build_deleted(pa.array([], pa.string()))] * len(self._streams)
        deleted = pa.array(self._exits.previous.through(None), pa.string())
        return self._arrange(None, self._exit_cells(None, deleted))

    def _exit_cells(self, left: tuple[pa.Table, pa.Array] | None, deleted: pa.Array) -> pa.Table:
        """Exit rows: members that left (cells and ids), then ids no longer in the store."""
        tables, ids = ([], []) if left is None else ([left[0]], [left[1]])
        if len(deleted):
            tables.append(self._plan.build_deleted(deleted))
            ids.append(deleted)
        if not tables:
            return self._plan.build_deleted(deleted)
        all_ids = pa.chunked_array(ids, pa.string()).combine_chunks()
        cells = self._admit(self._exit_rules, pa.concat_tables(tables), all_ids)
        self.exits_written += cells.num_rows
        return cells

    def _admit(self, rules: RowRules, cells: pa.Table, ids: pa.Array | pa.ChunkedArray) -> pa.Table:
        """The rows `rules` admit; their profile ids are kept for the run's distinct count."""
        admitted = rules.admit_mask(cells)
        kept = pc.filter(ids, admitted)
        self.exported_ids.append(
            kept.combine_chunks() if isinstance(kept, pa.ChunkedArray) else kept
        )
        return cells.filter(admitted)

    def _arrange(self, members: pa.Table | None, exits: pa.Table | None) -> list[pa.Table]:
        """One table per stream: exits after the members, or in the second (`_exited`) stream."""
        empty = self._plan.build_deleted(pa.array([], pa.string()))
        members = empty if members is None else members
        exits = empty if exits is None else exits
        if len(self._streams) == 2:
            return [members, exits]
        if exits.num_rows == 0:
            return [members]
        return [pa.concat_tables([members, exits])]

    def _cells(self, members: pa.Table, exited: pa.Array | None = None) -> pa.Table:
        ids = members.column(0).combine_chunks()
        columns = profile_columns(members, self._properties)
        masks = self._segments.masks(columns, len(ids)) if self._plan.needs_segments else {}
        groups: dict[str, dict[str, list[str]]] = {}
        if len(ids):
            id_list = ids.to_pylist()
            groups = {
                group_type: self._store.groups_of_profiles(id_list, group_type)
                for group_type in self._plan.group_types
            }
        return self._plan.build(ids, columns, masks, groups, exited)

    def _open_part(self, stream: _Stream) -> ArrowWriter:
        stream.parts += 1
        writer = stream.new_writer(stream.parts)
        writer.write_header(self._plan.headers)
        stream.writer = writer
        return writer

    def _close_part(self, stream: _Stream) -> _Chunk:
        writer, stream.writer = stream.writer, None
        if writer is None:
            raise RuntimeError("no part is open")
        return _Chunk(writer.finish(), writer.rows_written, stream.number)

    @staticmethod
    def _drain(stream: _Stream, writer: ArrowWriter) -> list[_Chunk]:
        """The writer's ready bytes, in pieces of its chunk size (an upload gets bounded parts)."""
        chunks = []
        while data := writer.drain():
            chunks.append(_Chunk(data, stream=stream.number))
        return chunks


def _count(mask: pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)


class _Prefetch:
    """Runs the next step in a worker thread while the caller uploads the previous one.

    The thread is awaited through `shield`, and `close()` waits for a step
    still running: a cancelled export never leaves a thread using the store
    while the runner records the outcome.
    """

    def __init__(self, step: Callable[[], _Step]) -> None:
        self._step = step
        self._pending: asyncio.Task[_Step] | None = None

    async def next(self) -> _Step:
        if self._pending is None:
            self._pending = self._start()
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

    def _start(self) -> asyncio.Task[_Step]:
        return asyncio.ensure_future(asyncio.to_thread(self._step))


class _Digest:
    """Size, SHA-256 and MD5 of the bytes that become the object, for the manifest."""

    def __init__(self) -> None:
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self._sha256.update(data)
        self._md5.update(data)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()


class _Part:
    """One data file on its way out: `close()` completes gpg and upload, `abort()` drops both."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._digest = _Digest()
        self._stack = AsyncExitStack()
        self._write: Write | None = None

    @classmethod
    async def open(
        cls, ctx: GoalContext, goal: ExportProfilesGoal, s3: S3Client | None, key: str
    ) -> _Part:
        part = cls(key)
        try:
            part._write = await _open_sink(
                part._stack, ctx=ctx, goal=goal, s3=s3, key=key, digest=part._digest
            )
        except BaseException as error:
            await part.abort(error)
            raise
        return part

    async def write(self, data: bytes) -> None:
        if data and self._write is not None:
            await self._write(data)

    async def close(self, records: int) -> _DataFile:
        await self._stack.aclose()
        digest = self._digest
        return _DataFile(self.key, digest.size, records, digest.sha256, digest.md5)

    async def abort(self, error: BaseException) -> None:
        await self._stack.__aexit__(type(error), error, error.__traceback__)


class _Parts:
    """The data files of one run, opened at their first bytes and completed in turn.

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
        keys: _Keys,
        first_key: str,
    ) -> None:
        self._ctx = ctx
        self._goal = goal
        self._s3 = s3
        self._keys = keys
        self._first_key = first_key
        self._open: _Part | None = None
        self._outcome = "dry run; built, not uploaded" if ctx.dry_run else "exported"
        self.files: list[_DataFile] = []

    @property
    def started(self) -> bool:
        return self._open is not None or bool(self.files)

    async def add(self, chunk: _Chunk) -> None:
        progress, goal_name = self._ctx.progress, self._goal.name
        if self._open is None:
            key = self._keys.part(len(self.files) + 1)
            if key != self._first_key:  # the run itself announced its first file
                progress.file_started(goal_name, key, 0)
            self._open = await _Part.open(self._ctx, self._goal, self._s3, key)
        await self._open.write(chunk.data)
        if chunk.part_rows is not None:
            part, self._open = self._open, None
            self.files.append(await part.close(chunk.part_rows))
            progress.file_finished(goal_name, part.key, self._outcome)

    async def abort(self, error: BaseException) -> None:
        part, self._open = self._open, None
        if part is not None:
            await part.abort(error)


@dataclass(frozen=True, slots=True)
class _Delivery:
    """What reached S3 (or was built, in a dry run); `files` is empty when nothing was written."""

    files: list[_DataFile]
    manifest_size: int = 0
    stale_error: str | None = None


async def export_profiles(ctx: GoalContext, goal: ExportProfilesGoal) -> GoalResult:
    """Export the goal's segment once; see the module docstring for the flow.

    Mode `full` writes every member; `incremental` writes the members changed
    since this goal's last successful export (the first incremental run is
    full). An incremental run that finds no changed member writes *no* file
    and no manifest, so partners never process empty deltas, and moves the
    watermark past the changes it examined. A full export always writes a
    file, header only when the segment is empty, because an empty segment is
    news too. In a dry run the files are built (gpg included) but nothing is
    uploaded and the watermark stays. A key that breaks S3's rules (too long
    once the segment name is in it) fails the goal before anything is built.

    With exits, the members that left since the last export are written too
    (`exited`), in the data file or in its `_exited` sibling.

    Counts: `profiles_exported` rows (exits included), `files` data files
    (parts and `_exited` files; manifests not counted), `bytes_transferred`
    every byte uploaded (data and manifest).
    A dry run counts the rows and files it built and transfers 0 bytes.
    """
    result = GoalResult()
    store = ctx.store
    previous = await asyncio.to_thread(store.export_watermark, ctx.connection.id, goal.name)
    since = previous.change_seq if previous is not None and goal.mode == "incremental" else None
    watermark = await asyncio.to_thread(store.change_seq)
    segment_name = ctx.segments.title(goal.segment)
    keys, moment = await _name_run(ctx, goal, previous, segment_name)
    plan = ExportColumns(goal.columns, goal.format)
    rules = RowRules(plan.headers, goal.format, required=goal.required, dedupe_by=goal.dedupe_by)
    exits = _exits(ctx, goal, since)
    streams = [keys, keys.exited()] if exits is not None and exits.to_file else [keys]
    source = _RowSource(
        store,
        plan,
        rules,
        [functools.partial(_new_writer, goal, stream) for stream in streams],
        segments=ctx.segments,
        segment_id=goal.segment,
        objectives=ctx.connection.objectives,
        since=since,
        until=watermark if since is not None or exits is not None else None,
        batch_size=max(ctx.batch_size, EXPORT_BATCH_ROWS),
        max_rows=goal.max_rows_per_file,
        exits=exits,
        # an exit is reported whatever it lacks: `required` would drop a deleted profile
        exit_rules=RowRules(plan.headers, goal.format, dedupe_by=goal.dedupe_by),
    )
    run_log = log.bind(
        connection=ctx.connection.id,
        goal=goal.name,
        run_id=ctx.run_id,
        segment=goal.segment,
        bucket=goal.destination.bucket,
        key=keys.base,
    )
    run_log.info(
        "export started",
        mode=goal.mode,
        exits=goal.exits_mode,
        since=since,
        watermark=watermark,
        dry_run=ctx.dry_run,
    )
    first_key = keys.part(1)
    if not ctx.dry_run:
        result.counts.uploads_aborted += await _tidy_uploads(ctx, goal, run_log)
    ctx.progress.file_started(goal.name, first_key, 0)
    started = time.monotonic()
    try:
        if exits is not None and exits.stage is not None:
            # what a killed run staged is dropped: this run finds the members again
            await asyncio.to_thread(
                store.stage_export_members, ctx.connection.id, goal.name, [], fresh=True
            )
        delivery = await _deliver(
            ctx,
            goal,
            streams,
            source,
            manifest=_ManifestFacts(segment_name, moment, since, watermark),
            run_log=run_log,
        )
        if not ctx.dry_run:
            await asyncio.to_thread(
                functools.partial(
                    store.set_export_watermark,
                    ctx.connection.id,
                    goal.name,
                    watermark,
                    moment,
                    members=exits is not None,
                )
            )
    except _Stopped:
        ctx.progress.file_finished(goal.name, first_key, "stopped; nothing uploaded")
        run_log.warning("stopped during the export; the upload was abandoned")
        result.errors.append(
            f"{goal.name}: stopped during the export; nothing was uploaded and the next run "
            "exports these profiles again"
        )
        return result
    except BaseException:
        ctx.progress.file_finished(goal.name, first_key, "failed")
        if not ctx.dry_run:
            await _tidy_uploads(ctx, goal, run_log)  # counted by the run that finds them
        raise
    tally = source.tally
    files = delivery.files
    if not files:
        ctx.progress.file_finished(goal.name, first_key, "no changes; no file written")
        run_log.info(
            "export skipped: no changed member since the last export",
            examined=tally.examined,
            watermark=watermark,
        )
        return result
    records = result.counts.profiles_exported = sum(file.records for file in files)
    result.exported_ids.extend(source.exported_ids)
    result.counts.files = len(files)
    if not ctx.dry_run:
        result.counts.bytes_transferred = sum(f.size for f in files) + delivery.manifest_size
    if delivery.stale_error is not None:
        result.errors.append(
            f"{goal.name}: exported, but the parts an earlier run left beyond part "
            f"{len(files)} could not be deleted: {delivery.stale_error}"
        )
    elapsed = max(time.monotonic() - started, 1e-9)
    run_log.info(
        "export built (dry run, nothing uploaded)" if ctx.dry_run else "export finished",
        rows=records,
        exits=source.exits_written,
        size=sum(file.size for file in files),
        parts=len(files),
        examined=tally.examined,
        in_segment=tally.in_segment,
        without_consent=tally.without_consent,
        without_value=tally.without_value,
        without_required=rules.without_required,
        duplicates=rules.duplicates,
        manifest=goal.manifest and not ctx.dry_run,
        rows_per_second=round(records / elapsed),
    )
    return result


def _run_keys(goal: ExportProfilesGoal, segment_name: str, moment: datetime) -> _Keys:
    """The run's keys, the first part's and the manifest's checked before anything is built."""
    keys = _Keys(
        data_key(
            goal.destination,
            segment_id=goal.segment,
            segment_name=segment_name,
            moment=moment,
            gzip=goal.compression == "gzip",
            encrypted=goal.encryption is not None,
            goal_name=goal.name,
        ),
        split=goal.max_rows_per_file is not None,
    )
    for checked in [keys, keys.exited()] if goal.exits_mode == "file" else [keys]:
        checked.part(1)
        if goal.manifest:
            check_key(checked.manifest)
    return keys


MEMBER_PAGE = EXPORT_MEMBER_PAGE


def _exits(ctx: GoalContext, goal: ExportProfilesGoal, since: int | None) -> _Exits | None:
    """What an export with exits reads and stages; None when the goal reports no exits."""
    mode = goal.exits_mode
    if mode == "none":
        return None
    store, connection = ctx.store, ctx.connection.id

    def fetch(after: str) -> list[str]:
        return store.export_members(connection, goal.name, after=after, limit=MEMBER_PAGE)

    def stage(profile_ids: list[str]) -> None:
        if profile_ids:
            store.stage_export_members(connection, goal.name, profile_ids)

    return _Exits(
        _Previous(fetch, MEMBER_PAGE),
        None if ctx.dry_run else stage,
        since,
        to_file=mode == "file",
    )


async def _tidy_uploads(ctx: GoalContext, goal: ExportProfilesGoal, run_log: Any) -> int:
    """Abort what killed exports of this connection left open; never fails the export."""
    try:
        async with S3Client(ctx.credentials) as s3:
            return await abort_abandoned_uploads(
                s3,
                ctx.store,
                ctx.connection.id,
                timedelta(hours=goal.abandoned_upload_hours),
            )
    except ConnectorError as error:
        run_log.warning("could not abort abandoned multipart uploads", error=str(error))
        return 0


async def _name_run(
    ctx: GoalContext,
    goal: ExportProfilesGoal,
    previous: ExportWatermark | None,
    segment_name: str,
) -> tuple[_Keys, datetime]:
    """The run's keys and the second that names it (a free one, for timestamped names)."""
    if not goal.destination.time_based:
        moment = datetime.now(UTC).replace(microsecond=0)
        return _run_keys(goal, segment_name, moment), moment
    moment = await _distinct_second(previous)
    keys = _run_keys(goal, segment_name, moment)
    if ctx.dry_run:
        return keys, moment
    return await _free_keys(ctx, goal, segment_name, moment, keys)


NAME_ATTEMPTS = 5
"""Seconds tried for a timestamped name whose data file or manifest already exists."""


async def _free_keys(
    ctx: GoalContext, goal: ExportProfilesGoal, segment_name: str, moment: datetime, keys: _Keys
) -> tuple[_Keys, datetime]:
    """Timestamped names are never reused: when an object already has this run's name (a
    clock set back, another writer), the next second names the run instead. The writes
    themselves are conditional too (If-None-Match), so a name taken meanwhile fails the run
    rather than overwriting anything."""
    bucket = goal.destination.bucket
    async with S3Client(ctx.credentials) as s3:
        for _attempt in range(NAME_ATTEMPTS):
            both = [keys, keys.exited()] if goal.exits_mode == "file" else [keys]
            names = [
                name for k in both for name in [k.part(1), *([k.manifest] if goal.manifest else [])]
            ]
            taken = [name for name in names if await s3.object_exists(bucket, name)]
            if not taken:
                return keys, moment
            log.warning(
                "an object already has this export's name; the next second names it instead",
                bucket=bucket,
                taken=taken,
            )
            moment += timedelta(seconds=1)
            keys = _run_keys(goal, segment_name, moment)
    raise SourceError(
        f"{NAME_ATTEMPTS} timestamped names in a row are taken by existing objects "
        "(is the clock set back?); nothing was written",
        bucket=bucket,
        key=keys.part(1),
    )


def _new_writer(goal: ExportProfilesGoal, keys: _Keys, part: int) -> ArrowWriter:
    return ArrowWriter(goal.format, gzip=goal.compression == "gzip", file=keys.part(part))


@dataclass(frozen=True, slots=True)
class _ManifestFacts:
    segment_name: str
    moment: datetime
    since: int | None
    watermark: int


async def _deliver(
    ctx: GoalContext,
    goal: ExportProfilesGoal,
    streams: list[_Keys],
    source: _RowSource,
    *,
    manifest: _ManifestFacts,
    run_log: Any,
) -> _Delivery:
    """Data files, then the manifests, then stale parts; a failure deletes the parts it completed.

    `streams` holds the data file's keys and, with `exits: file`, the `_exited` sibling's:
    each file gets its own parts and manifest.
    """
    async with AsyncExitStack() as stack:
        s3 = None
        if not ctx.dry_run:
            s3 = await stack.enter_async_context(S3Client(ctx.credentials))
        outputs = [_Parts(ctx, goal, s3, keys, streams[0].part(1)) for keys in streams]

        def files() -> list[_DataFile]:
            return [file for parts in outputs for file in parts.files]

        try:
            wrote = await _write_data(ctx, source, outputs)
            if not wrote or s3 is None:
                return _Delivery(files())
            manifest_size = 0
            if goal.manifest:
                for keys, parts in zip(streams, outputs, strict=True):
                    manifest_size += await _put_manifest(
                        s3,
                        ctx,
                        goal=goal,
                        key=keys.manifest,
                        files=parts.files,
                        facts=manifest,
                        contents=_contents(goal, exited=keys is not streams[0]),
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
        return _Delivery(files(), manifest_size, stale_error)


def _contents(goal: ExportProfilesGoal, *, exited: bool) -> str:
    """What a manifest's files hold, for a partner's loader."""
    if exited:
        return "exits"
    return "members and exits" if goal.exits_mode == "rows" else "members"


async def _write_data(ctx: GoalContext, source: _RowSource, outputs: list[_Parts]) -> bool:
    """Stream the rows into the parts; False when an incremental run has nothing to write.

    A part's upload (and gpg) open at its first bytes, so a skipped run
    creates nothing. Completing a part completes gpg, then the upload; an
    exception kills gpg and aborts the open uploads, so no partial object is
    left (the caller deletes the parts already completed).
    """
    prefetch = _Prefetch(source.step)
    try:
        return await _pump(ctx, prefetch, outputs)
    except BaseException as error:
        for parts in outputs:
            await parts.abort(error)
        raise
    finally:
        await prefetch.close()


async def _pump(ctx: GoalContext, prefetch: _Prefetch, outputs: list[_Parts]) -> bool:
    while True:
        step = await prefetch.next()
        for chunk in step.chunks:
            await outputs[chunk.stream].add(chunk)
        ctx.progress.advance(step.rows)
        if step.done:
            return any(parts.started for parts in outputs)
        if ctx.stopping.is_set():
            raise _Stopped


async def _open_sink(
    stack: AsyncExitStack,
    *,
    ctx: GoalContext,
    goal: ExportProfilesGoal,
    s3: S3Client | None,
    key: str,
    digest: _Digest,
) -> Write:
    """upload ← digest ← (gpg ←) writer bytes; in a dry run the digest is the end."""
    upload_write: Write | None = None
    if s3 is not None:
        upload = await stack.enter_async_context(
            s3.open_upload(
                goal.destination.bucket,
                key,
                content_type=_content_type(goal),
                if_none_match=goal.destination.time_based,  # a fixed name is replaced
                journal=StoreUploadJournal(ctx.store, ctx.connection.id, goal.name),
            )
        )
        upload_write = upload.write

    async def record(data: bytes) -> None:
        digest.update(data)
        if upload_write is not None:
            await upload_write(data)

    if goal.encryption is None:
        return record
    encryptor = await stack.enter_async_context(
        GpgEncryptor(
            ctx.goals_dir / goal.encryption.public_key_file,
            record,
            compress=goal.compression == "none",
        )
    )
    return encryptor.write


def _content_type(goal: ExportProfilesGoal) -> str:
    if goal.encryption is not None:
        return "application/pgp-encrypted"
    if goal.compression == "gzip":
        return "application/gzip"
    return f"text/csv; charset={goal.format.encoding}"


async def _put_manifest(
    s3: S3Client,
    ctx: GoalContext,
    *,
    goal: ExportProfilesGoal,
    key: str,
    files: list[_DataFile],
    facts: _ManifestFacts,
    contents: str,
) -> int:
    """Write the run's manifest after every data object is complete; returns its size.

    One manifest per run, at `<unsplit data key>.manifest.json`, listing
    every part in order. It is never encrypted: it holds no profile data,
    and a partner needs it to check the data files (size, SHA-256, MD5)
    before decrypting them.
    """
    document = _manifest_document(
        connection=ctx.connection.id,
        goal=goal,
        run_id=ctx.run_id,
        segment_name=facts.segment_name,
        exported_at=facts.moment,
        since=facts.since,
        watermark=facts.watermark,
        files=files,
        contents=contents,
    )
    data = json.dumps(document, indent=2).encode("utf-8") + b"\n"
    await s3.put_object(
        goal.destination.bucket,
        key,
        data,
        content_type="application/json",
        if_none_match=goal.destination.time_based,
    )
    return len(data)


async def _delete_quietly(s3: S3Client, bucket: str, files: list[_DataFile], run_log: Any) -> None:
    """Best effort: the error that failed the run matters more than a failed clean-up."""
    for file in files:
        try:
            await s3.delete_object(bucket, file.key)
        except SourceError as error:
            run_log.warning(
                "could not delete a part of the failed export", part=file.key, error=str(error)
            )


async def _delete_stale_parts(
    s3: S3Client, goal: ExportProfilesGoal, keys: _Keys, parts: int, run_log: Any
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


def _manifest_document(
    *,
    connection: str,
    goal: ExportProfilesGoal,
    run_id: int,
    segment_name: str,
    exported_at: datetime,
    since: int | None,
    watermark: int,
    files: list[_DataFile],
    contents: str = "members",
) -> dict[str, Any]:
    """The manifest's JSON: what was exported, how, and how to check it arrived whole.

    `incremental_since` is null when the file holds every member (a full
    export, or the first incremental one); otherwise only members changed
    after that change sequence, up to `watermark`, are in it. With exits, `contents` says
    whether the files hold members, exits (the `_exited` sibling) or both (`exits: rows`).
    """
    return {
        "manifest_version": MANIFEST_VERSION,
        "connection": connection,
        "goal": goal.name,
        "run_id": run_id,
        "segment": {"id": goal.segment, "name": segment_name},
        "mode": goal.mode,
        **({"contents": contents} if goal.exits_mode != "none" else {}),
        "incremental_since": since,
        "watermark": watermark,
        "exported_at": exported_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "format": {
            "encoding": goal.format.encoding,
            "field_separator": goal.format.field_separator,
            "header": goal.format.header,
            "columns": [column.header for column in goal.columns],
            "compression": goal.compression,
            "encryption": "openpgp" if goal.encryption is not None else None,
        },
        "records": sum(file.records for file in files),
        "files": [
            {
                "bucket": goal.destination.bucket,
                "key": file.key,
                "size_bytes": file.size,
                "records": file.records,
                "sha256": file.sha256,
                "md5": file.md5,
            }
            for file in files
        ],
    }


async def _distinct_second(previous: ExportWatermark | None) -> datetime:
    """Now, to the second, but later than the previous export's second.

    Timestamped names have one-second resolution: a run started within the
    same second as the last export would replace that file, and a partner
    who had not fetched it yet would lose it. Waiting at most a second keeps
    every name distinct (a clock set far back is not waited for).
    """
    now = datetime.now(UTC)
    if previous is not None:
        earliest = previous.exported_at.astimezone(UTC).replace(microsecond=0) + timedelta(
            seconds=1
        )
        wait = earliest - now
        if timedelta(0) < wait <= _MAX_NAME_WAIT:
            await asyncio.sleep(wait.total_seconds())
            now = datetime.now(UTC)
    return now.replace(microsecond=0)
