"""The columns of an export: each configured column compiled once into a cell function.

A cell function turns one profile into the text of one cell (or None, which
the writer prints as the format's `null_value`). Compiling once keeps the
per-profile work to a list of calls, which matters at millions of rows.
Values are stored canonically (numbers with `.`, ISO dates in UTC); here
they are written the way the partner asked: decimal separator, date format
and time zone, multi-values joined by the multi-value separator.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

from connector.config.formats import ExportFormat
from connector.config.goals import ExportColumn
from connector.config.segments import ALL_SEGMENT
from connector.formats.writer import format_date, format_number
from connector.goals.segments import SegmentIndex
from connector.storage import Profile

__all__ = ["PERMISSION_LEVEL", "VIEWED_INTERACTIONS", "ColumnPlan"]

PERMISSION_LEVEL = "permission_level"
VIEWED_INTERACTIONS = "viewed_interactions"
CONVERSION_CACHE = 65536
"""Distinct values remembered per date column: birth dates and event days repeat a lot."""

GroupsByType = Mapping[str, Mapping[str, list[str]]]
"""{group type: {profile id: [group ids]}} for the profiles of one batch."""

Cell = Callable[[Profile, Sequence[str], GroupsByType], str | None]
"""(profile, its segment ids, the batch's groups) -> the cell's text, or None for no value."""


class ColumnPlan:
    """Headers, cell functions and the "has a value" rule of one export goal.

    Only profiles with a value in at least one `property:` column are
    written, as partners expect from a profile export: a row of nothing but
    ids and static text is noise. A goal with no `property:` column at all
    writes every selected profile, since the rule could never be met.

    `value: segments` lists the segments of segments.yaml the profile is in
    (the built-in `all` only when a column's `segments:` names it); segment
    conditions are evaluated only when such a column exists.
    """

    def __init__(
        self, columns: Sequence[ExportColumn], fmt: ExportFormat, segments: SegmentIndex
    ) -> None:
        self.headers = [column.header for column in columns]
        self.group_types = list(dict.fromkeys(c.group_type for c in columns if c.group_type))
        self.property_names = tuple(
            dict.fromkeys(column.property for column in columns if column.property is not None)
        )
        self._fmt = fmt
        self._separator = fmt.multi_value_separator
        self._memberships: Callable[[Mapping[str, list[str]]], list[str]] | None = None
        if any(column.value == "segments" for column in columns):
            self._memberships = segments.memberships
        self._cells = [self._compile(column) for column in columns]

    def has_property_value(self, properties: Mapping[str, list[str]]) -> bool:
        if not self.property_names:
            return True
        return any(properties.get(name) for name in self.property_names)

    def row(self, profile: Profile, groups: GroupsByType) -> list[str | None]:
        memberships = self._memberships(profile.properties) if self._memberships else ()
        return [cell(profile, memberships, groups) for cell in self._cells]

    def _compile(self, column: ExportColumn) -> Cell:
        separator = self._separator
        if column.text is not None:
            text = column.text
            return lambda _profile, _segments, _groups: text
        if column.property is not None:
            return self._property_cell(column.property, self._convert(column))
        if column.value == "profile_id":
            return lambda profile, _segments, _groups: profile.id
        if column.value == "segments":
            return self._segments_cell(column.segments)
        if column.value == "groups":
            group_type = column.group_type or ""

            def groups_cell(
                profile: Profile, _segments: Sequence[str], groups: GroupsByType
            ) -> str | None:
                ids = groups.get(group_type, {}).get(profile.id)
                return separator.join(ids) if ids else None

            return groups_cell
        if column.value in (PERMISSION_LEVEL, VIEWED_INTERACTIONS):
            return self._property_cell(column.value, None)
        raise ValueError(f"column {column.header!r} has no source")

    def _convert(self, column: ExportColumn) -> Callable[[str], str] | None:
        fmt = self._fmt
        if column.type == "number":
            decimal_separator = fmt.decimal_separator
            if decimal_separator == ".":
                return None
            return lambda value: format_number(value, decimal_separator)
        if column.type in ("date", "datetime"):
            date_format, timezone = fmt.date_format, fmt.timezone

            @functools.lru_cache(maxsize=CONVERSION_CACHE)
            def convert_date(value: str) -> str:
                return format_date(value, date_format, timezone)

            return convert_date
        return None

    def _property_cell(self, name: str, convert: Callable[[str], str] | None) -> Cell:
        separator = self._separator
        if convert is None:

            def cell(
                profile: Profile, _segments: Sequence[str], _groups: GroupsByType
            ) -> str | None:
                values = profile.properties.get(name)
                return separator.join(values) if values else None

            return cell

        def converted(
            profile: Profile, _segments: Sequence[str], _groups: GroupsByType
        ) -> str | None:
            values = profile.properties.get(name)
            return separator.join(map(convert, values)) if values else None

        return converted

    def _segments_cell(self, only: list[str] | None) -> Cell:
        separator = self._separator
        if only is None:
            return lambda _profile, segments, _groups: separator.join(segments) or None
        wanted = list(dict.fromkeys(only))

        def cell(_profile: Profile, segments: Sequence[str], _groups: GroupsByType) -> str | None:
            member_of = {ALL_SEGMENT, *segments}
            return separator.join([s for s in wanted if s in member_of]) or None

        return cell
