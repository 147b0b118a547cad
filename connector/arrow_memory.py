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

And glibc's mmap threshold stays at its starting 128 KiB. By default glibc
raises it to the size of every mmapped block freed (up to 32 MiB), so after
the first pages and pieces, buffers of a few hundred KiB to a few MiB come
from the heap instead, where freed space is kept and fragments: RSS crept up
by 40-60 MB over the first pages of an export. Fixed, every such buffer is
mapped and handed back when freed. Measured on 1M rows, same speed:
PostgreSQL gzip export 318 -> 231 MB, SQLite fresh import 260 -> 234 MB.
`MALLOC_MMAP_THRESHOLD_`, glibc's own variable, still wins when set.
"""

from __future__ import annotations

import ctypes
import os
import platform

import pyarrow as pa

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
ARENA_VARIABLE = "MALLOC_ARENA_MAX"
MALLOC_ARENAS = 2
MMAP_THRESHOLD_VARIABLE = "MALLOC_MMAP_THRESHOLD_"
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
_M_ARENA_MAX = -8


def use_system_allocator() -> str:
    """Make the system allocator Arrow's default pool, unless the environment chose one.

    Called once per process next to `tune_garbage_collector`, before any goal
    runs; returns the backend in use.
    """
    if not os.environ.get(POOL_VARIABLE):
        pa.set_memory_pool(pa.system_memory_pool())
    if pa.default_memory_pool().backend_name == "system":
        _tune_glibc_malloc()
    return str(pa.default_memory_pool().backend_name)


def _tune_glibc_malloc() -> None:
    """At most `MALLOC_ARENAS` arenas and a fixed mmap threshold, each unless the
    environment set glibc's own variable for it.

    The arena limit takes effect for arenas created from now on: call this
    before the process starts threads. Nothing to do where the C library is
    not glibc.
    """
    if platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL(None)
    if not os.environ.get(ARENA_VARIABLE):
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    if not os.environ.get(MMAP_THRESHOLD_VARIABLE):
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
