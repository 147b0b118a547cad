"""Export writing: what reaches the file, in which bytes, and that our reader reads it back."""

from __future__ import annotations

import gzip
import random
import re
from collections.abc import Sequence

import pytest

from connector.config.formats import ExportFormat, ImportFormat
from connector.errors import FormatError
from connector.formats.reader import DelimitedReader, Row, iter_decoded
from connector.formats.writer import DelimitedWriter, format_date, format_number

TRICKY = [
    ["1", "plain", ""],
    ["2", "comma, semicolon; tab\tpipe|", "quote \" and ' both"],
    ["3", "multi\nline\r\nvalue\rcr", "back\\slash"],
    ["4", "ünïcødé € 😀", "  spaced  "],
    ["5", "=SUM(A1:A9)", "-12.5"],
    ["6", "lone\rcarriage return", "\r"],
    ["7", "control\x01=chars\x01", "\x01"],
]


def write(
    fmt: ExportFormat, rows: Sequence[Sequence[str | None]], *, header: list[str], **kwargs: bool
) -> bytes:
    writer = DelimitedWriter(fmt, **kwargs)
    writer.write_header(header)
    writer.write_rows(rows)
    return writer.drain() + writer.finish()


def read_back(data: bytes, fmt: ExportFormat) -> tuple[list[str], list[list[str]]]:
    import_fmt = ImportFormat(
        field_separator=fmt.field_separator,
        decimal_separator=fmt.decimal_separator,
        multi_value_separator=fmt.multi_value_separator,
        quote_char=fmt.quote_char,
        escape_char=fmt.escape_char,
        encoding=fmt.encoding,
    )
    text = iter_decoded([data], encoding=fmt.encoding, file="out.csv")
    reader = DelimitedReader(text, import_fmt, file="out.csv")
    records = list(reader)
    assert all(isinstance(record, Row) for record in records), records
    return reader.columns, [record.values for record in records if isinstance(record, Row)]


@pytest.mark.parametrize(
    "fmt",
    [
        ExportFormat(formula_guard=False),
        ExportFormat(formula_guard=False, field_separator=";", decimal_separator=","),
        ExportFormat(formula_guard=False, field_separator="\\t"),
        ExportFormat(formula_guard=False, quote_char="'"),
        ExportFormat(formula_guard=False, escape_char="\\"),
        ExportFormat(formula_guard=False, quote_all=True),
        ExportFormat(formula_guard=False, line_terminator="\r\n"),
        ExportFormat(formula_guard=False, encoding="utf-16"),
    ],
    ids=["default", "semicolon", "tab", "single-quote", "escape", "quote-all", "crlf", "utf-16"],
)
def test_every_value_survives_a_round_trip_through_the_reader(fmt):
    data = write(fmt, TRICKY, header=["id", "a", "b"])
    assert read_back(data, fmt) == (["id", "a", "b"], TRICKY)


def test_gzip_output_is_a_valid_gz_of_the_same_text():
    fmt = ExportFormat()
    plain = write(fmt, TRICKY, header=["id", "a", "b"])
    packed = write(fmt, TRICKY, header=["id", "a", "b"], gzip=True)
    assert packed[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed) == plain


def test_gzip_output_of_many_chunks_decompresses_whole():
    writer = DelimitedWriter(ExportFormat(), gzip=True, chunk_size=1 << 12)
    writer.write_header(["n", "square"])
    out = bytearray()
    for start in range(0, 50_000, 1000):
        writer.write_rows([str(n), str(n * n)] for n in range(start, start + 1000))
        out += writer.drain()
    out += writer.finish()
    text = gzip.decompress(bytes(out)).decode()
    assert text.count("\n") == 50_001
    assert text.endswith("49999,2499900001\n")


def test_drain_hands_out_nothing_below_chunk_size_and_everything_on_finish():
    writer = DelimitedWriter(ExportFormat(), chunk_size=100)
    writer.write_row(["short"])
    assert writer.drain() == b""
    writer.write_rows([["x" * 60], ["y" * 60]])
    first = writer.drain()
    assert len(first) >= 100
    writer.write_row(["tail"])
    rest = writer.finish()
    assert first + rest == b"short\n" + b"x" * 60 + b"\n" + b"y" * 60 + b"\ntail\n"
    assert writer.rows_written == 4
    assert writer.bytes_out == len(first) + len(rest)


def test_text_buffer_is_encoded_as_it_passes_chunk_size():
    writer = DelimitedWriter(ExportFormat(), chunk_size=1 << 10)
    writer.write_rows([["z" * 100]] * 1000)
    assert writer._text.tell() < 1 << 10
    assert len(writer.drain()) == 101 * 1000


def test_writer_refuses_rows_after_finish():
    writer = DelimitedWriter(ExportFormat())
    writer.finish()
    with pytest.raises(RuntimeError):
        writer.write_row(["late"])


def test_empty_export_with_gzip_is_still_a_valid_gz():
    writer = DelimitedWriter(ExportFormat(), gzip=True)
    assert gzip.decompress(writer.finish()) == b""


# ---------------------------------------------------------------- cell rules


def _line(fmt: ExportFormat, values: list[str | None]) -> str:
    writer = DelimitedWriter(fmt)
    writer.write_row(values)
    return writer.finish().decode(fmt.encoding)


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+2", "'=1+2"),
        ("+31 6 1234", "'+31 6 1234"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", '"\'\rcmd"'),
        ("-", "'-"),
        ("-12.5", "-12.5"),
        ("+7", "+7"),
        ("-0", "-0"),
        ("plain=text", "plain=text"),
    ],
)
def test_formula_guard_quotes_formulas_but_leaves_plain_numbers_alone(cell, written):
    assert _line(ExportFormat(), [cell]) == written + "\n"


def test_fast_and_careful_paths_agree_on_random_rows():
    pool = [
        "",
        None,
        "x",
        "=x",
        "-1",
        "-1.5",
        "+2",
        "a\rb",
        "@",
        "+",
        "a,b",
        '"q"',
        "\tt",
        "a\x01=b",
    ]
    rng = random.Random(3)
    table = [[rng.choice(pool) for _ in range(4)] for _ in range(500)]
    fmt = ExportFormat(null_value="NULL")

    def expected(cell: str | None) -> str:
        if cell is None:
            return "NULL"
        if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not re.fullmatch(
            r"[+-]?[0-9]+(\.[0-9]+)?", cell
        ):
            return "'" + cell
        return cell

    data = write(fmt, table, header=["a", "b", "c", "d"])
    assert read_back(data, fmt)[1] == [[expected(cell) for cell in row] for row in table]


def test_formula_guard_knows_the_exports_decimal_comma():
    fmt = ExportFormat(field_separator=";", decimal_separator=",")
    assert _line(fmt, ["-12,5", "-1,2,3"]) == "-12,5;'-1,2,3\n"


def test_formula_guard_off_writes_cells_as_they_are():
    assert _line(ExportFormat(formula_guard=False), ["=1+2", "@x"]) == "=1+2,@x\n"


def test_none_becomes_null_value_and_empty_stays_empty():
    fmt = ExportFormat(null_value="NULL")
    assert _line(fmt, ["1", None, "", "x"]) == "1,NULL,,x\n"


def test_default_null_value_is_an_empty_cell():
    assert _line(ExportFormat(), [None, "a"]) == ",a\n"


def test_quote_all_quotes_every_cell():
    assert _line(ExportFormat(quote_all=True), ["1", "", "a b"]) == '"1","","a b"\n'


def test_minimal_quoting_only_quotes_what_needs_it():
    assert _line(ExportFormat(), ["1", "a,b", 'say "x"']) == '1,"a,b","say ""x"""\n'


def test_crlf_line_terminator():
    assert _line(ExportFormat(line_terminator="\r\n"), ["a", "b"]) == "a,b\r\n"


def test_header_is_skipped_when_the_format_has_no_header():
    writer = DelimitedWriter(ExportFormat(header=False))
    writer.write_header(["id", "email"])
    writer.write_row(["1", "a@example.com"])
    assert writer.finish() == b"1,a@example.com\n"
    assert writer.rows_written == 1


def test_header_is_written_first_and_is_not_counted_as_a_row():
    writer = DelimitedWriter(ExportFormat())
    writer.write_header(["id", "email"])
    writer.write_row(["1", "a@example.com"])
    assert writer.finish() == b"id,email\n1,a@example.com\n"
    assert writer.rows_written == 1


def test_latin1_export_is_encoded_in_latin1():
    assert _line(ExportFormat(encoding="latin-1"), ["Köln"]).encode("latin-1") == b"K\xf6ln\n"


def test_character_missing_from_the_encoding_is_a_clear_error():
    writer = DelimitedWriter(ExportFormat(encoding="latin-1"), file="s3://b/out.csv")
    writer.write_row(["price €5"])
    with pytest.raises(FormatError, match="'€' cannot be written in latin-1"):
        writer.finish()


def test_utf8_sig_writes_one_byte_order_mark_for_the_whole_file():
    writer = DelimitedWriter(ExportFormat(encoding="utf-8-sig"), chunk_size=8)
    out = b""
    for n in range(20):
        writer.write_row([str(n)])
        out += writer.drain()
    out += writer.finish()
    assert out.count(b"\xef\xbb\xbf") == 1
    assert out.startswith(b"\xef\xbb\xbf0\n1\n")


# ---------------------------------------------------------------- value formatting


@pytest.mark.parametrize(
    ("canonical", "separator", "written"),
    [
        ("12.50", ",", "12,50"),
        ("-0.5", ",", "-0,5"),
        ("42", ",", "42"),
        ("12.50", ".", "12.50"),
        ("n/a", ",", "n/a"),
        ("1.2.3", ",", "1.2.3"),
    ],
)
def test_format_number_uses_the_exports_decimal_separator(canonical, separator, written):
    assert format_number(canonical, separator) == written


@pytest.mark.parametrize(
    ("canonical", "date_format", "timezone", "written"),
    [
        ("2024-03-01", "%d-%m-%Y", "Europe/Amsterdam", "01-03-2024"),
        ("2024-03-01", "iso8601", "Europe/Amsterdam", "2024-03-01"),
        ("2024-03-01", "%d-%m-%Y", "Pacific/Kiritimati", "01-03-2024"),
        ("2024-03-01T23:30:00+00:00", "%d-%m-%Y %H:%M", "Europe/Amsterdam", "02-03-2024 00:30"),
        ("2024-07-01T09:30:00+00:00", "iso8601", "Europe/Amsterdam", "2024-07-01T11:30:00+02:00"),
        ("2024-03-01T09:30:00", "iso8601", "UTC", "2024-03-01T09:30:00+00:00"),
        ("2024-03-01T09:30:00+00:00", "%Y%m%d", "America/New_York", "20240301"),
        ("not a date", "%d-%m-%Y", "UTC", "not a date"),
        ("2024-02-30", "%d-%m-%Y", "UTC", "2024-02-30"),
    ],
)
def test_format_date_writes_the_exports_format_in_its_timezone(
    canonical, date_format, timezone, written
):
    assert format_date(canonical, date_format, timezone) == written
