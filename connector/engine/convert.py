"""Whole-column conversion of cells to the canonical text the store keeps.

The per-cell path (`RowPlan.parse` with `make_converter`) is the oracle: for
every cell this gives the values it gives, rejects the cells it rejects, with
its message. What differs is the cost: trims, splits and the common forms of
numbers and date-times run as Arrow kernels over the column; dates, booleans
and unusual values are converted once per distinct value; only rare cells
(non-canonical numbers, invalid text) meet the per-cell converter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.config.formats import ImportFormat, zone_of
from connector.engine._cells import Pieces, as_strings, drop_rows, pieces, strip
from connector.engine._converted import Converted
from connector.engine._datetimes import convert_dates, convert_datetimes
from connector.engine._distinct import convert_distinct
from connector.engine._numbers import convert_numbers
from connector.formats.keys import key_normalizer
from connector.formats.values import ConversionError, ValueType, make_converter

__all__ = [
    "COLUMN_CONVERTERS",
    "ColumnResult",
    "ConvertedColumn",
    "DeleteFlags",
    "convert_column",
    "is_true_column",
    "trim_keys",
]


Values = TypeVar("Values", bound=pa.Array)


@dataclass(frozen=True)
class ColumnResult(Generic[Values]):
    """A column's result per row, and the rows whose cell is rejected."""

    values: Values
    """Null where the cell gives nothing or is rejected."""
    errors: pa.Int64Array
    """Rows whose cell is rejected, ascending."""
    reasons: dict[int, str] = field(default_factory=dict, repr=False)

    def reason(self, row: int) -> str:
        """The `ConversionError` message the per-cell path gives for that row's cell."""
        return self.reasons[row]


ConvertedColumn = ColumnResult[pa.ListArray]
"""A mapped column: `list<string>` per row, the cell's canonical values in order."""
DeleteFlags = ColumnResult[pa.BooleanArray]
"""The delete column: per row true, false, or null (empty or rejected)."""


ColumnConverter = Callable[[pa.StringArray, ImportFormat, Callable[[str], str]], Converted]

COLUMN_CONVERTERS: dict[ValueType, ColumnConverter] = {
    "text": lambda texts, _fmt, _convert: Converted(texts),
    "number": lambda texts, fmt, convert: convert_numbers(texts, fmt.decimal_separator, convert),
    "date": lambda texts, fmt, convert: convert_dates(texts, fmt.date_format, convert),
    "datetime": lambda texts, fmt, convert: convert_datetimes(
        texts, fmt.date_format, zone_of(fmt.timezone), convert
    ),
    "boolean": lambda texts, _fmt, convert: convert_distinct(texts, convert),
}
"""Each value type -> its whole-column conversion, given the per-cell converter (the oracle
it falls back to). A new type converted once per distinct value uses `convert_distinct`."""


def _convert(
    texts: pa.StringArray, value_type: ValueType, fmt: ImportFormat, convert: Callable[[str], str]
) -> Converted:
    return COLUMN_CONVERTERS[value_type](texts, fmt, convert)


def _rejected_rows(rows: pa.Int64Array, reasons: dict[int, str]) -> dict[int, str]:
    """Each rejected row with the reason of its first rejected piece, as the cell loop stops there."""
    first: dict[int, str] = {}
    order = sorted(reasons)
    for position, row in zip(
        order, rows.take(pa.array(order, pa.int64())).to_pylist(), strict=True
    ):
        first.setdefault(row, reasons[position])
    return first


def _per_row(
    found: Pieces, converted: Converted
) -> tuple[pa.ListArray, pa.Int64Array, dict[int, str]]:
    """The converted pieces back in their rows, less the rejected rows; those, with reasons."""
    rejected = _rejected_rows(found.rows, converted.reasons) if converted.reasons else {}
    errors = pa.array(sorted(rejected), pa.int64())
    return drop_rows(found, converted.values, errors), errors, rejected


def convert_column(
    cells: pa.StringArray | pa.ChunkedArray,
    *,
    value_type: ValueType,
    fmt: ImportFormat,
    split: str | None,
) -> ConvertedColumn:
    """Convert every cell of a column as `RowPlan.parse` converts one.

    `split` is the multi-value separator, or None for a column holding one
    value (the *sum* rule). `fmt` carries the mapping's own date format when it
    has one. Raises ValueError at once, like `make_converter`, if a boolean
    spelling is both true and false.
    """
    convert = make_converter(value_type, fmt)
    found = pieces(as_strings(cells), split)
    values, errors, rejected = _per_row(found, _convert(found.values, value_type, fmt, convert))
    return ConvertedColumn(values, errors, rejected)


def is_true_column(cells: pa.StringArray | pa.ChunkedArray, fmt: ImportFormat) -> DeleteFlags:
    """The delete column read as `RowPlan.parse` reads it: stripped, empty means no answer."""
    convert = make_converter("boolean", fmt)
    found = pieces(as_strings(cells), None)
    values, errors, rejected = _per_row(found, convert_distinct(found.values, convert))
    return DeleteFlags(pc.equal(pc.list_element(values, 0), "true"), errors, rejected)


def trim_keys(cells: pa.StringArray | pa.ChunkedArray) -> pa.StringArray:
    """The identifier cells as `value.strip()`; a missing cell reads as empty text."""
    return pc.fill_null(strip(as_strings(cells)), "")


def normalize_keys(keys: pa.StringArray, mode: str) -> tuple[pa.StringArray, dict[int, str]]:
    """Trimmed keys through `match.normalize` (`key_normalizer`), once per distinct key;
    and the rows whose key it refuses, with the reason (the row path's words)."""
    normalize = key_normalizer(mode)
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    encoded = pc.dictionary_encode(keys)
    written: list[str] = []
    refused: dict[int, str] = {}
    for position, key in enumerate(encoded.dictionary.to_pylist()):
        try:
            written.append(normalize(key))
        except ConversionError as error:
            written.append("")
            refused[position] = str(error)
    normalized = pc.take(pa.array(written, pa.string()), encoded.indices)
    if not refused:
        return normalized, {}
    of_row = encoded.indices.to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(np.isin(of_row, list(refused)))
    return normalized, {int(row): refused[int(of_row[row])] for row in rows}
