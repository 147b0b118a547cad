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
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo

from connector.config.formats import ExportFormat
from connector.errors import FormatError

__all__ = ["DelimitedWriter", "format_date", "format_number"]

_FORMULA_TRIGGERS = frozenset("=+-@\t\r")
_CANONICAL_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


class DelimitedWriter:
    """Writes rows as delimited text encoded to bytes, handing out bytes in chunks; optional gzip.

    Call `drain()` after each batch and `finish()` once at the end; both return
    the bytes to upload next. `None` is written as `fmt.null_value`, `""` stays
    empty. With `fmt.formula_guard`, a cell starting with = + - @ tab or CR is
    prefixed with `'` so spreadsheets show it instead of running it, except a
    plain number such as `-12.5` or `-12,5`: that is data, and a quote would
    corrupt it for every program that is not a spreadsheet. The header row is
    only written when `fmt.header` is true. `file` names the export in errors.

    `rows_written` counts data rows (not the header); `bytes_out` counts the
    bytes handed out so far, the file's size once `finish()` has returned.
    """

    def __init__(
        self,
        fmt: ExportFormat,
        *,
        gzip: bool = False,
        chunk_size: int = 1 << 20,
        file: str = "<export>",
    ) -> None:
        self._fmt = fmt
        self._file = file
        self._chunk_size = chunk_size
        self._text = io.StringIO()
        dialect = {
            "delimiter": fmt.field_separator,
            "quotechar": fmt.quote_char,
            "escapechar": fmt.escape_char,
            "doublequote": True,
            "lineterminator": fmt.line_terminator,
        }
        quoting = csv.QUOTE_ALL if fmt.quote_all else csv.QUOTE_MINIMAL
        self._csv = csv.writer(self._text, quoting=quoting, **dialect)  # type: ignore[arg-type]
        self._quote_cr = quoting == csv.QUOTE_MINIMAL and "\r" not in fmt.line_terminator
        self._csv_all = csv.writer(self._text, quoting=csv.QUOTE_ALL, **dialect)  # type: ignore[arg-type]
        self._encoder = codecs.getincrementalencoder(fmt.encoding)()
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None
        self._out = bytearray()
        self._finished = False
        self._plain_number = re.compile(
            r"[+-]?[0-9]+(?:[{seps}][0-9]+)?".format(seps=re.escape("." + fmt.decimal_separator))
        )
        self._guard_search = re.compile(r"\x01[=+\-@\t\r]").search if fmt.formula_guard else None
        self.rows_written = 0
        self.bytes_out = 0

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
        null value, the formula guard or extra quoting; most rows need none and
        go straight to `csv.writer`.
        """
        self._check_open()
        quote_cr = self._quote_cr
        guard_search = self._guard_search
        triggers = _FORMULA_TRIGGERS
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
                        (quote_cr and "\r" in joined)
                        or (
                            guard_search is not None
                            and (joined[:1] in triggers or guard_search(joined) is not None)
                        )
                    )
                if plain:
                    writerow(values)
                else:
                    careful(prepare(values))
                count += 1
                if text.tell() >= limit:
                    self._encode()
        finally:
            self.rows_written += count

    def _write_careful(self, cells: list[str]) -> None:
        r"""Write one prepared row, fully quoted if it holds a bare CR.

        Python 3.11's minimal quoting only quotes the line-break characters of
        the line terminator, so with "\n" a cell holding "\r" would be written
        bare and split the record for every reader.
        """
        if self._quote_cr and "\r" in "".join(cells):
            self._csv_all.writerow(cells)
        else:
            self._csv.writerow(cells)

    def drain(self) -> bytes:
        """The bytes ready so far if they reach `chunk_size`, else b"" (they wait for more)."""
        self._check_open()
        self._encode()
        if len(self._out) < self._chunk_size:
            return b""
        return self._hand_out()

    def finish(self) -> bytes:
        """Everything still pending, including the gzip trailer; the writer is then closed."""
        self._check_open()
        self._encode(final=True)
        if self._compressor is not None:
            self._out += self._compressor.flush()
        self._finished = True
        return self._hand_out()

    def _prepare(self, values: Sequence[str | None]) -> list[str]:
        null = self._fmt.null_value
        if not self._fmt.formula_guard:
            return [null if value is None else value for value in values]
        triggers = _FORMULA_TRIGGERS
        return [
            null
            if value is None
            else (self._guard(value) if value and value[0] in triggers else value)
            for value in values
        ]

    def _guard(self, value: str) -> str:
        if self._plain_number.fullmatch(value):
            return value
        return "'" + value

    def _encode(self, *, final: bool = False) -> None:
        text = self._text.getvalue()
        if not text and not final:
            return
        self._text.seek(0)
        self._text.truncate()
        try:
            data = self._encoder.encode(text, final)
        except UnicodeEncodeError as error:
            character = error.object[error.start : error.end]
            raise FormatError(
                f"{character!r} cannot be written in {self._fmt.encoding}; "
                "choose an encoding that has it, such as utf-8",
                file=self._file,
            ) from None
        if self._compressor is not None:
            data = self._compressor.compress(data)
        self._out += data

    def _hand_out(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        self.bytes_out += len(data)
        return data

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError("the writer is finished")


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
    moment = moment.astimezone(_zone(timezone))
    return moment.isoformat() if date_format == "iso8601" else moment.strftime(date_format)


def _zone(name: str) -> tzinfo:
    return UTC if name == "UTC" else ZoneInfo(name)
