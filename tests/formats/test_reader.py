"""Streaming decode and parse: every format option, line numbers, and files that cannot be read."""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator

import pytest

from connector.config.formats import ImportFormat
from connector.errors import FormatError
from connector.formats.reader import DelimitedReader, Row, RowProblem, iter_decoded

DEFAULT = ImportFormat()


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def parse(
    data: bytes | str,
    fmt: ImportFormat = DEFAULT,
    *,
    chunk_size: int = 1 << 20,
    max_field_size: int = 16 << 20,
) -> tuple[list[str], list[Row | RowProblem]]:
    raw = data.encode(fmt.encoding) if isinstance(data, str) else data
    text = iter_decoded(chunked(raw, chunk_size), encoding=fmt.encoding, file="in.csv")
    reader = DelimitedReader(text, fmt, file="in.csv", max_field_size=max_field_size)
    return reader.columns, list(reader)


def rows(
    data: bytes | str, fmt: ImportFormat = DEFAULT, **kwargs: int
) -> list[tuple[int, list[str]]]:
    _, records = parse(data, fmt, **kwargs)
    assert all(isinstance(record, Row) for record in records), records
    return [(record.line, record.values) for record in records if isinstance(record, Row)]


# ---------------------------------------------------------------- dialect options


def test_header_names_the_columns_and_rows_start_on_line_2():
    columns, records = parse("id,email\n1,a@example.com\n2,b@example.com\n")
    assert columns == ["id", "email"]
    assert records == [Row(2, ["1", "a@example.com"]), Row(3, ["2", "b@example.com"])]


def test_semicolon_separator():
    fmt = ImportFormat(field_separator=";", decimal_separator=",")
    assert rows("id;amount\n1;12,50\n", fmt) == [(2, ["1", "12,50"])]


def test_tab_separator_written_as_backslash_t():
    fmt = ImportFormat(field_separator="\\t")
    assert rows("id\tname\n1\tAnn Lee\n", fmt) == [(2, ["1", "Ann Lee"])]


def test_custom_quote_char():
    fmt = ImportFormat(quote_char="'")
    assert rows("id,name\n1,'Lee, Ann'\n2,'it''s'\n", fmt) == [
        (2, ["1", "Lee, Ann"]),
        (3, ["2", "it's"]),
    ]


def test_escape_char_escapes_separators_and_quotes():
    fmt = ImportFormat(escape_char="\\")
    data = 'id,name\n1,Lee\\, Ann\n2,"say \\"hi\\""\n3,back\\\\slash\n'
    assert rows(data, fmt) == [
        (2, ["1", "Lee, Ann"]),
        (3, ["2", 'say "hi"']),
        (4, ["3", "back\\slash"]),
    ]


def test_quoted_fields_keep_separators_doubled_quotes_and_newlines():
    data = 'id,note\n1,"a, b"\n2,"he said ""hi"""\n3,"line one\nline two\r\nline three"\n4,x\n'
    assert rows(data) == [
        (2, ["1", "a, b"]),
        (3, ["2", 'he said "hi"']),
        (4, ["3", "line one\nline two\r\nline three"]),
        (7, ["4", "x"]),
    ]


def test_crlf_line_endings():
    assert rows("id,name\r\n1,Ann\r\n2,Bob\r\n") == [(2, ["1", "Ann"]), (3, ["2", "Bob"])]


def test_bare_cr_line_endings():
    assert rows("id,name\r1,Ann\r2,Bob\r") == [(2, ["1", "Ann"]), (3, ["2", "Bob"])]


def test_last_line_without_line_break_is_read():
    assert rows("id,name\n1,Ann") == [(2, ["1", "Ann"])]


def test_unicode_line_separators_inside_fields_are_data():
    data = "id,note\n1,a\x85b\u2028c\x0bd\x0ce\x1cf\n2,x\n"
    assert rows(data) == [(2, ["1", "a\x85b\u2028c\x0bd\x0ce\x1cf"]), (3, ["2", "x"])]


def test_utf8_byte_order_mark_is_not_part_of_the_first_column_name():
    columns, _ = parse(b"\xef\xbb\xbfid,name\n1,Ann\n")
    assert columns == ["id", "name"]


def test_byte_order_mark_surviving_decoding_is_stripped_from_the_header():
    reader = DelimitedReader(["\ufeffid,name\n1,Ann\n"], DEFAULT, file="in.csv")
    assert reader.columns == ["id", "name"]


def test_latin1_encoding():
    fmt = ImportFormat(encoding="latin-1")
    assert rows("id,city\n1,Sévérac\n2,Köln\n".encode("latin-1"), fmt) == [
        (2, ["1", "Sévérac"]),
        (3, ["2", "Köln"]),
    ]


def test_multi_value_cells_are_not_split_by_the_reader():
    assert rows("id,tags\n1,a|b|c\n") == [(2, ["1", "a|b|c"])]


def test_cells_are_not_trimmed_but_header_names_are():
    columns, records = parse(" id , name\n 1 , Ann \n")
    assert columns == ["id", "name"]
    assert records == [Row(2, [" 1 ", " Ann "])]


def test_headerless_file_uses_the_configured_columns_and_starts_on_line_1():
    fmt = ImportFormat(header=False, columns=["id", "name"])
    columns, records = parse("1,Ann\n2,Bob\n", fmt)
    assert columns == ["id", "name"]
    assert records == [Row(1, ["1", "Ann"]), Row(2, ["2", "Bob"])]


def test_headerless_empty_file_has_no_rows():
    fmt = ImportFormat(header=False, columns=["id"])
    assert parse(b"", fmt) == (["id"], [])


def test_headerless_ragged_first_row_is_a_row_problem():
    fmt = ImportFormat(header=False, columns=["id", "name"])
    _, records = parse("1\n2,Bob\n", fmt)
    assert records == [RowProblem(1, None, "expected 2 fields, found 1"), Row(2, ["2", "Bob"])]


# ---------------------------------------------------------------- streaming


COMPLEX = (
    'id;note;tags\r\n1;"a;b\r\nc ""q""";x|y\r\n\r\n2;é€😀;\r\n3;"\r";z\r\n4;plain;\r\n'
).encode()


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 64])
def test_tiny_chunks_parse_exactly_like_one_big_chunk(chunk_size):
    fmt = ImportFormat(field_separator=";")
    expected = parse(COMPLEX, fmt)
    assert parse(COMPLEX, fmt, chunk_size=chunk_size) == expected
    assert expected[1] == [
        Row(2, ["1", 'a;b\r\nc "q"', "x|y"]),
        Row(5, ["2", "é€😀", ""]),
        Row(6, ["3", "\r", "z"]),
        Row(8, ["4", "plain", ""]),
    ]


def test_text_pieces_need_not_align_with_lines():
    pieces = ["id,na", "me\n1,A", "nn\r", "\n2,Bob", "\n"]
    reader = DelimitedReader(pieces, DEFAULT, file="in.csv")
    assert list(reader) == [Row(2, ["1", "Ann"]), Row(3, ["2", "Bob"])]


def test_result_matches_the_csv_module_on_a_larger_file():
    lines = ["a,b,c\n"] + [f'{n},"x\n{n}",{n * 2}\n' for n in range(5000)]
    data = "".join(lines).encode()
    expected = list(csv.reader(data.decode().splitlines(keepends=True)))[1:]
    _, records = parse(data, chunk_size=4099)
    assert [record.values for record in records if isinstance(record, Row)] == expected
    assert [record.line for record in records][:3] == [2, 4, 6]


# ---------------------------------------------------------------- row problems


def test_ragged_rows_become_row_problems_and_parsing_continues():
    data = "a,b,c,d,e\n1,2,3,4,5\n1,2,3,4,5,6,7\n1,2\n9,9,9,9,9\n"
    _, records = parse(data)
    assert records == [
        Row(2, ["1", "2", "3", "4", "5"]),
        RowProblem(3, None, "expected 5 fields, found 7"),
        RowProblem(4, None, "expected 5 fields, found 2"),
        Row(5, ["9", "9", "9", "9", "9"]),
    ]


def test_empty_lines_are_skipped_and_line_numbers_stay_right():
    assert rows("id,name\n\n1,Ann\n\r\n\n2,Bob\n\n") == [(3, ["1", "Ann"]), (6, ["2", "Bob"])]


def test_text_after_a_closing_quote_is_a_row_problem_and_parsing_continues():
    _, records = parse('id,name\n1,"Ann"x\n2,Bob\n')
    assert records[1:] == [Row(3, ["2", "Bob"])]
    problem = records[0]
    assert isinstance(problem, RowProblem)
    assert problem.line == 2
    assert problem.reason == (
        "malformed record: text follows a closing quote ('\"'); a quote inside a quoted"
        " field must be written twice"
    )


def test_unclosed_quote_at_end_of_file_names_the_line_where_it_opened():
    with pytest.raises(FormatError) as caught:
        parse('id,name\n1,Ann\n2,"Bob\n3,Cy\n4,Di\n')
    assert caught.value.line == 3
    assert "never closed" in str(caught.value)
    assert str(caught.value).startswith("in.csv:3: ")


# ---------------------------------------------------------------- header problems


def test_empty_file_is_a_format_error():
    with pytest.raises(FormatError, match="file is empty"):
        parse(b"")


def test_file_of_blank_lines_is_empty():
    with pytest.raises(FormatError, match="file is empty"):
        parse("\n\r\n\n")


def test_header_only_file_has_zero_rows():
    assert parse("id,name\n") == (["id", "name"], [])


def test_duplicate_header_names_are_named_with_their_positions():
    with pytest.raises(FormatError) as caught:
        parse("id,email,name,email,id\n")
    message = str(caught.value)
    assert caught.value.line == 1
    assert "'email' (positions 2, 4)" in message
    assert "'id' (positions 1, 5)" in message


def test_empty_header_names_are_reported_by_position():
    with pytest.raises(FormatError, match="empty column names at positions 2, 4"):
        parse("id,,name, \n")


def test_header_after_leading_blank_lines_keeps_its_physical_line():
    columns, records = parse("\n\nid\n1\n")
    assert columns == ["id"]
    assert records == [Row(4, ["1"])]


# ---------------------------------------------------------------- bad bytes


def test_nul_byte_is_a_format_error_with_its_line():
    with pytest.raises(FormatError, match="NUL") as caught:
        parse(b"id,name\n1,Ann\n2,B\x00b\n")
    assert caught.value.line == 3


def test_utf16_file_read_as_utf8_fails_clearly():
    with pytest.raises(FormatError, match="contains a NUL character"):
        parse("id,name\n1,Ann\n".encode("utf-16-le"))


def test_invalid_utf8_names_the_line_bytes_and_the_setting():
    data = b"id,name\n1,Ann\n2,Bob\n3,Caf\xe9\n"
    with pytest.raises(FormatError) as caught:
        parse(data)
    assert caught.value.line == 4
    assert str(caught.value) == (
        "in.csv:4: bytes 0xe9 are not valid utf-8; set `format.encoding` (e.g. latin-1)"
    )


@pytest.mark.parametrize("chunk_size", [1, 3, 1 << 20])
def test_invalid_utf8_line_number_does_not_depend_on_chunking(chunk_size):
    data = b"id,name\n" + b"1,\xc3\xa9\n" * 5 + b"7,\xff\n"
    with pytest.raises(FormatError) as caught:
        parse(data, chunk_size=chunk_size)
    assert caught.value.line == 7


def test_multibyte_character_cut_at_end_of_file_is_reported():
    with pytest.raises(FormatError, match="not valid utf-8") as caught:
        parse(b"id,name\n1,\xe2\x82")
    assert caught.value.line == 2


# ---------------------------------------------------------------- limits


def test_fields_beyond_the_csv_default_limit_are_read():
    big = "x" * 200_000
    assert rows(f"id,blob\n1,{big}\n") == [(2, ["1", big])]


def test_field_longer_than_the_limit_is_a_format_error_naming_the_line():
    with pytest.raises(FormatError, match="field longer than 1,000 characters") as caught:
        parse(f'id,blob\n1,a\n2,"{"x" * 2000}"\n', max_field_size=1000)
    assert caught.value.line == 3


def test_field_limit_message_speaks_mebibytes():
    with pytest.raises(FormatError, match="field longer than 1 MiB"):
        parse('id,blob\n1,"' + "x" * ((1 << 20) + 10) + '"\n', max_field_size=1 << 20)


def test_line_without_break_longer_than_the_limit_stops_early():
    def endless() -> Iterator[str]:
        yield "id,blob\n1,"
        while True:
            yield "x" * 1000

    reader = DelimitedReader(endless(), DEFAULT, file="in.csv", max_field_size=10_000)
    with pytest.raises(FormatError, match="line is longer than") as caught:
        list(reader)
    assert caught.value.line == 2


# ---------------------------------------------------------------- gzip


CSV_BYTES = b"id,name\n1,Ann\n2,Bob\n"


def test_gzip_is_detected_by_magic_bytes_and_inflated():
    assert rows(gzip.compress(CSV_BYTES)) == [(2, ["1", "Ann"]), (3, ["2", "Bob"])]


def test_gzip_in_one_byte_chunks():
    assert rows(gzip.compress(CSV_BYTES), chunk_size=1) == [(2, ["1", "Ann"]), (3, ["2", "Bob"])]


def test_concatenated_gzip_members_are_all_read():
    data = gzip.compress(b"id,name\n1,Ann\n") + gzip.compress(b"2,Bob\n") + b"\x00" * 8
    assert rows(data, chunk_size=5) == [(2, ["1", "Ann"]), (3, ["2", "Bob"])]


def test_large_gzip_inflates_in_bounded_pieces():
    payload = b"id,n\n" + b"".join(b"%d,%d\n" % (n, n * n) for n in range(200_000))
    pieces = list(
        iter_decoded(chunked(gzip.compress(payload), 1 << 16), encoding="utf-8", file="x")
    )
    assert "".join(pieces) == payload.decode()
    assert max(len(piece) for piece in pieces) <= 256 << 10


def test_corrupt_gzip_is_a_format_error_naming_the_file():
    data = bytearray(gzip.compress(CSV_BYTES * 50))
    data[20:30] = b"\xff" * 10
    with pytest.raises(FormatError, match=r"^in\.csv: file is not valid gzip"):
        parse(bytes(data))


def test_truncated_gzip_is_a_format_error():
    data = gzip.compress(CSV_BYTES * 50)
    with pytest.raises(FormatError, match=r"gzip data ends early \(truncated file\?\)"):
        parse(data[: len(data) // 2])


def test_gzip_missing_only_its_trailer_is_truncated():
    data = gzip.compress(CSV_BYTES)
    with pytest.raises(FormatError, match="ends early"):
        parse(data[:-4])


def test_garbage_after_a_gzip_member_is_a_format_error():
    with pytest.raises(FormatError, match="not valid gzip"):
        parse(gzip.compress(CSV_BYTES) + b"garbage")


def test_gzip_bomb_is_refused_before_it_is_inflated():
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"0" * (1 << 20)
    bomb = b"".join(compressor.compress(block) for _ in range(128)) + compressor.flush()
    assert len(bomb) < 150 << 10
    sizes: list[int] = []

    def inflate() -> None:
        for piece in iter_decoded(chunked(bomb, 1 << 16), encoding="latin-1", file="bomb.gz"):
            sizes.append(len(piece))

    with pytest.raises(FormatError) as caught:
        inflate()
    assert str(caught.value) == "bomb.gz: inflates more than 1000x: refusing a possible gzip bomb"
    assert sum(sizes) <= 64 << 20


def test_well_compressed_small_file_is_not_mistaken_for_a_bomb():
    payload = b"0" * (8 << 20)
    pieces = iter_decoded(chunked(gzip.compress(payload), 1 << 16), encoding="utf-8", file="x")
    assert sum(len(piece) for piece in pieces) == len(payload)


def test_plain_file_starting_with_half_the_gzip_magic_is_not_inflated():
    fmt = ImportFormat(encoding="latin-1", header=False, columns=["a", "b"])
    assert rows(b"\x1f\x8a,x\n", fmt) == [(1, ["\x1f\x8a", "x"])]
