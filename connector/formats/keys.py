"""Match keys as both the stored profiles and the incoming cells are compared: normalised.

`Ann@Example.com ` in one file and `ann@example.com` in another are one
customer. The modes are `config.goals.KeyNormalization`. A goal's `match.normalize` names how its key cells are written
before they are looked up or stored, and the store keeps, per unique
property, the normalisation its stored values follow, so both sides are
always compared alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from connector.formats.values import ConversionError

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_SHOWN = 60


def _trim(value: str) -> str:
    return value.strip()


def _lowercase(value: str) -> str:
    return value.strip().lower()


def _email(value: str) -> str:
    text = value.strip().lower()
    if text and not _EMAIL.fullmatch(text):
        shown = text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
        raise ConversionError(
            f"{shown!r} is not an e-mail address (one @ with text on both sides, no spaces)"
        )
    return text


_NORMALIZERS: dict[str, Callable[[str], str]] = {
    "trim": _trim,
    "lowercase": _lowercase,
    "email": _email,
}


def key_normalizer(mode: str) -> Callable[[str], str]:
    """The function a key cell goes through; raises `ConversionError` for a cell that
    cannot be a key in this mode (an `email` key that is not an address)."""
    return _NORMALIZERS[mode]


def stored_key_normalizer(mode: str) -> Callable[[str], str]:
    """For values already in the store: never refuses one (a stored `email` value that is
    no address is lower-cased, so it still matches a cell written the same way)."""
    return _lowercase if mode == "email" else _NORMALIZERS[mode]


__all__ = ["key_normalizer", "stored_key_normalizer"]
