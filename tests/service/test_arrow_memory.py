"""Arrow's buffers come from its bundled jemalloc in a connector process, with our
settings (see `connector.arrow_memory`), unless the environment names another pool.

The pool is process-wide and chosen when pyarrow loads, so each case runs in a
fresh interpreter.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import python_output

from connector.arrow_memory import (
    ARENA_VARIABLE,
    JEMALLOC_CONF,
    JEMALLOC_VARIABLE,
    MALLOC_ARENAS,
    MMAP_THRESHOLD,
    MMAP_THRESHOLD_VARIABLE,
    POOL_VARIABLE,
)

AFTER_A_COMMAND = """
import os
from connector.cli import main  # first, as the `connector` command does
import pyarrow as pa
before = pa.default_memory_pool().backend_name
code = main(["validate"])
print(before, pa.default_memory_pool().backend_name, os.environ.get("JE_ARROW_MALLOC_CONF"), code)
"""

PYARROW_FIRST = """
import sys
import pyarrow as pa
if sys.argv[1] == "no-jemalloc":  # as a pyarrow built without it would say
    pa.supported_memory_backends = lambda: ["system", "mimalloc"]
from connector.arrow_memory import choose_memory_pool
before = pa.default_memory_pool().backend_name
print(before, choose_memory_pool(), pa.default_memory_pool().backend_name)
"""


def _run(script: str, env: dict[str, str], *args: str) -> list[str]:
    return python_output(script, env, *args)[-1].split()  # the command's own output comes first


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: an empty goals folder, no pool or allocator settings."""
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith("CONNECTOR_")
        and name not in (POOL_VARIABLE, JEMALLOC_VARIABLE, ARENA_VARIABLE, MMAP_THRESHOLD_VARIABLE)
    }
    (tmp_path / "goals").mkdir()
    clean["CONNECTOR_GOALS_DIR"] = str(tmp_path / "goals")
    clean["CONNECTOR_DATABASE"] = str(tmp_path / "connector.db")
    return clean


def test_a_connector_process_loads_arrow_with_jemalloc_and_our_settings(
    env: dict[str, str],
) -> None:
    """Chosen before pyarrow loads, so Arrow's C++ parts allocate from it too: the
    pool is jemalloc before the command even runs."""
    before, after, conf, code = _run(AFTER_A_COMMAND, env)
    assert before == after == "jemalloc"
    assert conf == JEMALLOC_CONF
    assert code == "0"


def test_settings_of_the_environment_win(env: dict[str, str]) -> None:
    env[JEMALLOC_VARIABLE] = "narenas:2"
    env[POOL_VARIABLE] = "mimalloc"
    before, after, conf, code = _run(AFTER_A_COMMAND, env)
    assert before == after == "mimalloc"
    assert conf == "narenas:2"
    assert code == "0"


@pytest.mark.parametrize("backend", ["jemalloc", "mimalloc", "system"])
def test_a_pool_named_in_arrow_s_variable_is_kept(env: dict[str, str], backend: str) -> None:
    if backend not in pa.supported_memory_backends():
        pytest.fail(f"this pyarrow build lacks {backend}: {pa.supported_memory_backends()}")
    env[POOL_VARIABLE] = backend
    before, after, _conf, code = _run(AFTER_A_COMMAND, env)
    assert before == after == backend
    assert code == "0"


def test_with_pyarrow_loaded_first_the_pool_still_switches_to_jemalloc(
    env: dict[str, str],
) -> None:
    """Too late for Arrow's C++ default and jemalloc's settings: pyarrow's own default
    still switches, and the environment is left alone."""
    before, chosen, after = _run(PYARROW_FIRST, env, "as-built")
    assert before != "jemalloc"  # pyarrow's own default (mimalloc)
    assert chosen == after == "jemalloc"
    script = "import pyarrow, os, connector; print(os.environ.get('JE_ARROW_MALLOC_CONF'))"
    assert _run(script, env) == ["None"]


def test_without_jemalloc_the_system_allocator_is_chosen(env: dict[str, str]) -> None:
    _before, chosen, after = _run(PYARROW_FIRST, env, "no-jemalloc")
    assert chosen == after == "system"


FREED_AND_GIVEN_BACK = """
import sys, time
import connector
from connector.arrow_memory import choose_memory_pool
import pyarrow as pa
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
backend = choose_memory_pool()
start = rss_mb()
held = [pa.allocate_buffer(2**20) for _ in range(200)]
for buf in held:
    memoryview(buf).cast("B")[::4096] = b"x" * len(range(0, buf.size, 4096))
peak = rss_mb()
del held
freed = time.monotonic()
while rss_mb() - start > 30 and time.monotonic() - freed < float(sys.argv[1]):
    time.sleep(0.05)
print(backend, round(peak - start), round(rss_mb() - start))
"""


@pytest.mark.parametrize("pool", ["jemalloc", "system"])
def test_freed_buffers_go_back_to_the_kernel(env: dict[str, str], pool: str) -> None:
    """What the settings are for: 200 MB of Arrow buffers touched, then freed, leave
    the resident set within 30 MB of where it started: jemalloc after its 250 ms
    (given 5 s here, for a loaded machine; with Arrow's own settings 64 MB were
    still kept after 1.5 s), the system allocator at once."""
    if pool == "system":
        env[POOL_VARIABLE] = pool
    backend, grown, kept = _run(FREED_AND_GIVEN_BACK, env, "5")
    assert backend == pool
    assert int(grown) >= 150  # the buffers were really touched
    assert int(kept) <= 30


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


def test_on_the_system_allocator_glibc_s_mmap_threshold_stays_where_it_starts(
    env: dict[str, str],
) -> None:
    """After a large block is freed, glibc's default raises its mmap threshold to that
    block's size, and buffers below it come from the heap, where freed space is kept:
    where Arrow's buffers come from glibc too, a connector process keeps mapping (and
    handing back) every buffer from 128 KiB."""
    env[POOL_VARIABLE] = "system"
    medium = str(4 * MMAP_THRESHOLD)
    assert not _mapped(env, "none", medium)  # glibc's default: the threshold moved up
    assert _mapped(env, "command", medium)
    assert not _mapped(env, "command", str(MMAP_THRESHOLD // 2))  # small ones: the heap


def test_on_jemalloc_glibc_s_mmap_threshold_keeps_its_default(env: dict[str, str]) -> None:
    """glibc then serves Python's own objects only; they reuse its heap (no page faults
    for every S3 chunk and piece of 128 KiB or more)."""
    assert not _mapped(env, "command", str(4 * MMAP_THRESHOLD))


def test_glibc_s_own_mmap_threshold_variable_is_kept(env: dict[str, str]) -> None:
    env[POOL_VARIABLE] = "system"
    env[MMAP_THRESHOLD_VARIABLE] = str(8 << 20)
    assert not _mapped(env, "command", str(4 * MMAP_THRESHOLD))
