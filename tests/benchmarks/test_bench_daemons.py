"""The daemons pair: its connections, its timing from the run history, its verdicts."""

from __future__ import annotations

import csv
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import format_target
from bench.daemons import CONNECTIONS, LAYOUTS, bucket, fire_boundary, pair_phase
from bench.data import write_file
from bench.phases import daemon_connection_yaml
from bench.processes import exited, start, stop
from bench.targets import judge, ratios
from connector.config import load_workspace


def _run(
    run_id: int, connection: str, started: str, ended: str | None, status: str = "success"
) -> dict[str, Any]:
    """One object as `connector history --json` prints it (the fields the pair reads)."""
    return {
        "id": run_id,
        "connection": connection,
        "status": status,
        "started_at": f"2026-12-04T10:{started}+00:00",
        "ended_at": None if ended is None else f"2026-12-04T10:{ended}+00:00",
        "counts": {"rows_read": 1000, "profiles_created": 1000},
        "ran_by": f"host:{run_id}",
    }


DAEMONS = [{"connections": list(CONNECTIONS), "peak_rss_mb": 250.0}]


def test_the_pair_is_timed_from_the_first_runs_start_to_the_last_runs_end() -> None:
    runs = [
        _run(1, "daemons-b", "00:00.5", "00:20.5"),
        _run(2, "daemons-a", "00:00.0", "00:10.0"),
        _run(3, "daemons-a", "01:00.0", "01:00.1"),  # the next fire, after the first run: not timed
    ]

    phase = pair_phase(runs, DAEMONS, nbytes=4_000_000)

    assert (phase["rows"], phase["seconds"], phase["rows_per_s"]) == (2000, 20.5, 98)
    assert phase["mb_per_s"] == 0.2
    assert [(run["connection"], run["seconds"]) for run in phase["runs"]] == [
        ("daemons-a", 10.0),
        ("daemons-b", 20.0),
    ]
    assert (phase["peak_rss_mb"], phase["runs_recorded"]) == (250.0, 3)


@pytest.mark.parametrize(
    ("runs", "problem"),
    [
        ([_run(1, "daemons-a", "00:00.0", "00:10.0")], "no run of daemons-b"),
        (
            [
                _run(1, "daemons-a", "00:00.0", "00:10.0"),
                _run(2, "daemons-b", "00:00.0", "00:09.0", "failure"),
            ],
            "runs did not succeed",
        ),
    ],
)
def test_a_missing_or_failed_run_gives_no_figure(runs: list[dict[str, Any]], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        pair_phase(runs, DAEMONS, nbytes=1)


def test_daemons_are_started_at_least_the_lead_before_the_minute_they_fire_at() -> None:
    assert fire_boundary(600.0, lead=12) == 660.0
    assert fire_boundary(647.0, lead=12) == 660.0
    assert fire_boundary(649.0, lead=12) == 720.0


def test_one_daemon_runs_both_connections_and_each_of_two_runs_one() -> None:
    assert LAYOUTS == {
        "daemons-one": (("daemons-a", "daemons-b"),),
        "daemons-two": (("daemons-a",), ("daemons-b",)),
    }


def test_each_connection_is_a_valid_scheduled_import_of_its_own_bucket(tmp_path: Path) -> None:
    for connection in CONNECTIONS:
        text = daemon_connection_yaml("http://127.0.0.1:9", connection, bucket(connection))
        (tmp_path / f"{connection}.yaml").write_text(text, encoding="utf-8")

    workspace = load_workspace(tmp_path, {})

    for connection in CONNECTIONS:
        loaded = workspace.connection(connection)
        [goal] = loaded.goals
        assert loaded.schedule is not None
        assert loaded.schedule.every_minutes == 1
        assert (goal.type, goal.source.bucket) == ("import-profiles", f"bench-{connection}")


def test_the_second_connections_file_holds_other_customers(tmp_path: Path) -> None:
    def ids(path: Path) -> list[str]:
        with path.open(encoding="utf-8", newline="") as handle:
            return [row[0] for row in csv.reader(handle, delimiter=";")][1:]

    first = ids(write_file(tmp_path / "a.csv", 1500))
    second = ids(write_file(tmp_path / "b.csv", 1500, first=1500))

    assert len(second) == 1500
    assert not set(first) & set(second)
    assert second[0] == "C00001500"


def test_two_daemons_at_1_6x_one_daemon_meet_the_target_and_the_worst_daemon_is_named() -> None:
    phases = {
        "daemons-one": {
            "rows_per_s": 20_000,
            "daemons": [{"connections": ["daemons-a", "daemons-b"], "peak_rss_mb": 290.0}],
        },
        "daemons-two": {
            "rows_per_s": 32_000,
            "daemons": [
                {"connections": ["daemons-a"], "peak_rss_mb": 250.0},
                {"connections": ["daemons-b"], "peak_rss_mb": 301.0},
            ],
        },
    }

    verdicts = {t["target"]: t for t in judge(phases, {})}

    scaling = verdicts["two daemons >= 1.6x one daemon"]
    memory = verdicts["peak RSS <= 300 MB per daemon (daemons-*)"]
    assert (scaling["needed"], scaling["measured"], scaling["met"]) == (32_000, 32_000, True)
    assert (memory["measured"], memory["met"]) == (301.0, False)
    assert memory["worst"] == "daemons-two daemon 2 (daemons-b)"
    assert ratios(phases)["daemons_two_vs_one"] == 1.6


def test_without_postgresql_both_daemon_targets_are_missed_and_say_why() -> None:
    reason = {"unavailable": "cannot create a database: connection failed"}
    phases = {"daemons-one": reason, "daemons-two": reason}

    verdicts = {t["target"]: t for t in judge(phases, {})}

    for name in ("two daemons >= 1.6x one daemon", "peak RSS <= 300 MB per daemon (daemons-*)"):
        assert (verdicts[name]["measured"], verdicts[name]["met"]) == (None, False)
        assert verdicts[name]["reason"].startswith("unavailable: cannot create a database")
        assert "MISSED (unavailable" in format_target(verdicts[name])


def test_a_started_process_is_stopped_by_signal_with_its_peak_rss(tmp_path: Path) -> None:
    hold = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
        "block = bytearray(120 * 1024 * 1024); block[::4096] = b'x' * len(block[::4096])\n"
        "print('ready', file=sys.stderr, flush=True)\n"
        "time.sleep(60)\n"
    )
    log = tmp_path / "log"
    running = start([sys.executable, "-c", hold], log=log)
    while b"ready" not in log.read_bytes():
        assert not exited(running)
        time.sleep(0.05)

    finished = stop(running, signum=signal.SIGTERM)

    assert finished.exit_code == 0
    assert finished.peak_rss_mb >= 120
    assert finished.seconds < 30
