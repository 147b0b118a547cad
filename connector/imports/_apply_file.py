"""One import file applied in one store transaction: its rows and its ledger entry together.

A process killed at any moment leaves the file either wholly applied and
recorded, or not at all. The file takes the columnar engine when the store,
the settings and the goal allow it (the header decides the last part), else
the row path; profiles and groups differ only in their appliers. A dry run
rolls the transaction back at the end. Runs in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from contextlib import closing
from datetime import UTC, datetime
from typing import Protocol, Unpack

import structlog

from connector.config.connection import ImportGoal
from connector.engine.parse import Piece, PieceReader
from connector.engine.piece_steps import ConvertedPiece
from connector.engine.rows import RowChanges, RowPlan
from connector.errors import RunStopped
from connector.goals.context import GoalContext, GoalResult, tell_bytes_read
from connector.groups.columnar import why_not_columnar_groups
from connector.groups.model import ImportGroupsGoal
from connector.imports._piece_size import PIECE_SIZES
from connector.imports.channel import ChunkChannel
from connector.imports.columnar import ProfileBatchApplier, why_not_columnar
from connector.imports.model import ImportProfilesGoal
from connector.imports.parsing import ParsedBatch, ParseJob, parse_batches, parse_batches_in_child
from connector.read_ahead import read_ahead
from connector.sources import S3Object
from connector.storage import LedgerEntry, RowReject, RunCounts, StoreTransaction
from connector.storage.batches import BatchTransaction

__all__ = ["Applier", "ApplierFactory", "PieceApplier", "PieceApplierFactory", "apply_file"]

log = structlog.get_logger("connector.import")


class Applier(Protocol):
    """Turns batches of parsed rows into store writes for one file."""

    def apply(self, rows: list[RowChanges], rejects: list[RowReject]) -> None: ...

    def finish(self) -> tuple[RunCounts, int]:
        """The file's counts and the change sequence of its writes."""
        ...


ApplierFactory = Callable[[StoreTransaction, str], Applier]


class PieceApplier(Protocol):
    """Applies pieces of one file set-based (the columnar engine)."""

    def convert(self, piece: Piece) -> ConvertedPiece:
        """Everything before the store; called in another thread than `apply`."""
        ...

    def apply(self, converted: ConvertedPiece) -> list[RowReject]: ...

    def finish(self) -> tuple[RunCounts, int]:
        """The file's counts and change sequence, once every write of it has run."""
        ...

    def close(self) -> None:
        """Release what applying used; called in every case, before the transaction ends."""
        ...


PieceApplierFactory = Callable[[BatchTransaction, RowPlan, str], PieceApplier]
"""The engine's applier of a goal that is not a profile import (groups)."""


class _DryRun(Exception):  # noqa: N818 -- a control-flow signal, not an error
    """Raised at the end of a dry-run file to roll its transaction back."""


def _no_batches(
    chunks: Iterable[bytes], goal: ImportGoal, **job: Unpack[ParseJob]
) -> Generator[ParsedBatch, None, None]:
    yield from ()


def apply_file(
    ctx: GoalContext,
    goal: ImportGoal,
    obj: S3Object,
    chunks: ChunkChannel,
    fingerprint: str,
    make_applier: ApplierFactory,
    extra_column: str | None,
    make_piece_applier: PieceApplierFactory | None = None,
) -> GoalResult:
    """Parse and apply one file in one transaction (runs in a worker thread).

    Profile and group imports take the columnar engine when the store has one
    and the goal allows it (`why_not_columnar`, `why_not_columnar_groups`);
    everything else takes the row path. Both record the file in the ledger
    inside the same transaction.
    """
    result = GoalResult()
    try:
        with PIECE_SIZES.sized(ctx.piece_bytes) as piece_bytes:
            columnar = _columnar_reader(
                ctx, goal, obj, chunks, extra_column, make_piece_applier, piece_bytes
            )
            if columnar is not None:
                _apply_columnar(
                    ctx, goal, obj, chunks, fingerprint, columnar, make_piece_applier, result
                )
                return result
        with ctx.store.transaction() as tx:
            if obj.size == 0:
                parse = _no_batches  # an empty delivery: nothing to apply, yet recorded as seen
            elif ctx.parse_in_child_bytes is not None and obj.size >= ctx.parse_in_child_bytes:
                parse = parse_batches_in_child
            else:
                parse = parse_batches
            batches = parse(
                chunks, goal, file=obj.key, extra_column=extra_column, batch_size=ctx.batch_size
            )
            row_applier = make_applier(tx, obj.key)
            read = 0
            with closing(batches):
                for batch in batches:
                    _check_stop(ctx, obj)
                    rejects = batch.rejects
                    if batch.rows:
                        row_applier.apply(batch.rows, rejects)
                    # parse rejects come before the applier's: keep the history in line order
                    for reject in sorted(rejects, key=lambda reject: reject.line):
                        result.reject(reject, ctx.max_rejects)
                    tell_bytes_read(ctx.progress, chunks.consumed)
                    ctx.progress.advance(batch.rows_read - read)
                    read = batch.rows_read
            _finish_file(ctx, goal, obj, fingerprint, row_applier.finish(), read, result, tx)
    except _DryRun:
        result.change_seqs.clear()
        result.profiles_changed.clear()
    finally:
        chunks.abandon()
    return result


def _apply_columnar(
    ctx: GoalContext,
    goal: ImportGoal,
    obj: S3Object,
    chunks: ChunkChannel,
    fingerprint: str,
    columnar: tuple[PieceReader, RowPlan],
    make_piece_applier: PieceApplierFactory | None,
    result: GoalResult,
) -> None:
    """The engine's side of `apply_file`: every piece, then the ledger, in one transaction."""
    reader, plan = columnar
    with ctx.store.batch_transaction() as batch_tx:
        applier: PieceApplier
        if make_piece_applier is not None:
            applier = make_piece_applier(batch_tx, plan, obj.key)
        else:
            assert isinstance(goal, ImportProfilesGoal)  # noqa: S101 -- checked
            applier = ProfileBatchApplier(batch_tx, goal, plan, file=obj.key)
        with closing(applier):  # its writes' thread stops before the commit or rollback
            read = _apply_pieces(ctx, obj, chunks, reader, applier, result)
            counts = applier.finish()
            _check_stop(ctx, obj)  # a stop during the last piece rolls the file back too
            _finish_file(ctx, goal, obj, fingerprint, counts, read, result, batch_tx)


def _apply_pieces(
    ctx: GoalContext,
    obj: S3Object,
    chunks: ChunkChannel,
    reader: PieceReader,
    applier: PieceApplier,
    result: GoalResult,
) -> int:
    """Apply every piece in order; the records read.

    The next piece is parsed and converted in a thread while this one is
    written (`read_ahead`, one piece ahead): parsing and conversion read
    nothing stored, and both spend their time in Arrow with the GIL released.
    """
    read = 0
    pieces = read_ahead(map(applier.convert, reader), name="import-pieces")
    try:
        for converted in pieces:
            _check_stop(ctx, obj)
            rejects = applier.apply(converted)
            for reject in sorted(rejects, key=lambda reject: reject.line):
                result.reject(reject, ctx.max_rejects)
            tell_bytes_read(ctx.progress, chunks.consumed)
            ctx.progress.advance(converted.piece.records)
            read += converted.piece.records
    finally:
        chunks.abandon()  # a thread waiting for bytes stops at once, not at the next chunk
        pieces.close()
    return read


def _check_stop(ctx: GoalContext, obj: S3Object) -> None:
    if ctx.stopping.is_set():
        raise RunStopped(f"{obj.key}: stopped; rolled back, imported again next run")


def _finish_file(
    ctx: GoalContext,
    goal: ImportGoal,
    obj: S3Object,
    fingerprint: str,
    finished: tuple[RunCounts, int],
    read: int,
    result: GoalResult,
    tx: StoreTransaction | BatchTransaction,
) -> None:
    """The file's counts into `result` and its ledger entry into the open transaction."""
    counts, seq = finished
    counts.rows_read = read
    counts.rows_rejected = result.counts.rows_rejected
    result.counts = counts
    result.change_seqs.append(seq)
    if isinstance(goal, ImportProfilesGoal):  # a group file stamps profiles it does not count
        result.profiles_changed[seq] = counts.profiles_created + counts.profiles_updated
    tx.record_file(
        LedgerEntry(
            ctx.connection.id,
            goal.name,
            obj.key,
            obj.etag,
            fingerprint,
            read,
            datetime.now(UTC),
            ctx.run_id,
        )
    )
    if ctx.dry_run:
        raise _DryRun  # rolls the dry run's transaction back


def _columnar_reader(
    ctx: GoalContext,
    goal: ImportGoal,
    obj: S3Object,
    chunks: ChunkChannel,
    extra_column: str | None,
    make_piece_applier: PieceApplierFactory | None,
    piece_bytes: int,
) -> tuple[PieceReader, RowPlan] | None:
    """The file's piece reader and plan when the engine takes it, else None.

    The engine takes a group file unless the store, the settings or the
    file's mappings (`why_not_columnar_groups`) ask for the row path; a
    profile file likewise (`why_not_columnar`). Reads the header to decide
    (map_all_columns depends on it); when the row path must take the file,
    the chunks read so far are replayed to it.
    """
    why_not: Callable[[RowPlan], str | None]
    if not (
        ctx.store.columnar and ctx.columnar and obj.size > 0 and ctx.parse_in_child_bytes is None
    ):
        return None
    if isinstance(goal, ImportGroupsGoal):
        if make_piece_applier is None:
            return None
        why_not = why_not_columnar_groups
    elif isinstance(goal, ImportProfilesGoal) and extra_column is None:
        if ctx.connection.objectives or goal.delete_column or goal.on_change == "replace":
            return None  # known without the header: spare reading it twice

        def why_not(plan: RowPlan) -> str | None:
            return why_not_columnar(
                goal,
                plan,
                objectives=ctx.connection.objectives,
                unique_properties=ctx.store.unique_properties(),
            )

    else:
        return None
    chunks.record()
    reader = PieceReader(chunks, goal.format, file=obj.key, piece_bytes=piece_bytes)
    plan = RowPlan(goal, reader.columns, file=obj.key, extra_column=extra_column)
    reason = why_not(plan)
    if reason is None:
        chunks.stop_recording()
        return reader, plan
    log.info("file takes the row path", key=obj.key, reason=reason)
    chunks.rewind()
    return None
