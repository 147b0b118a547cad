"""PostgreSQL URLs in settings: recognised, checked up front, never shown with their password."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from connector.redaction import redact_url, url_secrets

__all__ = [
    "PostgresAddress",
    "is_postgres_url",
    "parse_postgres_url",
    "redact_url",
    "url_secrets",
]

SCHEMES = ("postgresql", "postgres")
URL_FORM = "postgresql://user[:password]@host[:port]/dbname"
DEFAULT_PORT = 5432


def is_postgres_url(value: object) -> bool:
    """Whether a `database` setting names a PostgreSQL server rather than a SQLite file."""
    return isinstance(value, str) and value.split("://", 1)[0].lower() in SCHEMES and "://" in value


@dataclass(frozen=True, slots=True)
class PostgresAddress:
    """Where a PostgreSQL URL points; `password` is kept out of repr."""

    host: str
    port: int
    dbname: str
    user: str | None
    password: str | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        """`host:port/dbname`: what error messages name (never the password)."""
        return f"{self.host}:{self.port}/{self.dbname}"


def parse_postgres_url(url: str) -> PostgresAddress:
    """The parts of a PostgreSQL URL; ValueError (without the URL or password) when malformed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(f"the PostgreSQL URL has an invalid port; expected {URL_FORM}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise ValueError(f"a PostgreSQL URL starts with postgresql://; expected {URL_FORM}")
    if not parts.hostname:
        raise ValueError(f"the PostgreSQL URL names no host; expected {URL_FORM}")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or "/" in dbname:
        raise ValueError(f"the PostgreSQL URL names no database; expected {URL_FORM}")
    if port == 0:
        raise ValueError(f"the PostgreSQL URL has an invalid port; expected {URL_FORM}")
    return PostgresAddress(
        host=parts.hostname,
        port=port or DEFAULT_PORT,
        dbname=dbname,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )
