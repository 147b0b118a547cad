"""Sniffing what each column of a sample is: header, identifier, separators, type.

Works on the records `_sniff_dialect` read, one list of values per column.
Types are decided by running the import's own converters (`make_converter`)
over every sampled value, split on the chosen multi-value separator as the
import splits them: whatever type is drafted, the sample converts under it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from connector.config.formats import ImportFormat
from connector.formats._sniff_dates import (
    DATE_CANDIDATES,
    DATE_SHAPE,
    ISO_DATETIME,
    converts_all,
    detect_date_format,
)
from connector.formats._sniff_dialect import EXAMPLES, Finding
from connector.formats.values import ValueType, make_converter

__all__ = [
    "SPARE_LIST_SEPARATORS",
    "ColumnGuess",
    "detect_decimal_separator",
    "detect_header",
    "detect_identifier",
    "detect_multi_value_separator",
    "guess_column",
    "is_atomic",
    "snake_case",
]

LIST_SEPARATORS = ("|", ";", ",", "/", "+")
SPARE_LIST_SEPARATORS = ("|", "/", "+", "#", "~", "^")
_MOSTLY = 0.8
"""The share of values of one type that earns a column a note saying which ones are not."""
_LONGEST_LIST_ITEM = 60

_ID_NAME = re.compile(r"(^|_)(id|key|uuid|guid)$")
_NUMBER_NAME = re.compile(r"(^|_)(code|number|nr|no|nummer|ref)$")
_EMAIL_NAME = re.compile(r"(^|_)e_?mail(_address)?$")
_AMOUNT_NAME = re.compile(
    r"(amount|total|spent|spend|price|revenue|value|points|sum|cost|paid|balance|sales|turnover"
    r"|bedrag|betrag|montant)"
)
_DOT_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_COMMA_NUMBER = re.compile(r"-?[0-9]+(,[0-9]+)?")
_LEADING_ZERO = re.compile(r"-?0[0-9]")
_NEAR_MISS_VALUES = 2000


@dataclass(slots=True)
class ColumnGuess:
    """One column: its name, type, and what the sample showed about it."""

    name: str
    value_type: ValueType = "text"
    date_format: str | None = None
    notes: list[str] = field(default_factory=list)
    multi_valued: bool = False
    amount: bool = False
    ambiguous: bool = False


# ---------------------------------------------------------------- header and identifier


def detect_header(first: Sequence[str], rows: Sequence[Sequence[str]]) -> Finding:
    """Whether the first record names the columns: distinct non-empty texts, none a number or date."""
    names = [cell.strip() for cell in first]
    if any(not name for name in names):
        return Finding("false", "the first record has empty fields, so it does not name columns")
    if len(set(names)) != len(names):
        return Finding("false", "the first record repeats a value, so it does not name columns")
    for name in names:
        if (
            _DOT_NUMBER.fullmatch(name)
            or _COMMA_NUMBER.fullmatch(name)
            or DATE_SHAPE.fullmatch(name)
            or ISO_DATETIME.fullmatch(name)
        ):
            return Finding("false", f"the first record holds {name!r}, a number or date")
    repeated = [
        name
        for position, name in enumerate(names)
        if any(position < len(row) and row[position].strip() == name for row in rows)
    ]
    if rows and len(repeated) == len(names):
        return Finding("false", "every value of the first record appears again below it")
    return Finding("true", "the first record holds distinct names, none a number or date")


def detect_identifier(
    columns: Sequence[str], values: Sequence[Sequence[str]]
) -> tuple[int | None, str]:
    """The likely identifier column: unique and never empty in the sample, id-like name first."""
    candidates: list[tuple[int, int, str]] = []
    for index, (name, column) in enumerate(zip(columns, values, strict=True)):
        keys = [value.strip() for value in column]
        if not keys or not all(keys) or len(set(keys)) != len(keys):
            continue
        snake = snake_case(name)
        if _ID_NAME.search(snake):
            rank, why = 0, "an id-like name"
        elif _NUMBER_NAME.search(snake):
            rank, why = 1, "a number-like name"
        elif _EMAIL_NAME.search(snake):
            rank, why = 2, "an e-mail name"
        else:
            rank, why = 3, "the first such column"
        candidates.append((rank, index, why))
    if not candidates:
        return None, "no column is unique and non-empty on every sampled row"
    rank, index, why = min(candidates)
    rows = len(values[index])
    return index, f"unique and non-empty on all {rows:,} sampled rows, {why}"


def snake_case(name: str) -> str:
    """A property name from a column name: `First Name` and `firstName` both become first_name."""
    ascii_name = unicodedata.normalize("NFKD", name.strip().replace("ß", "ss"))
    ascii_name = ascii_name.encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", ascii_name)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"[^0-9a-zA-Z]+", "_", text.lower()).strip("_")
    if not text:
        return "column"
    return f"c_{text}" if text[0].isdigit() else text


# ---------------------------------------------------------------- numbers and lists


def detect_decimal_separator(
    columns: Sequence[Sequence[str]], names: Sequence[str], field_separator: str
) -> Finding:
    """`,` when number-like columns use decimal commas (and commas do not separate fields)."""
    comma: list[str] = []
    dot: list[str] = []
    for name, column in zip(names, columns, strict=True):
        values = [value.strip() for value in column if value.strip()]
        if not values:
            continue
        if all(_COMMA_NUMBER.fullmatch(v) for v in values):
            with_comma = next((v for v in values if "," in v), None)
            if with_comma is not None:
                comma.append(f"{name} (e.g. {with_comma})")
        if all(_DOT_NUMBER.fullmatch(v) for v in values):
            with_dot = next((v for v in values if "." in v), None)
            if with_dot is not None:
                dot.append(f"{name} (e.g. {with_dot})")
    if comma and len(comma) >= len(dot) and field_separator != ",":
        return Finding(",", f"decimal commas in {', '.join(comma[:EXAMPLES])}")
    if dot:
        return Finding(".", f"decimal points in {', '.join(dot[:EXAMPLES])}")
    return Finding(".", "no decimal fractions in the sample; . is the default")


def detect_multi_value_separator(
    columns: Sequence[Sequence[str]],
    names: Sequence[str],
    reserved: set[str],
    atomic: Sequence[bool],
) -> Finding:
    """The character that separates values in list-like text cells (`a|b|c`).

    `atomic[i]` marks columns that hold one number or date a cell: a
    candidate found in them is refused, since splitting would break their
    values (`/` in `01/02/2024`). Without lists, the first spare character
    that no cell contains is chosen, so nothing is split by accident.
    """
    refused: set[str] = set()
    evidence: dict[str, list[str]] = {}
    for name, column, single in zip(names, columns, atomic, strict=True):
        for candidate in LIST_SEPARATORS:
            if candidate in reserved:
                continue
            cells = [value for value in column if candidate in value]
            if not cells:
                continue
            if single:
                refused.add(candidate)
                continue
            lists = [value for value in cells if _looks_like_list(value, candidate)]
            if len(lists) >= 2 and len(lists) * 2 >= len(cells):
                evidence.setdefault(candidate, []).append(f"{name} (e.g. {lists[0]})")
    for candidate in LIST_SEPARATORS:
        if candidate in evidence and candidate not in refused:
            return Finding(candidate, f"lists in {', '.join(evidence[candidate][:EXAMPLES])}")
    every = "".join(value for column in columns for value in column)
    for candidate in SPARE_LIST_SEPARATORS:
        if candidate not in reserved and candidate not in every:
            return Finding(candidate, f"no lists in the sample; no cell holds {candidate!r}")
    spare = next(c for c in SPARE_LIST_SEPARATORS if c not in reserved)
    return Finding(spare, "no lists in the sample")


def _looks_like_list(value: str, separator: str) -> bool:
    pieces = [piece.strip() for piece in value.split(separator)]
    return (
        len(pieces) >= 2
        and all(pieces)
        and all(len(piece) <= _LONGEST_LIST_ITEM for piece in pieces)
        and f" {separator}" not in value
    )


# ---------------------------------------------------------------- column types


def _pieces(column: Sequence[str], separator: str) -> list[str]:
    """Non-empty values as the import sees them: split on the multi-value separator, stripped."""
    found: list[str] = []
    for cell in column:
        if not cell.strip():
            continue
        if separator in cell:
            found.extend(piece.strip() for piece in cell.split(separator) if piece.strip())
        else:
            found.append(cell.strip())
    return found


def guess_column(
    name: str, column: Sequence[str], fmt: ImportFormat, *, split: str | None
) -> ColumnGuess:
    """The column's type: boolean, number, date, date-time, else text; every value converts."""
    guess = ColumnGuess(name)
    values = _pieces(column, split) if split else [c.strip() for c in column if c.strip()]
    if split and any(split in cell for cell in column):
        guess.multi_valued = True
        guess.notes.append(f"multi-valued (split on {split!r}): consider rule add")
    if not values:
        guess.notes.append("empty in the sample")
        return guess
    spellings = {s.casefold() for s in (*fmt.true_values, *fmt.false_values)}
    if all(v.casefold() in spellings for v in values) and not all(v.isdigit() for v in values):
        guess.value_type = "boolean"
        return guess
    number_shape = _COMMA_NUMBER if fmt.decimal_separator == "," else _DOT_NUMBER
    if all(number_shape.fullmatch(v) for v in values) and converts_all(
        values, make_converter("number", fmt)
    ):
        if any(_LEADING_ZERO.match(v) for v in values):
            guess.notes.append("digits with leading zeros: kept as text so no zero is lost")
            return guess
        guess.value_type = "number"
        if set(values) <= {"0", "1"}:
            guess.notes.append("only 0 and 1: type boolean if it is a flag")
            return guess
        fractions = [v for v in values if fmt.decimal_separator in v]
        if _AMOUNT_NAME.search(snake_case(name)) or (
            fractions and all(len(v.rpartition(fmt.decimal_separator)[2]) == 2 for v in fractions)
        ):
            guess.amount = True
            guess.notes.append("looks like an amount: a `sum` candidate")
        return guess
    date = detect_date_format(values)
    if date is not None:
        guess.value_type = date.value_type
        guess.date_format = date.date_format
        guess.ambiguous = date.ambiguous
        guess.notes.append(date.evidence)
        return guess
    note = _near_miss(values, fmt, number_shape)
    if note:
        guess.notes.append(note)
    return guess


def _near_miss(
    values: Sequence[str], fmt: ImportFormat, number_shape: re.Pattern[str]
) -> str | None:
    """Say so when most values are numbers or dates but some are not (the column stays text)."""
    convert = make_converter("number", fmt)
    numbers = [v for v in values if number_shape.fullmatch(v) and converts_all([v], convert)]
    if len(numbers) >= _MOSTLY * len(values):
        misses = _examples(v for v in values if v not in set(numbers))
        return f"{len(numbers)} of {len(values)} values are numbers, not {misses}: kept as text"
    dated = [v for v in values if DATE_SHAPE.fullmatch(v) or ISO_DATETIME.fullmatch(v)]
    if len(dated) < _MOSTLY * len(values):
        return None
    sample = values[:_NEAR_MISS_VALUES]
    best: tuple[int, ValueType, str] | None = None
    for value_type, pattern in DATE_CANDIDATES:
        convert = make_converter(value_type, fmt.model_copy(update={"date_format": pattern}))
        fits = sum(1 for v in sample if converts_all([v], convert))
        if best is None or fits > best[0]:
            best = (fits, value_type, pattern)
    if best is None or best[0] < _MOSTLY * len(sample):
        return None
    fits, value_type, pattern = best
    convert = make_converter(value_type, fmt.model_copy(update={"date_format": pattern}))
    misses = _examples(v for v in sample if not converts_all([v], convert))
    kind = "date-times" if value_type == "datetime" else "dates"
    return f"{fits} of {len(sample)} values are {kind} ({pattern}), not {misses}: kept as text"


def _examples(values: Iterable[str]) -> str:
    unique = list(dict.fromkeys(values))
    shown = ", ".join(repr(v) for v in unique[:EXAMPLES])
    return shown + (" ..." if len(unique) > EXAMPLES else "")


def is_atomic(column: Sequence[str], fmt: ImportFormat) -> bool:
    """Whether the whole cells are numbers or dates (so no list separator may split them)."""
    guess = guess_column("", column, fmt, split=None)
    return guess.value_type in ("number", "date", "datetime")
