"""structlog setup: JSON lines under systemd, readable lines on a terminal, secrets redacted.

Redaction itself lives in `connector.redaction`, shared with every other sink;
`redact_text` and `register_secrets` are re-exported here for older callers.

The pipeline is a list of small processors, like structlog's own: each one
does one job, and `configure_logging` assembles them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

from connector.redaction import (
    REDACTED,
    SECRET_FIELD,
    redact_text,
    redact_value,
    register_secrets,
)

__all__ = [
    "REDACTED",
    "configure_logging",
    "get_logger",
    "redact_secrets",
    "redact_text",
    "register_secrets",
]


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Blank fields named like secrets, and any registered secret value anywhere."""
    for key, value in list(event.items()):
        event[key] = REDACTED if SECRET_FIELD.search(key) else redact_value(value)
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
