"""The producing half of an export: the segment's members, one Arrow batch at a time, as rows.

A thread pulls profiles from the store one Arrow batch at a time (only the
properties the goal reads), selects the members with whole-column masks
(segment, consent, change sequence) and builds each output column for the
batch at once; the caller's worker thread writes the previous batch's rows
as delimited, compressed bytes meanwhile (`read_ahead`). No Python runs per
row unless the goal hashes, groups or dedupes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from connector.engine.segment_index import SegmentIndex
from connector.engine.segments import any_value_in, profile_columns
from connector.exports._exits import Exits
from connector.exports._part_writer import Chunk, PartWriters
from connector.exports.columns import ExportColumns, RowRules
from connector.formats.arrow_writer import ArrowWriter
from connector.goals.consent import CONSENT_PROPERTY
from connector.read_ahead import read_ahead
from connector.storage import ProfileStore

__all__ = ["RowSource", "Step", "Tally"]

_Rows = TypeVar("_Rows", pa.Table, pa.Array, pa.ChunkedArray)


@dataclass(frozen=True, slots=True)
class Step:
    """What one batch gave: the bytes ready to upload, its rows, and whether it was the last."""

    chunks: list[Chunk]
    rows: int
    done: bool


@dataclass(slots=True)
class Tally:
    """Why profiles were or were not written; logged so an analyst can explain a count."""

    examined: int = 0
    in_segment: int = 0
    without_consent: int = 0
    without_value: int = 0


class RowSource:
    """The producing half, called in a worker thread one Arrow batch at a time.

    For each batch of profiles from the store a thread of its own keeps, as
    whole-column masks, the segment's consented members that have a value in
    a property column; it looks up their groups in one call per group type,
    builds their cells column by column and keeps the rows the row rules
    admit (`required`, `dedupe_by`), one batch ahead of the caller. Each step
    writes the next batch's rows, closing a part whenever it reaches
    `max_rows` rows, and returns what the writers have ready: building the
    cells (a third of a 1M-row export's steps, which were its critical path)
    and writing the bytes overlap. Only that thread touches the store during
    the export, as the store asks; `close()` stops it.

    With exits, every profile is read (in id order) beside the last export's
    members (see `Exits`): members that changed since or entered are written
    as `realized`, those that left as `exited`, deleted ones as their id
    alone; exit rows go after the members, or to the `_exited` sibling.
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
        exits: Exits | None = None,
        exit_rules: RowRules | None = None,
        keep_ids: bool = True,
    ) -> None:
        self._store = store
        self._plan = plan
        self._rules = rules
        self._exit_rules = exit_rules or rules
        self._files = PartWriters(
            new_writers, plan.headers, max_rows=max_rows, empty_file=since is None
        )
        self._segments = segments
        self._segment_id = segment_id
        self._objectives = objectives
        self._until = until
        self._exits = exits
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
        self.tally = Tally()
        self._keep_ids = keep_ids
        self.exported_ids: list[pa.Array] = []
        """Ids of the profiles written, for the run's distinct-profile count (if kept)."""
        self.ids_written = 0
        """How many profile ids were written (each profile once: batches come in id order)."""
        self._ahead = read_ahead(self._outputs(), name="export-cells")

    @property
    def rules(self) -> RowRules:
        """The members' row rules, whose counters say how many rows they dropped."""
        return self._rules

    def step(self) -> Step:
        outputs, done = next(self._ahead)
        chunks = self._files.write(outputs)
        rows = sum(cells.num_rows for cells in outputs)
        if done:
            chunks += self._files.finish()
        self.rows_written += rows
        return Step(chunks, rows, done)

    def close(self) -> None:
        """Stop the thread that builds the cells (waiting for a batch it is building) and
        the store's read with it. Called once no step runs; it may block briefly."""
        self._ahead.close()

    def _outputs(self) -> Iterator[tuple[list[pa.Table], bool]]:
        """Each batch's rows to write, per file, then the end's (exits of deleted profiles);
        True with the last."""
        for table in self._batches:
            yield self._rows(table), False
        yield self._rest(), True

    def _rows(self, table: pa.Table) -> list[pa.Table]:
        """The batch's rows to write, per file: members selected, cells built, rules applied."""
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
        members = _where(table, pc.and_(selected, valued))
        return self._arrange(
            self._admit(self._rules, self._cells(members), members.column(0)), None
        )

    def _with_exits(
        self, exits: Exits, table: pa.Table, member: pa.Array, valued: pa.Array
    ) -> list[pa.Table]:
        found = exits.compare(table, member, valued, self._until)
        exited = found.exited
        cells = self._cells(table.filter(found.written), exited)
        written_ids = found.written_ids
        staying = pc.invert(exited)
        members = self._admit(self._rules, cells.filter(staying), written_ids.filter(staying))
        left_rows = (cells.filter(exited), written_ids.filter(exited))
        return self._arrange(members, self._exit_cells(left_rows, found.deleted))

    def _rest(self) -> list[pa.Table]:
        """After the last batch: the previous members beyond the last profile were deleted."""
        if self._exits is None:
            return [self._plan.build_deleted(pa.array([], pa.string()))] * len(self._files)
        return self._arrange(None, self._exit_cells(None, self._exits.rest()))

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
        """The rows `rules` admit; their profile ids are counted, and kept if asked."""
        admitted = rules.admit_mask(cells)
        kept = _where(ids, admitted)
        self.ids_written += len(kept)
        if self._keep_ids:
            self.exported_ids.append(
                kept.combine_chunks() if isinstance(kept, pa.ChunkedArray) else kept
            )
        return _where(cells, admitted)

    def _arrange(self, members: pa.Table | None, exits: pa.Table | None) -> list[pa.Table]:
        """One table per file: exits after the members, or in the second (`_exited`) file."""
        empty = self._plan.build_deleted(pa.array([], pa.string()))
        members = empty if members is None else members
        exits = empty if exits is None else exits
        if len(self._files) == 2:
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


def _where(rows: _Rows, mask: pa.Array) -> _Rows:
    """`rows.filter(mask)`, or the rows themselves when the mask keeps every one: a full
    export's usual page, where filtering would copy every column (py-spy: a sixth of
    the thread that builds the file)."""
    if mask.null_count == 0 and pc.all(mask).as_py():
        return rows
    kept: _Rows = rows.filter(mask)
    return kept


def _count(mask: pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)
