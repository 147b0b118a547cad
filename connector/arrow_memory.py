"""Which allocator Arrow's buffers come from in a connector process.

pyarrow's default pool (mimalloc) keeps the pages an import piece or an
export batch freed, for the next allocation: the process's peak RSS grows
by what several pieces held at once. The system allocator (glibc malloc)
hands large blocks back to the kernel when they are freed. Measured with
`bench/` on 600,000 rows (2026-12-05, 2 cores, one process each, peak RSS
from wait4): gzip export 360 -> 289 MB, segment evaluation 326 -> 273 MB,
fresh import 297 -> 277 MB, none of them slower (3-18% faster).

`ARROW_DEFAULT_MEMORY_POOL`, Arrow's own variable, still wins when set.
"""

from __future__ import annotations

import os

import pyarrow as pa

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def use_system_allocator() -> str:
    """Make the system allocator Arrow's default pool, unless the environment chose one.

    Called once per process next to `tune_garbage_collector`, before any goal
    runs; returns the backend in use.
    """
    if not os.environ.get(POOL_VARIABLE):
        pa.set_memory_pool(pa.system_memory_pool())
    return str(pa.default_memory_pool().backend_name)
