"""Export files from Arrow tables: the bytes `DelimitedWriter` writes, built column by column.

`ArrowWriter` has `DelimitedWriter`'s interface (header, rows, `drain`,
`finish`, the counters), takes a whole table of text columns at a time and
writes exactly the bytes today's writer writes for the same cells: the
formula guard, `null_value` / `empty_value` (with the quoted-empty spelling),
minimal quoting or `quote_all`, any quote character, `escape_char`, both line
terminators, a lone one-column empty cell written as `""`, and any encoding.

Why not `pyarrow.csv.write_csv`: in pyarrow 26 its `quoting_style="needed"`
quotes *every* text value (`a` becomes `"a"`), `"none"` refuses any value
holding a quote, separator or line break, and the quote character is fixed
to `"`; no option writes what `csv.writer` writes. So each line is assembled
with `pyarrow.compute` instead (guard, substitute, quote the cells that need
it, join with the separator, append the terminator) and the joined column's
data buffer *is* the file's text: no Python per row and no fallback to
`DelimitedWriter` for any format option. UTF-8 is handed on as it is; other
encodings are transcoded a chunk at a time (C codecs, still no loop per row).

Compression is igzip (`isal`), level `GZIP_LEVEL`; see `GzipStream`.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
from isal import isal_zlib

from connector.config.formats import ExportFormat
from connector.formats._output import ByteOutput
from connector.formats.writer import QUOTED_EMPTY

__all__ = ["GZIP_LEVEL", "ArrowWriter", "GzipStream"]

GZIP_LEVEL = 1
"""igzip level 1. Measured on the 1M-profile export's text (110 MB, 2 busy cores): levels
1 / 2 / 3 ran at 137 / 110 / 53 MB/s for 27.5 / 27.2 / 27.1% of the size (zlib 6: 10 MB/s,
22.6%); level 1 costs least and the higher levels save almost nothing on this data."""

_TRIGGERS = "=+-@\t\r"


def _char(character: str) -> str:
    r"""One character as an RE2 literal (`\x{..}`), whatever it is: `]`, `\`, `^`, a tab."""
    return f"\\x{{{ord(character):x}}}"


def _class(characters: str) -> str:
    return "[" + "".join(_char(c) for c in dict.fromkeys(characters)) + "]"


class GzipStream:
    """A gzip member built by igzip a piece at a time; `gzip.decompress` reads it whole.

    Level 1 is the default for the reason given at `GZIP_LEVEL`; files are
    about a fifth larger than zlib level 6's, written an order of magnitude faster.
    """

    def __init__(self, level: int = GZIP_LEVEL) -> None:
        self._compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)

    def compress(self, data: bytes | memoryview) -> bytes:
        result: bytes = self._compressor.compress(data)
        return result

    def flush(self) -> bytes:
        result: bytes = self._compressor.flush()
        return result


class ArrowWriter(ByteOutput):
    """Writes tables of text columns as delimited bytes, in chunks; optional gzip.

    A cell that is null is written as `fmt.null_value`, an empty text as
    `fmt.empty_value`; everything else as in `DelimitedWriter` (see its
    docstring: the two must stay byte-for-byte equal, which the tests check
    on random tables). Call `drain()` after each table until it returns b""
    and `finish()` once.
    """

    def __init__(
        self,
        fmt: ExportFormat,
        *,
        gzip: bool = False,
        chunk_size: int = 1 << 20,
        file: str = "<export>",
        gzip_level: int = GZIP_LEVEL,
    ) -> None:
        transcode = codecs.lookup(fmt.encoding).name != "utf-8"
        super().__init__(
            fmt,
            file=file,
            chunk_size=chunk_size,
            encoder=codecs.getincrementalencoder(fmt.encoding)() if transcode else None,
            compressor=GzipStream(gzip_level) if gzip else None,
        )
        quote, escape = fmt.quote_char, fmt.escape_char
        self._quote = quote
        self._specials = fmt.field_separator + quote + (escape or "") + "\r\n"
        self._needs_quotes = _class(self._specials)
        decimal = _class("." + fmt.decimal_separator)
        self._plain_number = f"^[+-]?[0-9]+(?:{decimal}[0-9]+)?$"

    def write_header(self, names: Sequence[str]) -> None:
        """Write the header row (quoted as needed, never guarded), unless `header: false`."""
        self._check_open()
        if self._fmt.header:
            cells = [self._quoted(pa.array([name], pa.string())) for name in names]
            self._append(self._lines(cells))

    def write_table(self, table: pa.Table) -> None:
        """Write every row of `table`; its columns are text (nulls allowed), in output order."""
        self._check_open()
        if table.num_rows == 0:
            return
        cells = [self._cell(_text(column)) for column in table.columns]
        self._append(self._lines(cells))
        self.rows_written += table.num_rows

    def drain(self) -> bytes:
        """The next `chunk_size` bytes once that many are ready, else b"" (they wait for more).

        A table can produce many chunks: call until it returns b"", so every
        piece handed to an upload stays bounded.
        """
        self._check_open()
        if len(self._out) < self._chunk_size:
            return b""
        return self._hand_out(self._chunk_size)

    def finish(self) -> bytes:
        """Everything still pending, including the gzip trailer; the writer is then closed."""
        self._check_open()
        if self._encoder is not None:
            self._emit(self._encode("", final=True))
        return self._close()

    # -- cells and lines --------------------------------------------------------------------

    def _cell(self, column: pa.StringArray) -> pa.StringArray:
        """Guard, substitute null and empty, quote: the text of each cell as it is written."""
        fmt = self._fmt
        if fmt.formula_guard:
            column = self._guarded(column)
        nulls = column.is_null()
        empties = pc.equal(pc.binary_length(column), 0).fill_null(False)
        verbatim = None
        null_text, empty_text = fmt.null_value, fmt.empty_value
        if QUOTED_EMPTY in (null_text, empty_text):
            verbatim = pc.or_(
                pc.and_(nulls, pa.scalar(null_text == QUOTED_EMPTY)),
                pc.and_(empties, pa.scalar(empty_text == QUOTED_EMPTY)),
            )
        if null_text != "" and column.null_count:
            column = pc.fill_null(column, null_text)
        if empty_text != "" and pc.any(empties).as_py():
            column = pc.if_else(empties, pa.scalar(empty_text), column)
        column = self._quoted(pc.fill_null(column, ""))
        if verbatim is not None:
            column = pc.if_else(verbatim, pa.scalar(self._quote * 2), column)
        return column

    def _guarded(self, column: pa.StringArray) -> pa.StringArray:
        """A `'` before cells a spreadsheet would run (not before plain numbers like -12,5)."""
        present = _present(column, _TRIGGERS)
        if not present:
            return column
        triggered = pc.starts_with(column, present[0])
        for trigger in present[1:]:
            triggered = pc.or_(triggered, pc.starts_with(column, trigger))
        triggered = triggered.fill_null(False)
        if not pc.any(triggered).as_py():
            return column
        number = pc.match_substring_regex(column, self._plain_number).fill_null(False)
        guard = pc.and_not(triggered, number)
        prefixed = pc.binary_join_element_wise(pa.scalar("'"), column, "")
        return pc.if_else(guard, prefixed, column)

    def _quoted(self, column: pa.StringArray) -> pa.StringArray:
        if self._fmt.quote_all:
            return self._quote_each(column)
        if not _present(column, self._specials):
            return column
        needs = pc.match_substring_regex(column, self._needs_quotes).fill_null(False)
        if not pc.any(needs).as_py():
            return column
        # only the few cells that need it are quoted, then put back in place
        return pc.replace_with_mask(column, needs, self._quote_each(column.filter(needs)))

    def _quote_each(self, column: pa.StringArray) -> pa.StringArray:
        quote, escape = self._quote, self._fmt.escape_char
        if escape is None:
            body = pc.replace_substring(column, quote, quote * 2)
        else:
            body = pc.replace_substring(column, escape, escape * 2)
            body = pc.replace_substring(body, quote, escape + quote)
        quoted: pa.StringArray = pc.binary_join_element_wise(
            pa.scalar(quote), body, pa.scalar(quote), ""
        )
        return quoted

    def _lines(self, cells: list[pa.StringArray]) -> pa.StringArray:
        fmt = self._fmt
        if len(cells) == 1:
            # csv.writer writes a record of one empty field as `""`, not as an empty line
            only = cells[0]
            line = pc.if_else(pc.equal(only, ""), pa.scalar(self._quote * 2), only)
        else:
            line = pc.binary_join_element_wise(*cells, fmt.field_separator)
        joined = pc.binary_join_element_wise(line, pa.scalar(fmt.line_terminator), "")
        if isinstance(joined, pa.ChunkedArray):
            joined = joined.combine_chunks()
        result: pa.StringArray = joined
        return result

    # -- bytes --------------------------------------------------------------------------------

    def _append(self, lines: pa.StringArray) -> None:
        _, offsets_buffer, data_buffer = lines.buffers()
        offsets = memoryview(offsets_buffer).cast("i")
        start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
        data = memoryview(data_buffer)[start:end]
        if self._encoder is not None:
            self._emit(self._encode(str(data, "utf-8")))
        else:
            self._emit(data)


def _present(column: pa.StringArray, characters: str) -> str:
    """Those of `characters` that occur anywhere in the column's text (a memchr, not a regex).

    Most columns hold no separator, quote or formula trigger at all; one scan
    of the column's data buffer lets them skip the per-cell work.
    """
    data = column.buffers()[2]
    if data is None:
        return ""
    text = data.to_pybytes()
    return "".join(c for c in characters if c.encode("utf-8") in text)


def _text(column: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.type != pa.string():
        column = column.cast(pa.string())
    result: pa.StringArray = column
    return result
