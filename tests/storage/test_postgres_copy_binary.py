"""The binary COPY bytes built by `pyarrow.compute`: against a reference built field by field
with `struct` from PostgreSQL's documented format, and read back by a real server."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.errors import StoreError
from connector.storage.postgres._copy_binary import (
    bigint_field,
    copy_binary,
    text_array_fields,
    text_fields,
    timestamp_field,
)

LIST = pa.list_(pa.string())
TEXT = st.text(
    alphabet=st.sampled_from(['"', "\\", ",", "{", "}", "\t", "\n", " ", "a", "é", "😀"]),
    max_size=5,
) | st.sampled_from(["NULL", "", "\\N", '{"a"}', "\\."])
LISTS = st.lists(st.none() | st.lists(TEXT, min_size=1, max_size=1), max_size=8) | st.lists(
    st.none() | st.lists(TEXT, max_size=3), max_size=8
)


def _text_reference(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">i", -1)
    data = value.encode()
    return struct.pack(">i", len(data)) + data


def _array_reference(values: list[str] | None) -> bytes:
    """A `text[]` field as PostgreSQL's `array_send` writes it (the documented format)."""
    if values is None:
        return struct.pack(">i", -1)
    if not values:
        body = struct.pack(">iii", 0, 0, 25)
    else:
        body = struct.pack(">iiiii", 1, 0, 25, len(values), 1)
        body += b"".join(_text_reference(value) for value in values)
    return struct.pack(">i", len(body)) + body


def _as_column(values: list[list[str] | None], start: int, kind: str) -> pa.Array:
    """The same lists as the engine may hand them over: sliced, chunked or large."""
    if kind == "large":
        return pa.array(values, pa.large_list(pa.large_string()))[start:]
    column = pa.array(values, LIST)[start:]
    if kind == "chunked":
        return pa.chunked_array([column[:1], column[1:]], LIST)
    return column


@settings(max_examples=300, deadline=None)
@given(lists=LISTS, start=st.integers(0, 8), kind=st.sampled_from(["plain", "chunked", "large"]))
def test_text_array_fields_are_the_bytes_postgres_documents(
    lists: list[list[str] | None], start: int, kind: str
) -> None:
    # one value each, several, none ({}), null: each row a field of its own length
    fields = text_array_fields(_as_column(lists, start, kind))
    assert fields.to_pylist() == [_array_reference(each) for each in lists[start:]]


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.none() | TEXT, max_size=8), start=st.integers(0, 8))
def test_text_fields_are_a_length_and_the_utf8_bytes(texts: list[str | None], start: int) -> None:
    fields = text_fields(pa.array(texts, pa.string())[start:])
    assert fields.to_pylist() == [_text_reference(text) for text in texts[start:]]


def test_a_stream_is_the_header_one_row_per_value_and_the_trailer() -> None:
    moment = datetime(2026, 12, 7, 16, 30, 0, 123456, tzinfo=UTC)
    header, rows, trailer = copy_binary(
        [text_fields(pa.array(["a", None])), bigint_field(7), timestamp_field(moment)]
    )
    micros = (moment - datetime(2000, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    constant = struct.pack(">iq", 8, 7) + struct.pack(">iq", 8, micros)
    assert header == b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    assert rows.to_pybytes() == (
        struct.pack(">h", 3) + _text_reference("a") + constant
        + struct.pack(">h", 3) + _text_reference(None) + constant
    )  # fmt: skip
    assert trailer == b"\xff\xff"


def test_a_stream_of_no_rows_is_the_header_and_the_trailer() -> None:
    header, rows, trailer = copy_binary([text_fields(pa.array([], pa.string()))])
    assert (len(header), rows.size, trailer) == (19, 0, b"\xff\xff")


def test_a_null_inside_a_value_list_is_refused() -> None:
    with pytest.raises(StoreError, match="holds a null value"):
        text_array_fields(pa.array([["a", None]], LIST))


def test_fields_alone_cannot_make_rows() -> None:
    with pytest.raises(TypeError, match="at least one array"):
        copy_binary([bigint_field(1)])


# ------------------------------------------------------------------- read by the server


@pytest.fixture
def conn(postgres_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(
            'CREATE TABLE copied (n text, t text COLLATE "C", a text[], s bigint, at timestamptz)'
        )
        yield connection


@pytest.mark.postgres
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(st.none() | TEXT, st.none() | st.lists(TEXT, max_size=3)), max_size=6),
    seq=st.integers(-(2**63), 2**63 - 1),
    offset=st.integers(-(10**6), 10**6),
)
def test_the_server_reads_back_every_value_as_written(
    conn: psycopg.Connection, rows: list[tuple[str | None, list[str] | None]], seq: int, offset: int
) -> None:
    moment = datetime(2026, 12, 7, 16, 30, 0, 123456, tzinfo=UTC) + timedelta(seconds=offset)
    texts = [text for text, _ in rows]
    lists = [values for _, values in rows]
    stream = copy_binary(
        [
            text_fields(pa.array(range(len(rows)), pa.int64()).cast(pa.string())),
            text_fields(pa.array(texts, pa.string())),
            text_array_fields(pa.array(lists, LIST)),
            bigint_field(seq),
            timestamp_field(moment),
        ]
    )
    conn.execute("TRUNCATE copied")
    with conn.cursor() as cursor, cursor.copy("COPY copied FROM STDIN (FORMAT binary)") as copy:
        for piece in stream:
            copy.write(memoryview(piece))
    found = conn.execute("SELECT t, a, s, at FROM copied ORDER BY n::int").fetchall()
    assert found == [(text, values, seq, moment) for text, values in rows]
