"""Advisory lock keys: stable across processes, separate per schema and per purpose."""

from __future__ import annotations

from hashlib import blake2b


def bigint_key(*parts: str) -> int:
    """A signed 64-bit key for `pg_advisory_lock(bigint)` from the given names."""
    digest = blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def int_key(*parts: str) -> int:
    """A signed 32-bit key for the two-key form `pg_advisory_lock(int, int)`."""
    digest = blake2b("\x1f".join(parts).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)
