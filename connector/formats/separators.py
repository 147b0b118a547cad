"""Guessing the field separator of a header that did not split, so the message can name it."""

from __future__ import annotations

import csv

__all__ = ["wrong_separator_hint"]

CANDIDATES = (",", ";", "\t", "|")
"""Field separators seen in the wild, most common first (the first wins a tie)."""


def _split(name: str, separator: str) -> list[str]:
    try:
        return next(csv.reader([name], delimiter=separator), [name])
    except csv.Error:
        return name.split(separator)


def wrong_separator_hint(columns: list[str], separator: str) -> str | None:
    """Why a header with a single column holding another separator did not split, or None.

    A `,` file read with `field_separator: ";"` has one column named
    `id,email,points`: the useful message says so and names the separator that
    would split it, instead of listing the columns that seem to be missing.
    """
    if len(columns) != 1:
        return None
    [name] = columns
    best: tuple[int, str] | None = None
    for candidate in CANDIDATES:
        if candidate == separator or candidate not in name:
            continue
        fields = len(_split(name, candidate))
        if fields > 1 and (best is None or fields > best[0]):
            best = (fields, candidate)
    if best is None:
        return None
    fields, candidate = best
    return (
        f"the header has one column, {name!r}, which contains {candidate!r}: the file seems "
        f"to be separated by {candidate!r}, not {separator!r} (set format.field_separator: "
        f"{_spelled(candidate)} to read its {fields} columns)"
    )


def _spelled(separator: str) -> str:
    """The separator as it would be written in a goal file."""
    return '"\\t"' if separator == "\t" else f'"{separator}"'
