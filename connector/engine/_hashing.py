"""The `hash:` of an export column: normalise a value, then SHA-256 it.

SHA-256 (lower-case hex of the UTF-8 bytes) of each value after formatting:
`sha256` hashes the text as it is; `email_lc_sha256` trims and lower-cases it
first; `phone_sha256` keeps only the digits and a `+` written before the
first digit (E.164 style: `+31 (0)6-1234 5678` -> `+310612345678`; no country
code or trunk prefix is guessed). A value that normalises to nothing is left
out rather than hashed, because the digest of an empty text would match every
other empty value at the partner.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable

from connector.exports.model import HashName

__all__ = ["hasher"]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _email(value: str) -> str:
    return value.strip().lower()


def _phone(value: str) -> str:
    text = unicodedata.normalize("NFKC", value)
    digits = "".join(char for char in text if "0" <= char <= "9")
    if not digits:
        return ""
    plus = text.find("+")
    return "+" + digits if 0 <= plus < text.find(digits[0]) else digits


_NORMALISE: dict[HashName, Callable[[str], str]] = {
    "sha256": str,
    "email_lc_sha256": _email,
    "phone_sha256": _phone,
}


def hasher(name: HashName) -> Callable[[str], str | None]:
    """The `hash:` function: normalise, then SHA-256 as hex; None when nothing is left to hash."""
    normalise = _NORMALISE[name]

    def digest(value: str) -> str | None:
        text = normalise(value)
        return _sha256(text) if text else None

    return digest
