"""Which allocator Arrow's buffers come from in a connector process.

pyarrow's bundled jemalloc, chosen by `configure_arrow_memory` before
pyarrow loads: one arena for all threads, freed pages kept 250 ms for the next
piece or batch, then given back (`JEMALLOC_CONF`). An import allocates and
frees a few hundred MB of buffers a second, a few MB at a time; an
allocator that hands every freed buffer to the kernel takes it back page by
page on the next one: the system allocator cost a fresh 1M-row import about
400,000 page faults and 2.5 s of system time. Measured on 1M rows
(2026-12-08, AMD EPYC, 2 cores, interleaved, one process each), against
the system allocator: fresh import 5.49-6.10 -> 4.38-4.75 s (system time
2.5 -> 1.6 s), gzip export 2.20-2.52 -> 2.03-2.33 s, segment evaluation
1.29-1.68 -> 0.83-0.96 s; peak RSS 217 -> 225-232, 203-205 -> 208-212 and
153 -> 169 MB; one daemon running two imports 276-279 -> 272-277 MB.
Arrow's own settings (8 arenas, 1 s) kept 20 MB more, up to 309 MB in that
daemon. pyarrow's default pool (mimalloc) keeps freed pages for longer:
fresh import 274-280 MB.

Where this pyarrow lacks jemalloc, the system allocator, with glibc's mmap
threshold fixed at 128 KiB: by default glibc raises it to the size of every
mmapped block freed (up to 32 MiB), buffers of a few hundred KiB to a few
MiB then come from the heap, where freed space fragments (RSS crept up by
40-60 MB over an export's first pages).

Either way glibc, which still serves Python's own objects (S3 chunks, the
pieces' bytes), keeps at most two malloc arenas: by default it gives each
new thread an arena of its own, up to eight per core, and pages freed in one
are not reused by another (gzip export 300-305 -> 270-275 MB, 2026-12-06).

Each choice yields to the environment: `ARROW_DEFAULT_MEMORY_POOL` (Arrow's),
`JE_ARROW_MALLOC_CONF` (its jemalloc's), `MALLOC_ARENA_MAX` and
`MALLOC_MMAP_THRESHOLD_` (glibc's).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
JEMALLOC_VARIABLE = "JE_ARROW_MALLOC_CONF"
JEMALLOC_CONF = "narenas:1,dirty_decay_ms:250,muzzy_decay_ms:0"
ARENA_VARIABLE = "MALLOC_ARENA_MAX"
MALLOC_ARENAS = 2
MMAP_THRESHOLD_VARIABLE = "MALLOC_MMAP_THRESHOLD_"
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
_M_ARENA_MAX = -8


_chosen_here: list[str] = []  # the variables configure_arrow_memory set itself


def configure_arrow_memory() -> bool:
    """Choose jemalloc for all of Arrow's buffers and give it `JEMALLOC_CONF`, each
    unless the environment set it; where the environment named no pool.

    Arrow reads both once, when pyarrow's library loads, and its C++ parts
    (the CSV reader's, for one) allocate from the pool named then, not from
    the one `pyarrow.set_memory_pool` sets later: so this runs when the
    `connector` package is imported, and does nothing (returns False) where
    pyarrow was imported first. Only on Linux, whose pyarrow wheels carry
    jemalloc.
    """
    if "pyarrow" in sys.modules or not sys.platform.startswith("linux"):
        return False
    for variable, value in ((POOL_VARIABLE, "jemalloc"), (JEMALLOC_VARIABLE, JEMALLOC_CONF)):
        if not os.environ.get(variable):
            os.environ[variable] = value
            _chosen_here.append(variable)
    return True


def choose_memory_pool() -> str:
    """Make jemalloc (else the system allocator) pyarrow's default pool, unless the
    environment chose one, and tune glibc's malloc to match; returns the backend.

    Called once per process next to `tune_garbage_collector`, before any goal
    runs and before the process starts threads (the arena limit holds for
    arenas created from then on).
    """
    import pyarrow as pa  # noqa: PLC0415 -- after configure_arrow_memory, which must run first

    chosen_by_user = bool(os.environ.get(POOL_VARIABLE)) and POOL_VARIABLE not in _chosen_here
    if not chosen_by_user and pa.default_memory_pool().backend_name != "jemalloc":
        if "jemalloc" in pa.supported_memory_backends():
            pa.set_memory_pool(pa.jemalloc_memory_pool())
        else:
            pa.set_memory_pool(pa.system_memory_pool())
    backend = str(pa.default_memory_pool().backend_name)
    _tune_glibc_malloc(fixed_mmap_threshold=backend == "system")
    return backend


def _tune_glibc_malloc(*, fixed_mmap_threshold: bool) -> None:
    """At most `MALLOC_ARENAS` arenas, and where Arrow's buffers come from glibc too,
    a fixed mmap threshold; each unless the environment set glibc's own variable.

    Nothing to do where the C library is not glibc.
    """
    if platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL(None)
    if not os.environ.get(ARENA_VARIABLE):
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    if fixed_mmap_threshold and not os.environ.get(MMAP_THRESHOLD_VARIABLE):
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
