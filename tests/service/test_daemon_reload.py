"""Reload without a restart: new, changed, removed and disabled connections; invalid edits.

The daemon polls the goals folder (every 0.2 s here) and reloads when a file
changes, as SIGHUP would make it. An invalid edit keeps the configuration that
runs, logs each problem as `FILE:LINE: message`, and mails it when SMTP is set.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from service_support import (
    CONNECTION,
    eventually,
    job_ids,
    running_daemon,
    service_settings,
    smtp_server,
    write_connection,
)

from connector.service.daemon import Daemon

Events = list[MutableMapping[str, Any]]
REJECTED = "reload rejected: invalid goal file; previous configuration kept"


def trigger_of(daemon: Daemon, connection_id: str = CONNECTION) -> str:
    assert daemon._scheduler is not None
    job = daemon._scheduler.get_job(connection_id)
    assert job is not None
    return str(job.trigger)


async def test_a_new_connection_file_is_scheduled_without_restart(
    root: Path, endpoint: str, log_events: Events
) -> None:
    goals = root / "goals"
    write_connection(goals, endpoint)
    async with running_daemon(service_settings(root)) as daemon:
        assert job_ids(daemon) == {CONNECTION}
        write_connection(goals, endpoint, "shop", schedule={"days_of_week": ["mon"], "at": "06:30"})
        await eventually(lambda: job_ids(daemon) == {CONNECTION, "shop"}, what="the new job")
        assert "shop" in (daemon.workspace.connections if daemon.workspace else {})
        assert "day_of_week='mon'" in trigger_of(daemon, "shop")
    [reloaded] = [e for e in log_events if e["event"] == "goals reloaded"]
    assert reloaded["added"] == ["shop"]
    assert reloaded["removed"] == []
    assert reloaded["changed"] == []


async def test_a_changed_schedule_takes_effect_without_restart(
    root: Path, endpoint: str, log_events: Events
) -> None:
    goals = root / "goals"
    write_connection(goals, endpoint)
    async with running_daemon(service_settings(root)) as daemon:
        assert trigger_of(daemon).startswith("interval[1 day, 0:00:00]")
        write_connection(goals, endpoint, schedule={"every_hours": 12, "at": "06:15"})
        await eventually(
            lambda: trigger_of(daemon) == "cron[hour='6,18', minute='15']", what="the new trigger"
        )
    [reloaded] = [e for e in log_events if e["event"] == "goals reloaded"]
    assert reloaded["changed"] == [CONNECTION]


async def test_removed_and_disabled_connections_stop_being_scheduled(
    root: Path, endpoint: str
) -> None:
    goals = root / "goals"
    write_connection(goals, endpoint)
    shop = write_connection(goals, endpoint, "shop")
    write_connection(goals, endpoint, "web", schedule={"days_of_week": ["sun"]})
    async with running_daemon(service_settings(root)) as daemon:
        assert job_ids(daemon) == {CONNECTION, "shop", "web"}
        shop.unlink()
        await eventually(lambda: job_ids(daemon) == {CONNECTION, "web"}, what="shop's job gone")
        write_connection(goals, endpoint, "web", enabled=False)
        await eventually(lambda: job_ids(daemon) == {CONNECTION}, what="web's job gone")


async def test_an_invalid_edit_keeps_the_running_configuration_and_is_mailed(
    root: Path, endpoint: str, log_events: Events
) -> None:
    goals = root / "goals"
    path = write_connection(goals, endpoint, emails=["ops@example.com", "data@example.com"])
    with smtp_server() as (smtp, mailbox):
        settings = service_settings(
            root, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_starttls=False
        )
        async with running_daemon(settings) as daemon:
            before = trigger_of(daemon)
            good = path.read_text("utf-8")
            broken = good.replace("every_minutes: 1440", "every_hours: 5")
            assert broken != good
            path.write_text(broken, "utf-8")
            [rejected] = await eventually(
                lambda: [e for e in log_events if e["event"] == REJECTED], what="the rejection"
            )
            [mail] = await eventually(lambda: mailbox.received, what="the mail")
            # the previous configuration still runs
            assert trigger_of(daemon) == before
            assert daemon.workspace is not None
            schedule = daemon.workspace.connections[CONNECTION].schedule
            assert schedule is not None
            assert schedule.every_minutes == 1440
            # fixing the file is picked up as any other change
            path.write_text(good.replace("every_minutes: 1440", "every_hours: 6"), "utf-8")
            await eventually(lambda: trigger_of(daemon) != before, what="the fixed file")
    line = next(
        number for number, text in enumerate(broken.splitlines(), start=1) if "every_hours" in text
    )
    problem = rejected["problem"]
    assert re.match(rf"^{re.escape(str(path))}:{line}: .+", problem), problem
    assert "every_hours" in problem
    assert rejected["level"] == "error"
    assert sorted(mail.recipients) == ["data@example.com", "ops@example.com"]
    assert "invalid" in mail.subject
    assert problem in mail.body
    assert "previous configuration" in mail.body


async def test_an_invalid_edit_without_smtp_is_only_logged(
    root: Path, endpoint: str, log_events: Events
) -> None:
    goals = root / "goals"
    path = write_connection(goals, endpoint, emails=["ops@example.com"])
    async with running_daemon(service_settings(root)) as daemon:
        path.write_text("id: crm\nstorage: [not, a, mapping\n", "utf-8")
        [rejected] = await eventually(
            lambda: [e for e in log_events if e["event"] == REJECTED], what="the rejection"
        )
        assert job_ids(daemon) == {CONNECTION}
        await eventually(
            lambda: [
                e for e in log_events if e["event"] == "no smtp_host configured; mail not sent"
            ],
            what="the note that no mail went out",
        )
    assert re.match(rf"^{re.escape(str(path))}:\d+: ", rejected["problem"]), rejected


async def test_reload_when_asked_even_without_file_changes(root: Path, endpoint: str) -> None:
    write_connection(root / "goals", endpoint)
    async with running_daemon(service_settings(root, watch_goals=False)) as daemon:
        write_connection(root / "goals", endpoint, "shop")
        assert job_ids(daemon) == {CONNECTION}  # not watching: nothing changes by itself
        daemon.request_reload()  # what SIGHUP calls
        await eventually(lambda: job_ids(daemon) == {CONNECTION, "shop"}, what="the reload")
