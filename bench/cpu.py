"""How many of the machine's cores were busy over a window, every process counted.

The daemons pair asks whether a second daemon adds throughput. However the
work is split, two daemons cannot finish sooner than their own CPU work
(busy cores x seconds, the PostgreSQL server and S3 included) spread over
every core. So the pair reads the whole machine's busy time (`/proc/stat`)
over each variant's runs, and the target's verdict states the most two
daemons could gain over one on this machine: one daemon's time over that
floor. (Each row does not cost the same CPU either way: one daemon's two
imports share one interpreter's lock, and measured 1.2x the CPU of two
daemons; a ceiling taken from one daemon's load alone, `cores / busy`,
came out below what two daemons then ran.)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
_IDLE_FIELDS = (3, 4)
"""`idle` and `iowait` of the `cpu` line: the time no process ran."""


@dataclass(frozen=True)
class CpuSample:
    """The machine's CPU time so far, in clock ticks summed over every core."""

    at: float
    """Epoch seconds, comparable with the run history's timestamps."""
    busy: int
    total: int


def sample(stat: Path = PROC_STAT) -> CpuSample | None:
    """Now's counters; None where there is no `/proc/stat` (not Linux)."""
    try:
        first = stat.read_text(encoding="ascii").splitlines()[0]
    except (OSError, IndexError):
        return None
    ticks = [int(field) for field in first.split()[1:]]
    idle = sum(ticks[index] for index in _IDLE_FIELDS if index < len(ticks))
    return CpuSample(time.time(), sum(ticks) - idle, sum(ticks))


def busy_cores(samples: Sequence[CpuSample], start: float, end: float, cores: int) -> float | None:
    """Average busy cores from the last sample at or before `start` to the first at or
    after `end`; None when the samples do not enclose the window."""
    before = [point for point in samples if point.at <= start]
    after = [point for point in samples if point.at >= end]
    if not before or not after:
        return None
    first, last = before[-1], after[0]
    if last.total <= first.total:
        return None
    return round((last.busy - first.busy) / (last.total - first.total) * cores, 2)


def ceiling(cores: int, one_seconds: float, busy: float | None, seconds: float) -> float | None:
    """How many times sooner than `one_seconds` a variant could finish at most: its CPU
    work (`busy` cores for `seconds`) spread over all `cores`; None without a measure."""
    if not busy or seconds <= 0:
        return None
    return round(one_seconds / (busy * seconds / cores), 2)
