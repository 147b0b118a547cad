"""The benchmark's verdicts and its store floors: what the README's Performance section quotes."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from bench.__main__ import _targets
from bench.data import write_file
from bench.phases import store_read_floor, store_write_floor
from connector.storage import Profile, SQLiteStore


def _phases(**rows_per_s: int) -> dict[str, dict[str, Any]]:
    names = {
        "csv_reader": "csv-reader",
        "pandas": "pandas",
        "fresh": "import-fresh",
        "update": "import-update",
        "export": "export-full-gzip",
        "writer": "csv-writer-gzip",
    }
    return {
        names[key]: {"rows_per_s": rate, "peak_rss_mb": 120.0} for key, rate in rows_per_s.items()
    }


def test_each_target_is_judged_against_the_baselines_of_the_same_run() -> None:
    phases = _phases(
        csv_reader=400_000,
        pandas=100_000,
        fresh=160_000,
        update=50_000,
        export=260_000,
        writer=400_000,
    )
    verdicts = {t["target"]: (t["needed"], t["met"]) for t in _targets(phases, {"100000": 110.0})}

    assert verdicts["fresh import >= 25% of csv.reader (rows/s)"] == (100_000, True)
    assert verdicts["fresh import >= 1.6x pandas glue (rows/s)"] == (160_000, True)
    assert verdicts["re-import >= 15% of csv.reader (rows/s)"] == (60_000, False)
    assert verdicts["gzip export >= 250k rows/s"] == (250_000, True)
    assert verdicts["gzip export >= 60% of csv.writer+gzip (rows/s)"] == (240_000, True)
    assert verdicts["peak RSS < 150 MB, every size and phase"] == (150, True)


def test_the_memory_target_takes_the_worst_phase_and_size() -> None:
    phases = _phases(csv_reader=1, pandas=1, fresh=1, update=1, export=1, writer=1)
    phases["import-update"]["peak_rss_mb"] = 151.0

    [memory] = [t for t in _targets(phases, {"100000": 110.0}) if t["target"].startswith("peak")]

    assert (memory["measured"], memory["met"]) == (151.0, False)


def test_the_write_floor_inserts_every_row_into_our_schema(tmp_path: Path) -> None:
    data = write_file(tmp_path / "customers.csv", 3000)

    result = store_write_floor(data, tmp_path)

    assert result["rows"] == 3000
    with sqlite3.connect(tmp_path / "floor.sqlite") as db:
        assert db.execute("SELECT count(*) FROM profiles").fetchone() == (3000,)
        assert db.execute("SELECT count(*) FROM identifiers").fetchone() == (3000,)


def test_the_read_floor_decodes_every_stored_profile(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "connector.sqlite") as store, store.transaction() as tx:
        tx.save_profiles(Profile(f"p{n}", {"email": [f"{n}@example.com"]}) for n in range(250))

    result = store_read_floor(tmp_path)

    assert result["rows"] == 250
    assert result["bytes"] > 250 * len('{"email":[""]}')
