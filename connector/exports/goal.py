"""The export-profiles goal: a segment's consented members to delimited files in S3.

The export streams end to end, so memory stays flat whatever the segment
size. `export_profiles` wires the parts together:

- `_naming`: the run's keys (`keys.RunKeys`), a timestamped name never reused;
- `_rows`: a worker thread reads the profiles one Arrow batch at a time and
  selects the members and their cells with whole-column masks;
- `_exits`: with `exits: rows | file`, who left since the last export;
- `_part_writer`: the rows as delimited text (and igzip), cut into parts of
  `max_rows_per_file`, each its own gzip stream;
- `_delivery` and `_sink`: each part through gpg (when the goal encrypts)
  into its own multipart upload, one batch behind the thread, so building
  rows and sending bytes overlap; a failed or stopped run deletes the parts
  it completed; `_manifest` lists them after the last one;
- `uploads`: multipart uploads a killed export left open, aborted later.

The watermark is handled here. Incremental exports follow the store's change
sequence, never clocks: the sequence is read *before* the profiles are, so
a profile written during the export is exported again next time rather than
lost, and the goal's watermark moves only after the data file (and its
manifest) are complete in S3. A failed or dry run leaves it where it was, so
delivery is at least once: a run that fails after its upload sends those
profiles again. With exits, the members found now replace the last export's
in the same transaction that moves the watermark.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING, Any

import structlog

from connector.exports._delivery import Delivery, Stopped, deliver
from connector.exports._exits import Exits, exits_of
from connector.exports._manifest import MANIFEST_VERSION, ManifestFacts
from connector.exports._naming import name_run
from connector.exports._rows import RowSource
from connector.exports.columns import ExportColumns, RowRules
from connector.exports.keys import RunKeys
from connector.exports.model import ExportProfilesGoal
from connector.exports.uploads import tidy_uploads
from connector.formats.arrow_writer import ArrowWriter
from connector.goals.context import GoalContext, GoalResult
from connector.limits import EXPORT_BATCH_ROWS

if TYPE_CHECKING:
    from connector.sources.s3 import S3Client

__all__ = ["MANIFEST_VERSION", "export_profiles"]

log = structlog.get_logger("connector.export")


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
    keys, moment = await name_run(ctx, goal, previous, segment_name)
    exits = exits_of(ctx, goal, since)
    streams = [keys, keys.exited()] if exits is not None and exits.to_file else [keys]
    source = _row_source(ctx, goal, streams, exits, since=since, watermark=watermark)
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

    async def tidy(s3: S3Client) -> None:
        result.counts.uploads_aborted += await tidy_uploads(ctx, goal, run_log, s3)

    ctx.progress.file_started(goal.name, first_key, 0)
    started = time.monotonic()
    try:
        if exits is not None and exits.stage is not None:
            # what a killed run staged is dropped: this run finds the members again
            await asyncio.to_thread(
                store.stage_export_members, ctx.connection.id, goal.name, [], fresh=True
            )
        delivery = await deliver(
            ctx,
            goal,
            streams,
            source,
            manifest=ManifestFacts(segment_name, moment, since, watermark),
            run_log=run_log,
            before_upload=tidy,
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
    except Stopped:
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
            await tidy_uploads(ctx, goal, run_log)  # counted by the run that finds them
        raise
    if not delivery.files:
        ctx.progress.file_finished(goal.name, first_key, "no changes; no file written")
        run_log.info(
            "export skipped: no changed member since the last export",
            examined=source.tally.examined,
            watermark=watermark,
        )
        return result
    _count(ctx, goal, result, delivery, source, run_log, elapsed=time.monotonic() - started)
    return result


def _row_source(
    ctx: GoalContext,
    goal: ExportProfilesGoal,
    streams: list[RunKeys],
    exits: Exits | None,
    *,
    since: int | None,
    watermark: int,
) -> RowSource:
    """The rows of the run: its columns, row rules and exits, one writer a file in `streams`."""
    plan = ExportColumns(goal.columns, goal.format)
    return RowSource(
        ctx.store,
        plan,
        RowRules(plan.headers, goal.format, required=goal.required, dedupe_by=goal.dedupe_by),
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
        keep_ids=ctx.keep_exported_ids,
    )


def _count(
    ctx: GoalContext,
    goal: ExportProfilesGoal,
    result: GoalResult,
    delivery: Delivery,
    source: RowSource,
    run_log: Any,
    *,
    elapsed: float,
) -> None:
    """Count what a run that wrote files delivered, and log why its row count is what it is."""
    files = delivery.files
    records = result.counts.profiles_exported = sum(file.records for file in files)
    result.exported_ids.extend(source.exported_ids)
    result.profiles_written = source.ids_written
    result.counts.files = len(files)
    if not ctx.dry_run:
        result.counts.bytes_transferred = sum(f.size for f in files) + delivery.manifest_size
    if delivery.stale_error is not None:
        result.errors.append(
            f"{goal.name}: exported, but the parts an earlier run left beyond part "
            f"{len(files)} could not be deleted: {delivery.stale_error}"
        )
    tally, rules = source.tally, source.rules
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
        rows_per_second=round(records / max(elapsed, 1e-9)),
    )


def _new_writer(goal: ExportProfilesGoal, keys: RunKeys, part: int) -> ArrowWriter:
    return ArrowWriter(goal.format, gzip=goal.compression == "gzip", file=keys.part(part))
