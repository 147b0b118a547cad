"""The four mapping rules, as pure functions over a property's values.

Values are canonical text (see `connector.formats.values`). Each rule takes
the current values (empty when the property is absent) and a cell's values
(never empty: empty cells change nothing) and returns the new values.
"""

from __future__ import annotations

from collections.abc import Callable

from connector.formats.values import ConversionError, add_numbers

Rule = Callable[[list[str], list[str]], list[str]]


def set_values(current: list[str], incoming: list[str]) -> list[str]:
    """*set*: the cell's values replace whatever was there."""
    return incoming


def set_if_empty(current: list[str], incoming: list[str]) -> list[str]:
    """*set_if_empty*: write only a property that has no value yet."""
    return current if current else incoming


def add_values(current: list[str], incoming: list[str]) -> list[str]:
    """*add*: append the values not already present, keeping the list unique and in order."""
    if not current:
        return incoming if len(incoming) == 1 else list(dict.fromkeys(incoming))
    missing = [value for value in dict.fromkeys(incoming) if value not in current]
    return [*current, *missing] if missing else current


def sum_values(current: list[str], incoming: list[str]) -> list[str]:
    """*sum*: add exactly in decimal arithmetic; an absent property counts as 0.

    Exact at any size (no 28-digit context rounding). Raises ValueError when
    the stored value is not a number, so the row is rejected rather than the
    total silently reset.
    """
    if not current and len(incoming) == 1:
        return incoming  # 0 + x is x, already canonical
    stored = current[0] if current else ""
    try:
        total = add_numbers(stored, "0")
    except ConversionError:
        raise ValueError(f"cannot add to the stored value {stored!r}: not a number") from None
    for value in incoming:
        total = add_numbers(total, value)
    return [total]


RULES: dict[str, Rule] = {
    "set": set_values,
    "set_if_empty": set_if_empty,
    "add": add_values,
    "sum": sum_values,
}
