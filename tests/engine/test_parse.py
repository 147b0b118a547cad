"""Arrow piece parsing: every format option, exact line numbers, and every whole-file error.

Expected values are written out; `same_as_reader` also checks each case
against `DelimitedReader`, the oracle the new path must reproduce.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator

import pyarrow as pa
import pytest

from connector.config.formats import ImportFormat
from connector.engine import parse
from connector.engine.parse import PieceReader
from connector.errors import FormatError
from connector.formats.reader import DelimitedReader, Row, RowProblem, iter_decoded

DEFAULT = ImportFormat()
Rows = list[tuple[int, list[str]]]


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def read(
    data: bytes | str,
    fmt: ImportFormat = DEFAULT,
    *,
    chunk_size: int = 1 << 20,
    piece_bytes: int = 8 << 20,
    max_field_size: int = 16 << 20,
) -> tuple[list[str], Rows, list[RowProblem]]:
    raw = data.encode(fmt.encoding) if isinstance(data, str) else data
    reader = PieceReader(
        chunked(raw, chunk_size),
        fmt,
        file="in.csv",
        piece_bytes=piece_bytes,
        max_field_size=max_field_size,
    )
    rows: Rows = []
    problems: list[RowProblem] = []
    for piece in reader:
        assert piece.table.column_names == reader.columns
        assert all(column.type == pa.string() for column in piece.table.columns)
        assert all(column.null_count == 0 for column in piece.table.columns)
        assert piece.records == piece.table.num_rows + len(piece.problems)
        values = zip(*(column.to_pylist() for column in piece.table.columns), strict=True)
        rows += [
            (line, list(row)) for line, row in zip(piece.lines().to_pylist(), values, strict=True)
        ]
        problems += piece.problems
    return reader.columns, rows, problems


def oracle(data: bytes, fmt: ImportFormat, chunk_size: int) -> tuple[list[str], Rows, list]:
    text = iter_decoded(chunked(data, chunk_size), encoding=fmt.encoding, file="in.csv")
    reader = DelimitedReader(text, fmt, file="in.csv")
    records = list(reader)
    rows = [(record.line, record.values) for record in records if isinstance(record, Row)]
    return reader.columns, rows, [record for record in records if not isinstance(record, Row)]


def same_as_reader(
    data: bytes | str, fmt: ImportFormat = DEFAULT, **kwargs: int
) -> tuple[list[str], Rows, list[RowProblem]]:
    """Read with PieceReader, assert DelimitedReader reads the same, return the result."""
    raw = data.encode(fmt.encoding) if isinstance(data, str) else data
    result = read(raw, fmt, **kwargs)
    assert result == oracle(raw, fmt, kwargs.get("chunk_size", 1 << 20))
    return result


def rows(data: bytes | str, fmt: ImportFormat = DEFAULT, **kwargs: int) -> Rows:
    _, good, problems = same_as_reader(data, fmt, **kwargs)
    assert problems == []
    return good


def error(data: bytes | str, fmt: ImportFormat = DEFAULT, **kwargs: int) -> FormatError:
    """The FormatError PieceReader raises; DelimitedReader must raise the same one."""
    raw = data.encode(fmt.encoding) if isinstance(data, str) else data
    with pytest.raises(FormatError) as caught:
        read(raw, fmt, **kwargs)
    chunks = chunked(raw, kwargs.get("chunk_size", 1 << 20))
    limit = kwargs.get("max_field_size", 16 << 20)

    def delimited_reader() -> None:
        text = iter_decoded(chunks, encoding=fmt.encoding, file="in.csv")
        list(DelimitedReader(text, fmt, file="in.csv", max_field_size=limit))

    with pytest.raises(FormatError) as expected:
        delimited_reader()
    assert str(caught.value) == str(expected.value)
    assert caught.value.line == expected.value.line
    return caught.value


@pytest.fixture
def exact_pieces(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """First lines of the pieces read by the exact path (always the first, with the header)."""
    seen: list[int] = []
    exact = PieceReader._exact

    def spy(self: PieceReader, cut: parse.Cut, reader: DelimitedReader) -> parse.Piece:
        seen.append(cut.line)
        return exact(self, cut, reader)

    monkeypatch.setattr(PieceReader, "_exact", spy)
    return seen


@pytest.fixture
def rescans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """First lines of pieces given to the csv module after the first piece."""
    seen: list[int] = []
    resumed = PieceReader._resumed

    def spy(self: PieceReader, cut: parse.Cut) -> DelimitedReader:
        seen.append(cut.line)
        return resumed(self, cut)

    monkeypatch.setattr(PieceReader, "_resumed", spy)
    return seen


# ---------------------------------------------------------------- dialect options


def test_header_names_the_columns_and_rows_start_on_line_2():
    assert same_as_reader("id,email\n1,a@example.com\n2,b@example.com\n") == (
        ["id", "email"],
        [(2, ["1", "a@example.com"]), (3, ["2", "b@example.com"])],
        [],
    )


def test_semicolon_separator():
    fmt = ImportFormat(field_separator=";", decimal_separator=",")
    assert rows("id;amount\n1;12,50\n", fmt) == [(2, ["1", "12,50"])]


def test_tab_separator():
    fmt = ImportFormat(field_separator="\\t")
    data = "id\tname\n" + "".join(f'{n}\t"Lee\t{n}"\n' for n in range(50))
    assert rows(data, fmt, piece_bytes=64)[-1] == (51, ["49", "Lee\t49"])


def test_custom_quote_char():
    fmt = ImportFormat(quote_char="'")
    assert rows("id,name\n1,'Lee, Ann'\n2,'it''s'\n3,\"x\"\n", fmt, piece_bytes=1) == [
        (2, ["1", "Lee, Ann"]),
        (3, ["2", "it's"]),
        (4, ["3", '"x"']),
    ]


def test_escape_char_escapes_separators_quotes_and_line_breaks(exact_pieces):
    fmt = ImportFormat(escape_char="\\")
    data = 'id,name\n1,Lee\\, Ann\n2,"say \\"hi\\""\n3,back\\\\slash\n4,two\\\nlines\n5,x\n'
    assert rows(data, fmt, piece_bytes=4) == [
        (2, ["1", "Lee, Ann"]),
        (3, ["2", 'say "hi"']),
        (4, ["3", "back\\slash"]),
        (5, ["4", "two\nlines"]),
        (7, ["5", "x"]),
    ]
    assert len(exact_pieces) > 3  # an escape character always takes the exact path


def test_quoted_fields_keep_separators_doubled_quotes_and_line_breaks():
    data = 'id,note\n1,"a, b"\n2,"he said ""hi"""\n3,"line one\nline two\r\nline three"\n4,x\n'
    expected = [
        (2, ["1", "a, b"]),
        (3, ["2", 'he said "hi"']),
        (4, ["3", "line one\nline two\r\nline three"]),
        (7, ["4", "x"]),
    ]
    for piece_bytes in (1, 10, 30, 1 << 20):
        assert rows(data, piece_bytes=piece_bytes) == expected


def test_empty_and_null_looking_cells_stay_text_and_untrimmed():
    data = 'id,a,b\n1,,""\n2,NA,null\n3, x ,N/A\n'
    assert rows(data, piece_bytes=1) == [
        (2, ["1", "", ""]),
        (3, ["2", "NA", "null"]),
        (4, ["3", " x ", "N/A"]),
    ]


def test_one_column_file_keeps_a_quoted_empty_cell_and_skips_blank_lines():
    assert rows('id\nx\n""\n\n \ny\n', piece_bytes=1) == [
        (2, ["x"]),
        (3, [""]),
        (5, [" "]),
        (6, ["y"]),
    ]


def test_crlf_line_endings():
    assert rows("id,name\r\n1,Ann\r\n2,Bob\r\n", piece_bytes=1) == [
        (2, ["1", "Ann"]),
        (3, ["2", "Bob"]),
    ]


def test_bare_cr_line_endings():
    assert rows('id,name\r1,Ann\r2,Bob\r3,"C\ry"\r', piece_bytes=1) == [
        (2, ["1", "Ann"]),
        (3, ["2", "Bob"]),
        (4, ["3", "C\ry"]),
    ]


def test_last_line_without_line_break_is_read():
    assert rows("id,name\n1,Ann\n2,Bob", piece_bytes=1) == [(2, ["1", "Ann"]), (3, ["2", "Bob"])]


def test_unicode_line_separators_inside_fields_are_data():
    data = "id,note\n1,a\x85b\u2028c\x0bd\x0ce\x1cf\n2,x\n"
    assert rows(data, piece_bytes=1) == [
        (2, ["1", "a\x85b\u2028c\x0bd\x0ce\x1cf"]),
        (3, ["2", "x"]),
    ]


def test_utf8_byte_order_mark_is_dropped_once():
    assert same_as_reader(b"\xef\xbb\xbfid,name\n1,Ann\n")[0] == ["id", "name"]
    assert same_as_reader(b"\xef\xbb\xbf\xef\xbb\xbfid,name\n1,Ann\n")[0] == ["id", "name"]
    _, good, _ = same_as_reader(b"id,name\n1,Ann\n2,\xef\xbb\xbfBob\n", piece_bytes=1)
    assert good[-1] == (3, ["2", "\ufeffBob"])


def test_byte_order_mark_split_over_chunks():
    assert same_as_reader(b"\xef\xbb\xbfid\n1\n", chunk_size=1)[0] == ["id"]


def test_latin1_encoding():
    fmt = ImportFormat(encoding="latin-1")
    data = 'id,city\n1,Sévérac\n2,Köln\n3,"a;ß"\n'.encode("latin-1")
    assert rows(data, fmt, piece_bytes=1, chunk_size=3) == [
        (2, ["1", "Sévérac"]),
        (3, ["2", "Köln"]),
        (4, ["3", "a;ß"]),
    ]


def test_utf16_encoding_with_its_byte_order_mark():
    fmt = ImportFormat(encoding="utf-16")
    assert rows("id,name\n1,Zoë\n".encode("utf-16"), fmt) == [(2, ["1", "Zoë"])]


def test_non_ascii_separator_is_read_exactly():
    fmt = ImportFormat(field_separator="§")
    assert rows('id§name\n1§Ann\n2§"B§b"\n', fmt, piece_bytes=1) == [
        (2, ["1", "Ann"]),
        (3, ["2", "B§b"]),
    ]


def test_cells_are_not_trimmed_but_header_names_are():
    columns, good, _ = same_as_reader(" id , name\n 1 , Ann \n")
    assert columns == ["id", "name"]
    assert good == [(2, [" 1 ", " Ann "])]


def test_headerless_file_uses_the_configured_columns_and_starts_on_line_1():
    fmt = ImportFormat(header=False, columns=["id", "name"])
    assert same_as_reader("1,Ann\n2,Bob\n3,Cy\n", fmt, piece_bytes=1) == (
        ["id", "name"],
        [(1, ["1", "Ann"]), (2, ["2", "Bob"]), (3, ["3", "Cy"])],
        [],
    )


def test_headerless_file_drops_a_byte_order_mark_from_its_first_value_only():
    fmt = ImportFormat(header=False, columns=["id"])
    data = b"\xef\xbb\xbf\xef\xbb\xbfA\n\xef\xbb\xbfB\n"
    assert rows(data, fmt, piece_bytes=1) == [(1, ["A"]), (2, ["\ufeffB"])]


def test_headerless_empty_file_has_no_rows():
    fmt = ImportFormat(header=False, columns=["id"])
    assert same_as_reader(b"", fmt) == (["id"], [], [])


def test_headerless_ragged_first_row_is_a_row_problem():
    fmt = ImportFormat(header=False, columns=["id", "name"])
    _, good, problems = same_as_reader("1\n2,Bob\n", fmt)
    assert problems == [RowProblem(1, None, "expected 2 fields, found 1")]
    assert good == [(2, ["2", "Bob"])]


# ---------------------------------------------------------------- pieces and line numbers


COMPLEX = (
    'id;note;tags\r\n1;"a;b\r\nc ""q""";x|y\r\n\r\n2;é€😀;\r\n3;"\r";z\r\n4;plain;\r\n'
).encode()


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 64])
@pytest.mark.parametrize("piece_bytes", [1, 5, 16, 1 << 20])
def test_chunks_and_pieces_do_not_change_the_result(chunk_size, piece_bytes):
    fmt = ImportFormat(field_separator=";")
    assert rows(COMPLEX, fmt, chunk_size=chunk_size, piece_bytes=piece_bytes) == [
        (2, ["1", 'a;b\r\nc "q"', "x|y"]),
        (5, ["2", "é€😀", ""]),
        (6, ["3", "\r", "z"]),
        (8, ["4", "plain", ""]),
    ]


def test_a_large_well_formed_file_is_read_by_pyarrow(exact_pieces, rescans):
    lines = ["a,b,c\n"] + [f'{n},"x\n{n}",{n * 2}\n' for n in range(5000)]
    data = "".join(lines).encode()
    expected = list(csv.reader(io.StringIO(data.decode(), newline="")))[1:]
    _, good, _ = same_as_reader(data, chunk_size=4099, piece_bytes=8192)
    assert [values for _, values in good] == expected
    assert [line for line, _ in good][:3] == [2, 4, 6]
    assert exact_pieces == [1]  # only the header
    assert rescans == []  # line numbers counted from the line breaks inside values


def test_blank_lines_in_a_piece_make_its_line_numbers_a_rescan(rescans):
    data = "a,b\n" + "".join(f'{n},"x\r\ny"\n\n' for n in range(500))
    assert rows(data, piece_bytes=512)[-1] == (1 + 3 * 499 + 1, ["499", "x\r\ny"])
    assert len(rescans) > 5


def test_lines_are_computed_only_when_asked(rescans):
    data = "id,n\n" + "".join(f'{n},"a\nb"\n\n' for n in range(2000))
    reader = PieceReader([data.encode()], DEFAULT, file="in.csv", piece_bytes=4096)
    pieces = list(reader)
    assert len(pieces) > 3
    assert rescans == []
    assert pieces[2].lines()[0].as_py() == 2 + 3 * sum(p.table.num_rows for p in pieces[:2])
    assert len(rescans) == 1
    pieces[2].lines()
    assert len(rescans) == 1


def test_only_the_piece_with_a_ragged_row_takes_the_exact_path(exact_pieces):
    good_rows = [f"{n},x\n" for n in range(3000)]
    good_rows[2000] = "2000,x,extra\n"
    _, good, problems = same_as_reader("id,v\n" + "".join(good_rows), piece_bytes=4096)
    assert problems == [RowProblem(2002, None, "expected 2 fields, found 3")]
    assert len(good) == 2999
    assert len(exact_pieces) == 2  # the header and the piece with the ragged row


def test_empty_lines_are_skipped_and_line_numbers_stay_right():
    assert rows("id,name\n\n1,Ann\n\r\n\n2,Bob\n\n", piece_bytes=1) == [
        (3, ["1", "Ann"]),
        (6, ["2", "Bob"]),
    ]


def test_dense_quoting_is_checked_by_re2_and_still_exact():
    fmt = ImportFormat(field_separator=";")
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerows([["id", "note"], *([str(n), f'x;"{n}"\ny'] for n in range(500))])
    data = out.getvalue()
    assert rows(data, fmt, piece_bytes=2048)[-1] == (1000, ["499", 'x;"499"\ny'])
    broken = data.replace('"250";', '"250"x;')
    _, good, problems = same_as_reader(broken, fmt, piece_bytes=2048)
    assert [problem.line for problem in problems] == [502, 503]  # 503: the rest of 502
    assert len(good) == 499


def test_stray_quotes_are_read_exactly_across_pieces():
    block = '1,a"b\n2,"x\ny"\n3,c"\n4,"d""e"\n5,z\n'
    for piece_bytes in (1, 8, 30, 1 << 20):
        _, good, problems = same_as_reader("id,v\n" + block * 20, piece_bytes=piece_bytes)
        assert problems == []
        assert good[:5] == [
            (2, ["1", 'a"b']),
            (3, ["2", "x\ny"]),
            (5, ["3", 'c"']),
            (6, ["4", 'd"e']),
            (7, ["5", "z"]),
        ]
        assert len(good) == 100


def test_record_longer_than_a_piece_is_read_whole():
    note = "line\n" * 500
    data = f'id,note\n1,"{note}"\n2,"{note}"\n3,x\n'
    assert rows(data, piece_bytes=64) == [(2, ["1", note]), (503, ["2", note]), (1004, ["3", "x"])]


def test_header_spanning_several_pieces():
    data = '"i\nd",' + '"' + "n\n" * 100 + '"\n1,2\n'
    columns, good, _ = same_as_reader(data, piece_bytes=1)
    assert columns == ["i\nd", "n\n" * 99 + "n"]
    assert good == [(103, ["1", "2"])]


def test_row_longer_than_pyarrows_block_is_read():
    big = "x" * (3 << 20)
    assert rows(f"id,blob\n1,a\n2,{big}\n3,b\n", piece_bytes=1 << 10) == [
        (2, ["1", "a"]),
        (3, ["2", big]),
        (4, ["3", "b"]),
    ]


# ---------------------------------------------------------------- row problems


def test_ragged_rows_become_row_problems_and_parsing_continues():
    data = "a,b,c,d,e\n1,2,3,4,5\n1,2,3,4,5,6,7\n1,2\n9,9,9,9,9\n"
    assert same_as_reader(data, piece_bytes=1)[1:] == (
        [(2, ["1", "2", "3", "4", "5"]), (5, ["9", "9", "9", "9", "9"])],
        [
            RowProblem(3, None, "expected 5 fields, found 7"),
            RowProblem(4, None, "expected 5 fields, found 2"),
        ],
    )


def test_text_after_a_closing_quote_is_a_row_problem_and_parsing_continues():
    _, good, problems = same_as_reader('id,name\n0,a\n1,"Ann"x\n2,Bob\n', piece_bytes=12)
    assert good == [(2, ["0", "a"]), (4, ["2", "Bob"])]
    assert problems == [
        RowProblem(
            3,
            None,
            "malformed record: text follows a closing quote ('\"'); a quote inside a quoted"
            " field must be written twice",
        )
    ]


# ---------------------------------------------------------------- whole-file errors


def test_unclosed_quote_names_the_line_where_it_opened():
    raised = error('id,name\n1,Ann\n2,"Bob\n3,Cy\n4,Di\n', piece_bytes=1)
    assert raised.line == 3
    assert "never closed" in str(raised)


def test_unclosed_quote_in_the_header():
    assert error('id,"name\n1,Ann\n').line == 1


def test_empty_file_is_a_format_error():
    assert "file is empty" in str(error(b""))


def test_file_of_blank_lines_is_empty():
    assert "file is empty" in str(error("\n\r\n\n"))


def test_header_only_file_has_zero_rows():
    assert same_as_reader("id,name\n") == (["id", "name"], [], [])


def test_duplicate_header_names_are_named_with_their_positions():
    raised = error("id,email,name,email,id\n1,2,3,4,5\n")
    assert raised.line == 1
    assert "'email' (positions 2, 4)" in str(raised)


def test_empty_header_names_are_reported_by_position():
    assert "empty column names at positions 2, 4" in str(error("id,,name, \n"))


def test_malformed_header_is_a_format_error():
    assert "header: malformed record" in str(error('id,"na"me\n1,2\n'))


def test_header_after_leading_blank_lines_keeps_its_physical_line():
    assert same_as_reader("\n\nid\n1\n") == (["id"], [(4, ["1"])], [])


def test_nul_byte_is_a_format_error_with_its_line():
    assert error(b"id,name\n1,Ann\n2,B\x00b\n", piece_bytes=1).line == 3


def test_utf16_file_read_as_utf8_fails_clearly():
    assert "contains a NUL character" in str(error("id,name\n1,Ann\n".encode("utf-16-le")))


def test_nul_in_a_non_utf8_file():
    assert error(b"id\n1\n\x00\n", ImportFormat(encoding="latin-1")).line == 3


def test_invalid_utf8_names_the_line_bytes_and_the_setting():
    raised = error(b"id,name\n1,Ann\n2,Bob\n3,Caf\xe9\n")
    assert str(raised) == (
        "in.csv:4: bytes 0xe9 are not valid utf-8; set `format.encoding` (e.g. latin-1)"
    )


@pytest.mark.parametrize("chunk_size", [1, 3, 1 << 20])
def test_invalid_utf8_line_number_does_not_depend_on_chunking(chunk_size):
    data = b"id,name\n" + b"1,\xc3\xa9\n" * 5 + b"7,\xff\n"
    assert error(data, chunk_size=chunk_size, piece_bytes=4).line == 7


def test_invalid_utf8_in_a_file_with_bare_cr_line_endings():
    assert error(b"id\r1\r2\r\xff\r", chunk_size=2).line == 4


def test_multibyte_character_cut_at_end_of_file_is_reported():
    assert "not valid utf-8" in str(error(b"id,name\n1,\xe2\x82"))


def test_bad_bytes_for_another_encoding():
    raised = error(b"id\n1\n\xff\n", ImportFormat(encoding="ascii"))
    assert str(raised).startswith("in.csv:3: bytes 0xff are not valid ascii")


def test_fields_beyond_the_csv_default_limit_are_read():
    big = "x" * 200_000
    assert rows(f"id,blob\n1,{big}\n") == [(2, ["1", big])]


@pytest.mark.parametrize("piece_bytes", [16, 8 << 20])
def test_field_longer_than_the_limit_is_a_format_error_naming_the_line(piece_bytes):
    data = f'id,blob\n1,a\n2,"{"x" * 2000}"\n3,b\n'
    raised = error(data, max_field_size=1000, piece_bytes=piece_bytes)
    assert raised.line == 3
    assert "field longer than 1,000 characters" in str(raised)


def test_line_without_break_longer_than_the_limit_stops_early():
    def endless() -> Iterator[bytes]:
        yield b"id,blob\n1,"
        while True:
            yield b"x" * 1000

    reader = PieceReader(endless(), DEFAULT, file="in.csv", max_field_size=10_000)
    with pytest.raises(FormatError, match="line is longer than 40,000 characters") as caught:
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
    assert rows(data, chunk_size=5, piece_bytes=4) == [(2, ["1", "Ann"]), (3, ["2", "Bob"])]


def test_corrupt_gzip_is_a_format_error_naming_the_file():
    data = bytearray(gzip.compress(CSV_BYTES * 50))
    data[20:30] = b"\xff" * 10
    assert str(error(bytes(data))).startswith("in.csv: file is not valid gzip")


def test_truncated_gzip_is_a_format_error():
    data = gzip.compress(CSV_BYTES * 50)
    assert "gzip data ends early (truncated file?)" in str(error(data[: len(data) // 2]))


def test_garbage_after_a_gzip_member_is_a_format_error():
    assert "not valid gzip" in str(error(gzip.compress(CSV_BYTES) + b"garbage"))


def test_gzip_bomb_is_refused():
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"0" * (1 << 20)
    bomb = b"".join(compressor.compress(block) for _ in range(128)) + compressor.flush()
    with pytest.raises(FormatError) as caught:
        list(PieceReader(chunked(bomb, 1 << 16), DEFAULT, file="bomb.gz"))
    assert str(caught.value) == "bomb.gz: inflates more than 1000x: refusing a possible gzip bomb"


def test_delimited_reader_splits_a_held_back_cr_at_the_end_of_the_file():
    """Found by the oracle test: a last line after a lone CR used to stay glued to it."""
    data = b'id,v\r1,"a"x\r2'
    assert same_as_reader(data, chunk_size=1)[2] == [
        RowProblem(
            2,
            None,
            "malformed record: text follows a closing quote ('\"'); a quote inside a quoted"
            " field must be written twice",
        ),
        RowProblem(3, None, "expected 2 fields, found 1"),
    ]
