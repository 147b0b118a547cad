"""structlog setup: JSON lines under systemd, readable lines on a terminal, secrets redacted.

The pipeline is a list of small processors, like structlog's own: each one
does one job, and `configure_logging` assembles them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, Literal

import structlog

REDACTED = "***"
_SECRET_KEYS = re.compile(
    r"(secret|password|passwd|token|access_key|authorization|credential)", re.I
)
_known_secrets: tuple[str, ...] = ()
"""Longest first, so a secret that contains another is blanked whole; replaced, never mutated."""


def register_secrets(values: Iterable[str | None]) -> None:
    """Values (keys, passwords) that must never appear in a log line, whatever the field."""
    global _known_secrets  # noqa: PLW0603 -- one process-wide list, swapped atomically
    fresh = {value for value in values if value and len(value) >= 4}
    _known_secrets = tuple(sorted(fresh.union(_known_secrets), key=len, reverse=True))


def redact_text(text: str) -> str:
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_value(value: Any) -> Any:
    """`value` with every registered secret blanked; lists and mappings keep their shape."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str) and _SECRET_KEYS.search(key)
            else _redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(item) for item in value]
    text = str(value)
    redacted = redact_text(text)
    return redacted if redacted != text else value


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Blank fields named like secrets, and any registered secret value anywhere."""
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key):
            event[key] = REDACTED
        else:
            event[key] = _redact_value(value)
    return event


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of writing, not when logging was set up.

    Logging is configured once per process, but `sys.stderr` may be replaced later
    (pytest's capture, a redirect); a stream bound at setup would then be closed.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The standard library's records, through the same processors, to the current stderr."""

    def __init__(self) -> None:
        super().__init__(_CurrentStderr())


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
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    # Third-party libraries log through the standard library (APScheduler's "skipped:
    # maximum number of running instances"): the same format and redaction, one line each.
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_secrets,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    # botocore at DEBUG logs the Authorization header: keep third parties quiet
    for noisy in ("botocore", "aiobotocore", "boto3", "urllib3", "s3transfer", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
