"""Export columns built for a whole Arrow batch of profiles at once.

`ExportColumns` turns a batch (`ProfileStore.profile_batches` layout) into
one text column per configured column, null where the profile has no value,
exactly the cells today's per-profile cell functions produced: profile id,
property values joined by the multi-value separator (numbers with the
export's decimal separator, dates and date-times in its format and zone),
`hash:` digests, static text, segment ids, group ids, permission level and
viewed interactions. What remains per value is Python work only where no
Arrow kernel writes the same text: SHA-256 and date formatting, each done
once per *distinct* value of the batch.

`RowRules` (in `_row_rules`) decides which built rows are written (`required`,
`dedupe_by`); `hasher` (in `_hashing`) is the `hash:` of a column. Both are
re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from connector.config.formats import ExportFormat
from connector.config.goal_parts import PROFILE_ID
from connector.config.segments import ALL_SEGMENT
from connector.engine._arrow_lists import flat_values, per_distinct, repeat_text, with_values
from connector.engine._hashing import hasher
from connector.engine._row_rules import RowRules
from connector.engine.segments import has_values
from connector.exports.model import SEGMENT_STATUS, ColumnValue, ExportColumn, HashName
from connector.formats.writer import format_date
from connector.storage._text_bytes import one_value_where_present

__all__ = [
    "COLUMN_VALUES",
    "EXITED",
    "PERMISSION_LEVEL",
    "REALIZED",
    "VIEWED_INTERACTIONS",
    "ExportColumns",
    "GroupsByType",
    "RowRules",
    "hasher",
]

REALIZED = "realized"
EXITED = "exited"
PERMISSION_LEVEL = "permission_level"
VIEWED_INTERACTIONS = "viewed_interactions"

GroupsByType = Mapping[str, Mapping[str, list[str]]]
"""{group type: {profile id: [group ids]}} for the profiles of one batch."""

_CANONICAL_NUMBER = r"^-?[0-9]+(?:\.[0-9]+)?$"
_CANONICAL_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
Cells = Callable[["_Batch"], pa.StringArray]


@dataclass(slots=True)
class _Batch:
    """One batch as the cell builders see it: ids, property lists, segment masks, groups."""

    ids: pa.StringArray
    properties: Mapping[str, pa.ListArray]
    segments: Mapping[str, pa.BooleanArray]
    groups: GroupsByType
    exited: pa.BooleanArray | None = None
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = len(self.ids)


class ExportColumns:
    """Headers, the properties to read, and the batch-wide cell builders of one export goal.

    Only profiles with a value in at least one `property:` column are
    written, as partners expect from a profile export: a row of nothing but
    ids and static text is noise. A goal with no `property:` column at all
    writes every selected profile, since the rule could never be met.

    `value: segments` lists the segments of segments.yaml the profile is in
    (the built-in `all` only when a column's `segments:` names it); the
    caller evaluates the segment masks only when `needs_segments` is true.
    """

    def __init__(self, columns: Sequence[ExportColumn], fmt: ExportFormat) -> None:
        self.headers = [column.header for column in columns]
        self.group_types = list(dict.fromkeys(c.group_type for c in columns if c.group_type))
        self.property_names = tuple(
            dict.fromkeys(column.property for column in columns if column.property is not None)
        )
        builtin = [c.value for c in columns if c.value in (PERMISSION_LEVEL, VIEWED_INTERACTIONS)]
        self.properties = tuple(dict.fromkeys([*self.property_names, *builtin]))
        """Every property the cells read, to ask the store for."""
        self.needs_segments = any(column.value == "segments" for column in columns)
        self._fmt = fmt
        self._separator = fmt.multi_value_separator
        self._columns = list(columns)
        self._cells = [self._compile(column) for column in columns]

    def has_property_value(self, properties: Mapping[str, pa.ListArray], rows: int) -> pa.Array:
        """Rows with a value in at least one `property:` column."""
        result: pa.Array = pa.repeat(pa.scalar(value=not self.property_names), rows)
        for name in self.property_names:
            result = pc.or_(result, has_values(properties[name]))
        return result

    def build(
        self,
        ids: pa.StringArray,
        properties: Mapping[str, pa.ListArray],
        segments: Mapping[str, pa.BooleanArray],
        groups: GroupsByType,
        exited: pa.BooleanArray | None = None,
    ) -> pa.Table:
        """The batch's cells: one nullable text column per configured column, in order.

        `exited` marks the profiles that left the segment (`segment_status` says
        `exited`); without it every row is a member (`realized`).
        """
        batch = _Batch(ids, properties, segments, groups, exited)
        arrays = [cell(batch) for cell in self._cells]
        return pa.Table.from_arrays(arrays, names=[str(i) for i in range(len(arrays))])

    def build_deleted(self, ids: pa.StringArray) -> pa.Table:
        """Exit rows of deleted profiles: the id columns and `segment_status` only, since
        nothing else of them is left to write."""
        batch = _Batch(ids, {}, {}, {}, pa.repeat(pa.scalar(value=True), len(ids)))
        arrays = [
            cell(batch)
            if column.value in (PROFILE_ID, SEGMENT_STATUS)
            else pa.nulls(len(ids), pa.string())
            for column, cell in zip(self._columns, self._cells, strict=True)
        ]
        return pa.Table.from_arrays(arrays, names=[str(i) for i in range(len(arrays))])

    def _compile(self, column: ExportColumn) -> Cells:
        if column.text is not None:
            text = column.text
            return lambda batch: repeat_text(text, batch.rows)
        if column.property is not None:
            return self._property_cells(column.property, self._convert(column), column.hash)
        if column.value is not None:
            return COLUMN_VALUES[column.value](self, column)
        raise ValueError(f"column {column.header!r} has no source")

    def _id_cells(self, column: ExportColumn) -> Cells:
        if column.hash is not None:
            digest = hasher(column.hash)
            return lambda batch: per_distinct(batch.ids, lambda v: digest(v) or "")
        return lambda batch: batch.ids

    def _stored_cells(self, column: ExportColumn) -> Cells:
        """A value the store keeps as a property of its own (permission level, interactions)."""
        return self._property_cells(column.value or "", None, None)

    def _convert(self, column: ExportColumn) -> Callable[[pa.StringArray], pa.StringArray] | None:
        fmt = self._fmt
        if column.type == "number" and fmt.decimal_separator != ".":
            decimal_separator = fmt.decimal_separator

            def number(values: pa.StringArray) -> pa.StringArray:
                canonical = pc.match_substring_regex(values, _CANONICAL_NUMBER)
                written = pc.replace_substring(values, ".", decimal_separator)
                result: pa.StringArray = pc.if_else(canonical, written, values)
                return result

            return number
        if column.type in ("date", "datetime"):
            date_format, timezone = fmt.date_format, fmt.timezone

            def convert(value: str) -> str:
                return format_date(value, date_format, timezone)

            def dates(values: pa.StringArray) -> pa.StringArray:
                if date_format != "iso8601":
                    return per_distinct(values, convert)
                # a canonical date is written as it is stored (or left as it is when invalid)
                unchanged = pc.match_substring_regex(values, _CANONICAL_DATE)
                return per_distinct(values, convert, skip=unchanged)

            return dates
        return None

    def _property_cells(
        self,
        name: str,
        convert: Callable[[pa.StringArray], pa.StringArray] | None,
        hash_name: HashName | None,
    ) -> Cells:
        """Each value formatted (then hashed), joined; no values is null, all hashed away is ""."""
        separator = self._separator
        digest = hasher(hash_name) if hash_name is not None else None

        def cells(batch: _Batch) -> pa.StringArray:
            lists = batch.properties[name]
            single = one_value_where_present(lists)
            if convert is not None or digest is not None:
                values = flat_values(lists)
                if convert is not None:
                    values = convert(values)
                if digest is not None:
                    values = per_distinct(values, digest)
                if single:  # a value hashed away leaves its profile "", as a join would
                    values = values.fill_null("")
                lists = with_values(lists, values)
            if single:  # nothing to join: the values are the cells (no list: null)
                return flat_values(lists) if not lists.null_count else pc.list_element(lists, 0)
            joined = pc.binary_join(lists, separator)
            result: pa.StringArray = pc.if_else(has_values(batch.properties[name]), joined, None)
            return result

        return cells

    def _segments_cells(self, column: ExportColumn) -> Cells:
        separator = self._separator
        only = column.segments

        def cells(batch: _Batch) -> pa.StringArray:
            wanted = list(batch.segments) if only is None else list(dict.fromkeys(only))
            # each member id with a separator after it, then the last separator cut off
            # (pyarrow 26's binary_join_element_wise with null_handling="skip" drops rows
            # whose inputs are all null, so nulls are avoided here)
            parts = [
                repeat_text(segment_id + separator, batch.rows)
                if segment_id == ALL_SEGMENT
                else pc.if_else(batch.segments[segment_id], segment_id + separator, "")
                for segment_id in wanted
                if segment_id == ALL_SEGMENT or segment_id in batch.segments
            ]
            if not parts:
                return pa.nulls(batch.rows, pa.string())
            joined = pc.binary_join_element_wise(*parts, "")
            cut = pc.utf8_slice_codeunits(joined, 0, -1)
            result: pa.StringArray = pc.if_else(pc.equal(joined, ""), None, cut)
            return result

        return cells

    def _group_cells(self, column: ExportColumn) -> Cells:
        separator = self._separator
        group_type = column.group_type or ""

        def cells(batch: _Batch) -> pa.StringArray:
            members = batch.groups.get(group_type, {})
            texts = []
            for profile_id in batch.ids.to_pylist():
                ids = members.get(profile_id)
                texts.append(separator.join(ids) if ids else None)
            return pa.array(texts, pa.string())

        return cells


COLUMN_VALUES: dict[ColumnValue, Callable[[ExportColumns, ExportColumn], Cells]] = {
    "profile_id": ExportColumns._id_cells,
    "segments": ExportColumns._segments_cells,
    "groups": ExportColumns._group_cells,
    "permission_level": ExportColumns._stored_cells,
    "viewed_interactions": ExportColumns._stored_cells,
    "segment_status": lambda _columns, _column: _status_cells,
}
"""Each `value:` of an export column -> the builder of its cells for a whole batch.

Adding a value: its builder here, its name in `ColumnValue` (a test checks they agree)."""


def _status_cells(batch: _Batch) -> pa.StringArray:
    if batch.exited is None:
        return repeat_text(REALIZED, batch.rows)
    result: pa.StringArray = pc.if_else(batch.exited, EXITED, REALIZED)
    return result
