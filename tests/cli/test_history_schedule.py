"""`connector schedule` (next fire times, ISO 8601 with the offset) and `connector history`
after real runs (moto S3, SQLite), read back by a new process as after a restart."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from connector.cli import main
from connector.config import load_workspace
from connector.config.schedule import Schedule
from connector.goals.runner import RunOptions, run_connection
from connector.service.scheduling import next_fire_times
from connector.sources import S3Client, S3Credentials
from connector.storage import SQLiteStore, Trigger

AMS = ZoneInfo("Europe/Amsterdam")
WEEKLY = {"timezone": "Europe/Amsterdam", "days_of_week": ["mon"], "at": "06:30"}
TWICE_A_DAY = {"timezone": "UTC", "every_hours": 12, "at": "03:45"}


CUSTOMERS = {
    "type": "import-profiles",
    "name": "customers",
    "source": {"bucket": "crm-exports", "files": ["*.csv"]},
    "match": {"column": "customer_id", "property": "customer_id", "create_missing": True},
    "mappings": [{"column": "email", "property": "email", "rule": "set"}],
}


def connection_file(folder: Path, connection_id: str, **extra: Any) -> None:
    data = {
        "id": connection_id,
        "storage": {"region": "eu-west-1", "access_key_id": "k", "secret_access_key": "s"},
        "goals": [CUSTOMERS],
        **extra,
    }
    (folder / f"{connection_id}.yaml").write_text(yaml.safe_dump(data), "utf-8")


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
    assert {later - earlier for earlier, later in pairwise(dates)} == {timedelta(days=7)}
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
    assert main(["schedule", "nope"]) == 4  # not found
    err = capsys.readouterr().err
    assert "no connection 'nope'" in err
    assert "adhoc, twice, weekly" in err


# -- connector history after real runs ----------------------------------------------------


def connector_cli(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """A fresh `connector` process on the goals folder and store under `root`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONNECTOR_")}
    env.update(
        CONNECTOR_GOALS_DIR=str(root / "goals"),
        CONNECTOR_DATABASE=str(root / "connector.db"),
        CONNECTOR_LOG_LEVEL="warning",
    )
    return subprocess.run(
        [sys.executable, "-m", "connector", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
async def test_history_after_real_runs_survives_a_restart(
    tmp_path: Path, moto_endpoint: str, reset_moto: None
) -> None:
    goals = tmp_path / "goals"
    goals.mkdir()
    storage = {
        "region": "eu-west-1",
        "endpoint_url": moto_endpoint,
        "access_key_id": "testing",
        "secret_access_key": "testing",
    }
    points = {
        "type": "import-profiles",
        "name": "points",
        "source": {"bucket": "history-in", "files": ["*.csv"]},
        "match": {"column": "customer_id", "property": "customer_id", "create_missing": True},
        "mappings": [{"column": "points", "property": "points", "rule": "sum", "type": "number"}],
    }
    missing = {**points, "source": {"bucket": "no-such-bucket", "files": ["*.csv"]}}
    connection_file(goals, "crm", storage=storage, goals=[points])
    connection_file(goals, "shop", storage=storage, goals=[missing])
    credentials = S3Credentials(
        region="eu-west-1",
        endpoint_url=moto_endpoint,
        access_key_id="testing",
        secret_access_key="testing",
    )
    async with S3Client(credentials) as s3:
        await s3.ensure_bucket("history-in")
        await s3.put_object("history-in", "a.csv", b"customer_id,points\nC1,1\nC2,lots\nC3,3\n")
    workspace = load_workspace(goals)
    store = SQLiteStore(tmp_path / "connector.db")
    try:
        scheduled = await run_connection(
            store, workspace, "crm", RunOptions(trigger=Trigger.SCHEDULE)
        )
        failed = await run_connection(store, workspace, "shop", RunOptions())
    finally:
        store.close()  # the writer is gone: a new process reads the file, as after a restart

    everything = connector_cli(tmp_path, "history", "--json")
    assert everything.returncode == 0, everything.stderr
    runs = [json.loads(line) for line in everything.stdout.splitlines()]
    assert [run["id"] for run in runs] == [failed.record.id, scheduled.record.id]  # latest first

    shop, crm = runs
    assert shop["connection"] == "shop"
    assert shop["trigger"] == "manual"
    assert shop["status"] == "failure"
    assert "no-such-bucket" in shop["error"]
    assert crm["connection"] == "crm"
    assert crm["goal"] is None
    assert crm["trigger"] == "schedule"
    assert crm["status"] == "partial"
    assert crm["error"] is None
    host, _, pid = crm["ran_by"].rpartition(":")  # this test process ran both
    assert (host, int(pid)) == (socket.gethostname(), os.getpid())
    counts = crm["counts"]
    assert (counts["files"], counts["rows_read"], counts["rows_applied"]) == (1, 3, 2)
    assert (counts["rows_rejected"], counts["profiles_created"]) == (1, 2)
    assert counts["unique_profiles"] == 2
    started = datetime.fromisoformat(crm["started_at"])
    ended = datetime.fromisoformat(crm["ended_at"])
    assert started.utcoffset() == timedelta(0)
    assert started <= ended <= started + timedelta(minutes=5)

    table = connector_cli(tmp_path, "history", "crm")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "RUN", "CONNECTION", "STARTED", "UTC", "TOOK", "STATUS", "FILES", "ROWS", "REJ", "UNIQUE",
    ]  # fmt: skip
    [row] = rows  # only the connection asked for
    cells = row.split()
    assert cells[:2] == [str(scheduled.record.id), "crm"]
    assert cells[2:4] == [started.strftime("%m-%d"), started.strftime("%H:%M")]
    assert cells[4].endswith("s")  # TOOK
    assert cells[5:] == ["partial", "1", "3", "1", "2"]

    detail = connector_cli(tmp_path, "history", "--run", str(scheduled.record.id))
    assert detail.returncode == 0, detail.stderr
    assert f"ran by    {socket.gethostname()}:{os.getpid()}" in detail.stdout
