"""Streaming decode and parse of incoming delimited files.

The import pipeline runs in a worker thread over a synchronous iterator of
byte chunks, so everything here is synchronous and holds at most one chunk,
one inflated piece and the largest record in memory:

    bytes chunks -> iter_decoded (gunzip?, decode) -> text pieces
                 -> DelimitedReader (split lines, csv) -> Row | RowProblem

A problem that makes the rest of the file untrustworthy (bad gzip, wrong
encoding, NUL bytes, a header that cannot name the columns, an unclosed
quote swallowing the rest of the file) raises `FormatError`. A problem
confined to one record becomes a `RowProblem` and parsing goes on.

The first stage (bytes to text) lives in `_decode` and is re-exported here;
this module holds the second (text to records).
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from connector.config.formats import ImportFormat
from connector.errors import FormatError
from connector.formats._decode import (
    GZIP_MAGIC,
    INFLATE_PIECE,
    INFLATION_FLOOR,
    iter_decoded,
    maybe_inflate,
    nul_character,
    undecodable,
)

__all__ = [
    "GZIP_MAGIC",
    "INFLATE_PIECE",
    "INFLATION_FLOOR",
    "MAX_FIELD_SIZE",
    "DelimitedReader",
    "Row",
    "RowProblem",
    "UnclosedQuoteError",
    "iter_decoded",
    "line_too_long",
    "maybe_inflate",
    "nul_character",
    "undecodable",
]

MAX_FIELD_SIZE = 16 << 20


def _size(count: int) -> str:
    if count >= 1 << 20 and count % (1 << 20) == 0:
        return f"{count >> 20} MiB"
    return f"{count:,} characters"


# ---------------------------------------------------------------- text -> records


@dataclass(slots=True)
class Row:
    """One record: `line` is the physical line where it starts (the header is line 1)."""

    line: int
    values: list[str]


@dataclass(slots=True)
class RowProblem:
    """One record that cannot be used; the rest of the file goes on."""

    line: int
    column: str | None
    reason: str


class UnclosedQuoteError(FormatError):
    """The text ends inside a record; a caller reading a file in pieces reads further."""


def _line_batches(
    pieces: Iterable[str], *, file: str, max_line: int, first_line: int = 1
) -> Iterator[list[str]]:
    r"""Cut text pieces into lists of lines that keep their endings (\n, \r\n or \r).

    The csv module ends a record at the end of each string it is given, so a
    line must never be cut elsewhere: `str.splitlines` would also cut at
    \x85, \u2028 and friends, which are data. A trailing \r waits for the
    next piece in case a \n follows. Memory is bounded by `max_line`. Lists
    (not single lines) are handed out so the per-line work stays in C.
    """
    parts: list[str] = []
    waiting = 0
    emitted = 0
    for piece in pieces:
        if "\n" not in piece and "\r" not in piece:
            parts.append(piece)
            waiting += len(piece)
            if waiting > max_line:
                raise line_too_long(max_line, file=file, line=first_line + emitted)
            continue
        if parts:
            parts.append(piece)
            text = "".join(parts)
            parts.clear()
        else:
            text = piece
        lines = io.StringIO(text, newline="").readlines()
        if lines[-1][-1] != "\n":
            parts.append(lines.pop())
        waiting = len(parts[0]) if parts else 0
        emitted += len(lines)
        yield lines
    if parts:  # may hold a held-back \r and the text after it: split that too
        yield io.StringIO("".join(parts), newline="").readlines()


def line_too_long(max_line: int, *, file: str, line: int) -> FormatError:
    """The error for a physical line longer than `max_line` (memory stays bounded)."""
    return FormatError(f"a line is longer than {_size(max_line)}", file=file, line=line)


def _lines(pieces: Iterable[str], *, file: str, max_line: int, first_line: int) -> Iterator[str]:
    batches = _line_batches(pieces, file=file, max_line=max_line, first_line=first_line)
    return itertools.chain.from_iterable(batches)


class DelimitedReader:
    """Parses decoded text into `Row`s, or `RowProblem`s for records that do not fit.

    The header is read eagerly by the constructor, so `columns` is known (and
    header problems raise `FormatError`) before the first row is asked for.
    Iterate once. Multi-value cells are not split here: the mapping knows
    which columns hold lists.

    `max_field_size` bounds one field (through `csv.field_size_limit`, which
    is process-wide, so every reader uses the same default) and four times it
    bounds a physical line, so a file without line breaks cannot fill memory.

    `columns` and `first_line` resume a file at a record boundary after its
    header was read elsewhere (the engine's piece parser): no header is read,
    nothing is stripped, and line numbers count from `first_line`.
    """

    def __init__(
        self,
        text: Iterable[str],
        fmt: ImportFormat,
        *,
        file: str,
        max_field_size: int = MAX_FIELD_SIZE,
        columns: list[str] | None = None,
        first_line: int = 1,
    ) -> None:
        self.file = file
        self._offset = first_line - 1
        self._max_field_size = max_field_size
        if csv.field_size_limit() != max_field_size:
            csv.field_size_limit(max_field_size)
        self._reader = csv.reader(
            _lines(text, file=file, max_line=4 * max_field_size, first_line=first_line),
            delimiter=fmt.field_separator,
            quotechar=fmt.quote_char,
            escapechar=fmt.escape_char,
            doublequote=True,
            skipinitialspace=False,
            strict=True,
        )
        self._quote_char = fmt.quote_char
        self._first: Row | RowProblem | None = None
        if columns is not None:
            self.columns = list(columns)
        elif fmt.header:
            self.columns = self._read_header()
        else:
            self.columns = list(fmt.columns or [])
            self._first = self._next_record()
            if isinstance(self._first, Row) and self._first.values:
                self._first.values[0] = self._first.values[0].removeprefix("\ufeff")

    def _read_header(self) -> list[str]:
        while True:
            record = self._next_record()
            if record is None:
                raise FormatError("file is empty", file=self.file)
            if isinstance(record, RowProblem):
                raise FormatError(f"header: {record.reason}", file=self.file, line=record.line)
            if record.values:
                break
        names = [name.strip() for name in record.values]
        names[0] = names[0].removeprefix("\ufeff").strip()
        empty = [str(position) for position, name in enumerate(names, 1) if not name]
        if empty:
            raise FormatError(
                f"the header has empty column names at positions {', '.join(empty)}",
                file=self.file,
                line=record.line,
            )
        positions: dict[str, list[int]] = {}
        for position, name in enumerate(names, 1):
            positions.setdefault(name, []).append(position)
        duplicates = [
            f"{name!r} (positions {', '.join(map(str, where))})"
            for name, where in positions.items()
            if len(where) > 1
        ]
        if duplicates:
            raise FormatError(
                f"the header repeats column names: {'; '.join(duplicates)}",
                file=self.file,
                line=record.line,
            )
        return names

    def _next_record(self) -> Row | RowProblem | None:
        """The next record, a RowProblem for a malformed one, or None at the end."""
        reader = self._reader
        start = reader.line_num + 1 + self._offset
        try:
            return Row(start, next(reader))
        except StopIteration:
            return None
        except csv.Error as error:
            return self._problem(start, str(error))

    def _problem(self, line: int, message: str) -> RowProblem:
        if message.startswith("field larger than field limit"):
            raise FormatError(
                f"field longer than {_size(self._max_field_size)}", file=self.file, line=line
            ) from None
        if message.startswith("unexpected end of data"):
            raise UnclosedQuoteError(
                f"a quoted field starting on this line is never closed "
                f"(quote character {self._quote_char!r}); the rest of the file is unreadable",
                file=self.file,
                line=line,
            ) from None
        if "expected after" in message:
            message = (
                f"text follows a closing quote ({self._quote_char!r}); a quote inside a quoted"
                " field must be written twice"
            )
        return RowProblem(line, None, f"malformed record: {message}")

    def __iter__(self) -> Iterator[Row | RowProblem]:
        expected = len(self.columns)
        first = self._first
        self._first = None
        if first is not None:
            if isinstance(first, RowProblem) or len(first.values) == expected:
                yield first
            elif first.values:
                yield self._ragged(first)
        reader = self._reader
        offset = self._offset
        while True:
            start = reader.line_num + 1 + offset
            try:
                for values in reader:
                    if len(values) == expected:
                        yield Row(start, values)
                    elif values:
                        yield RowProblem(
                            start, None, f"expected {expected} fields, found {len(values)}"
                        )
                    start = reader.line_num + 1 + offset
            except csv.Error as error:
                yield self._problem(start, str(error))
            else:
                return

    def _ragged(self, row: Row) -> RowProblem:
        return RowProblem(
            row.line, None, f"expected {len(self.columns)} fields, found {len(row.values)}"
        )
