"""Waits between retries of something that may come back (a store's server): exponential,
capped, and spread a little so several daemons that lost the server together do not
all knock again at the same instant."""

from __future__ import annotations

import random
from dataclasses import dataclass

SPREAD = 0.2
"""A wait is shortened by up to this fraction, at random."""


@dataclass
class Backoff:
    """`initial`, then twice as long each time, never over `maximum` (seconds)."""

    initial: float
    maximum: float
    failures: int = 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * 2.0 ** min(self.failures, 60))
        self.failures += 1
        return delay * (1.0 - SPREAD * random.random())  # noqa: S311 -- timing, not secrecy


__all__ = ["Backoff"]
