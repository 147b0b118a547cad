"""The byte scans that decide whether a column needs escaping, and the SQLite cell encoding
that uses them, against the plain Python they replace (hypothesis)."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.errors import StoreError
from connector.storage._text_bytes import holds_any, holds_control, one_value_each, utf8_bytes
from connector.storage.columns import decode_values, encode_values
from connector.storage.sqlite._batches import _json_strings, decode_cells, encode_cells

LIST = pa.list_(pa.string())
TEXT = st.text(
    alphabet=st.sampled_from(
        ['"', "\\", ",", "\t", "\n", "\r", "\x01", "\x1f", " ", "a", "é", "😀"]
    ),
    max_size=5,
)
SPECIALS = st.sampled_from([b"\\\t\n\r", b'\\"', b"\\", b"\x1f"])


def _sliced(texts: list[str | None], start: int, large: bool) -> pa.Array:
    return pa.array(texts, pa.large_string() if large else pa.string())[start:]


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.none() | TEXT, max_size=8),
    start=st.integers(0, 8),
    large=st.booleans(),
    special=SPECIALS,
)
def test_the_byte_scans_find_exactly_what_a_regex_finds(
    texts: list[str | None], start: int, large: bool, special: bytes
) -> None:
    # a miss would let a value into COPY or a JSON text unescaped
    values = _sliced(texts, start, large)
    present = [text for text in values.to_pylist() if text is not None]
    pattern = re.compile("[" + re.escape(special.decode()) + "]")
    assert holds_any(values, special) == any(pattern.search(text) for text in present)
    assert holds_control(values) == any(re.search("[\x00-\x1f]", text) for text in present)
    assert bytes(utf8_bytes(values)) == "".join(present).encode()


@settings(max_examples=300, deadline=None)
@given(
    lists=st.lists(st.none() | st.lists(TEXT, max_size=3), max_size=8),
    start=st.integers(0, 8),
    chunked=st.booleans(),
)
def test_cells_are_encoded_as_the_row_path_encodes_them(
    lists: list[list[str] | None], start: int, chunked: bool
) -> None:
    values: pa.Array | pa.ChunkedArray = pa.array(lists, LIST)[start:]
    if chunked:
        values = pa.chunked_array([values], LIST)
    wanted = lists[start:]
    if any("\x1f" in value for values_ in wanted if values_ for value in values_):
        with pytest.raises(StoreError, match="U\\+001F"):
            encode_cells(values)
        return
    assert encode_cells(values).to_pylist() == [encode_values(each) for each in wanted]


CELL = st.text(alphabet=st.sampled_from(["a", " ", "é", "\x1e", "\x1f", ","]), max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    cells=st.lists(st.none() | CELL, max_size=8),
    start=st.integers(0, 8),
    chunked=st.booleans(),
)
def test_cells_are_decoded_as_the_row_path_and_the_split_decode_them(
    cells: list[str | None], start: int, chunked: bool
) -> None:
    # cells without a reserved character take a path of their own (lists built from offsets)
    column: pa.Array | pa.ChunkedArray = pa.array(cells, pa.string())[start:]
    if chunked:
        column = pa.chunked_array([column], pa.string())
    decoded = decode_cells(column)
    split = pc.split_pattern(
        pc.if_else(pc.equal(column, "\x1e"), pa.scalar(None, pa.string()), column), "\x1f"
    )
    assert decoded.type == LIST
    assert decoded.equals(split.combine_chunks() if chunked else split)
    assert [each or [] for each in decoded.to_pylist()] == [
        decode_values(cell) for cell in cells[start:]
    ]


def test_one_value_each_is_written_as_the_values_themselves() -> None:
    # the common case takes no join: the cells are the lists' values
    values = pa.array([["a"], ["b"], [""]], LIST)
    assert encode_cells(values).to_pylist() == ["a", "b", ""]
    assert encode_cells(pa.array([], LIST)).to_pylist() == []
    assert encode_cells(pa.array([["a"], [], ["c"]], LIST)).to_pylist() == ["a", "\x1e", "c"]


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(TEXT, max_size=8), start=st.integers(0, 8))
def test_keys_become_the_json_text_json_dumps_writes(texts: list[str], start: int) -> None:
    values = pa.array(texts, pa.string())[start:]
    listed = _json_strings(values)
    if any(re.search("[\x00-\x1f]", text) for text in texts[start:]):
        assert listed is None  # \\u escapes: the caller stages the keys instead
    else:
        assert listed is not None
        assert json.loads(listed) == texts[start:]


@settings(max_examples=200, deadline=None)
@given(
    lists=st.lists(st.none() | st.lists(TEXT, min_size=1, max_size=1), max_size=6)
    | st.lists(st.none() | st.lists(TEXT, max_size=2), max_size=6),
    start=st.integers(0, 6),
)
def test_one_value_each_means_every_list_holds_exactly_one(
    lists: list[list[str] | None], start: int
) -> None:
    wanted = all(each is not None and len(each) == 1 for each in lists[start:])
    assert one_value_each(pa.array(lists, LIST)[start:]) == wanted
