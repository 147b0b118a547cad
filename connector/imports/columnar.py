"""Apply a piece of a file to profiles, set-based: convert, reject, resolve, merge, write.

The columnar counterpart of `connector.imports.apply_rows.ProfileApplier`,
with the same results (profiles, rejects and counts: the property-based
tests in tests/engine compare them). Per piece it makes a few Arrow passes
per mapping and a handful of store statements, whatever the row count.

Goals that need row-by-row decisions take the row path instead (see
`why_not_columnar`): consent objectives (whether a row applies depends on
the profile as the previous row left it), a delete column (a deletion
between two rows of one key), mappings to unique properties (a value freed
or taken by an earlier row), and two mappings writing one property.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.config.goal_parts import PROFILE_ID
from connector.engine import piece_steps as steps
from connector.engine.ids import new_profile_ids
from connector.engine.parse import Piece
from connector.engine.rows import CompiledMapping, RowPlan
from connector.engine.rules import LIST
from connector.imports.model import ImportProfilesGoal
from connector.storage import RowReject, RunCounts
from connector.storage.batches import BatchTransaction


def why_not_columnar(
    goal: ImportProfilesGoal,
    plan: RowPlan,
    *,
    objectives: Collection[str],
    unique_properties: Collection[str],
) -> str | None:
    """Why this goal and file need the row path, or None when the engine can take them."""
    if objectives:
        return "the connection has consent objectives"
    if goal.delete_column:
        return "the goal has a delete column"
    if goal.on_change == "replace":
        return "on_change: replace records each file's contribution row by row"
    taken = set(unique_properties) | {goal.match.property}
    targets = [mapping.property for mapping in plan.mappings]
    if taken & set(targets):
        return "a mapping writes a unique property"
    if len(set(targets)) != len(targets):
        return "two mappings write one property"
    return None


class ProfileBatchApplier:
    """Applies pieces of one file inside one `BatchTransaction`."""

    def __init__(
        self, tx: BatchTransaction, goal: ImportProfilesGoal, plan: RowPlan, *, file: str
    ) -> None:
        self._tx = tx
        self._file = file
        self._plan = plan
        self._mappings: list[CompiledMapping] = list(plan.mappings)
        self._match = goal.match.property
        self._normalize = goal.match.normalize
        self._create = goal.match.create_missing
        self._properties = [mapping.property for mapping in self._mappings]
        stored = [] if self._match == PROFILE_ID else [self._match]
        tx.prepare([*stored, *self._properties])
        self.counts = RunCounts()

    def finish(self) -> tuple[RunCounts, int]:
        seq, touched = self._tx.changed_profiles()
        self.counts.profiles_updated = touched - self.counts.profiles_created
        return self.counts, seq

    # -- one piece ----------------------------------------------------------------
    def convert(self, piece: Piece) -> steps.ConvertedPiece:
        """The piece converted; reads nothing stored, so it may run in another thread."""
        return steps.convert_piece(piece, self._plan, file=self._file, normalize=self._normalize)

    def apply(self, converted: steps.ConvertedPiece) -> list[RowReject]:
        """Apply the piece's good rows; return its rejects (parse problems included)."""
        return steps.apply_converted(converted, self._apply_rows)

    def _apply_rows(self, rows: steps.GoodRows, failed: steps.Failed) -> None:
        keys = steps.keyed(rows)
        found = self._tx.lookup(self._match, keys.distinct, self._properties)
        position = keys.positions(found.column("key"))
        exists = position >= 0
        take = pa.array(position, mask=~exists)
        current = [pc.take(found.column(name), take) for name in self._properties]
        alive = steps.refuse_sums_on_text(self._mappings, rows, keys.key_of_row, current, failed)
        missing = ~exists
        if not self._create:
            skipped = alive & missing[keys.key_of_row]
            self.counts.rows_skipped += int(skipped.sum())
            alive &= ~skipped
        self.counts.rows_applied += int(alive.sum())
        merged = steps.merge(self._mappings, rows, keys, alive, current)
        self._insert(keys.distinct, merged.values, missing & merged.used)
        self._update(found, position, merged.values, exists & merged.touched)

    def _insert(self, distinct: pa.Array, merged: list[pa.Array], new: np.ndarray) -> None:
        count = int(new.sum())
        if not count:
            return
        self.counts.profiles_created += count
        which = pa.array(np.flatnonzero(new))
        keys = pc.take(distinct, which)
        columns = {"key": keys}
        if self._match == PROFILE_ID:
            columns["id"] = keys
            identifier = None
        else:
            columns["id"] = new_profile_ids(count)
            columns[self._match] = pa.ListArray.from_arrays(
                pa.array(np.arange(count + 1, dtype=np.int32)), keys, type=LIST
            )
            identifier = self._match
        for name, values in zip(self._properties, merged, strict=True):
            columns[name] = pc.take(values, which)
        self._tx.insert_profiles(pa.table(columns), identifier=identifier)

    def _update(
        self, found: pa.Table, position: np.ndarray, merged: list[pa.Array], changed: np.ndarray
    ) -> None:
        if not changed.any():
            return
        which = np.flatnonzero(changed)
        rows, stored_rows = pa.array(which), pa.array(position[which])
        columns = {"id": pc.take(found.column("id"), stored_rows)}
        for name, values in zip(self._properties, merged, strict=True):
            new = pa.chunked_array([pc.take(values, rows)])
            # a property no changed profile changes is not written: a file imported again
            # mostly repeats what is stored, and each column bound costs a Python object
            # per row in the store's write (the changed profiles are stamped all the same)
            if not new.equals(pc.take(found.column(name), stored_rows)):
                columns[name] = new
        self._tx.update_profiles(pa.table(columns))
