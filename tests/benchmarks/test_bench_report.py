"""The benchmark's verdicts, its segment phase and its process timing: what the README quotes."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from bench.__main__ import format_target
from bench.data import write_file
from bench.phases import SEGMENT, postgres_import, segment_eval
from bench.processes import script_phase, spawn
from bench.targets import judge, ratios
from connector.config.segments import Condition
from connector.engine.segment_index import compile_condition
from connector.storage import Profile, SQLiteStore


def _phases(**rows_per_s: int) -> dict[str, dict[str, Any]]:
    phases: dict[str, dict[str, Any]] = {
        name.replace("_", "-"): {"rows_per_s": rate, "peak_rss_mb": 120.0}
        for name, rate in rows_per_s.items()
    }
    for name, layout in (("daemons-one", [["a", "b"]]), ("daemons-two", [["a"], ["b"]])):
        if name in phases:
            phases[name]["daemons"] = [
                {"connections": names, "peak_rss_mb": 120.0} for names in layout
            ]
    return phases


RUN = {
    "csv_reader": 400_000,
    "pandas": 100_000,
    "import_fresh": 160_000,
    "import_fresh_postgres": 70_000,
    "import_update": 99_000,
    "segment_eval": 600_000,
    "export_full_gzip": 260_000,
    "csv_writer_gzip": 140_000,
    "cli_pandas": 80_000,
    "cli_import_fresh": 90_000,
    "cli_import_update": 70_000,
    "cli_export_full_gzip": 190_000,
    "daemons_one": 30_000,
    "daemons_two": 45_000,
}


def test_each_target_is_judged_against_the_baselines_of_the_same_run() -> None:
    verdicts = {
        t["target"]: (t["needed"], t["met"]) for t in judge(_phases(**RUN), {"100000": 110.0})
    }

    assert verdicts == {
        "fresh import >= 1.5x pandas glue": (150_000, True),
        "fresh import >= 0.4x csv.reader": (160_000, True),
        "update >= 1.0x pandas glue": (100_000, False),
        "gzip export >= 250k rows/s": (250_000, True),
        "gzip export >= 2x csv.writer+gzip 6": (280_000, False),
        "segment evaluation >= 500k profiles/s": (500_000, True),
        "cli fresh import >= 1.2x pandas script": (96_000, False),
        "cli update >= 0.8x pandas script": (64_000, True),
        "cli gzip export >= 200k rows/s": (200_000, False),
        "PostgreSQL import >= 0.5x SQLite": (80_000, False),
        "two daemons >= 1.6x one daemon": (48_000, False),
        "peak RSS <= 300 MB (rows 100,000; every phase)": (300, True),
        "peak RSS <= 300 MB per daemon (daemons-*)": (300, True),
    }
    assert ratios(_phases(**RUN))["import_fresh_vs_pandas"] == 1.6


def test_the_table_prints_each_verdict_with_its_figures() -> None:
    fresh, _, update, *_ = judge(_phases(**RUN), {"100000": 110.0})

    assert format_target(fresh).split() == [
        *fresh["target"].split(),
        "160,000",
        "vs",
        "150,000",
        "met",
    ]
    assert format_target(update).split()[-4:] == ["99,000", "vs", "100,000", "MISSED"]


def test_the_memory_target_takes_the_worst_phase_and_size() -> None:
    phases = _phases(**RUN)
    phases["cli-import-update"]["peak_rss_mb"] = 301.0

    *_, memory, _daemons = judge(phases, {"100000": 110.0, "5000000": 290.0})

    assert (memory["measured"], memory["met"], memory["worst"]) == (
        301.0,
        False,
        "cli-import-update",
    )
    assert memory["target"] == "peak RSS <= 300 MB (rows 100,000, 5,000,000; every phase)"


def test_an_unavailable_phase_misses_its_target_and_says_why() -> None:
    phases = _phases(**RUN)
    phases["import-fresh-postgres"] = {"unavailable": "OperationalError: connection refused"}

    [postgres] = [t for t in judge(phases, {}) if t["target"].startswith("PostgreSQL")]

    assert (postgres["measured"], postgres["met"]) == (None, False)
    assert postgres["reason"] == "unavailable: OperationalError: connection refused"
    assert "MISSED (unavailable: OperationalError" in format_target(postgres)
    assert ratios(phases)["postgres_vs_sqlite_import"] is None


def test_a_target_without_its_baseline_is_not_judged_met() -> None:
    phases = _phases(**RUN)
    del phases["cli-pandas"]

    [cli] = [t for t in judge(phases, {}) if t["target"].startswith("cli fresh")]

    assert (cli["needed"], cli["met"], cli["reason"]) == (
        None,
        False,
        "baseline cli-pandas not run",
    )


def test_segment_eval_counts_the_members_the_per_profile_predicate_counts(tmp_path: Path) -> None:
    rng = random.Random(7)
    profiles = [
        Profile(
            f"p{n}",
            {
                "email": [f"{n}@example.com"] if rng.random() < 0.8 else [],
                "total_spent": [f"{rng.randint(0, 3000)}.{rng.randint(0, 99):02d}"],
                "vip": [rng.choice(["true", "false"])],
                "country": [rng.choice(["NL", "BE", "DE", "FR"])],
                "birth_date": [
                    f"{rng.randint(1940, 2006)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
                ],
                "last_seen": [f"2026-{rng.randint(1, 12):02d}-15T10:00:00+00:00"],
            },
        )
        for n in range(400)
    ]
    with SQLiteStore(tmp_path / "connector.sqlite") as store, store.transaction() as tx:
        tx.save_profiles(profiles)
    holds = compile_condition(Condition.model_validate(SEGMENT))

    result = segment_eval(tmp_path)

    assert result["rows"] == 400
    assert result["members"] == sum(holds(p.properties) for p in profiles)
    assert 0 < result["members"] < 400  # the segment discriminates on this data


def test_a_script_phase_is_timed_from_spawn_to_exit(tmp_path: Path) -> None:
    data = write_file(tmp_path / "customers.csv", 1500)
    command = [sys.executable, "-m", "bench.phases", "csv-reader", "--file", str(data)]

    phase = script_phase(spawn([*command, "--work", str(tmp_path)], log=tmp_path / "log"))

    assert (phase["rows"], phase["bytes"]) == (1500, data.stat().st_size)
    assert phase["seconds"] > phase["inner_seconds"]  # interpreter start and exit count too
    assert phase["rows_per_s"] == round(1500 / phase["seconds"])


def test_spawn_reads_the_peak_rss_of_the_process_it_waited_for(tmp_path: Path) -> None:
    hold = "block = bytearray(120 * 1024 * 1024); block[::4096] = b'x' * len(block[::4096])"

    finished = spawn([sys.executable, "-c", hold], log=tmp_path / "log")

    assert finished.exit_code == 0
    assert finished.peak_rss_mb >= 120


def test_the_postgres_phase_is_unavailable_not_failed_without_a_server(tmp_path: Path) -> None:
    result = postgres_import("http://127.0.0.1:1", tmp_path, "postgresql://postgres@127.0.0.1:1/x")

    assert result["unavailable"].startswith("cannot create a database: connection failed")
