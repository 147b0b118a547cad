"""JSON lines from SQLite (`json_object` rows joined into one BLOB) read by pyarrow.

How the store hands many rows to Arrow without a Python object per cell: the
export's pages and the engine's key lookups both read this way.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.json as pa_json


def json_lines_table(data: bytes, schema: pa.Schema) -> pa.Table:
    """JSON lines into a table of `schema`; one block when a line outgrows pyarrow's default."""
    explicit = pa_json.ParseOptions(explicit_schema=schema)
    try:
        return pa_json.read_json(io.BytesIO(data), parse_options=explicit)
    except pa.ArrowInvalid:
        whole = pa_json.ReadOptions(block_size=len(data) + 1)
        return pa_json.read_json(io.BytesIO(data), read_options=whole, parse_options=explicit)
