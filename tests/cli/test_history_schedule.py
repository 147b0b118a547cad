"""`connector schedule` (next fire times, ISO 8601 with the offset) and `connector history`
after real runs (moto S3, SQLite), read back by a new process as after a restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from helpers import CONNECTION, Harness, csv_bytes, import_goal

from connector.cli import main
from connector.config.schedule import Schedule
from connector.service.scheduling import next_fire_times
from connector.storage import Trigger

AMS = ZoneInfo("Europe/Amsterdam")
WEEKLY = {"timezone": "Europe/Amsterdam", "days_of_week": ["mon"], "at": "06:30"}
TWICE_A_DAY = {"timezone": "UTC", "every_hours": 12, "at": "03:45"}


def connection_file(goals: Path, connection_id: str, **extra: Any) -> None:
    data = {
        "id": connection_id,
        "storage": {"region": "eu-west-1", "access_key_id": "k", "secret_access_key": "s"},
        "goals": [import_goal()],
        **extra,
    }
    (goals / f"{connection_id}.yaml").write_text(yaml.safe_dump(data), "utf-8")


@pytest.fixture
def goals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "goals"
    folder.mkdir()
    connection_file(folder, "weekly", schedule=WEEKLY)
    connection_file(folder, "twice", schedule=TWICE_A_DAY, enabled=False)
    connection_file(folder, "adhoc")
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    monkeypatch.setenv("CONNECTOR_GOALS_DIR", str(folder))
    monkeypatch.setenv("CONNECTOR_DATABASE", str(tmp_path / "connector.db"))
    monkeypatch.setenv("CONNECTOR_LOG_FORMAT", "json")
    return folder


def listed(output: str) -> dict[str, tuple[str, list[str]]]:
    """`connection: description` lines, each followed by its indented fire times."""
    sections: dict[str, tuple[str, list[str]]] = {}
    current: list[str] = []
    for line in output.splitlines():
        if line.startswith("  "):
            current.append(line.strip())
        else:
            name, _, description = line.partition(": ")
            current = []
            sections[name] = (description, current)
    return sections


# -- connector schedule -------------------------------------------------------------------


def test_schedule_lists_five_iso_fire_times_per_connection(
    goals: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedule"]) == 0
    shown = listed(capsys.readouterr().out)
    assert list(shown) == ["adhoc", "twice", "weekly"]
    assert shown["adhoc"] == ("on demand only (no schedule)", [])
    description, times = shown["weekly"]
    assert description == "days_of_week in Europe/Amsterdam"
    assert len(times) == 5
    moments = [datetime.fromisoformat(text) for text in times]
    for text, moment in zip(times, moments, strict=True):
        assert moment.utcoffset() is not None, text  # the offset is printed
        local = moment.astimezone(AMS)
        assert moment.utcoffset() == local.utcoffset(), text  # ...and it is Amsterdam's
        assert (local.weekday(), local.hour, local.minute) == (0, 6, 30), text
        assert text.endswith(("+01:00", "+02:00")), text
    dates = [moment.date() for moment in moments]
    assert {later - earlier for earlier, later in zip(dates, dates[1:], strict=False)} == {
        timedelta(days=7)
    }
    assert datetime.now(AMS) < moments[0] <= datetime.now(AMS) + timedelta(days=7)
    assert times == [
        moment.isoformat() for moment in next_fire_times(Schedule.model_validate(WEEKLY), 5)
    ]


def test_schedule_shows_disabled_connections_as_such(
    goals: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedule", "twice", "--count", "3"]) == 0
    shown = listed(capsys.readouterr().out)
    assert list(shown) == ["twice"]
    description, times = shown["twice"]
    assert description == "every_hours in UTC (disabled: the daemon will not run it)"
    assert len(times) == 3
    for text in times:
        assert text.endswith("+00:00")
        assert text[11:19] in {"03:45:00", "15:45:00"}


def test_schedule_of_an_unknown_connection_fails_clearly(
    goals: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedule", "nope"]) == 1
    err = capsys.readouterr().err
    assert "no connection 'nope'" in err
    assert "adhoc, twice, weekly" in err


# -- connector history after real runs ----------------------------------------------------


@pytest.fixture
def harness(tmp_path: Path, moto_endpoint: str, reset_moto: None) -> Iterator[Harness]:
    built = Harness(tmp_path, moto_endpoint)
    yield built
    built.close()


@pytest.mark.slow
async def test_history_after_real_runs_survives_a_restart(harness: Harness) -> None:
    harness.write_connection(
        import_goal(
            mappings=[{"column": "points", "property": "points", "rule": "sum", "type": "number"}]
        )
    )
    missing = import_goal()
    missing["source"] = {"bucket": "no-such-bucket", "files": ["*.csv"]}
    harness.write_connection(missing, connection_id="shop")
    await harness.put({"in/a.csv": csv_bytes("customer_id,points", "C1,1", "C2,lots", "C3,3")})
    scheduled = await harness.run(trigger=Trigger.SCHEDULE)
    failed = await harness.run(connection_id="shop")
    harness.close()  # the writer is gone: what follows reads the file as a new process

    everything = harness.cli("history", "--json")
    assert everything.returncode == 0, everything.stderr
    runs = [json.loads(line) for line in everything.stdout.splitlines()]
    assert [run["id"] for run in runs] == [failed.record.id, scheduled.record.id]  # latest first

    shop, crm = runs
    assert shop["connection"] == "shop"
    assert shop["trigger"] == "manual"
    assert shop["status"] == "failure"
    assert "no-such-bucket" in shop["error"]
    assert crm["connection"] == CONNECTION
    assert crm["goal"] is None
    assert crm["trigger"] == "schedule"
    assert crm["status"] == "partial"
    assert crm["error"] is None
    counts = crm["counts"]
    assert (counts["files"], counts["rows_read"], counts["rows_applied"]) == (1, 3, 2)
    assert (counts["rows_rejected"], counts["profiles_created"]) == (1, 2)
    assert counts["unique_profiles"] == 2
    started = datetime.fromisoformat(crm["started_at"])
    ended = datetime.fromisoformat(crm["ended_at"])
    assert started.utcoffset() == timedelta(0)
    assert started <= ended <= started + timedelta(minutes=5)

    one = harness.cli("history", CONNECTION, "--json")
    assert [json.loads(line)["connection"] for line in one.stdout.splitlines()] == [CONNECTION]

    table = harness.cli("history")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "RUN", "CONNECTION", "GOAL", "TRIGGER", "STARTED", "(UTC)", "TOOK", "STATUS",
        "FILES", "READ", "APPLIED", "REJECTED", "CREATED", "UPDATED", "EXPORTED",
        "UNIQUE", "ERROR",
    ]  # fmt: skip
    assert len(rows) == 2
    assert rows[0].split()[1:4] == ["shop", "*", "manual"]
    assert "failure" in rows[0].split()
    assert "no-such-bucket" in rows[0]
    cells = rows[1].split()
    assert cells[:4] == [str(scheduled.record.id), CONNECTION, "*", "schedule"]
    assert cells[6].endswith("s")  # TOOK
    assert cells[7:15] == ["partial", "1", "3", "2", "1", "2", "0", "0"]
