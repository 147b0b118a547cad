"""Writing export files: delimited text, encoded and optionally gzipped, in bounded chunks.

The export goal streams the bytes to a multipart upload, so the writer never
holds the file: rows go through `csv.writer` into a small text buffer that is
encoded (and compressed) whenever it passes `chunk_size`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime

from connector.config.formats import ExportFormat, zone_of
from connector.formats._output import ByteOutput

__all__ = ["QUOTED_EMPTY", "DelimitedWriter", "format_date", "format_number"]

QUOTED_EMPTY = '""'
"""The `null_value` / `empty_value` spelling that writes a quoted empty field."""

_FORMULA_TRIGGERS = frozenset("=+-@\t\r")
_CANONICAL_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


class _Verbatim(str):
    """A cell already in its written form: the formatter puts it in the line untouched."""

    __slots__ = ()


class DelimitedWriter(ByteOutput):
    """Writes rows as delimited text encoded to bytes, handing out bytes in chunks; optional gzip.

    Call `drain()` after each batch and `finish()` once at the end; both return
    the bytes to upload next. `None` is written as `fmt.null_value` and `""` as
    `fmt.empty_value` (both `""` by default), `QUOTED_EMPTY` as a quoted empty
    field. With `fmt.formula_guard`, a cell starting with = + - @ tab or CR is
    prefixed with `'` so spreadsheets show it instead of running it, except a
    plain number such as `-12.5` or `-12,5`: that is data, and a quote would
    corrupt it for every program that is not a spreadsheet. The header row is
    only written when `fmt.header` is true. `file` names the export in errors.

    Quotes inside a quoted field are doubled (`""`) unless `fmt.escape_char`
    is set: then they are written as escape + quote (`\\"`) and the escape
    character itself doubled, and a field holding either is always quoted,
    the way Spark-based platforms write and read CSV with an escape character.

    `rows_written` and `bytes_out` count as `ByteOutput` says.
    """

    def __init__(
        self,
        fmt: ExportFormat,
        *,
        gzip: bool = False,
        chunk_size: int = 1 << 20,
        file: str = "<export>",
    ) -> None:
        super().__init__(
            fmt,
            file=file,
            chunk_size=chunk_size,
            encoder=codecs.getincrementalencoder(fmt.encoding)(),
            compressor=zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None,
        )
        self._text = io.StringIO()
        self._csv = csv.writer(
            self._text,
            quoting=csv.QUOTE_ALL if fmt.quote_all else csv.QUOTE_MINIMAL,
            delimiter=fmt.field_separator,
            quotechar=fmt.quote_char,
            doublequote=True,
            lineterminator=fmt.line_terminator,
        )
        quote_cr = not fmt.quote_all and "\r" not in fmt.line_terminator
        self._null = _cell_text(fmt.null_value, fmt.quote_char)
        self._empty = _cell_text(fmt.empty_value, fmt.quote_char)
        self._verbatim = isinstance(self._null, _Verbatim) or isinstance(self._empty, _Verbatim)
        escape = fmt.escape_char or ""
        own = re.escape(("\r" if quote_cr else "") + (fmt.quote_char + escape if escape else ""))
        self._own_quoting = re.compile(f"[{own}]").search if own else None
        special = re.escape(fmt.field_separator + fmt.quote_char + escape + "\r\n")
        self._needs_quotes = re.compile(f"[{special}]").search
        careful = [r"\x01[=+\-@\t\r]"] if fmt.formula_guard else []
        if own:
            careful.append(f"[{own}]")
        self._careful_search = re.compile("|".join(careful)).search if careful else None
        self._first_triggers = _FORMULA_TRIGGERS if fmt.formula_guard else frozenset()
        self._plain_number = re.compile(
            r"[+-]?[0-9]+(?:[{seps}][0-9]+)?".format(seps=re.escape("." + fmt.decimal_separator))
        )

    def write_header(self, names: Sequence[str]) -> None:
        """Write the header row, or nothing when the format has `header: false`."""
        self._check_open()
        if self._fmt.header:
            self._write_careful(list(names))

    def write_row(self, values: Sequence[str | None]) -> None:
        self.write_rows((values,))

    def write_rows(self, rows: Iterable[Sequence[str | None]]) -> None:
        """Write many rows; the fast path for an export batch.

        One C-level scan of the joined row decides whether any cell needs the
        null or empty value, the formula guard or quoting of our own; most rows
        need none and go straight to `csv.writer`.
        """
        self._check_open()
        careful_search = self._careful_search
        first_triggers = self._first_triggers
        check_empty = self._empty != ""
        writerow = self._csv.writerow
        careful = self._write_careful
        prepare = self._prepare
        text = self._text
        limit = self._chunk_size
        count = 0
        try:
            for values in rows:
                try:
                    joined = "\x01".join(values)  # type: ignore[arg-type]
                except TypeError:
                    plain = False
                else:
                    plain = not (
                        joined[:1] in first_triggers
                        or (careful_search is not None and careful_search(joined) is not None)
                        or (check_empty and "" in values)
                    )
                if plain:
                    writerow(values)
                else:
                    careful(prepare(values))
                count += 1
                if text.tell() >= limit:
                    self._flush_text()
        finally:
            self.rows_written += count

    def _write_careful(self, cells: list[str]) -> None:
        r"""Write one prepared row, formatting it ourselves when `csv.writer` cannot.

        That is a quoted empty field, a quote or escape character under
        `escape_char`, and a bare CR: Python 3.11's minimal quoting only
        quotes the line-break characters of the line terminator, so with "\n"
        a cell holding "\r" would be written bare and split the record.
        """
        own_quoting = self._own_quoting
        if (own_quoting is not None and own_quoting("".join(cells)) is not None) or (
            self._verbatim and any(isinstance(cell, _Verbatim) for cell in cells)
        ):
            self._text.write(self._line(cells))
        else:
            self._csv.writerow(cells)

    def _line(self, cells: list[str]) -> str:
        fmt = self._fmt
        quote, escape = fmt.quote_char, fmt.escape_char
        fields = []
        for cell in cells:
            if isinstance(cell, _Verbatim):
                fields.append(str(cell))
            elif fmt.quote_all or self._needs_quotes(cell) is not None:
                if escape is None:
                    body = cell.replace(quote, quote + quote)
                else:
                    body = cell.replace(escape, escape + escape).replace(quote, escape + quote)
                fields.append(quote + body + quote)
            else:
                fields.append(cell)
        line = fmt.field_separator.join(fields)
        return (line or quote + quote) + fmt.line_terminator

    def drain(self) -> bytes:
        """The bytes ready so far if they reach `chunk_size`, else b"" (they wait for more)."""
        self._check_open()
        self._flush_text()
        if len(self._out) < self._chunk_size:
            return b""
        return self._hand_out()

    def finish(self) -> bytes:
        """Everything still pending, including the gzip trailer; the writer is then closed."""
        self._check_open()
        self._flush_text(final=True)
        return self._close()

    def _prepare(self, values: Sequence[str | None]) -> list[str]:
        null, empty = self._null, self._empty
        triggers = self._first_triggers
        return [
            null
            if value is None
            else empty
            if not value
            else (self._guard(value) if value[0] in triggers else value)
            for value in values
        ]

    def _guard(self, value: str) -> str:
        if self._plain_number.fullmatch(value):
            return value
        return "'" + value

    def _flush_text(self, *, final: bool = False) -> None:
        """The rows in the text buffer, encoded (and compressed) into the bytes waiting."""
        text = self._text.getvalue()
        if not text and not final:
            return
        self._text.seek(0)
        self._text.truncate()
        self._emit(self._encode(text, final=final))


def _cell_text(spelling: str, quote_char: str) -> str:
    """What a null or empty cell becomes: its text, or a quoted empty field for `QUOTED_EMPTY`."""
    return _Verbatim(quote_char * 2) if spelling == QUOTED_EMPTY else spelling


def format_number(canonical: str, decimal_separator: str) -> str:
    """A canonical number written with the export's decimal separator; other text unchanged."""
    if decimal_separator == "." or not _CANONICAL_NUMBER.fullmatch(canonical):
        return canonical
    return canonical.replace(".", decimal_separator)


def format_date(canonical: str, date_format: str, timezone: str) -> str:
    """A canonical date or date-time written in the export's format and time zone.

    Date-times are moved to `timezone` first (a naive one is taken as UTC, the
    store's zone); plain dates have no zone and are only reformatted. Text that
    is neither passes through unchanged, so an export never fails on one value.
    """
    try:
        if len(canonical) <= 10:
            day = date.fromisoformat(canonical)
            return day.isoformat() if date_format == "iso8601" else day.strftime(date_format)
        moment = datetime.fromisoformat(canonical)
    except ValueError:
        return canonical
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(zone_of(timezone))
    return moment.isoformat() if date_format == "iso8601" else moment.strftime(date_format)
