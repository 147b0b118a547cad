"""Dates and date-times: the common forms vectorised, every other distinct value through
today's converter.

Vectorised, with the reason each is exact:

- ISO 8601 `YYYY-MM-DD`, optionally `[T ]HH:MM[:SS[.f{1,6}]]` and `Z` or
  `+HH:MM`: `datetime.fromisoformat` reads all of them (checked against it in
  the tests), and so does Arrow's cast once every day is known to exist (the
  regular expression admits only real days, 29 February is checked against
  the year: a single bad day would fail the cast of the whole column).
- numeric strftime patterns (`%Y %y %m %d %H %M %S`, literals): the regular
  expression of `formats.strftime` written for RE2 so that it matches a subset
  of what Python's matches (ASCII whitespace only, ASCII letters as `[tT]`),
  with the same groups, so the fields are the ones the converter reads.

Naive times go through `_walls.utc_from_wall` (the zone's own offsets), and
results outside years 1000-9999 are left to the converter, as is every cell
that does not take a fast path: those go value by value through
`convert_distinct`, so results and messages are today's.

Dates take the same two fast paths where no zone is involved: an ISO
`YYYY-MM-DD` day is its own canonical text, and a pattern of date fields
only (`%Y %y %m %d`) gives `YYYY-MM-DD` from its fields (cut at fixed
places from cells written zero-padded, when the pattern is `%Y`, `%m` and
`%d` between punctuation). A pattern with a
time of day goes through the converter, as do cells outside years 1000-9999.
Dates were the one type still converted in Python value by value on the
benchmark's file, where birth days are nearly all distinct within a piece.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import tzinfo

import pyarrow as pa
import pyarrow.compute as pc

from connector.engine._converted import Converted
from connector.engine._distinct import convert_distinct, convert_rest
from connector.engine._walls import (
    canonical_text,
    days_from_civil,
    in_range,
    is_leap,
    utc_from_wall,
    valid_day,
    wall_micros,
)
from connector.formats.strftime import strftime_body

__all__ = ["convert_dates", "convert_datetimes", "strftime_regex"]

_ISO = (
    r"^[1-9][0-9]{3}-"
    r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
    r"|(?:0[13578]|1[02])-31|02-29)"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?)?$"
)
"""The ISO 8601 shapes taken here, with every day that can exist (29 February checked apart)."""

_ISO_DAY = _ISO.split("(?:[T ]", 1)[0] + "$"
"""The date part of `_ISO` alone: `YYYY-MM-DD`."""

_DAY_DIRECTIVES = frozenset({"Y", "y", "m", "d"})
_NO_TEXT = pa.scalar(None, pa.string())


def _literal(char: str) -> str | None:
    """An RE2 literal that matches a subset of what Python's `re` does under IGNORECASE."""
    if not char.isascii():
        return None
    return f"[{char.lower()}{char.upper()}]" if char.isalpha() else re.escape(char)


def strftime_regex(pattern: str, allowed: frozenset[str] | None = None) -> str | None:
    """RE2 for a numeric strftime pattern, or None when only the converter can read it
    (or it uses a directive outside `allowed`)."""
    found = strftime_body(pattern, _literal)
    if found is None:
        return None
    body, used = found
    if not used & {"Y", "y"}:
        return None  # year 1900 only: rare, and left to the converter
    if allowed is not None and not used <= allowed:
        return None
    return "^" + body + "$"


def _scatter(mask: pa.BooleanArray, values: pa.Array, length: int) -> pa.Array:
    """`values` placed at the true positions of `mask`, null elsewhere."""
    return pc.replace_with_mask(pa.nulls(length, values.type), mask, values)


def _iso_utc(texts: pa.StringArray, zone: tzinfo) -> pa.Int64Array:
    """UTC microseconds of the ISO cells a fast path can read; null for the others."""
    shaped = pc.match_substring_regex(texts, _ISO)
    if shaped.true_count < len(texts):
        return _scatter(shaped, _iso_utc(texts.filter(shaped), zone), len(texts))
    # every cell has the shape now: ASCII, so bytes are characters
    raw = texts.cast(pa.binary())
    leap_day = pc.equal(pc.binary_slice(raw, 4, 10), b"-02-29")
    if leap_day.true_count:
        year = pc.cast(pc.utf8_slice_codeunits(texts, 0, 4), pa.int64())
        real = pc.or_(pc.invert(leap_day), is_leap(year))
        if real.true_count < len(texts):
            return _scatter(real, _iso_utc(texts.filter(real), zone), len(texts))
    sign = pc.binary_slice(raw, -6, -5)
    aware = pc.or_(
        pc.ends_with(texts, "Z"),
        pc.and_(
            pc.or_(pc.equal(sign, b"+"), pc.equal(sign, b"-")),
            pc.greater(pc.binary_length(raw), 10),
        ),
    )
    if aware.true_count == len(texts):
        return pc.cast(pc.cast(texts, pa.timestamp("us", "UTC")), pa.int64())
    if not aware.true_count:
        return utc_from_wall(pc.cast(pc.cast(texts, pa.timestamp("us")), pa.int64()), zone)
    naive = pc.invert(aware)
    return pc.coalesce(
        _scatter(aware, _iso_utc(texts.filter(aware), zone), len(texts)),
        _scatter(naive, _iso_utc(texts.filter(naive), zone), len(texts)),
    )


class _Fields:
    """The cells that match a numeric strftime pattern, and their fields as numbers."""

    def __init__(self, texts: pa.StringArray, regex: str) -> None:
        fields = pc.extract_regex(texts, regex)
        self.shaped = fields.is_valid()
        self._found = fields.filter(self.shaped)
        self._names = {self._found.type.field(i).name for i in range(self._found.type.num_fields)}
        if "Y" in self._names:
            self.year = self.number("Y", 0)
        else:
            short = self.number("y", 0)
            self.year = pc.add(short, pc.if_else(pc.less(short, 69), 2000, 1900))
        self.month, self.day = self.number("m", 1), self.number("d", 1)
        self.real = pc.and_(
            pc.greater_equal(self.year, 1000), valid_day(self.year, self.month, self.day)
        )
        """Matched cells whose day exists, in years 1000-9999."""

    def __len__(self) -> int:
        return len(self._found)

    def number(self, name: str, default: int) -> pa.Int64Array:
        if name not in self._names:
            return pa.array([default] * len(self._found), pa.int64())
        return pc.cast(pc.utf8_trim(self._found.field(name), characters=" "), pa.int64())


def _pattern_utc(texts: pa.StringArray, regex: str, zone: tzinfo) -> pa.Int64Array:
    """UTC microseconds of the cells matching a numeric strftime pattern; null for the others."""
    found = _Fields(texts, regex)
    real = found.real
    days = days_from_civil(
        found.year.filter(real), found.month.filter(real), found.day.filter(real)
    )
    walls = wall_micros(
        days,
        found.number("H", 0).filter(real),
        found.number("M", 0).filter(real),
        found.number("S", 0).filter(real),
    )
    utc = _scatter(real, utc_from_wall(walls, zone), len(found))
    return _scatter(found.shaped, utc, len(texts))


def _padded(numbers: pa.Int64Array, width: int) -> pa.StringArray:
    return pc.utf8_lpad(pc.cast(numbers, pa.string()), width=width, padding="0")


def _pattern_days(texts: pa.StringArray, regex: str) -> pa.StringArray:
    """`YYYY-MM-DD` of the cells matching a pattern of date fields; null for the others."""
    found = _Fields(texts, regex)
    real = found.real
    text = pc.binary_join_element_wise(
        _padded(found.year.filter(real), 4),
        _padded(found.month.filter(real), 2),
        _padded(found.day.filter(real), 2),
        "-",
    )
    return _scatter(found.shaped, _scatter(real, text, len(found)), len(texts))


_FIXED_WIDTHS = {"Y": 4, "m": 2, "d": 2}


def _fixed_fields(pattern: str) -> tuple[str, dict[str, int]] | None:
    """For a pattern of `%Y`, `%m` and `%d` once each, between punctuation (`%d-%m-%Y`,
    `%m/%d/%Y`, `%Y%m%d`): the RE2 of its zero-padded form and where each field starts.
    None for any other pattern (a space matches any run of whitespace in Python's
    parser, a letter either case: those keep the fields' regular expression)."""
    shape, starts, at, i = "^", {}, 0, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "%":
            field = pattern[i + 1 : i + 2]
            if field not in _FIXED_WIDTHS or field in starts:
                return None
            starts[field] = at
            shape += f"[0-9]{{{_FIXED_WIDTHS[field]}}}"
            at += _FIXED_WIDTHS[field]
            i += 2
        elif char.isascii() and not char.isalnum() and not char.isspace():
            shape += re.escape(char)
            at += 1
            i += 1
        else:
            return None
    return (shape + "$", starts) if len(starts) == len(_FIXED_WIDTHS) else None


def _fixed_days(
    texts: pa.StringArray, fixed: tuple[str, dict[str, int]], regex: str
) -> pa.StringArray:
    """`_pattern_days` where the cells are written zero-padded (most files): each field is
    cut at its place and already is its canonical text; the other cells (`5-3-2024`) take
    the fields' regular expression. 960,000 of the bench's birth dates in pieces of
    12,000: 0.18 s against `_pattern_days`' 0.63 s (RE2 extracting three groups)."""
    shape, starts = fixed
    padded = pc.match_substring_regex(texts, shape)
    if padded.true_count < len(texts):
        others = pc.invert(padded)
        return pc.coalesce(
            _scatter(padded, _fixed_days(texts.filter(padded), fixed, regex), len(texts)),
            _scatter(others, _pattern_days(texts.filter(others), regex), len(texts)),
        )
    fields = {
        name: pc.utf8_slice_codeunits(texts, at, at + _FIXED_WIDTHS[name])
        for name, at in starts.items()
    }
    year, month, day = (pc.cast(fields[name], pa.int64()) for name in "Ymd")
    # the shape admits any two digits; `valid_day` takes months 1-12 and days 1-31 only
    shaped = pc.and_(_between(month, 1, 12), _between(day, 1, 31))
    month, day = pc.if_else(shaped, month, 1), pc.if_else(shaped, day, 1)
    real = pc.and_(pc.and_(shaped, pc.greater_equal(year, 1000)), valid_day(year, month, day))
    text = pc.binary_join_element_wise(fields["Y"], fields["m"], fields["d"], "-")
    return pc.if_else(real, text, _NO_TEXT)


def _between(numbers: pa.Int64Array, low: int, high: int) -> pa.BooleanArray:
    return pc.and_(pc.greater_equal(numbers, low), pc.less_equal(numbers, high))


def _iso_days(texts: pa.StringArray) -> pa.StringArray:
    """The ISO `YYYY-MM-DD` cells whose day exists, as they are; null for the others."""
    shaped = pc.match_substring_regex(texts, _ISO_DAY)
    if shaped.true_count < len(texts):
        return _scatter(shaped, _iso_days(texts.filter(shaped)), len(texts))
    leap_day = pc.ends_with(texts, "-02-29")
    if not leap_day.true_count:
        return texts
    year = pc.cast(pc.utf8_slice_codeunits(texts, 0, 4), pa.int64())
    return pc.if_else(pc.or_(pc.invert(leap_day), is_leap(year)), texts, _NO_TEXT)


def convert_dates(
    pieces: pa.StringArray, date_format: str, convert: Callable[[str], str]
) -> Converted:
    """Canonical `YYYY-MM-DD` per piece, or its rejection, as `convert` gives."""
    if date_format == "iso8601":
        fast = _iso_days(pieces)
    else:
        regex = strftime_regex(date_format, _DAY_DIRECTIVES)
        if regex is None:
            return convert_distinct(pieces, convert)
        fixed = _fixed_fields(date_format)
        fast = _pattern_days(pieces, regex) if fixed is None else _fixed_days(pieces, fixed, regex)
    return convert_rest(fast, fast.is_valid(), pieces, convert)


def convert_datetimes(
    pieces: pa.StringArray, date_format: str, zone: tzinfo, convert: Callable[[str], str]
) -> Converted:
    """Canonical UTC date-time text per piece, or its rejection, as `convert` gives."""
    if date_format == "iso8601":
        utc = _iso_utc(pieces, zone)
    else:
        regex = strftime_regex(date_format)
        if regex is None:
            return convert_distinct(pieces, convert)
        utc = _pattern_utc(pieces, regex, zone)
    done = pc.fill_null(in_range(utc), False)
    fast = canonical_text(pc.if_else(done, utc, pa.scalar(None, pa.int64())))
    return convert_rest(fast, done, pieces, convert)
