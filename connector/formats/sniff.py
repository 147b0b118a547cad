"""Guessing a delimited file's dialect and column types from its first bytes.

Pure functions over a sample (bytes in, findings out) for `connector draft`.
Every finding carries its evidence as a sentence, so the drafted goal can say
why it chose what it chose, and where the sample left a choice open
(`01-02-2024`: day or month first?) it says so instead of guessing quietly.

`sniff` puts the stages together; each lives in a private module:
`_sniff_dialect` (bytes -> text -> records: encoding, separator, quote),
`_sniff_columns` (header, identifier, decimal and list separators, types)
and `_sniff_dates` (date and date-time formats).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from connector.config.formats import ImportFormat
from connector.errors import FormatError
from connector.formats._sniff_columns import (
    SPARE_LIST_SEPARATORS,
    ColumnGuess,
    detect_decimal_separator,
    detect_header,
    detect_identifier,
    detect_multi_value_separator,
    guess_column,
    is_atomic,
    snake_case,
)
from connector.formats._sniff_dates import DateGuess, detect_date_format
from connector.formats._sniff_dialect import (
    EXAMPLES,
    Finding,
    decode_sample,
    detect_dialect,
    detect_encoding,
    detect_quote_char,
    read_records,
)

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

_EXCEL_SEPARATOR = re.compile(r"sep=.\r?\n", re.IGNORECASE)


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
    warnings = problems[:EXAMPLES]
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
    atomic = [is_atomic(column, base) for column in columns]
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
        f"used by {', '.join(users[:EXAMPLES])}"
        + (f" ({count} columns)" if count > EXAMPLES else ""),
    )
