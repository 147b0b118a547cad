"""ArrowWriter writes exactly the bytes DelimitedWriter writes, for every format option."""

from __future__ import annotations

import gzip

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.config.formats import ExportFormat
from connector.errors import FormatError
from connector.formats.arrow_writer import ArrowWriter, GzipStream
from connector.formats.writer import QUOTED_EMPTY, DelimitedWriter

Rows = list[list[str | None]]

_ALPHABET = st.sampled_from(
    [*"ab1.,;|\t\"'\\\r\n =+-@x", "ü", "€", "😀", "\x01", "0", "9", "]", "^"]
)
_CELL = st.one_of(
    st.none(),
    st.text(_ALPHABET, max_size=8),
    st.sampled_from(["-12.5", "-12,5", "+7", "-", "=SUM(A1)", "", "\r", "-1,2,3", "12"]),
)
_SPELLING = st.sampled_from(["", "NULL", QUOTED_EMPTY, "a,b", "=x", "N/A"])


@st.composite
def formats(draw: st.DrawFn) -> ExportFormat:
    separator = draw(st.sampled_from([",", ";", "\t", "|", "^"]))
    decimal = draw(st.sampled_from([".", ","]).filter(lambda c: c != separator))
    multi = draw(st.sampled_from(["|", "#"]).filter(lambda c: c not in (separator, decimal)))
    quote = draw(st.sampled_from(['"', "'", "~"]).filter(lambda c: c not in (separator,)))
    escape = draw(st.sampled_from([None, "\\", "!"]))
    return ExportFormat(
        field_separator=separator,
        decimal_separator=decimal,
        multi_value_separator=multi,
        quote_char=quote,
        escape_char=escape,
        quote_all=draw(st.booleans()),
        formula_guard=draw(st.booleans()),
        line_terminator=draw(st.sampled_from(["\n", "\r\n"])),
        null_value=draw(_SPELLING),
        empty_value=draw(_SPELLING),
        header=draw(st.booleans()),
        encoding=draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"])),
    )


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], Rows]:
    width = draw(st.integers(1, 4))
    headers = draw(st.lists(st.text(_ALPHABET, max_size=5), min_size=width, max_size=width))
    rows = draw(st.lists(st.lists(_CELL, min_size=width, max_size=width), max_size=12))
    return headers, rows


def old_bytes(fmt: ExportFormat, headers: list[str], rows: Rows, *, gzip: bool = False) -> bytes:
    writer = DelimitedWriter(fmt, gzip=gzip)
    writer.write_header(headers)
    writer.write_rows(rows)
    return writer.drain() + writer.finish()


def new_bytes(fmt: ExportFormat, headers: list[str], rows: Rows, *, gzip: bool = False) -> bytes:
    writer = ArrowWriter(fmt, gzip=gzip)
    writer.write_header(headers)
    columns = [pa.array([row[i] for row in rows], pa.string()) for i in range(len(headers))]
    writer.write_table(pa.Table.from_arrays(columns, names=[str(i) for i in range(len(headers))]))
    return writer.drain() + writer.finish()


@settings(max_examples=400, deadline=None)
@given(fmt=formats(), table=tables())
def test_bytes_equal_delimited_writers_for_random_tables_and_formats(
    fmt: ExportFormat, table: tuple[list[str], Rows]
) -> None:
    headers, rows = table
    assert new_bytes(fmt, headers, rows) == old_bytes(fmt, headers, rows)


def test_gzip_output_is_one_valid_member_of_the_same_text() -> None:
    rows: Rows = [[str(n), f"v{n}", None] for n in range(5000)]
    fmt = ExportFormat()
    packed = new_bytes(fmt, ["n", "v", "x"], rows, gzip=True)
    assert packed[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed) == old_bytes(fmt, ["n", "v", "x"], rows)


def test_an_empty_gzip_export_is_still_a_valid_gz() -> None:
    assert gzip.decompress(ArrowWriter(ExportFormat(), gzip=True).finish()) == b""


def test_drain_waits_for_chunk_size_and_finish_hands_out_the_rest() -> None:
    writer = ArrowWriter(ExportFormat(), chunk_size=100)
    writer.write_table(pa.table({"a": ["short"]}))
    assert writer.drain() == b""
    writer.write_table(pa.table({"a": ["x" * 60, "y" * 60]}))
    first = writer.drain()
    rest = writer.finish()
    assert first + rest == b"short\n" + b"x" * 60 + b"\n" + b"y" * 60 + b"\n"
    assert writer.rows_written == 3
    assert writer.bytes_out == len(first) + len(rest)


def test_a_character_missing_from_the_encoding_is_a_clear_error() -> None:
    writer = ArrowWriter(ExportFormat(encoding="latin-1"), file="s3://b/out.csv")
    with pytest.raises(FormatError, match="'€' cannot be written in latin-1"):
        writer.write_table(pa.table({"a": ["price €5"]}))


def test_the_writer_refuses_rows_after_finish() -> None:
    writer = ArrowWriter(ExportFormat())
    writer.finish()
    with pytest.raises(RuntimeError):
        writer.write_table(pa.table({"a": ["late"]}))


@pytest.mark.parametrize("level", [1, 2, 3])
def test_every_igzip_level_writes_gzip_that_the_standard_library_reads(level: int) -> None:
    stream = GzipStream(level)
    data = b"".join(f"{n};{n * n}\n".encode() for n in range(10_000))
    packed = stream.compress(data[:5000]) + stream.compress(data[5000:]) + stream.flush()
    assert gzip.decompress(packed) == data
