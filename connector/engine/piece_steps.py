"""The steps every set-based applier takes on a piece, whatever it writes to.

`imports.columnar.ProfileBatchApplier` (profiles) and
`groups.columnar.GroupBatchApplier` (groups) apply a piece the same way up
to the write: convert the mapped columns and reject a row at its first failing
cell, find each distinct key among the stored ones, refuse the rows that
would add to a stored value that is not a number, then run the batch rules.
These steps live here once, so both stay what their row paths do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.engine.convert import convert_column, normalize_keys, trim_keys
from connector.engine.parse import Piece
from connector.engine.rows import CompiledMapping, RowPlan
from connector.engine.rules import BATCH_RULES, LIST
from connector.formats import ConversionError, add_numbers
from connector.storage import RowReject

__all__ = [
    "ConvertedPiece",
    "Failed",
    "GoodRows",
    "KeyedRows",
    "Merged",
    "apply_converted",
    "convert_piece",
    "keyed",
    "merge",
    "refuse_sums_on_text",
]

Failed = dict[int, tuple[str | None, str]]
"""The rejected rows of a piece, by position in its table: (column, reason)."""

_CANONICAL_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$"
_KEY = -2
"""Reject code of a row whose identifier is empty (mappings count from 0)."""
_KEY_REFUSED = -3
"""Reject code of a row whose identifier `match.normalize` refuses."""


@dataclass(slots=True)
class GoodRows:
    """The rows of a piece that passed conversion, with their cells per mapping."""

    index: np.ndarray
    """Positions in the piece's table."""
    keys: pa.Array
    cells: list[pa.Array]


@dataclass(slots=True)
class KeyedRows:
    """The good rows' distinct keys, and which one each row has."""

    distinct: pa.Array
    key_of_row: np.ndarray

    def positions(self, stored: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Where each distinct key stands among the `stored` keys; -1 for one not stored."""
        found = pc.fill_null(pc.index_in(self.distinct, value_set=stored), -1)
        positions: np.ndarray = found.to_numpy().astype(np.int64)
        return positions


@dataclass(slots=True)
class Merged:
    """The batch rules' results: each mapping's new values per distinct key."""

    values: list[pa.Array]
    touched: np.ndarray
    """Keys whose values any rule changed."""
    used: np.ndarray
    """Keys that an applied row has."""


@dataclass(slots=True)
class ConvertedPiece:
    """A piece converted, not yet applied: every step before the store.

    Conversion reads nothing stored, so an applier converts the next piece in
    a thread while it writes this one (see `imports._apply_file`).
    """

    piece: Piece
    file: str
    rows: GoodRows | None
    """The rows that passed conversion; None when no row did."""
    failed: Failed
    """The rows conversion rejected; `apply` adds those it rejects."""
    problems: list[RowReject]
    """The records the parser could not read."""


def convert_piece(
    piece: Piece, plan: RowPlan, *, file: str, normalize: str = "trim"
) -> ConvertedPiece:
    """Convert the piece's mapped columns and keys; reject a row at its first failing cell.

    `normalize` is the goal's `match.normalize`, applied to the trimmed identifiers.
    """
    problems = [
        RowReject(file, problem.line, problem.column, problem.reason) for problem in piece.problems
    ]
    failed: Failed = {}
    table = piece.table
    if table.num_rows == 0:
        return ConvertedPiece(piece, file, None, failed, problems)
    keys = trim_keys(table.column(plan.key_index))
    refused: dict[int, str] = {}
    if normalize != "trim":
        keys, refused = normalize_keys(keys, normalize)
    rows = _convert_rows(table, plan, keys, failed, refused)
    return ConvertedPiece(piece, file, rows if len(rows.index) else None, failed, problems)


def apply_converted(
    converted: ConvertedPiece, apply: Callable[[GoodRows, Failed], None]
) -> list[RowReject]:
    """Hand the good rows to `apply`; return the piece's rejects.

    Those are the records the parser could not read, then every row that
    conversion or `apply` rejected, in file order.
    """
    rejects = list(converted.problems)
    failed = converted.failed
    if converted.rows is not None:
        apply(converted.rows, failed)
    if failed:
        lines = converted.piece.lines().to_numpy()
        rejects += [
            RowReject(converted.file, int(lines[row]), column, reason)
            for row, (column, reason) in sorted(failed.items())
        ]
    return rejects


def _convert_rows(
    table: pa.Table, plan: RowPlan, keys: pa.Array, failed: Failed, refused: dict[int, str]
) -> GoodRows:
    """Convert every mapped column; a row is rejected at its first failing cell.

    `keys` are the rows' identifiers as written to the store; `refused` the rows
    whose identifier `match.normalize` refuses, with the reason. An empty or
    refused identifier rejects the row before any of its cells, as on the row path.
    """
    mappings = plan.mappings
    first_failure = np.full(table.num_rows, -1, dtype=np.int64)
    converted = [
        convert_column(
            table.column(mapping.index),
            value_type=mapping.value_type,
            fmt=mapping.format,
            split=mapping.split,
        )
        for mapping in mappings
    ]
    for position in range(len(converted) - 1, -1, -1):
        first_failure[converted[position].errors.to_numpy()] = position
    first_failure[pc.equal(keys, "").to_numpy(zero_copy_only=False)] = _KEY
    first_failure[list(refused)] = _KEY_REFUSED
    for row in np.flatnonzero(first_failure != -1).tolist():
        code = int(first_failure[row])
        if code == _KEY:
            failed[row] = (plan.key_column, "the identifier is empty")
        elif code == _KEY_REFUSED:
            failed[row] = (plan.key_column, refused[row])
        else:
            failed[row] = (mappings[code].column, converted[code].reason(row))
    good = np.flatnonzero(first_failure == -1)
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if len(good) == table.num_rows:
        return GoodRows(good, keys, [column.values for column in converted])
    taken = pa.array(good)
    return GoodRows(
        good, pc.take(keys, taken), [pc.take(column.values, taken) for column in converted]
    )


def keyed(rows: GoodRows) -> KeyedRows:
    """The rows' keys encoded once: each distinct key, and each row's."""
    encoded = pc.dictionary_encode(rows.keys)
    return KeyedRows(encoded.dictionary, encoded.indices.to_numpy().astype(np.int64))


def refuse_sums_on_text(
    mappings: Sequence[CompiledMapping],
    rows: GoodRows,
    key_of_row: np.ndarray,
    current: list[pa.Array],
    failed: Failed,
) -> np.ndarray:
    """Which good rows still apply: a stored non-number under a sum rejects the rows that
    would add to it (`current`: each mapping's stored values per distinct key)."""
    alive = np.ones(len(key_of_row), dtype=bool)
    for index, mapping in enumerate(mappings):
        if mapping.rule_name != "sum":
            continue
        bad = _not_numbers(current[index])
        if not bad:
            continue
        has_cell = pc.is_valid(rows.cells[index]).to_numpy(zero_copy_only=False)
        for row in np.flatnonzero(alive & has_cell & np.isin(key_of_row, list(bad))).tolist():
            stored = bad[int(key_of_row[row])]
            failed[int(rows.index[row])] = (
                mapping.column,
                f"cannot add to the stored value {stored!r}: not a number",
            )
            alive[row] = False
    return alive


def merge(
    mappings: Sequence[CompiledMapping],
    rows: GoodRows,
    keys: KeyedRows,
    alive: np.ndarray,
    current: list[pa.Array],
) -> Merged:
    """Each mapping's batch rule over the rows that apply, on top of the stored values."""
    cells = rows.cells
    if not alive.all():
        mask = pa.array(~alive)
        cells = [pc.if_else(mask, pa.scalar(None, LIST), column) for column in cells]
    values: list[pa.Array] = []
    touched = np.zeros(len(keys.distinct), dtype=bool)
    for mapping, column, stored in zip(mappings, cells, current, strict=True):
        result = BATCH_RULES[mapping.rule_name](keys.key_of_row, column, stored)
        values.append(result.values)
        touched |= result.touched
    used = np.zeros(len(keys.distinct), dtype=bool)
    used[keys.key_of_row[alive]] = True
    return Merged(values, touched, used)


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
