"""Redaction: the one place that decides what a secret looks like and blanks it.

Every sink a secret could reach passes its text through here: the log
pipeline (`logging.redact_secrets`), the run history's error summary
(`goals/runner`), mails (`service/mail`), every `ConnectorError` message
(`errors`, so the CLI's error line too), S3 error reasons (`sources/s3`) and
PostgreSQL driver errors (`storage/postgres`).

Secrets are known two ways: values registered when they are loaded (S3 keys
of the goal files, `${VAR}` values in secret fields, the SMTP password, the
store URL's password), and fields named like secrets (`password`, `token`,
...), blanked whatever they hold. A sink that knows secrets of its own (a
client's credentials) passes them as `also`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "SECRET_FIELD",
    "redact_text",
    "redact_url",
    "redact_value",
    "register_secrets",
    "url_secrets",
]

REDACTED = "***"
SECRET_FIELD = re.compile(
    r"(secret|password|passwd|token|access_key|authorization|credential)", re.I
)
"""A field (log key, mapping key) with such a name is blanked whatever its value."""
MIN_SECRET_LENGTH = 4
"""Shorter values are not blanked: "abc" would eat ordinary words, and no real key is so short."""

_known_secrets: tuple[str, ...] = ()
"""Longest first, so a secret that contains another is blanked whole; replaced, never mutated."""


def _worth_hiding(values: Iterable[str | None]) -> set[str]:
    return {value for value in values if value and len(value) >= MIN_SECRET_LENGTH}


def register_secrets(values: Iterable[str | None]) -> None:
    """Values (keys, passwords) that must never appear in any sink, whatever the field."""
    global _known_secrets  # noqa: PLW0603 -- one process-wide list, swapped atomically
    fresh = _worth_hiding(values)
    _known_secrets = tuple(sorted(fresh.union(_known_secrets), key=len, reverse=True))


def redact_text(text: str, also: Iterable[str | None] = ()) -> str:
    """`text` with every registered secret, and each of `also`, replaced by `***`."""
    secrets = _known_secrets
    extra = _worth_hiding(also)
    if extra:
        secrets = tuple(sorted(extra.union(secrets), key=len, reverse=True))
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_value(value: Any) -> Any:
    """`value` with every registered secret blanked; lists and mappings keep their shape,
    and a mapping's fields named like secrets are blanked whole."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str) and SECRET_FIELD.search(key)
            else redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    text = str(value)
    redacted = redact_text(text)
    return redacted if redacted != text else value


def redact_url(url: str) -> str:
    """The URL with its password replaced by `***`, for logs and messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://***"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{host}"))


def url_secrets(url: str) -> list[str]:
    """The password as written in the URL and decoded: both must stay out of every sink."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [] if password is None else [password, unquote(password)]
