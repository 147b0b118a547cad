"""Arrow columns to and from the bytes of `COPY`, built with `pyarrow.compute`, not per row.

Writing: `COPY ... FROM STDIN` in text format. Each `list<string>` becomes an
array literal with every element quoted (`{"a","b"}`, `{}` for no values,
`\\N` for null), then the text format's own escapes apply. Measured on 200k
rows of 11 columns: building the bytes this way and one `copy.write` was
about 4x faster than psycopg's `write_row` with binary types.

Reading: `COPY (SELECT ..., array_to_json(col)) TO STDOUT (FORMAT csv)`, read
by `pyarrow.csv`. A JSON array whose text has no backslash holds no quote
inside an element, so it splits on `","` natively; the rare cells with
escapes are decoded by orjson (6x `json.loads`). About 2x faster than fetching `text[]`
through psycopg, whose array loader runs in Python.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from connector.errors import StoreError

LIST = pa.list_(pa.string())
_COPY_SPECIAL = r"[\\\t\n\r]"
_ARRAY_SPECIAL = r'[\\"]'


def _has(values: pa.Array, pattern: str) -> bool:
    return len(values) > 0 and bool(pc.any(pc.match_substring_regex(values, pattern)).as_py())


def _copy_escaped(values: pa.Array) -> pa.Array:
    """Text as the COPY text format wants it: backslash, tab, newline, CR escaped."""
    if not _has(values, _COPY_SPECIAL):
        return values
    for raw, escaped in (("\\", "\\\\"), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        values = pc.replace_substring(values, raw, escaped)
    return values


def _single(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def text_cells(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A string column as COPY fields (null: `\\N`)."""
    return pc.fill_null(_copy_escaped(_single(values).cast(pa.string())), "\\N")


def array_cells(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A `list<string>` column as COPY fields holding `text[]` literals."""
    lists = _single(values)
    flat = lists.values
    if flat.null_count:
        raise StoreError("a property value list holds a null value")
    if _has(flat, _ARRAY_SPECIAL):
        flat = pc.replace_substring(pc.replace_substring(flat, "\\", "\\\\"), '"', '\\"')
    rebuilt = pa.ListArray.from_arrays(lists.offsets, _copy_escaped(flat), mask=lists.is_null())
    joined = pc.binary_join_element_wise('{"', pc.binary_join(rebuilt, '","'), '"}', "")
    joined = pc.if_else(pc.equal(pc.list_value_length(lists), 0), "{}", joined)
    return pc.fill_null(joined, "\\N")


def copy_rows(fields: Sequence[pa.Array | pa.Scalar]) -> pa.Buffer:
    """Fields (from `text_cells` / `array_cells`; a scalar repeats) as rows of a COPY stream."""
    rows = pc.binary_join_element_wise(*fields, "\t")
    lines = pc.binary_join_element_wise(rows, "", "\n")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset :]
    data = lines.buffers()[2]
    if data is None:
        return pa.py_buffer(b"")
    return data.slice(int(offsets[0]), int(offsets[len(lines)]) - int(offsets[0]))


def read_csv(data: bytes, names: Sequence[str]) -> pa.Table:
    """The output of `COPY (...) TO STDOUT (FORMAT csv)`, every column as text, NULL as null."""
    if not data:
        return pa.table({name: pa.array([], pa.string()) for name in names})
    return pa_csv.read_csv(
        io.BytesIO(data),
        read_options=pa_csv.ReadOptions(column_names=list(names), use_threads=False),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=False,
        ),
    )


def json_lists(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """JSON arrays of strings (from `array_to_json`) as `list<string>`; null stays null."""
    texts = _single(texts)
    split = pc.split_pattern(pc.utf8_slice_codeunits(texts, 2, -2), '","')
    escaped = pc.fill_null(pc.match_substring(texts, "\\"), False).to_numpy(zero_copy_only=False)
    slow = np.flatnonzero(escaped)
    if not len(slow):
        return split
    decoded = pa.array([orjson.loads(texts[int(row)].as_py()) for row in slow], LIST)
    order = np.arange(len(texts), dtype=np.int64)
    order[slow] = len(texts) + np.arange(len(slow))
    return pc.take(pa.concat_arrays([split, decoded]), pa.array(order))
