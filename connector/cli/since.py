"""`--since WHEN`: an ISO date or time, or a span back from now (`90m`, `2h`, `3d`, `1w`)."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

_SPAN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """The moment `text` names, aware and in UTC; argparse turns a ValueError into exit 2.

    A date or time without an offset is UTC, as the history shows its times.
    """
    span = _SPAN.match(text)
    if span:
        amount, unit = int(span.group(1)), span.group(2).lower()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"cannot read {text!r} as a time: give an ISO date or time (2026-12-01, "
            "2026-12-01T08:30, 2026-12-01T08:30+01:00) or a span back from now "
            "(90m, 2h, 3d, 1w)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
