"""Sniffing a column's date or date-time format from its sampled values.

The import's own converters (`make_converter`) decide: a format is drafted
only when every sampled value converts under it, and where the sample leaves
a choice open (`01-02-2024`: day or month first?) the guess says so instead
of guessing quietly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from connector.config.formats import ImportFormat
from connector.formats._sniff_dialect import EXAMPLES
from connector.formats.values import ConversionError, ValueType, make_converter

__all__ = [
    "DATE_CANDIDATES",
    "DATE_SHAPE",
    "ISO_DATETIME",
    "DateGuess",
    "converts_all",
    "detect_date_format",
]

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
ISO_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}.*)?")
DATE_SHAPE = re.compile(
    r"([0-9]{1,4})([-/.])([0-9]{1,2})\2([0-9]{1,4})( [0-9]{1,2}:[0-9]{2}(:[0-9]{2})?)?"
)
_DATE_ORDERS = (
    ("%d", "%m", "%Y"),
    ("%m", "%d", "%Y"),
    ("%Y", "%m", "%d"),
    ("%d", "%m", "%y"),
    ("%m", "%d", "%y"),
)
"""In order of preference when the sample cannot tell them apart: day first before month first."""
_TIMES = ("", " %H:%M", " %H:%M:%S")
DATE_CANDIDATES: tuple[tuple[ValueType, str], ...] = (
    ("date", "iso8601"),
    ("datetime", "iso8601"),
    *(
        ("datetime" if time else "date", separator.join(order) + time)
        for separator in "-/."
        for order in _DATE_ORDERS
        for time in _TIMES
    ),
)


@dataclass(frozen=True, slots=True)
class DateGuess:
    """A column's date or date-time format; `ambiguous` when another format reads every value."""

    value_type: ValueType
    date_format: str
    evidence: str
    ambiguous: bool = False


def detect_date_format(values: Sequence[str]) -> DateGuess | None:
    """The date or date-time format every value reads with, or None if none does.

    ISO 8601 first; then strftime patterns. When several patterns read every
    value (`01-02-2024` as day-month or month-day), the first in order of
    preference wins and the guess is marked ambiguous with examples.
    """
    if not values:
        return None
    if all(_ISO_DATE.fullmatch(v) for v in values) and _converts(values, "date", "iso8601"):
        return DateGuess("date", "iso8601", f"ISO 8601 dates (e.g. {values[0]})")
    if all(ISO_DATETIME.fullmatch(v) for v in values) and _converts(values, "datetime", "iso8601"):
        example = next((v for v in values if len(v) > 10), values[0])
        return DateGuess("datetime", "iso8601", f"ISO 8601 date-times (e.g. {example})")
    shapes = [DATE_SHAPE.fullmatch(v) for v in values]
    if not all(shapes):
        return None
    separators = {shape.group(2) for shape in shapes if shape}
    if len(separators) != 1:
        return None
    [separator] = separators
    has_time = [shape.group(5) is not None for shape in shapes if shape]
    if any(has_time) and not all(has_time):
        return None
    seconds = any(shape.group(6) for shape in shapes if shape)
    time = (" %H:%M:%S" if seconds else " %H:%M") if has_time[0] else ""
    value_type: ValueType = "datetime" if time else "date"
    fits = [
        pattern
        for order in _DATE_ORDERS
        if _converts(values, value_type, pattern := separator.join(order) + time)
    ]
    if not fits:
        return None
    chosen = fits[0]
    if len(fits) == 1:
        return DateGuess(value_type, chosen, _why_only(values, chosen))
    examples = ", ".join(list(dict.fromkeys(values))[:EXAMPLES])
    others = " and ".join(fits[1:])
    evidence = (
        f"AMBIGUOUS: every value reads as {chosen} and as {others} (e.g. {examples}); "
        f"{_preference(chosen)} chosen"
    )
    return DateGuess(value_type, chosen, evidence, ambiguous=True)


def _preference(pattern: str) -> str:
    if pattern.startswith("%d"):
        return "day first"
    if pattern.startswith("%m"):
        return "month first"
    return "year first"


def _why_only(values: Sequence[str], pattern: str) -> str:
    """Name a value that only `pattern` reads, or say the pattern is the only candidate."""
    for value in values:
        shape = DATE_SHAPE.fullmatch(value)
        if shape is None:
            continue
        first, middle = int(shape.group(1)), int(shape.group(3))
        if pattern.startswith("%d") and first > 12:
            return f"{value} has {first} first, so day first"
        if pattern.startswith("%m") and middle > 12:
            return f"{value} has {middle} second, so month first"
    return f"every value reads as {pattern} (e.g. {values[0]})"


def _converts(values: Sequence[str], value_type: ValueType, date_format: str) -> bool:
    return converts_all(values, make_converter(value_type, ImportFormat(date_format=date_format)))


def converts_all(values: Sequence[str], convert: Callable[[str], str]) -> bool:
    """Whether `convert` takes every value without a ConversionError."""
    try:
        for value in values:
            convert(value)
    except ConversionError:
        return False
    return True
