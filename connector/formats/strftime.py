"""Numeric strftime patterns as regular expressions: the fast way to read common date forms.

Both date readers take a pattern such as `%d-%m-%Y %H:%M` apart the same way:
the per-cell converters (`formats.values`, Python's `re`) and the columnar
engine (`engine._datetimes`, Arrow's RE2). The fragments are those of
`_strptime` restricted to ASCII digits, so a match holds the fields
`datetime.strptime` would read; each reader only says how it writes a literal
character.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["DIRECTIVES", "strftime_body"]

DIRECTIVES = {
    "Y": r"(?P<Y>[0-9]{4})",
    "y": r"(?P<y>[0-9]{2})",
    "m": r"(?P<m>1[0-2]|0[1-9]|[1-9])",
    "d": r"(?P<d>3[01]|[12][0-9]|0[1-9]|[1-9]| [1-9])",
    "H": r"(?P<H>2[0-3]|[01][0-9]|[0-9])",
    "M": r"(?P<M>[0-5][0-9]|[0-9])",
    "S": r"(?P<S>[0-5][0-9]|[0-9])",
}
"""The directives read by a regular expression, each a named group of its field."""


def strftime_body(
    pattern: str, literal: Callable[[str], str | None]
) -> tuple[str, frozenset[str]] | None:
    r"""The regular expression of `pattern` (unanchored) and the directives it uses.

    A run of whitespace matches `\s+`, as in strptime; `literal` writes any
    other character, or refuses it with None. None when `pattern` has another
    directive (month names, `%j`, `%z`...), one twice, or a refused character:
    only strptime reads those.
    """
    parts: list[str] = []
    used: set[str] = set()
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "%":
            directive = pattern[index + 1 : index + 2]
            if directive == "%":
                parts.append("%")
            elif directive in DIRECTIVES and directive not in used:
                used.add(directive)
                parts.append(DIRECTIVES[directive])
            else:
                return None
            index += 2
            continue
        if char.isspace():
            while index < len(pattern) and pattern[index].isspace():
                index += 1
            parts.append(r"\s+")
            continue
        written = literal(char)
        if written is None:
            return None
        parts.append(written)
        index += 1
    return "".join(parts), frozenset(used)
