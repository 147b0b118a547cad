"""One check for the lists whose entries must differ (segment ids, goal names, column headers)."""

from __future__ import annotations

from pydantic_core import PydanticCustomError


def require_unique(values: list[str], *, kind: str, message: str, at: tuple[str, str]) -> None:
    """Raise `kind` when an entry repeats: `message` gets every repeated value as {values},
    and the error points at the first repeat (`at` = (list field, entry field)), so the
    message carries that entry's line in the goal file."""
    duplicates = sorted({value for value in values if values.count(value) > 1})
    if duplicates:
        again = next(i for i, value in enumerate(values) if value in values[:i])
        raise PydanticCustomError(
            kind, message, {"values": ", ".join(duplicates), "at": (at[0], again, at[1])}
        )
