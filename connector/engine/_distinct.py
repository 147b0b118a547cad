"""Convert each distinct value once with today's converter, then spread the results back.

Dates, booleans and the unusual date-times repeat heavily in real files (a
century of days is 36,525 values; a boolean column has a handful), so one
Python call per distinct value is both exact by construction and cheap.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from connector.engine._converted import Converted, by_cell

__all__ = ["convert_distinct", "convert_rest"]


def convert_distinct(pieces: pa.StringArray, convert: Callable[[str], str]) -> Converted:
    """Today's converter per distinct piece; every piece gets its value's result or reason."""
    encoded = pc.dictionary_encode(pieces)
    results, reasons = by_cell(encoded.dictionary.to_pylist(), convert)
    values = pa.array(results, pa.string()).take(encoded.indices)
    if not reasons:
        return Converted(values)
    failed = pc.is_in(encoded.indices, value_set=pa.array(list(reasons), encoded.indices.type))
    positions = pc.indices_nonzero(failed).to_pylist()
    which = encoded.indices.filter(failed).to_pylist()
    return Converted(values, {p: reasons[w] for p, w in zip(positions, which, strict=True)})


def convert_rest(
    fast: pa.StringArray,
    done: pa.BooleanArray,
    pieces: pa.StringArray,
    convert: Callable[[str], str],
) -> Converted:
    """`fast` where `done`; the other pieces through `convert_distinct`, results and reasons."""
    left = pc.invert(done)
    positions = pc.indices_nonzero(left)
    if not len(positions):
        return Converted(fast)
    rest = convert_distinct(pieces.filter(left), convert)
    flat = positions.to_pylist()
    return Converted(
        pc.replace_with_mask(fast, left, rest.values),
        {flat[local]: reason for local, reason in rest.reasons.items()},
    )
