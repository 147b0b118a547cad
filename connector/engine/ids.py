"""New profile ids, time-ordered so new profiles append to the store's indexes.

Random ids (uuid4) land all over the B-trees and make large imports
page-bound; these sort by creation time, then by process and counter. The
row-at-a-time path and the columnar engine draw from one counter, so ids
are unique within a process whichever path made them.
"""

from __future__ import annotations

import os
import threading
import time

import pyarrow as pa
import pyarrow.compute as pc

_PROCESS_TAG = os.urandom(4).hex()
_lock = threading.Lock()
_next = 0


def _reserve(count: int) -> int:
    global _next  # noqa: PLW0603 -- one process-wide counter is the point
    with _lock:
        first = _next
        _next += count
    return first


def new_profile_id() -> str:
    """One id (like UUIDv7): milliseconds, process tag, counter, all hex."""
    counter = _reserve(1) & 0xFFFFFFFF
    return f"{time.time_ns() // 1_000_000:012x}{_PROCESS_TAG}{counter:08x}"


def new_profile_ids(count: int) -> pa.StringArray:
    """`count` ids at once, without a Python call per id.

    Same time prefix and process tag, then a ten-digit decimal counter: two
    characters longer than `new_profile_id`'s, so the two forms never collide.
    """
    first = _reserve(count)
    prefix = f"{time.time_ns() // 1_000_000:012x}{_PROCESS_TAG}"
    counters = pa.array(range(first, first + count), pa.int64())
    digits = pc.utf8_lpad(pc.cast(pc.bit_wise_and(counters, 0xFFFFFFFFFF), pa.string()), 10, "0")
    return pc.binary_join_element_wise(prefix, digits, "")
