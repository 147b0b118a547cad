"""Which allocator Arrow's buffers come from in a connector process.

pyarrow's default pool (mimalloc) keeps the pages an import piece or an
export batch freed, for the next allocation: the process's peak RSS grows
by what several pieces held at once. The system allocator (glibc malloc)
hands large blocks back to the kernel when they are freed. Measured with
`bench/` on 600,000 rows (2026-12-05, 2 cores, one process each, peak RSS
from wait4): gzip export 360 -> 289 MB, segment evaluation 326 -> 273 MB,
fresh import 297 -> 277 MB, none of them slower (3-18% faster).

`ARROW_DEFAULT_MEMORY_POOL`, Arrow's own variable, still wins when set.

With it, glibc keeps at most two malloc arenas. By default glibc gives each
new thread an arena of its own, up to eight per core. Pages freed in one
arena are not reused by another, so each thread that reads a page ahead or
builds an export batch keeps its own high-water mark. With two arenas,
measured on 1M profiles, the gzip export peaked at 270-275 MB instead of
300-305, at the same speed. `MALLOC_ARENA_MAX`, glibc's own variable, still
wins when set.
"""

from __future__ import annotations

import ctypes
import os
import platform

import pyarrow as pa

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
ARENA_VARIABLE = "MALLOC_ARENA_MAX"
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def use_system_allocator() -> str:
    """Make the system allocator Arrow's default pool, unless the environment chose one.

    Called once per process next to `tune_garbage_collector`, before any goal
    runs; returns the backend in use.
    """
    if not os.environ.get(POOL_VARIABLE):
        pa.set_memory_pool(pa.system_memory_pool())
    if pa.default_memory_pool().backend_name == "system":
        _limit_malloc_arenas()
    return str(pa.default_memory_pool().backend_name)


def _limit_malloc_arenas() -> None:
    """At most `MALLOC_ARENAS` glibc arenas, unless the environment chose a number.

    Takes effect for arenas created from now on: call it before the process
    starts threads. Nothing to do where the C library is not glibc.
    """
    if os.environ.get(ARENA_VARIABLE) or platform.libc_ver()[0] != "glibc":
        return
    ctypes.CDLL(None).mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
