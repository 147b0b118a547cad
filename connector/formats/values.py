"""Conversions from a cell's text to the canonical string the profile store keeps.

Canonical forms, chosen so that stored values compare and sum without knowing
the file they came from:

    number    plain decimal text with "." and the scale as written ("12,50" -> "12.50")
    date      YYYY-MM-DD
    datetime  ISO 8601 in UTC with its offset ("2024-03-01T09:30:00+00:00")
    boolean   "true" / "false"
    text      unchanged

Converters receive non-empty cell text (the caller decides what an empty cell
means) and raise `ConversionError` with a reason written for the analyst.
They run once per cell on millions of rows, so date and date-time converters
memoise results in a bounded LRU cache and parse common strftime patterns with
a precompiled regular expression instead of `datetime.strptime`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import MAX_EMAX as _MAX_EMAX
from decimal import MAX_PREC as _MAX_PREC
from decimal import MIN_EMIN as _MIN_EMIN
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Literal

from dateutil.parser import isoparse

from connector.config.formats import ImportFormat, zone_of
from connector.formats.strftime import strftime_body

__all__ = [
    "CONVERTERS",
    "ConversionError",
    "Converter",
    "ValueType",
    "add_numbers",
    "make_converter",
]

ValueType = Literal["text", "number", "date", "datetime", "boolean"]

CACHE_SIZE = 65536
"""Distinct values memoised per date converter (a century of days fits)."""
DATETIME_CACHE_SIZE = 4096
"""Date-times rarely repeat (each row has its own moment): a small cache for the ones that do
(a file's export time, midnight), so memory does not fill with values never seen again."""

_SHOWN_CHARACTERS = 60

_EXACT = Context(prec=_MAX_PREC, Emax=_MAX_EMAX, Emin=_MIN_EMIN, traps=[Inexact, InvalidOperation])
_CANONICAL_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_DOT_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_LOOKS_GROUPED = re.compile(r"[0-9][., '\u00a0\u202f][0-9]{3}")


class ConversionError(ValueError):
    """A cell's text does not fit the mapping's type; the message says why."""


def _show(text: str) -> str:
    if len(text) > _SHOWN_CHARACTERS:
        text = text[:_SHOWN_CHARACTERS] + "..."
    return repr(text)


def _identity(value: str) -> str:
    return value


# ---------------------------------------------------------------- numbers


def _canonical_decimal(number: Decimal) -> str:
    if number.is_zero():
        number = number.copy_abs()
    return f"{number:f}"


def _number_converter(decimal_separator: str) -> Callable[[str], str]:
    separated = re.compile(
        r"[+-]?(?:[0-9]+(?:{sep}[0-9]*)?|{sep}[0-9]+)".format(sep=re.escape(decimal_separator))
    )

    def fail(value: str) -> ConversionError:
        reason = f"{_show(value)} is not a number (decimal separator {decimal_separator!r}"
        if _LOOKS_GROUPED.search(value):
            reason += "; write it without thousands separators"
        return ConversionError(reason + ")")

    def canonical(text: str) -> str:
        if _CANONICAL_NUMBER.fullmatch(text) and not (text[0] == "-" and not text.strip("-0.")):
            return text
        return _canonical_decimal(Decimal(text))

    def convert_dot(value: str) -> str:
        if _CANONICAL_NUMBER.fullmatch(value) and not (value[0] == "-" and not value.strip("-0.")):
            return value
        text = value.strip()
        if not _DOT_NUMBER.fullmatch(text):
            raise fail(value)
        return _canonical_decimal(Decimal(text))

    def convert_separated(value: str) -> str:
        if "." not in value:
            # the common case in one regex: "12,50" is canonical once the separator is a dot
            dotted = value.replace(decimal_separator, ".")
            if _CANONICAL_NUMBER.fullmatch(dotted) and dotted[0] != "-":
                return dotted
        text = value.strip()
        if not separated.fullmatch(text):
            raise fail(value)
        return canonical(text.replace(decimal_separator, "."))

    return convert_dot if decimal_separator == "." else convert_separated


def add_numbers(a: str, b: str) -> str:
    """Exact decimal sum of two canonical numbers, keeping the larger scale.

    `"12.50" + "3.10"` is `"15.60"`: no binary floating point and no rounding,
    so repeated *sum* imports stay exact. An empty operand counts as 0, as the
    *sum* rule defines; anything else that is not a number raises
    `ConversionError`.
    """
    return _canonical_decimal(_EXACT.add(_parse_canonical(a), _parse_canonical(b)))


def _parse_canonical(value: str) -> Decimal:
    text = value.strip()
    if not text:
        return Decimal(0)
    if not _DOT_NUMBER.fullmatch(text):
        raise ConversionError(f"{_show(value)} is not a number")
    return Decimal(text)


# ---------------------------------------------------------------- dates


@functools.lru_cache(maxsize=64)
def _compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """A regex matching what strptime accepts for a numeric pattern, None for the others.

    Patterns with any other directive (month names, %j, %z, ...) use strptime.
    """
    found = strftime_body(pattern, re.escape)
    return None if found is None else re.compile(found[0], re.IGNORECASE)


def _parse_with(pattern: str) -> Callable[[str], datetime | None]:
    """A parser for one strftime pattern returning a (possibly aware) datetime or None."""
    regex = _compile_pattern(pattern)
    if regex is None:

        def strptime(text: str) -> datetime | None:
            try:
                return datetime.strptime(text, pattern)
            except (ValueError, re.error):
                return None

        return strptime

    def fast(text: str) -> datetime | None:
        match = regex.fullmatch(text)
        if match is None:
            return None
        fields = match.groupdict()
        if fields.get("Y") is not None:
            year = int(fields["Y"])
        elif fields.get("y") is not None:
            short = int(fields["y"])
            year = short + (2000 if short < 69 else 1900)
        else:
            year = 1900
        try:
            return datetime(
                year,
                int(fields.get("m") or 1),
                int(fields.get("d") or 1),
                int(fields.get("H") or 0),
                int(fields.get("M") or 0),
                int(fields.get("S") or 0),
            )
        except ValueError:
            return None

    return fast


def _parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return isoparse(text)
    except (ValueError, OverflowError):
        return None


def _reader(date_format: str, example: str) -> tuple[Callable[[str], datetime | None], str]:
    """The parser of `date_format`, and the form a rejection says it expected."""
    if date_format == "iso8601":
        return _parse_iso, f"ISO 8601, e.g. {example}"
    return _parse_with(date_format), date_format


def _date_converter(date_format: str, zone: tzinfo) -> Callable[[str], str]:
    parse, expected = _reader(date_format, "2024-03-01")

    @functools.lru_cache(maxsize=CACHE_SIZE)
    def convert(value: str) -> str:
        text = value.strip()
        if date_format == "iso8601":
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError:
                pass
        moment = parse(text)
        if moment is None:
            raise ConversionError(f"{_show(value)} is not a valid date (expected {expected})")
        if moment.tzinfo is not None:
            try:
                moment = moment.astimezone(zone)
            except OverflowError:
                raise ConversionError(f"{_show(value)} is out of range") from None
        return moment.date().isoformat()

    return convert


def _datetime_converter(date_format: str, zone: tzinfo) -> Callable[[str], str]:
    parse, expected = _reader(date_format, "2024-03-01T09:30:00")

    @functools.lru_cache(maxsize=DATETIME_CACHE_SIZE)
    def convert(value: str) -> str:
        moment = parse(value.strip())
        if moment is None:
            raise ConversionError(f"{_show(value)} is not a valid date-time (expected {expected})")
        try:
            if moment.tzinfo is not None:
                return moment.astimezone(UTC).isoformat()
            offset = zone.utcoffset(moment)
            if offset != zone.utcoffset(moment.replace(fold=1)):
                raise ConversionError(_daylight_saving_reason(value, moment, zone))
            if offset:
                moment -= offset
        except OverflowError:
            raise ConversionError(f"{_show(value)} is out of range") from None
        return moment.isoformat() + "+00:00"

    return convert


def _daylight_saving_reason(value: str, moment: datetime, zone: tzinfo) -> str:
    """Why a naive wall-clock time in a daylight-saving change is rejected, naming the zone.

    Policy: never guess. A time in the gap does not exist; a time in the overlap
    happens twice, and picking either occurrence could move an event by an hour.
    """
    before = zone.utcoffset(moment) or timedelta(0)
    after = zone.utcoffset(moment.replace(fold=1)) or timedelta(0)
    if after > before:
        return (
            f"{_show(value)} does not exist in time zone {zone} (the clocks go forward "
            "at that moment); write it with its UTC offset or fix the time"
        )
    return (
        f"{_show(value)} happens twice in time zone {zone} (the clocks go back at that "
        f"moment); write it with its UTC offset ({_offset_text(before)} for the first, "
        f"{_offset_text(after)} for the second)"
    )


def _offset_text(offset: timedelta) -> str:
    minutes = offset // timedelta(minutes=1)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# ---------------------------------------------------------------- booleans


def _boolean_converter(true_values: list[str], false_values: list[str]) -> Callable[[str], str]:
    lookup: dict[str, str] = {}
    for spellings, canonical in ((false_values, "false"), (true_values, "true")):
        for spelling in spellings:
            key = spelling.strip().casefold()
            if lookup.get(key, canonical) != canonical:
                raise ValueError(f"{spelling!r} is listed in both true_values and false_values")
            lookup[key] = canonical
    fast = dict(lookup)
    for key, canonical in lookup.items():
        for variant in (key.upper(), key.capitalize()):
            fast.setdefault(variant, canonical)
    expected = f"one of {', '.join(true_values)} or {', '.join(false_values)}"

    def convert(value: str) -> str:
        result = fast.get(value) or lookup.get(value.strip().casefold())
        if result is None:
            raise ConversionError(f"{_show(value)} is not a boolean (expected {expected})")
        return result

    return convert


# ---------------------------------------------------------------- entry point


Converter = Callable[[str], str]

CONVERTERS: dict[ValueType, Callable[[ImportFormat], Converter]] = {
    "text": lambda _fmt: _identity,
    "number": lambda fmt: _number_converter(fmt.decimal_separator),
    "date": lambda fmt: _date_converter(fmt.date_format, zone_of(fmt.timezone)),
    "datetime": lambda fmt: _datetime_converter(fmt.date_format, zone_of(fmt.timezone)),
    "boolean": lambda fmt: _boolean_converter(fmt.true_values, fmt.false_values),
}
"""Each value type -> the factory of its per-cell converter, from the file's format.

Adding a type: its converter in this module, one line here, and its name in `ValueType`
(a test checks the two agree)."""


def make_converter(value_type: ValueType, fmt: ImportFormat) -> Converter:
    """The function turning one non-empty cell of `value_type` into its canonical string.

    Build it once per mapping and call it per cell. Naive date-times are read in
    `fmt.timezone`; one that does not exist or happens twice there (a
    daylight-saving change) is rejected with the reason. Dates written with an
    offset are taken in that zone too.
    Raises ValueError at once if a spelling is both a true and a false value.
    """
    factory = CONVERTERS.get(value_type)
    if factory is None:
        raise ValueError(f"unknown value type {value_type!r}")
    return factory(fmt)
