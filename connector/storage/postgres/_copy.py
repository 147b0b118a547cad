"""The bytes `COPY ... TO STDOUT` writes, read into Arrow columns by `pyarrow.csv` and
`pyarrow.compute`, not per row (the bytes `COPY ... FROM STDIN` reads are built by
`_copy_binary`).

`COPY (SELECT ..., array_to_json(col)) TO STDOUT (FORMAT csv)`, read by
`pyarrow.csv`. A JSON array of strings splits on `","` natively (a quote
inside a string is always escaped), and the escapes PostgreSQL writes are
undone by `pyarrow.compute` passes; only the rare cell that may hold a null
element is decoded by orjson. About 2x faster than fetching `text[]` through
psycopg, whose array loader runs in Python (5x on the profile pages of
`PostgresStore.profile_batches`, against `Profile` objects).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from connector.storage._text_bytes import holds_any

LIST = pa.list_(pa.string())


def _single(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def read_csv(
    data: bytes | bytearray, names: Sequence[str], types: Mapping[str, pa.DataType] | None = None
) -> pa.Table:
    """The output of `COPY (...) TO STDOUT (FORMAT csv)`, every column as text (or as `types`
    says), NULL as null: COPY writes NULL unquoted and empty, an empty text as `""`."""
    if not data:
        return pa.table(
            {name: pa.array([], (types or {}).get(name, pa.string())) for name in names}
        )
    convert = pa_csv.ConvertOptions(
        column_types={**dict.fromkeys(names, pa.string()), **(types or {})},
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=False,
    )
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    try:
        return pa_csv.read_csv(
            pa.BufferReader(data),
            read_options=pa_csv.ReadOptions(column_names=list(names), use_threads=False),
            parse_options=parse,
            convert_options=convert,
        )
    except pa.ArrowInvalid:
        # a row longer than a block (1 MiB) cannot be split: read the bytes as one block
        whole = pa_csv.ReadOptions(
            column_names=list(names), use_threads=False, block_size=len(data) + 1
        )
        return pa_csv.read_csv(
            pa.BufferReader(data),
            read_options=whole,
            parse_options=parse,
            convert_options=convert,
        )


def json_lists(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """JSON arrays of strings (from `array_to_json`) as `list<string>`; null stays null.

    Split natively on `","`, then unescaped natively (`_json_unescaped`). A
    `","` is a separator unless its first quote is escaped: a value ending in
    `",` is written `"\\","`. So a cell with a backslash before `","` (also
    found after a value ending in a backslash), and a cell that may hold a
    null element (`[null` or `,null`, also found in a value like "a,null";
    the columnar writes refuse null elements), is decoded by orjson.
    """
    texts = _single(texts)
    split = pc.split_pattern(pc.utf8_slice_codeunits(texts, 2, -2), '","')
    if holds_any(split.values, b"\\"):
        split = pa.ListArray.from_arrays(
            split.offsets, _json_unescaped(split.values), mask=split.is_null()
        )
    maybe_null = pc.or_(pc.match_substring(texts, ",null"), pc.starts_with(texts, "[null"))
    exact = pc.or_(maybe_null, pc.match_substring(texts, '\\","'))
    slow = np.flatnonzero(pc.fill_null(exact, False).to_numpy(zero_copy_only=False))
    if not len(slow):
        return split
    found = pc.take(texts, pa.array(slow)).to_pylist()
    decoded = pa.array([orjson.loads(text) for text in found], LIST)
    order = np.arange(len(texts), dtype=np.int64)
    order[slow] = len(texts) + np.arange(len(slow))
    return pc.take(pa.concat_arrays([split, decoded]), pa.array(order))


_JSON_ESCAPES = (
    ('\\"', '"'),
    ("\\n", "\n"),
    ("\\r", "\r"),
    ("\\t", "\t"),
    ("\\b", "\b"),
    ("\\f", "\f"),
)
"""The short escapes of PostgreSQL's `escape_json`; any other control character is `\\u00xx`."""


def _json_unescaped(values: pa.Array) -> pa.Array:
    """The text of JSON string bodies as PostgreSQL writes them, in `pyarrow.compute` passes.

    An escaped backslash becomes NUL first, which no PostgreSQL text holds, so
    `\\\\n` (a backslash, then "n") never reads as a newline; NUL becomes the
    backslash again last.
    """
    values = pc.replace_substring(values, "\\\\", "\x00")
    for escaped, raw in _JSON_ESCAPES:
        values = pc.replace_substring(values, escaped, raw)
    if len(values) > 0 and pc.any(pc.match_substring(values, "\\u")).as_py():
        for code in range(0x20):
            values = pc.replace_substring(values, f"\\u{code:04x}", chr(code))
    return pc.replace_substring(values, "\x00", "\\")
