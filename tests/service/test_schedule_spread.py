"""`spread_minutes`: each connection fires at its own fixed offset, the same in every process,
in the daemon, in `connector schedule`, and across a DST change."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from service_support import (
    CONNECTION,
    connector_env,
    running_daemon,
    service_settings,
    write_connection,
)

from connector.config.schedule import Schedule
from connector.service.scheduling import next_fire_times, spread_offset

AMS = ZoneInfo("Europe/Amsterdam")


def test_an_offset_is_fixed_per_connection_and_within_the_spread() -> None:
    offsets = {f"conn-{n}": spread_offset(f"conn-{n}", 30) for n in range(60)}
    assert all(timedelta(0) <= offset < timedelta(minutes=30) for offset in offsets.values())
    assert len({offset // timedelta(minutes=1) for offset in offsets.values()}) >= 20
    assert spread_offset("conn-7", 30) == offsets["conn-7"]  # the same every time
    script = "from connector.service.scheduling import spread_offset as s; print(s('conn-7', 30))"
    other_process = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert other_process.stdout.strip() == str(offsets["conn-7"])
    assert spread_offset("conn-7", 0) == timedelta(0)


def test_every_fire_time_moves_by_the_offset() -> None:
    schedule = Schedule(timezone="Europe/Amsterdam", times_per_day=24, at="00:00")
    now = datetime(2026, 1, 14, 11, 45, tzinfo=AMS)
    offset = timedelta(minutes=7, seconds=30)
    times = next_fire_times(schedule, 3, now=now, offset=offset)
    assert [t.isoformat() for t in times] == [
        "2026-01-14T12:07:30+01:00",
        "2026-01-14T13:07:30+01:00",
        "2026-01-14T14:07:30+01:00",
    ]
    # at 11:05 the 11:07:30 fire is still ahead
    late = next_fire_times(schedule, 1, now=now.replace(minute=5), offset=offset)
    assert late[0].isoformat() == "2026-01-14T11:07:30+01:00"


def test_a_spread_counts_elapsed_time_across_the_spring_forward_night() -> None:
    # 01:50 local + 20 min of elapsed time on 2026-03-29 is 03:10 summer time
    schedule = Schedule(timezone="Europe/Amsterdam", days_of_week=["sun"], at="01:50")
    now = datetime(2026, 3, 28, 12, 0, tzinfo=AMS)
    [fire] = next_fire_times(schedule, 1, now=now, offset=timedelta(minutes=20))
    assert fire.isoformat() == "2026-03-29T03:10:00+02:00"


async def test_the_daemon_schedules_the_spread_times(root: Path, endpoint: str) -> None:
    write_connection(root / "goals", endpoint, schedule={"times_per_day": 24, "spread_minutes": 40})
    settings = service_settings(root)
    async with running_daemon(settings) as daemon:
        assert daemon._scheduler is not None
        job = daemon._scheduler.get_job(CONNECTION)
        offset = spread_offset(CONNECTION, 40)
        expected = next_fire_times(Schedule(times_per_day=24, spread_minutes=40), 1, offset=offset)
        assert job.next_run_time == expected[0]
        assert job.next_run_time.minute * 60 + job.next_run_time.second == offset.seconds


def test_connector_schedule_shows_the_real_times_and_the_daemon_default_applies(
    root: Path, endpoint: str
) -> None:
    write_connection(root / "goals", endpoint, schedule={"times_per_day": 24})
    env = connector_env(root, CONNECTOR_SCHEDULE_SPREAD_MINUTES="15")
    shown = subprocess.run(
        [sys.executable, "-m", "connector", "schedule", "--count", "2"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    offset = spread_offset(CONNECTION, 15)
    assert f"spread +{offset}" in shown
    [first, second] = [line.strip() for line in shown.splitlines()[1:3]]
    for text in (first, second):
        moment = datetime.fromisoformat(text)
        assert moment.minute * 60 + moment.second == offset.seconds


def test_the_machine_time_zone_changes_no_fire_time(root: Path, endpoint: str) -> None:
    write_connection(
        root / "goals",
        endpoint,
        schedule={"timezone": "Europe/Amsterdam", "days_of_week": ["mon"], "at": "06:30"},
    )
    shown = [
        subprocess.run(
            [sys.executable, "-m", "connector", "schedule", "--count", "3"],
            env={**connector_env(root), "TZ": zone},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for zone in ("Pacific/Auckland", "America/Los_Angeles", "UTC")
    ]
    assert shown[0] == shown[1] == shown[2]
    assert "T06:30:00+0" in shown[0]
