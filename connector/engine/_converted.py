"""What a converter returns for a flat column of pieces, and today's converter applied to texts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from connector.formats.values import ConversionError

__all__ = ["Converted", "by_cell"]


@dataclass(frozen=True, slots=True)
class Converted:
    """Canonical text per piece (null where rejected) and the reason for each rejected piece."""

    values: pa.StringArray
    reasons: dict[int, str] = field(default_factory=dict)


def by_cell(
    texts: list[str], convert: Callable[[str], str]
) -> tuple[list[str | None], dict[int, str]]:
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
