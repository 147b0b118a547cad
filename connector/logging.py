"""structlog setup: JSON lines under systemd, readable lines on a terminal, secrets redacted.

The pipeline is a list of small processors, like structlog's own: each one
does one job, and `configure_logging` assembles them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal

import structlog

REDACTED = "***"
_SECRET_KEYS = re.compile(
    r"(secret|password|passwd|token|access_key|authorization|credential)", re.I
)
_known_secrets: set[str] = set()


def register_secrets(values: Iterable[str | None]) -> None:
    """Values (keys, passwords) that must never appear in a log line, whatever the field."""
    _known_secrets.update(value for value in values if value and len(value) >= 4)


def redact_text(text: str) -> str:
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Blank fields named like secrets, and any registered secret value anywhere."""
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key):
            event[key] = REDACTED
        elif isinstance(value, str):
            event[key] = redact_text(value)
        elif _known_secrets and not isinstance(value, int | float | bool | type(None)):
            event[key] = redact_text(str(value))
    return event


def configure_logging(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "info"
) -> None:
    """Route structlog (and stdlib logging) to stderr in the chosen format."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric_level = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # botocore at DEBUG logs the Authorization header: keep third parties quiet
    for noisy in ("botocore", "aiobotocore", "boto3", "urllib3", "s3transfer", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
