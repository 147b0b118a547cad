"""JSON text for the stores, through orjson: profile and group properties on the hot path.

orjson writes what `json.dumps(value, ensure_ascii=False, separators=(",", ":"))`
writes for the values stored here (dicts of lists of strings, counts): the same
escapes, no spaces, non-ASCII as UTF-8, keys in insertion order, so stores
written before read and compare the same. It is about 6x faster to write and
2-6x faster to read. What orjson refuses (a lone surrogate, a key that is not
a string) goes through the standard encoder as before.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_standard = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def dumps(value: Any) -> str:
    """Compact JSON text, byte-identical to the standard library's for stored values."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _standard(value)


def loads(text: str | bytes) -> Any:
    """The value of JSON text; orjson.JSONDecodeError is a ValueError, like json's."""
    return orjson.loads(text)


__all__ = ["dumps", "loads"]
