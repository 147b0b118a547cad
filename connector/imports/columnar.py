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
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.config.goal_parts import PROFILE_ID
from connector.engine.convert import convert_column, normalize_keys, trim_keys
from connector.engine.ids import new_profile_ids
from connector.engine.parse import Piece
from connector.engine.rows import CompiledMapping, RowPlan
from connector.engine.rules import BATCH_RULES, LIST
from connector.formats import ConversionError, add_numbers
from connector.imports.model import ImportProfilesGoal
from connector.storage import RowReject, RunCounts
from connector.storage.batches import BatchTransaction

_CANONICAL_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$"
_KEY = -2
"""Reject code of a row whose identifier is empty (mappings count from 0)."""
_KEY_REFUSED = -3
"""Reject code of a row whose identifier `match.normalize` refuses."""


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


@dataclass(slots=True)
class _Rows:
    """The rows of a piece that passed conversion, with their cells per mapping."""

    index: np.ndarray
    """Positions in the piece's table."""
    keys: pa.Array
    cells: list[pa.Array] = field(default_factory=list)


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
    def apply(self, piece: Piece) -> list[RowReject]:
        """Apply the piece's good rows; return its rejects (parse problems included)."""
        rejects = [
            RowReject(self._file, problem.line, problem.column, problem.reason)
            for problem in piece.problems
        ]
        table = piece.table
        if table.num_rows == 0:
            return rejects
        failed: dict[int, tuple[str | None, str]] = {}
        rows = self._convert(table, failed)
        if len(rows.index):
            self._apply_rows(rows, failed)
        if failed:
            lines = piece.lines().to_numpy()
            rejects += [
                RowReject(self._file, int(lines[row]), column, reason)
                for row, (column, reason) in sorted(failed.items())
            ]
        return rejects

    def _convert(self, table: pa.Table, failed: dict[int, tuple[str | None, str]]) -> _Rows:
        """Convert every mapped column; a row is rejected at its first failing cell."""
        keys = trim_keys(table.column(self._plan.key_index))
        refused: dict[int, str] = {}
        if self._normalize != "trim":
            keys, refused = normalize_keys(keys, self._normalize)
        first_failure = np.full(table.num_rows, -1, dtype=np.int64)
        converted = [
            convert_column(
                table.column(mapping.index),
                value_type=mapping.value_type,
                fmt=mapping.format,
                split=mapping.split,
            )
            for mapping in self._mappings
        ]
        for position in range(len(converted) - 1, -1, -1):
            first_failure[converted[position].errors.to_numpy()] = position
        empty = pc.equal(keys, "").to_numpy(zero_copy_only=False)
        first_failure[empty] = _KEY
        first_failure[list(refused)] = _KEY_REFUSED
        for row in np.flatnonzero(first_failure != -1).tolist():
            code = int(first_failure[row])
            if code == _KEY:
                failed[row] = (self._plan.key_column, "the identifier is empty")
            elif code == _KEY_REFUSED:
                failed[row] = (self._plan.key_column, refused[row])
            else:
                failed[row] = (self._mappings[code].column, converted[code].reason(row))
        good = np.flatnonzero(first_failure == -1)
        if len(good) == table.num_rows:
            return _Rows(good, keys, [column.values for column in converted])
        taken = pa.array(good)
        return _Rows(
            good,
            pc.take(keys, taken),
            [pc.take(column.values, taken) for column in converted],
        )

    def _apply_rows(self, rows: _Rows, failed: dict[int, tuple[str | None, str]]) -> None:
        counts = self.counts
        keys = rows.keys.combine_chunks() if isinstance(rows.keys, pa.ChunkedArray) else rows.keys
        encoded = pc.dictionary_encode(keys)
        distinct = encoded.dictionary
        key_of_row = encoded.indices.to_numpy().astype(np.int64)
        found = self._tx.lookup(self._match, distinct, self._properties)
        position = (
            pc.fill_null(pc.index_in(distinct, value_set=found.column("key")), -1)
            .to_numpy()
            .astype(np.int64)
        )
        exists = position >= 0
        take = pa.array(position, mask=~exists)
        current = [pc.take(found.column(name), take) for name in self._properties]
        cells = rows.cells

        # a stored non-number under a sum rejects the rows that would add to it
        alive = np.ones(len(key_of_row), dtype=bool)
        for index, mapping in enumerate(self._mappings):
            if mapping.rule_name != "sum":
                continue
            bad = _not_numbers(current[index])
            if not bad:
                continue
            has_cell = pc.is_valid(cells[index]).to_numpy(zero_copy_only=False)
            for row in np.flatnonzero(alive & has_cell & np.isin(key_of_row, list(bad))).tolist():
                stored = bad[int(key_of_row[row])]
                failed[int(rows.index[row])] = (
                    mapping.column,
                    f"cannot add to the stored value {stored!r}: not a number",
                )
                alive[row] = False

        missing = ~exists
        if not self._create:
            skipped = alive & missing[key_of_row]
            counts.rows_skipped += int(skipped.sum())
            alive &= ~skipped
        if not alive.all():
            mask = pa.array(~alive)
            cells = [pc.if_else(mask, pa.scalar(None, LIST), column) for column in cells]
        counts.rows_applied += int(alive.sum())

        merged = []
        touched = np.zeros(len(distinct), dtype=bool)
        for mapping, column, stored_values in zip(self._mappings, cells, current, strict=True):
            result = BATCH_RULES[mapping.rule_name](key_of_row, column, stored_values)
            merged.append(result.values)
            touched |= result.touched

        used = np.zeros(len(distinct), dtype=bool)
        used[key_of_row[alive]] = True
        self._insert(distinct, merged, missing & used)
        self._update(found, position, merged, exists & touched)

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
        columns = {"id": pc.take(found.column("id"), pa.array(position[which]))}
        for name, values in zip(self._properties, merged, strict=True):
            columns[name] = pc.take(values, pa.array(which))
        self._tx.update_profiles(pa.table(columns))


def _not_numbers(current: pa.Array) -> dict[int, str]:
    """Keys whose stored first value a sum cannot add to, with that value."""
    stored = pc.list_element(current, 0)
    odd = pc.and_(
        pc.is_valid(stored), pc.invert(pc.match_substring_regex(stored, _CANONICAL_NUMBER))
    )
    bad: dict[int, str] = {}
    for key in np.flatnonzero(pc.fill_null(odd, False).to_numpy(zero_copy_only=False)).tolist():
        value = stored[key].as_py()
        try:
            add_numbers(value, "0")
        except ConversionError:
            bad[key] = value
    return bad
