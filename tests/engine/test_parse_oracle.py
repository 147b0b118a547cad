"""Property: on any file, PieceReader yields exactly what DelimitedReader yields.

Random files mix separators, quote and escape characters, quoted and
unquoted cells holding separators, quotes and line breaks, empty cells,
blank lines, ragged rows, malformed quoting, CRLF / LF / CR endings, byte
order marks, bad bytes, NUL, latin-1 and gzip; they arrive in random chunks
and are cut into tiny pieces so most records meet a piece boundary. The
values, the line of every row, the problems and any FormatError must agree.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.config.formats import ImportFormat
from connector.engine.parse import PieceReader
from connector.errors import FormatError
from connector.formats.reader import DelimitedReader, Row, iter_decoded

EXAMPLES = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Outcome = tuple[list[str], list[tuple[int, list[str]]], list[object]] | str


@dataclass(frozen=True)
class Case:
    data: bytes
    fmt: ImportFormat
    chunk_size: int
    piece_bytes: int


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    sep = draw(st.sampled_from([",", ";", "|", "\t"]))
    quote = draw(st.sampled_from(['"', '"', "'"]))
    escape = draw(st.sampled_from([None, None, None, "\\"]))
    latin1 = draw(st.integers(0, 5)) == 0
    header = draw(st.booleans())
    width = draw(st.integers(1, 4))
    names = [f"c{n}" for n in range(width)]
    newline = draw(st.sampled_from(["\n", "\n", "\r\n", "\r\n", "\r"]))
    alphabet = ["a", "b", " ", "é", sep, quote, "\n", "\r\n", "\r", "\x85"]
    alphabet += [] if latin1 else ["€", "😀", "\u2028", "\ufeff"]
    alphabet += [escape] if escape else []
    text = st.lists(st.sampled_from(alphabet), max_size=5).map("".join)

    clean = draw(st.integers(0, 2)) == 0  # well-formed: mostly read by pyarrow
    specials = (sep, quote, "\r", "\n", escape or quote)

    def cell(value: str, style: str) -> str:
        if clean and (style != "plain" or any(char in value for char in specials)):
            style = "quoted"
        if style == "quoted":
            return quote + value.replace(quote, quote * 2) + quote
        if style == "broken":
            return quote + value + quote + "x"
        return value

    styles = st.sampled_from(["plain", "plain", "plain", "quoted", "quoted", "broken"])
    lines = [sep.join(names)] if header else []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 6)) == 0:
            lines.append("")  # a blank line
            continue
        ragged = 0 if clean else draw(st.sampled_from([0, 0, 0, 0, 0, 0, -1, 1]))
        count = max(1, width + ragged)
        lines.append(sep.join(cell(draw(text), draw(styles)) for _ in range(count)))
    body = newline.join(lines) + draw(st.sampled_from(["", newline, newline + newline]))
    if not clean and draw(st.integers(0, 9)) == 0:
        body += f"{sep}{quote}never closed{newline}x"
    data = body.encode("latin-1" if latin1 else "utf-8")
    if not latin1 and draw(st.integers(0, 6)) == 0:
        data = b"\xef\xbb\xbf" + data
    damage = b"" if clean else draw(st.sampled_from([b""] * 6 + [b"\xff", b"\xc3", b"\x00"]))
    if damage:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + damage + data[at:]
    if draw(st.integers(0, 7)) == 0:
        half = draw(st.integers(0, len(data)))
        data = gzip.compress(data[:half]) + gzip.compress(data[half:])
    fmt = ImportFormat(
        field_separator=sep,
        multi_value_separator="#" if sep == "|" else "|",
        quote_char=quote,
        escape_char=escape,
        encoding="latin-1" if latin1 else "utf-8",
        header=header,
        columns=None if header else names,
    )
    return Case(data, fmt, draw(st.integers(1, 64)), draw(st.integers(1, 200)))


def oracle(case: Case) -> Outcome:
    try:
        text = iter_decoded(
            chunked(case.data, case.chunk_size), encoding=case.fmt.encoding, file="f"
        )
        reader = DelimitedReader(text, case.fmt, file="f")
        records = list(reader)
    except FormatError as error:
        return str(error)
    rows = [(record.line, record.values) for record in records if isinstance(record, Row)]
    return reader.columns, rows, [record for record in records if not isinstance(record, Row)]


def pieces(case: Case) -> Outcome:
    try:
        reader = PieceReader(
            chunked(case.data, case.chunk_size),
            case.fmt,
            file="f",
            piece_bytes=case.piece_bytes,
        )
        rows: list[tuple[int, list[str]]] = []
        problems: list[object] = []
        for piece in reader:
            columns = [column.to_pylist() for column in piece.table.columns]
            lines = piece.lines().to_pylist()
            values = zip(*columns, strict=True)
            rows += [(line, list(row)) for line, row in zip(lines, values, strict=True)]
            problems += piece.problems
            assert piece.records == len(lines) + len(piece.problems)
    except FormatError as error:
        return str(error)
    return reader.columns, rows, problems


@EXAMPLES
@given(cases())
def test_piece_reader_reads_exactly_what_delimited_reader_reads(case: Case) -> None:
    assert pieces(case) == oracle(case)


@settings(max_examples=60, deadline=None)
@given(cases(), st.integers(1 << 10, 1 << 16))
def test_larger_pieces_read_the_same(case: Case, piece_bytes: int) -> None:
    big = Case(case.data * 50, case.fmt, case.chunk_size * 64, piece_bytes)
    assert pieces(big) == oracle(big)
