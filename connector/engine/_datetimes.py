"""Date-times: the common forms vectorised, every other distinct value through today's converter.

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

__all__ = ["convert_datetimes", "strftime_regex"]

_ISO = (
    r"^[1-9][0-9]{3}-"
    r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
    r"|(?:0[13578]|1[02])-31|02-29)"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?)?$"
)
"""The ISO 8601 shapes taken here, with every day that can exist (29 February checked apart)."""


def _literal(char: str) -> str | None:
    """An RE2 literal that matches a subset of what Python's `re` does under IGNORECASE."""
    if not char.isascii():
        return None
    return f"[{char.lower()}{char.upper()}]" if char.isalpha() else re.escape(char)


def strftime_regex(pattern: str) -> str | None:
    """RE2 for a numeric strftime pattern, or None when only the converter can read it."""
    found = strftime_body(pattern, _literal)
    if found is None:
        return None
    body, used = found
    if not used & {"Y", "y"}:
        return None  # year 1900 only: rare, and left to the converter
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


def _pattern_utc(texts: pa.StringArray, regex: str, zone: tzinfo) -> pa.Int64Array:
    """UTC microseconds of the cells matching a numeric strftime pattern; null for the others."""
    fields = pc.extract_regex(texts, regex)
    shaped = fields.is_valid()
    found = fields.filter(shaped)
    names = {found.type.field(i).name for i in range(found.type.num_fields)}

    def number(name: str, default: int) -> pa.Int64Array:
        if name not in names:
            return pa.array([default] * len(found), pa.int64())
        return pc.cast(pc.utf8_trim(found.field(name), characters=" "), pa.int64())

    if "Y" in names:
        year = number("Y", 0)
    else:
        short = number("y", 0)
        year = pc.add(short, pc.if_else(pc.less(short, 69), 2000, 1900))
    month, day = number("m", 1), number("d", 1)
    real = pc.and_(pc.greater_equal(year, 1000), valid_day(year, month, day))
    days = days_from_civil(year.filter(real), month.filter(real), day.filter(real))
    walls = wall_micros(
        days, number("H", 0).filter(real), number("M", 0).filter(real), number("S", 0).filter(real)
    )
    utc = _scatter(real, utc_from_wall(walls, zone), len(found))
    return _scatter(shaped, utc, len(texts))


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
