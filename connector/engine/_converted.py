"""What a vectorised converter returns for a flat column of pieces, and the exact fallback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from connector.formats.values import ConversionError

__all__ = ["Converted", "by_cell", "patch"]


@dataclass(frozen=True, slots=True)
class Converted:
    """Canonical text per piece (null where rejected) and the reason for each rejected piece."""

    values: pa.StringArray
    reasons: dict[int, str] = field(default_factory=dict)


def by_cell(texts: list[str], convert: Callable[[str], str]) -> tuple[list[str | None], dict[int, str]]:
    """Today's converter on each text: the oracle itself, for the cells a fast path leaves."""
    results: list[str | None] = []
    reasons: dict[int, str] = {}
    for position, text in enumerate(texts):
        try:
            results.append(convert(text))
        except ConversionError as error:
            results.append(None)
            reasons[position] = str(error)
    return results, reasons


def patch(
    fast: pa.StringArray,
    done: pa.BooleanArray,
    pieces: pa.StringArray,
    convert: Callable[[str], str],
) -> Converted:
    """`fast` where `done`, and today's converter on the other pieces (which should be rare)."""
    left = pc.invert(done)
    positions = pc.indices_nonzero(left)
    if not len(positions):
        return Converted(fast)
    results, reasons = by_cell(pieces.filter(left).to_pylist(), convert)
    values = pc.replace_with_mask(fast, left, pa.array(results, pa.string()))
    flat = positions.to_pylist()
    return Converted(values, {flat[local]: reason for local, reason in reasons.items()})
