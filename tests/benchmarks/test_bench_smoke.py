"""`python -m bench` end to end on a tiny file: every phase runs, the table and JSON come out.

The daemons pair waits for minute boundaries (schedules fire no sooner), so
this run idles for up to about two and a half minutes of its time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.targets import TARGETS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.postgres
def test_the_whole_benchmark_runs_every_phase_and_judges_every_target(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    command = [sys.executable, "-m", "bench", "--rows", "2000", "--memory-sizes", "1000,2000"]
    command += ["--cli-rows", "1500", "--daemon-rows", "1000"]
    command += ["--work", str(tmp_path / "work"), "--out", str(out)]

    done = subprocess.run(
        command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=600
    )

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    phases = report["phases"]
    assert {name: phases[name]["rows"] for name in phases if "unavailable" not in phases[name]} == {
        "csv-reader": 2000,
        "pandas": 2000,
        "import-fresh": 2000,
        "import-update": 2000,
        "segment-eval": 2000,
        "export-full-gzip": 2000,
        "csv-writer-gzip": 2000,
        "cli-pandas": 1500,
        "cli-import-fresh": 1500,
        "cli-import-update": 1500,
        "cli-export-full-gzip": 1500,
    } | (
        {}
        if "unavailable" in phases["import-fresh-postgres"]
        else {"import-fresh-postgres": 2000, "export-full-gzip-postgres": 2000}
    ) | (
        {} if "unavailable" in phases["daemons-one"] else {"daemons-one": 2000, "daemons-two": 2000}
    )
    assert (phases["import-fresh"]["created"], phases["import-update"]["updated"]) == (2000, 2000)
    assert (phases["cli-import-fresh"]["created"], phases["cli-import-update"]["updated"]) == (
        1500,
        1500,
    )
    assert 0 < phases["segment-eval"]["members"] < 2000
    assert set(report["peak_rss_mb_by_rows"]) == {"1000", "2000"}
    if "unavailable" not in phases["daemons-two"]:
        assert [len(phases[name]["daemons"]) for name in ("daemons-one", "daemons-two")] == [1, 2]
    assert len(report["targets"]) == len(TARGETS) + 2
    table = {line.strip()[:52].rstrip(): line for line in done.stdout.splitlines()}
    for target in report["targets"]:
        assert ("  met" if target["met"] else "  MISSED") in table[target["target"]]
