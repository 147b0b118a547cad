"""The plain values S3 work passes around: where to connect, what a listing found.

Kept apart from `s3` so that the goals, the configuration and the command
line can name them without importing the S3 library (botocore and aiohttp
take about 0.4 s to import): commands that never reach S3 start without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["S3Credentials", "S3Object"]


@dataclass(frozen=True, slots=True)
class S3Object:
    """One listed object; `etag` identifies its content so a later read can insist on it."""

    key: str
    size: int
    etag: str
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class S3Credentials:
    """Plain connection settings; the secrets are kept out of `repr` so they never reach a log.

    Leaving the keys at None lets botocore's default chain (environment, shared
    config, instance role) find credentials.
    """

    region: str = "us-east-1"
    endpoint_url: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    connect_timeout: float | None = None
    """Seconds; None is `DEFAULT_CONNECT_TIMEOUT` (the same for the two below)."""
    read_timeout: float | None = None
    max_attempts: int | None = None
    """Attempts per request, the first included."""
