"""The columns of an export: each configured column compiled once into a cell function.

A cell function turns one profile into the text of one cell (or None, which
the writer prints as the format's `null_value`). Compiling once keeps the
per-profile work to a list of calls, which matters at millions of rows.
Values are stored canonically (numbers with `.`, ISO dates in UTC); here
they are written the way the partner asked: decimal separator, date format
and time zone, multi-values joined by the multi-value separator.

A `hash:` column writes the SHA-256 (lower-case hex of the UTF-8 bytes) of
each value instead of the value, after that formatting, for partners that
match audiences on hashed identifiers (ad platforms' customer lists):
`sha256` hashes the text as it is; `email_lc_sha256` trims and lower-cases
it first; `phone_sha256` keeps only the digits and a `+` written before the
first digit (E.164 style: `+31 (0)6-1234 5678` → `+310612345678`; no
country code or trunk prefix is guessed). Multi-values are hashed one by
one and joined; a value that normalises to nothing is left out rather than
hashed, because the digest of an empty text would match every other empty
value at the partner.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections.abc import Callable, Mapping, Sequence

from connector.config.formats import ExportFormat
from connector.config.goals import PROFILE_ID, ExportColumn, HashName
from connector.config.segments import ALL_SEGMENT
from connector.formats.writer import format_date, format_number
from connector.goals.segments import SegmentIndex
from connector.storage import Profile

__all__ = ["PERMISSION_LEVEL", "VIEWED_INTERACTIONS", "ColumnPlan", "RowRules", "hasher"]

PERMISSION_LEVEL = "permission_level"
VIEWED_INTERACTIONS = "viewed_interactions"
CONVERSION_CACHE = 65536
"""Distinct values remembered per date column: birth dates and event days repeat a lot."""

GroupsByType = Mapping[str, Mapping[str, list[str]]]
"""{group type: {profile id: [group ids]}} for the profiles of one batch."""

Cell = Callable[[Profile, Sequence[str], GroupsByType], str | None]
"""(profile, its segment ids, the batch's groups) -> the cell's text, or None for no value."""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _email(value: str) -> str:
    return value.strip().lower()


def _phone(value: str) -> str:
    text = unicodedata.normalize("NFKC", value)
    digits = "".join(char for char in text if "0" <= char <= "9")
    if not digits:
        return ""
    plus = text.find("+")
    return "+" + digits if 0 <= plus < text.find(digits[0]) else digits


_NORMALISE: dict[HashName, Callable[[str], str]] = {
    "sha256": str,
    "email_lc_sha256": _email,
    "phone_sha256": _phone,
}


def hasher(name: HashName) -> Callable[[str], str | None]:
    """The `hash:` function: normalise, then SHA-256 as hex; None when nothing is left to hash."""
    normalise = _NORMALISE[name]

    def digest(value: str) -> str | None:
        text = normalise(value)
        return _sha256(text) if text else None

    return digest


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
            convert = self._convert(column)
            if column.hash is not None:
                return self._hashed_cell(column.property, convert, hasher(column.hash))
            return self._property_cell(column.property, convert)
        if column.value == PROFILE_ID:
            if column.hash is not None:
                digest = hasher(column.hash)
                return lambda profile, _segments, _groups: digest(profile.id) or ""
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

    def _hashed_cell(
        self,
        name: str,
        convert: Callable[[str], str] | None,
        digest: Callable[[str], str | None],
    ) -> Cell:
        """Each value formatted, then hashed; a property whose values all hash to nothing is ""."""
        separator = self._separator
        transform = digest if convert is None else lambda value: digest(convert(value))

        def cell(profile: Profile, _segments: Sequence[str], _groups: GroupsByType) -> str | None:
            values = profile.properties.get(name)
            if not values:
                return None
            return separator.join([text for text in map(transform, values) if text is not None])

        return cell

    def _segments_cell(self, only: list[str] | None) -> Cell:
        separator = self._separator
        if only is None:
            return lambda _profile, segments, _groups: separator.join(segments) or None
        wanted = list(dict.fromkeys(only))

        def cell(_profile: Profile, segments: Sequence[str], _groups: GroupsByType) -> str | None:
            member_of = {ALL_SEGMENT, *segments}
            return separator.join([s for s in wanted if s in member_of]) or None

        return cell


class RowRules:
    """`required` and `dedupe_by` of one export run: which built rows are written.

    A row misses a required column when its cell is null or empty. Rows are
    duplicates when their `dedupe_by` cells would be written identically (so
    with the default null and empty outputs, a missing and an empty value are
    the same); the first row written wins. Only a 16-byte BLAKE2b digest of
    each distinct key is kept, as a Python int: about 80 MiB for a million
    distinct keys, whatever the size of the values.
    """

    def __init__(
        self,
        headers: Sequence[str],
        fmt: ExportFormat,
        *,
        required: Sequence[str] = (),
        dedupe_by: Sequence[str] = (),
    ) -> None:
        self._required = [headers.index(header) for header in required]
        self._dedupe = [headers.index(header) for header in dedupe_by]
        self._null, self._empty = fmt.null_value, fmt.empty_value
        self._seen: set[int] = set()
        self.without_required = 0
        self.duplicates = 0

    def admit(self, row: Sequence[str | None]) -> bool:
        """Whether to write `row`; a row admitted claims its dedupe key."""
        for index in self._required:
            if not row[index]:
                self.without_required += 1
                return False
        if not self._dedupe:
            return True
        key = self._key(row)
        if key in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(key)
        return True

    def _key(self, row: Sequence[str | None]) -> int:
        digest = hashlib.blake2b(digest_size=16)
        for index in self._dedupe:
            value = row[index]
            text = self._null if value is None else (value or self._empty)
            data = text.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        return int.from_bytes(digest.digest(), "little")
