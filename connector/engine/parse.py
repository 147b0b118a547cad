"""Parse an incoming delimited file into Arrow tables, piece by piece, with exact line numbers.

`PieceReader` yields what `DelimitedReader` yields (same values, lines,
`RowProblem`s and `FormatError`s) as Arrow pieces of about `piece_bytes`, with
no Python loop per row on the common path:

    byte chunks -> _utf8 (gunzip, check UTF-8 / NUL) -> _pieces (cut on record
    boundaries) -> pyarrow.csv per piece, or the exact path for that piece

Fast path: the piece is read by `pyarrow.csv.read_csv` as all-string columns
(nothing becomes null, nothing is trimmed). It is taken only when it provably
reads like the csv module: the separator and quote are ASCII, no escape
character is configured, the piece has no lone `\\r` line ending, every quote
belongs to a well-formed quoted field (checked by one regular expression over
the piece), every row has the header's field count and no field exceeds the
field limit.

Exact path (`DelimitedReader` over the piece's text, resumed at the piece's
first line): the first piece (just the header, or the first record of a
headerless file), any piece with ragged rows, malformed quotes, lone `\\r`
endings, an over-long field or a leading U+FEFF (pyarrow would drop it), and
every piece when `escape_char` is set or the separator or quote is not ASCII.
When a piece ends inside a record the rest goes back to the cutter and is
read with the next piece.

Known difference: when a file has two whole-file errors (say an over-long
field and, further on, invalid bytes) the one reported can differ, because
this reads up to a piece ahead where `DelimitedReader` reads one chunk ahead.
The line-length guard counts bytes where `DelimitedReader` counts characters.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from connector.config.formats import ImportFormat
from connector.engine._pieces import Cut, Cutter
from connector.engine._utf8 import utf8_bytes
from connector.formats.reader import (
    MAX_FIELD_SIZE,
    DelimitedReader,
    Row,
    RowProblem,
    UnclosedQuoteError,
)
from connector.limits import PIECE_BYTES

__all__ = ["Piece", "PieceReader"]

HEAD_BYTES = 1
"""The first piece is just the first record: the exact path reads it for the header."""
BLOCK_BYTES = 1 << 20
"""pyarrow block size: measured fastest for 8 MiB pieces (one block is slower)."""
USE_THREADS = False
"""One thread per piece: as fast on 8 MiB pieces, and leaves the other core to the caller."""
SPARSE_QUOTES = 50
"""Below one quote per this many bytes Python's `re` checks quoting faster than RE2."""
_BREAK = re.compile(rb"\r\n|\r|\n")


@dataclass(eq=False)
class Piece:
    """Records of one piece of the file: good ones as a table, unusable ones as problems."""

    table: pa.Table
    problems: list[RowProblem]
    records: int
    _line_numbers: Callable[[], pa.Int64Array] = field(repr=False)
    _lines: pa.Int64Array | None = field(default=None, repr=False)

    def lines(self) -> pa.Int64Array:
        """Physical start line of each row of `table` (the header is line 1), computed once."""
        if self._lines is None:
            self._lines = self._line_numbers()
        return self._lines


class PieceReader:
    """Construct = read the header eagerly (FormatError exactly like DelimitedReader)."""

    def __init__(
        self,
        chunks: Iterable[bytes],
        fmt: ImportFormat,
        *,
        file: str,
        piece_bytes: int = PIECE_BYTES,
        max_field_size: int = MAX_FIELD_SIZE,
    ) -> None:
        self._fmt = fmt
        self._file = file
        self._piece_bytes = piece_bytes
        self._max_field_size = max_field_size
        quote = fmt.quote_char
        self._cutter = Cutter(
            utf8_bytes(chunks, fmt.encoding, file=file),
            quote=quote.encode(),
            file=file,
            max_line=4 * max_field_size,
        )
        ascii_dialect = fmt.field_separator.isascii() and quote.isascii()
        self._quoting = _quoting_check(fmt) if ascii_dialect and not fmt.escape_char else None
        self._head, self._head_reader = self._read_header()
        self.columns: list[str] = self._head_reader.columns
        self._iterated = False

    def __iter__(self) -> Iterator[Piece]:
        if self._iterated:
            raise RuntimeError("a PieceReader is iterated once")
        self._iterated = True
        piece = self._exact(self._head, self._head_reader)
        if piece is not None:
            yield piece
        while (cut := self._cutter.next(self._piece_bytes)) is not None:
            fast = self._fast(cut)
            piece = fast if fast is not None else self._exact(cut, self._resumed(cut))
            if piece is not None and piece.records:
                yield piece

    # ------------------------------------------------------------ header

    def _read_header(self) -> tuple[Cut, DelimitedReader]:
        """The first piece and a reader past its header, growing the piece until it holds it."""
        size = min(HEAD_BYTES, self._piece_bytes)
        while True:
            cut = self._cutter.next(size) or Cut(b"", 1, 0, False, 0, last=True)
            if not cut.last and not cut.data.strip(b"\r\n"):
                self._cutter.unread(cut.data, cut.line)  # blank lines only: read on
                size = 2 * len(cut.data)
                continue
            try:
                reader = DelimitedReader(
                    [cut.data.decode()],
                    self._fmt,
                    file=self._file,
                    max_field_size=self._max_field_size,
                )
            except UnclosedQuoteError:
                if cut.last:
                    raise
                self._cutter.unread(cut.data, cut.line)
                size = 2 * len(cut.data)
            else:
                return cut, reader

    # ------------------------------------------------------------ exact path

    def _resumed(self, cut: Cut) -> DelimitedReader:
        return DelimitedReader(
            [cut.data.decode()],
            self._fmt,
            file=self._file,
            max_field_size=self._max_field_size,
            columns=self.columns,
            first_line=cut.line,
        )

    def _exact(self, cut: Cut, reader: DelimitedReader) -> Piece | None:
        """Read the piece with the csv module, giving an unfinished last record back.

        None when it has no records: no Arrow memory is touched for nothing
        (pyarrow's first allocation costs some 35 MB of resident memory).
        """
        rows: list[list[str]] = []
        lines: list[int] = []
        problems: list[RowProblem] = []
        try:
            for record in reader:
                if isinstance(record, Row):
                    rows.append(record.values)
                    lines.append(record.line)
                else:
                    problems.append(record)
        except UnclosedQuoteError as error:
            if cut.last or error.line is None:
                raise
            skip = error.line - cut.line  # re.split's maxsplit=0 means no limit
            rest = _BREAK.split(cut.data, maxsplit=skip)[-1] if skip else cut.data
            self._cutter.unread(rest, error.line)
        if not rows and not problems:
            return None
        arrays = [pa.array(column, pa.string()) for column in zip(*rows, strict=True)]
        if not rows:
            arrays = [pa.array([], pa.string()) for _ in self.columns]
        table = pa.Table.from_arrays(arrays, names=self.columns)
        numbers = pa.array(lines, pa.int64())
        return Piece(table, problems, len(rows) + len(problems), lambda: numbers, numbers)

    # ------------------------------------------------------------ fast path

    def _fast(self, cut: Cut) -> Piece | None:
        """The piece read by pyarrow, or None when that might differ from the csv module."""
        data = cut.data
        if self._quoting is None or cut.lone_cr or data.startswith(codecs.BOM_UTF8):
            return None  # (pyarrow would drop a byte-order mark starting the piece)
        if not self._quoting(data, cut.quotes):
            return None
        table = self._arrow(data, BLOCK_BYTES)
        if table is None or self._too_long(table, len(data)):
            return None
        return Piece(table, [], table.num_rows, lambda: self._line_numbers(cut, table))

    def _line_numbers(self, cut: Cut, table: pa.Table) -> pa.Int64Array:
        """Start lines of a fast piece's rows: counted when only quoted values break lines.

        A row spans one line plus the line breaks inside its values (the piece
        has no lone CR, so counting LF counts them all); if the piece has more
        lines than that, it has blank lines and the csv module rescans it.
        """
        lines = cut.breaks + (not cut.data.endswith(b"\n"))
        spans = pa.repeat(pa.scalar(1, pa.int64()), table.num_rows)
        if lines != table.num_rows:
            for column in table.columns:
                inside = pc.cast(pc.count_substring(column, "\n"), pa.int64())
                spans = pc.add(spans, inside)
            if pc.sum(spans).as_py() != lines:
                return pa.array([row.line for row in self._resumed(cut)], pa.int64())
        if isinstance(spans, pa.ChunkedArray):
            spans = spans.combine_chunks()
        ends = pc.cumulative_sum(spans, start=cut.line)
        numbers: pa.Int64Array = pc.subtract(ends, spans)
        return numbers

    def _arrow(self, data: bytes, block: int) -> pa.Table | None:
        fmt = self._fmt
        try:
            table: pa.Table = pacsv.read_csv(
                pa.py_buffer(data),
                read_options=pacsv.ReadOptions(
                    column_names=self.columns, use_threads=USE_THREADS, block_size=block
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=fmt.field_separator,
                    quote_char=fmt.quote_char,
                    double_quote=True,
                    escape_char=False,
                    newlines_in_values=True,
                    ignore_empty_lines=True,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(self.columns, pa.string()),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                    check_utf8=False,
                ),
            )
        except pa.ArrowInvalid as error:
            if "straddl" in str(error) and block <= len(data):
                return self._arrow(data, len(data) + 1)
            return None
        return table

    def _too_long(self, table: pa.Table, size: int) -> bool:
        """Whether a value exceeds the field limit (only possible in a piece that large)."""
        if size <= self._max_field_size:
            return False
        limit = self._max_field_size
        return any(pc.max(pc.utf8_length(column)).as_py() > limit for column in table.columns)


def _quoting_check(fmt: ImportFormat) -> Callable[[bytes, int], bool]:
    """A test that every quote in a piece belongs to a well-formed quoted field.

    Quoted fields start a field and close right before a separator, a line
    break or the end; inside, quotes come in pairs. Then quote parity marks
    record ends and pyarrow reads exactly what the csv module reads. Python's
    `re` (possessive, no backtracking) is fastest when quotes are sparse, RE2
    (through pyarrow, linear time) when nearly every field is quoted.
    """
    sep, quote = (f"\\x{ord(char):02x}" for char in (fmt.field_separator, fmt.quote_char))
    ends = f"{sep}\\r\\n"
    sparse = re.compile(
        f"(?:[^{quote}]++|(?<![^{ends}]){quote}(?:[^{quote}]++|{quote}{quote})*+{quote}"
        f"(?![^{ends}]))*+".encode()
    )
    one = f"(?:{quote}(?:[^{quote}]|{quote}{quote})*{quote}|[^{quote}{ends}]*)"
    dense = f"\\A{one}(?:[{ends}]{one})*\\z"

    def check(data: bytes, quotes: int) -> bool:
        if not quotes:
            return True
        if quotes * SPARSE_QUOTES < len(data):
            return sparse.fullmatch(data) is not None
        array = pa.array([data], pa.large_binary())
        return bool(pc.match_substring_regex(array, dense)[0].as_py())

    return check
