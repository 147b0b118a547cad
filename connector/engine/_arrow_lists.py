"""Small helpers over Arrow text and list arrays that the export's cell builders share."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["flat_values", "per_distinct", "repeat_text", "with_values"]


def repeat_text(text: str, rows: int) -> pa.StringArray:
    result: pa.StringArray = pa.repeat(pa.scalar(text, pa.string()), rows)
    return result


def flat_values(lists: pa.ListArray) -> pa.StringArray:
    """The values under the lists' offsets, in order (those under null rows included)."""
    offsets = lists.offsets
    start = offsets[0].as_py()
    values: pa.StringArray = lists.values.slice(start, offsets[-1].as_py() - start)
    return values


def with_values(lists: pa.ListArray, values: pa.StringArray) -> pa.ListArray:
    """`lists` holding `values` instead (same length), leaving out the null ones."""
    offsets = pc.subtract(lists.offsets, lists.offsets[0])
    if values.null_count:
        running = pc.cumulative_sum(pc.cast(values.is_valid(), pa.int32()))
        kept = pa.concat_arrays([pa.array([0], pa.int32()), running])
        offsets = pc.take(kept, offsets)
        values = values.drop_null()
    mask = lists.is_null() if lists.null_count else None
    result: pa.ListArray = pa.ListArray.from_arrays(offsets, values, mask=mask)
    return result


def per_distinct(
    values: pa.StringArray,
    transform: Callable[[str], str | None],
    *,
    skip: pa.BooleanArray | None = None,
) -> pa.StringArray:
    """`transform` applied once per distinct value (values where `skip` holds stay as they are)."""
    if len(values) == 0:
        return values
    subject = values if skip is None else pc.filter(values, pc.invert(skip))
    if len(subject) == 0:
        return values
    encoded = pc.dictionary_encode(subject)
    done = pa.array([transform(v) for v in encoded.dictionary.to_pylist()], pa.string())
    result: pa.StringArray = pc.take(done, encoded.indices)
    if skip is not None:
        result = pc.replace_with_mask(values, pc.invert(skip), result)
    return result
