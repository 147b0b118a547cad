"""The machine's busy cores over the daemons pair's runs, and the ceiling they set."""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from bench.__main__ import format_target
from bench.cpu import CpuSample, busy_cores, ceiling, sample
from bench.daemons import CONNECTIONS, pair_phase
from bench.processes import spawn
from bench.targets import judge

START = datetime.fromisoformat("2026-12-04T10:00:00+00:00").timestamp()


def test_a_stat_line_reads_as_busy_and_total_ticks(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 5 45 800 50 0 0 0 0 0\ncpu0 50 2 20 400 25 0 0 0 0 0\n")

    point = sample(stat)

    assert point is not None
    assert (point.busy, point.total) == (150, 1000)


def test_without_proc_stat_there_is_no_sample(tmp_path: Path) -> None:
    assert sample(tmp_path / "missing") is None
    (tmp_path / "empty").write_text("")
    assert sample(tmp_path / "empty") is None


def test_busy_cores_span_the_samples_that_enclose_the_window() -> None:
    samples = [
        CpuSample(START - 1, busy=0, total=0),
        CpuSample(START + 0.4, busy=10, total=100),  # inside the window: not a bound
        CpuSample(START + 10.2, busy=150, total=200),
        CpuSample(START + 11, busy=150, total=300),
    ]

    assert busy_cores(samples, START, START + 10, cores=2) == 1.5
    assert busy_cores(samples, START - 2, START + 10, cores=2) is None  # nothing before
    assert busy_cores(samples, START, START + 12, cores=2) is None  # nothing after


@pytest.mark.parametrize(
    ("one_seconds", "busy", "seconds", "limit"),
    [
        (61.28, 1.88, 50.0, 1.30),  # the 2026-12-06 21:06 run, where two daemons ran 1.23x
        (61.2, 1.0, 30.6, 4.0),  # half the cores for half the time: a quarter of the machine
        (61.28, 2.0, 61.28, 1.0),  # every core for as long already: nothing to gain
        (61.28, None, 50.0, None),
        (61.28, 0.0, 50.0, None),
        (61.28, 1.5, 0.0, None),
    ],
)
def test_the_ceiling_is_one_daemons_time_over_the_two_daemons_work_on_every_core(
    one_seconds: float, busy: float | None, seconds: float, limit: float | None
) -> None:
    assert ceiling(2, one_seconds, busy, seconds) == limit


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_a_spinning_thread_shows_as_a_busy_core() -> None:
    def spin(until: float) -> None:
        while time.time() < until:
            pass

    first = sample()
    worker = threading.Thread(target=spin, args=(time.time() + 0.6,))
    worker.start()
    worker.join()
    last = sample()

    assert first is not None
    assert last is not None
    busy = busy_cores([first, last], first.at, last.at, os.cpu_count() or 1)
    assert busy is not None
    assert 0.3 <= busy <= (os.cpu_count() or 1)


def _run(run_id: int, connection: str, started: float, ended: float) -> dict[str, object]:
    def stamp(offset: float) -> str:
        return datetime.fromtimestamp(START + offset).astimezone().isoformat()

    return {
        "id": run_id,
        "connection": connection,
        "status": "success",
        "started_at": stamp(started),
        "ended_at": stamp(ended),
        "counts": {"rows_read": 1000, "profiles_created": 1000},
        "ran_by": f"host:{run_id}",
    }


def test_the_pair_reports_the_machines_busy_cores_over_its_runs() -> None:
    runs = [_run(1, CONNECTIONS[0], 0, 8), _run(2, CONNECTIONS[1], 1, 10)]
    daemons = [{"connections": list(CONNECTIONS), "peak_rss_mb": 250.0, "cpu_seconds": 12.0}]
    samples = [CpuSample(START - 0.5, 1000, 2000), CpuSample(START + 10.5, 1170, 2200)]

    phase = pair_phase(runs, daemons, nbytes=1, cpu_samples=samples)

    cores = os.cpu_count() or 1
    assert (phase["busy_cores"], phase["cores"]) == (round(0.85 * cores, 2), cores)
    assert pair_phase(runs, daemons, nbytes=1)["busy_cores"] is None


def test_the_daemons_verdict_states_the_ceiling_the_two_daemons_work_leaves() -> None:
    pair = {"cores": 2, "daemons": []}
    phases = {
        "daemons-one": {"rows_per_s": 40_000, "seconds": 50.0, "busy_cores": 1.78, **pair},
        "daemons-two": {"rows_per_s": 46_000, "seconds": 43.5, "busy_cores": 1.9, **pair},
    }

    verdict = next(t for t in judge(phases, {}) if t["target"].startswith("two daemons"))

    # the two daemons kept 1.9 cores busy for 43.5 s: on both cores, 41.3 s at least
    assert (verdict["met"], verdict["ceiling"]) == (False, 1.21)
    assert "MISSED (at most 1.21x on these cores)" in format_target(verdict)
    without_two = {"daemons-one": phases["daemons-one"]}
    assert "ceiling" not in next(
        t for t in judge(without_two, {}) if t["target"].startswith("two daemons")
    )
    others = [t for t in judge(phases, {}) if not t["target"].startswith("two daemons")]
    assert not any("ceiling" in t for t in others)


def test_a_spawned_process_reports_its_cpu_seconds(tmp_path: Path) -> None:
    busy = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"

    finished = spawn([sys.executable, "-c", busy], log=tmp_path / "spin.log")

    assert finished.exit_code == 0
    assert 0.3 <= finished.cpu_seconds <= finished.seconds * (os.cpu_count() or 1) + 0.1
