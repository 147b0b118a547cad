"""The columns of an export: each configured column compiled once into a cell function.

A cell function turns one profile into the text of one cell (or None, which
the writer prints as the format's `null_value`). Compiling once keeps the
per-profile work to a list of calls, which matters at millions of rows.
Values are stored canonically (numbers with `.`, ISO dates in UTC); here
they are written the way the partner asked: decimal separator, date format
and time zone, multi-values joined by the multi-value separator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from connector.config.formats import ExportFormat
from connector.config.goals import ExportColumn
from connector.config.segments import ALL_SEGMENT
from connector.formats.writer import format_date, format_number
from connector.goals.segments import SegmentIndex
from connector.storage import Profile

__all__ = ["PERMISSION_LEVEL", "VIEWED_INTERACTIONS", "ColumnPlan", "RowContext"]

PERMISSION_LEVEL = "permission_level"
VIEWED_INTERACTIONS = "viewed_interactions"

GroupsByType = Mapping[str, Mapping[str, list[str]]]
"""{group type: {profile id: [group ids]}} for the profiles of one batch."""


@dataclass(slots=True)
class RowContext:
    """What one profile's cells may need beyond its properties, computed at most once."""

    profile: Profile
    groups: GroupsByType
    segments: SegmentIndex
    _memberships: list[str] | None = field(default=None, repr=False)

    @property
    def memberships(self) -> list[str]:
        if self._memberships is None:
            self._memberships = self.segments.memberships(self.profile.properties)
        return self._memberships


Cell = Callable[[RowContext], str | None]


class ColumnPlan:
    """Headers, cell functions and the "has a value" rule of one export goal.

    Only profiles with a value in at least one `property:` column are
    written, as partners expect from a profile export: a row of nothing but
    ids and static text is noise. A goal with no `property:` column at all
    writes every selected profile, since the rule could never be met.
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
        self._segments = segments
        self._cells = [self._compile(column) for column in columns]

    def has_property_value(self, properties: Mapping[str, list[str]]) -> bool:
        if not self.property_names:
            return True
        return any(properties.get(name) for name in self.property_names)

    def row(self, profile: Profile, groups: GroupsByType) -> list[str | None]:
        context = RowContext(profile, groups, self._segments)
        return [cell(context) for cell in self._cells]

    def _join(self, values: Sequence[str]) -> str | None:
        return self._fmt.multi_value_separator.join(values) if values else None

    def _compile(self, column: ExportColumn) -> Cell:
        if column.text is not None:
            text = column.text
            return lambda _context: text
        if column.property is not None:
            return self._property_cell(column.property, self._convert(column))
        if column.value == "profile_id":
            return lambda context: context.profile.id
        if column.value == "segments":
            return self._segments_cell(column.segments)
        if column.value == "groups":
            group_type = column.group_type or ""
            join = self._join
            return lambda context: join(
                context.groups.get(group_type, {}).get(context.profile.id, [])
            )
        if column.value in (PERMISSION_LEVEL, VIEWED_INTERACTIONS):
            return self._property_cell(column.value, None)
        raise ValueError(f"column {column.header!r} has no source")

    def _convert(self, column: ExportColumn) -> Callable[[str], str] | None:
        fmt = self._fmt
        if column.type == "number":
            separator = fmt.decimal_separator
            return lambda value: format_number(value, separator)
        if column.type in ("date", "datetime"):
            date_format, timezone = fmt.date_format, fmt.timezone
            return lambda value: format_date(value, date_format, timezone)
        return None

    def _property_cell(self, name: str, convert: Callable[[str], str] | None) -> Cell:
        join = self._join
        if convert is None:
            return lambda context: join(context.profile.properties.get(name) or ())
        return lambda context: join(
            [convert(value) for value in context.profile.properties.get(name) or ()]
        )

    def _segments_cell(self, only: list[str] | None) -> Cell:
        join = self._join
        if only is None:
            return lambda context: join(context.memberships)
        wanted = list(dict.fromkeys(only))

        def cell(context: RowContext) -> str | None:
            member_of = set(context.memberships)
            member_of.add(ALL_SEGMENT)
            return join([segment_id for segment_id in wanted if segment_id in member_of])

        return cell
