"""Guessing a delimited file's dialect and column types from its first bytes.

Pure functions over a sample (bytes in, findings out) for `connector draft`.
Every finding carries its evidence as a sentence, so the drafted goal can say
why it chose what it chose, and where the sample left a choice open
(`01-02-2024`: day or month first?) it says so instead of guessing quietly.

Types are decided by running the import's own converters (`make_converter`)
over every sampled value, split on the chosen multi-value separator as the
import splits them: whatever type is drafted, the sample converts under it.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from connector.config.formats import ImportFormat
from connector.errors import FormatError
from connector.formats.values import ConversionError, ValueType, make_converter

__all__ = [
    "ColumnGuess",
    "DateGuess",
    "Finding",
    "SniffResult",
    "decode_sample",
    "detect_date_format",
    "detect_decimal_separator",
    "detect_dialect",
    "detect_encoding",
    "detect_header",
    "detect_identifier",
    "detect_multi_value_separator",
    "detect_quote_char",
    "read_records",
    "snake_case",
    "sniff",
]

FIELD_SEPARATORS = (",", ";", "\t", "|", ":")
LIST_SEPARATORS = ("|", ";", ",", "/", "+")
SPARE_LIST_SEPARATORS = ("|", "/", "+", "#", "~", "^")
DIALECT_RECORDS = 500
"""Records parsed per candidate separator when choosing one."""
_EXAMPLES = 3
_QUOTE_SAMPLE = 64 << 10
"""Characters searched for quoted fields."""
_MOSTLY = 0.8
"""The share of values of one type that earns a column a note saying which ones are not."""
_LONGEST_LIST_ITEM = 60

_BOMS = (
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32 little-endian"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32 big-endian"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16 little-endian"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16 big-endian"),
)
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
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}.*)?")
_DATE_SHAPE = re.compile(
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
_DATE_CANDIDATES: tuple[tuple[ValueType, str], ...] = (
    ("date", "iso8601"),
    ("datetime", "iso8601"),
    *(
        ("datetime" if time else "date", separator.join(order) + time)
        for separator in "-/."
        for order in _DATE_ORDERS
        for time in _TIMES
    ),
)
_NEAR_MISS_VALUES = 2000
_EXCEL_SEPARATOR = re.compile(r"sep=.\r?\n", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Finding:
    """A detected setting and the sentence that justifies it."""

    value: str
    evidence: str


@dataclass(frozen=True, slots=True)
class DateGuess:
    """A column's date or date-time format; `ambiguous` when another format reads every value."""

    value_type: ValueType
    date_format: str
    evidence: str
    ambiguous: bool = False


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


@dataclass(slots=True)
class SniffResult:
    """Everything `sniff` learned: the dialect, the columns and the likely identifier."""

    encoding: Finding
    field_separator: Finding
    quote_char: Finding
    header: Finding
    decimal_separator: Finding
    multi_value_separator: Finding
    date_format: Finding
    columns: list[ColumnGuess]
    identifier: int | None
    identifier_evidence: str
    records: int
    ragged: list[int]
    """Data records (1-based among the sampled ones) whose field count differs from the header's."""
    warnings: list[str] = field(default_factory=list)
    """What the import will trip over in this file, for the analyst to look at."""

    @property
    def has_header(self) -> bool:
        return self.header.value == "true"


# ---------------------------------------------------------------- bytes -> text


def detect_encoding(head: bytes) -> Finding:
    """UTF-8/16/32 by byte-order mark, then UTF-8 if it decodes, else Windows-1252 or Latin-1."""
    for bom, encoding, label in _BOMS:
        if head.startswith(bom):
            return Finding(encoding, f"a {label} byte-order mark starts the file")
    if head[:200].count(b"\x00") > len(head[:200]) // 4:
        even = head[0:200:2].count(b"\x00")
        odd = head[1:200:2].count(b"\x00")
        encoding = "utf-16-le" if odd > even else "utf-16-be"
        return Finding(encoding, "every other byte is zero and there is no byte-order mark")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as error:
        bad = head[error.start : error.start + 1].hex()
        if any(0x80 <= byte <= 0x9F for byte in head) and _decodes(head, "cp1252"):
            return Finding(
                "cp1252",
                f"not UTF-8 (byte 0x{bad} at offset {error.start}); bytes 0x80-0x9f are "
                "Windows-1252 punctuation",
            )
        return Finding("latin-1", f"not UTF-8 (byte 0x{bad} at offset {error.start})")
    if max(head, default=0) < 0x80:
        return Finding("utf-8", "plain ASCII (UTF-8 reads it)")
    return Finding("utf-8", "the sample is valid UTF-8 with non-ASCII characters")


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def decode_sample(head: bytes, encoding: str, *, truncated: bool) -> str:
    """The sample's text without a byte-order mark; a cut-off character at the end is dropped."""
    name = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    decoder = codecs.getincrementaldecoder(name)(errors="replace")
    text = decoder.decode(head, final=not truncated)
    return text.removeprefix("\ufeff")


# ---------------------------------------------------------------- text -> records


def read_records(
    text: str,
    separator: str,
    quote_char: str,
    *,
    truncated: bool,
    limit: int | None = None,
    problems: list[str] | None = None,
) -> list[list[str]]:
    """The sample's records, blank lines left out, as the import's csv settings read them.

    A truncated sample loses its last record (it may be cut in the middle).
    A record the csv module cannot read is left out and parsing goes on, as
    the import rejects that record and goes on; its csv error is added to
    `problems` when given.
    """
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=separator,
        quotechar=quote_char,
        doublequote=True,
        strict=True,
    )
    records: list[list[str]] = []
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, len(text) + 1))
    last_ok = False
    try:
        while limit is None or len(records) < limit:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                last_ok = False  # a malformed record is left out; the reader goes on after it
                if problems is not None and not (truncated and "end of data" in str(error)):
                    problems.append(_problem(str(error), start, quote_char))
                continue
            if record:
                records.append(record)
                last_ok = True
        else:
            return records
    finally:
        csv.field_size_limit(previous)
    if truncated and last_ok:
        records.pop()
    return records


def _problem(message: str, line: int, quote_char: str) -> str:
    """A csv error as the analyst needs it: where, and what the import will do."""
    if "end of data" in message:
        return (
            f"a field quoted with {quote_char} on line {line} is never closed: "
            "the import fails such a file"
        )
    if "expected after" in message:
        return f"line {line}: text follows a closing {quote_char}: the import rejects that record"
    return f"line {line}: {message}: the import rejects that record"


def detect_quote_char(text: str, separator: str) -> Finding:
    """The quote that opens and closes whole fields most often; `"` when nothing is quoted."""
    sep = re.escape(separator)
    head = text[:_QUOTE_SAMPLE]
    counts = {}
    for quote in ('"', "'"):
        q = re.escape(quote)
        wrapped = rf"(?:^|{sep}){q}(?:[^{q}]|{q}{q})*{q}(?={sep}|\r?$)"
        counts[quote] = len(re.findall(wrapped, head, re.M))
    single, double = counts["'"], counts['"']
    if single > double:
        return Finding("'", f"{single} fields are wrapped in ' (and {double} in \")")
    if double:
        return Finding('"', f'{double} fields are wrapped in "')
    return Finding('"', 'no quoted fields in the sample; " is the usual quote')


def detect_dialect(text: str, *, truncated: bool) -> tuple[Finding, Finding]:
    """The field separator (and its quote char): the one giving the most consistent field counts."""
    best: tuple[tuple[int, float, int], str, Finding, str] | None = None
    for separator in FIELD_SEPARATORS:
        quote = detect_quote_char(text, separator)
        records = read_records(
            text, separator, quote.value, truncated=truncated, limit=DIALECT_RECORDS
        )
        if not records:
            continue
        counts = Counter(len(record) for record in records)
        fields, seen = counts.most_common(1)[0]
        consistent = seen / len(records)
        score = (int(fields > 1), round(consistent, 3), fields)
        if best is None or score > best[0]:
            evidence = f"{fields} fields on {seen:,} of the first {len(records):,} records"
            best = (score, separator, quote, evidence)
    if best is None or best[0][0] == 0:
        return (
            Finding(",", "every record has a single field with each candidate; , is the default"),
            Finding('"', 'no quoted fields in the sample; " is the usual quote'),
        )
    _score, separator, quote, evidence = best
    return Finding(separator, evidence), quote


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
            or _DATE_SHAPE.fullmatch(name)
            or _ISO_DATETIME.fullmatch(name)
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
        return Finding(",", f"decimal commas in {', '.join(comma[:_EXAMPLES])}")
    if dot:
        return Finding(".", f"decimal points in {', '.join(dot[:_EXAMPLES])}")
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
            return Finding(candidate, f"lists in {', '.join(evidence[candidate][:_EXAMPLES])}")
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


# ---------------------------------------------------------------- dates


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
    if all(_ISO_DATETIME.fullmatch(v) for v in values) and _converts(values, "datetime", "iso8601"):
        example = next((v for v in values if len(v) > 10), values[0])
        return DateGuess("datetime", "iso8601", f"ISO 8601 date-times (e.g. {example})")
    shapes = [_DATE_SHAPE.fullmatch(v) for v in values]
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
    examples = ", ".join(list(dict.fromkeys(values))[:_EXAMPLES])
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
        shape = _DATE_SHAPE.fullmatch(value)
        if shape is None:
            continue
        first, middle = int(shape.group(1)), int(shape.group(3))
        if pattern.startswith("%d") and first > 12:
            return f"{value} has {first} first, so day first"
        if pattern.startswith("%m") and middle > 12:
            return f"{value} has {middle} second, so month first"
    return f"every value reads as {pattern} (e.g. {values[0]})"


def _converts(values: Sequence[str], value_type: ValueType, date_format: str) -> bool:
    convert = make_converter(value_type, ImportFormat(date_format=date_format))
    try:
        for value in values:
            convert(value)
    except ConversionError:
        return False
    return True


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


def _all(values: Sequence[str], convert: Callable[[str], str]) -> bool:
    try:
        for value in values:
            convert(value)
    except ConversionError:
        return False
    return True


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
    if all(number_shape.fullmatch(v) for v in values) and _all(
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
    numbers = [v for v in values if number_shape.fullmatch(v) and _all([v], convert)]
    if len(numbers) >= _MOSTLY * len(values):
        misses = _examples(v for v in values if v not in set(numbers))
        return f"{len(numbers)} of {len(values)} values are numbers, not {misses}: kept as text"
    dated = [v for v in values if _DATE_SHAPE.fullmatch(v) or _ISO_DATETIME.fullmatch(v)]
    if len(dated) < _MOSTLY * len(values):
        return None
    sample = values[:_NEAR_MISS_VALUES]
    best: tuple[int, ValueType, str] | None = None
    for value_type, pattern in _DATE_CANDIDATES:
        convert = make_converter(value_type, fmt.model_copy(update={"date_format": pattern}))
        fits = sum(1 for v in sample if _all([v], convert))
        if best is None or fits > best[0]:
            best = (fits, value_type, pattern)
    if best is None or best[0] < _MOSTLY * len(sample):
        return None
    fits, value_type, pattern = best
    convert = make_converter(value_type, fmt.model_copy(update={"date_format": pattern}))
    misses = _examples(v for v in sample if not _all([v], convert))
    kind = "date-times" if value_type == "datetime" else "dates"
    return f"{fits} of {len(sample)} values are {kind} ({pattern}), not {misses}: kept as text"


def _examples(values: Iterable[str]) -> str:
    unique = list(dict.fromkeys(values))
    shown = ", ".join(repr(v) for v in unique[:_EXAMPLES])
    return shown + (" ..." if len(unique) > _EXAMPLES else "")


def _atomic(column: Sequence[str], fmt: ImportFormat) -> bool:
    """Whether the whole cells are numbers or dates (so no list separator may split them)."""
    guess = guess_column("", column, fmt, split=None)
    return guess.value_type in ("number", "date", "datetime")


# ---------------------------------------------------------------- the whole sample


def sniff(head: bytes, *, truncated: bool, name: str = "sample") -> SniffResult:
    """Everything `connector draft` needs from the first bytes of a file (already inflated).

    Raises FormatError (naming `name`) for a sample that is no delimited text.
    """
    encoding = detect_encoding(head)
    text = decode_sample(head, encoding.value, truncated=truncated)
    if "\x00" in text:
        raise FormatError(
            f"contains NUL characters as {encoding.value}: not a delimited text file",
            file=name,
            line=text.count("\n", 0, text.index("\x00")) + 1,
        )
    separator, quote = detect_dialect(text, truncated=truncated)
    problems: list[str] = []
    records = read_records(
        text, separator.value, quote.value, truncated=truncated, problems=problems
    )
    if not records:
        why = f"no line ends within the first {len(head):,} bytes" if truncated else "no records"
        raise FormatError(f"{why}: is it a delimited text file?", file=name)
    warnings = problems[:_EXAMPLES]
    directive = _EXCEL_SEPARATOR.match(text)
    if directive:
        warnings.insert(
            0,
            f"the file starts with Excel's {directive[0].strip()!r} line, which the import "
            "reads as a record: drop that line from the files",
        )
    first = records[0]
    header = detect_header(first, records[1:])
    if header.value == "true":
        names = [cell.strip() for cell in first]
        data = records[1:]
    else:
        names = [f"column_{position}" for position in range(1, len(first) + 1)]
        data = records
    width = len(names)
    ragged = [number for number, record in enumerate(data, 1) if len(record) != width]
    rows = [record for record in data if len(record) == width]
    columns = [[row[index] for row in rows] for index in range(width)]
    decimal = detect_decimal_separator(columns, names, separator.value)
    base = ImportFormat(
        field_separator=separator.value,
        quote_char=quote.value,
        decimal_separator=decimal.value,
        multi_value_separator=_spare({separator.value, quote.value, decimal.value}),
    )
    atomic = [_atomic(column, base) for column in columns]
    multi = detect_multi_value_separator(
        columns, names, {separator.value, quote.value, decimal.value}, atomic
    )
    fmt = base.model_copy(update={"multi_value_separator": multi.value})
    identifier, identifier_evidence = detect_identifier(names, columns)
    guesses = [
        guess_column(name, column, fmt, split=multi.value)
        for name, column in zip(names, columns, strict=True)
    ]
    return SniffResult(
        encoding=encoding,
        field_separator=separator,
        quote_char=quote,
        header=header,
        decimal_separator=decimal,
        multi_value_separator=multi,
        date_format=_goal_date_format(guesses),
        columns=guesses,
        identifier=identifier,
        identifier_evidence=identifier_evidence,
        warnings=warnings,
        records=len(data),
        ragged=ragged,
    )


def _spare(reserved: set[str]) -> str:
    return next(c for c in SPARE_LIST_SEPARATORS if c not in reserved)


def _goal_date_format(columns: Sequence[ColumnGuess]) -> Finding:
    """The date format most date columns use; the others carry their own in the mapping."""
    formats = Counter(c.date_format for c in columns if c.date_format is not None)
    if not formats:
        return Finding("iso8601", "no dates in the sample; iso8601 is the default")
    chosen, count = formats.most_common(1)[0]
    users = [c.name for c in columns if c.date_format == chosen]
    return Finding(
        chosen,
        f"used by {', '.join(users[:_EXAMPLES])}"
        + (f" ({count} columns)" if count > _EXAMPLES else ""),
    )
