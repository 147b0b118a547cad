"""PostgreSQL URLs in settings: recognised, checked up front, never shown with their password."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

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
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def url_secrets(url: str) -> list[str]:
    """The password as written in the URL and decoded: both must stay out of logs."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [] if password is None else [password, unquote(password)]
