"""Numbers: the canonical and decimal-separator forms in RE2, the rest through today's converter.

`_number_converter` in `connector.formats.values` returns a cell unchanged when
it already is canonical (`-?(0|[1-9][0-9]*)(\\.[0-9]+)?`, not a negative zero),
and with a decimal separator other than "." it returns the cell with that
separator replaced when the result is canonical and the cell has no ".". Those
two branches are reproduced here on whole columns; every other piece ("+5",
"007", ".5", "-0", invalid text) goes to the converter itself, once per distinct
value, so its result and its message are today's by construction.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from connector.engine._converted import Converted
from connector.engine._distinct import convert_rest

__all__ = ["convert_numbers"]

_CANONICAL = r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$"
_NEGATIVE_ZERO = r"^-0(?:\.0+)?$"


def _canonical(texts: pa.StringArray) -> pa.BooleanArray:
    return pc.and_(
        pc.match_substring_regex(texts, _CANONICAL),
        pc.invert(pc.match_substring_regex(texts, _NEGATIVE_ZERO)),
    )


def convert_numbers(
    pieces: pa.StringArray, decimal_separator: str, convert: Callable[[str], str]
) -> Converted:
    """Canonical decimal text for each (stripped, non-empty) piece, or its rejection."""
    if decimal_separator == ".":
        return convert_rest(pieces, _canonical(pieces), pieces, convert)
    dotted = pc.replace_substring(pieces, pattern=decimal_separator, replacement=".")
    done = pc.and_(pc.invert(pc.match_substring(pieces, ".")), _canonical(dotted))
    if decimal_separator in "0123456789+-":
        # a negative cell then takes the converter's slower branch, whose result may differ
        done = pc.and_(done, pc.invert(pc.starts_with(dotted, "-")))
    return convert_rest(dotted, done, pieces, convert)
