"""Arrow's buffers come from the system allocator in a connector process (see
`connector.arrow_memory`), unless Arrow's own variable names another pool.

The pool is process-wide, so each case runs in a fresh interpreter.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import python_output

from connector.arrow_memory import (
    ARENA_VARIABLE,
    MALLOC_ARENAS,
    MMAP_THRESHOLD,
    MMAP_THRESHOLD_VARIABLE,
    POOL_VARIABLE,
)

AFTER_A_COMMAND = """
import sys
import pyarrow as pa
from connector.cli import main
before = pa.default_memory_pool().backend_name
code = main(["validate"])
print(before, pa.default_memory_pool().backend_name, code)
"""


def _run(script: str, env: dict[str, str]) -> list[str]:
    return python_output(script, env)[-1].split()  # the command's own output comes first


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: an empty goals folder, no pool chosen."""
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith("CONNECTOR_")
        and name not in (POOL_VARIABLE, ARENA_VARIABLE, MMAP_THRESHOLD_VARIABLE)
    }
    (tmp_path / "goals").mkdir()
    clean["CONNECTOR_GOALS_DIR"] = str(tmp_path / "goals")
    clean["CONNECTOR_DATABASE"] = str(tmp_path / "connector.db")
    return clean


def test_a_command_switches_arrow_from_its_default_pool_to_the_system_allocator(
    env: dict[str, str],
) -> None:
    before, after, code = _run(AFTER_A_COMMAND, env)
    assert before != "system"  # pyarrow's own default (mimalloc or jemalloc)
    assert after == "system"
    assert code == "0"


@pytest.mark.parametrize("backend", ["jemalloc", "mimalloc"])
def test_a_pool_named_in_arrow_s_variable_is_kept(env: dict[str, str], backend: str) -> None:
    if backend not in pa.supported_memory_backends():
        pytest.fail(f"this pyarrow build lacks {backend}: {pa.supported_memory_backends()}")
    env[POOL_VARIABLE] = backend
    before, after, code = _run(AFTER_A_COMMAND, env)
    assert before == after == backend
    assert code == "0"


def test_the_system_pool_gives_freed_buffers_back(env: dict[str, str]) -> None:
    """What the switch is for: a large buffer freed returns its pages to the kernel.

    Reads the process's resident set from /proc before and after 200 MB of Arrow
    buffers live and die: the system pool gives back most of it (glibc keeps the
    top of its heap), where mimalloc keeps all 200 MB for later.
    """
    script = """
import pyarrow as pa
from connector.arrow_memory import use_system_allocator
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
backend = use_system_allocator()
start = rss_mb()
held = [pa.allocate_buffer(20 * 2**20) for _ in range(10)]
for buf in held:
    memoryview(buf).cast("B")[::4096] = b"x" * len(range(0, buf.size, 4096))
peak = rss_mb()
del held
print(backend, round(peak - start), round(rss_mb() - start))
"""
    backend, grown, kept = _run(script, env)
    assert backend == "system"
    assert int(grown) >= 150  # the buffers were really touched
    assert int(kept) < 60


ARENAS_OF_EIGHT_THREADS = """
import ctypes, os, sys, threading
from connector.cli import main
if sys.argv[1] == "command":
    main(["validate"])
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
together = threading.Barrier(8)
def work():
    libc.malloc(4096)  # a thread's first malloc picks its arena
    together.wait()  # all alive at once: no arena is freed and handed on
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
sys.stderr.flush()
os.dup2(1, 2)  # malloc_stats writes to stderr
libc.malloc_stats()
"""


def _arenas(env: dict[str, str], *args: str) -> int:
    lines = python_output(ARENAS_OF_EIGHT_THREADS, env, *args)
    return sum(line.startswith("Arena ") for line in lines)


def test_a_command_keeps_glibc_to_two_malloc_arenas_for_all_its_threads(
    env: dict[str, str],
) -> None:
    assert _arenas(env, "none") > MALLOC_ARENAS  # glibc's default: an arena per new thread
    assert _arenas(env, "command") == MALLOC_ARENAS


def test_glibc_s_own_arena_variable_is_kept(env: dict[str, str]) -> None:
    env[ARENA_VARIABLE] = "4"
    assert _arenas(env, "command") == 4


MAPPED_AFTER_A_LARGER_FREE = """
import ctypes, sys
from connector.cli import main
if sys.argv[1] == "command":
    main(["validate"])
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
libc.free(libc.malloc(4 << 20))  # a 4 MiB block, mapped, then freed
before = libc.mallinfo2().hblks
block = libc.malloc(int(sys.argv[2]))
print(libc.mallinfo2().hblks - before)  # 1: the new block was mapped; 0: taken from the heap
"""


def _mapped(env: dict[str, str], *args: str) -> bool:
    return python_output(MAPPED_AFTER_A_LARGER_FREE, env, *args)[-1] == "1"


def test_a_command_keeps_glibc_s_mmap_threshold_where_it_starts(env: dict[str, str]) -> None:
    """After a large block is freed, glibc's default raises its mmap threshold to that
    block's size, and buffers below it come from the heap, where freed space is kept:
    a connector process keeps mapping (and handing back) every buffer from 128 KiB."""
    medium = str(4 * MMAP_THRESHOLD)
    assert not _mapped(env, "none", medium)  # glibc's default: the threshold moved up
    assert _mapped(env, "command", medium)
    assert not _mapped(env, "command", str(MMAP_THRESHOLD // 2))  # small ones: the heap


def test_glibc_s_own_mmap_threshold_variable_is_kept(env: dict[str, str]) -> None:
    env[MMAP_THRESHOLD_VARIABLE] = str(8 << 20)
    assert not _mapped(env, "command", str(4 * MMAP_THRESHOLD))
