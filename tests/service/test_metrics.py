"""The daemon's `/metrics` endpoint, scraped over HTTP as Prometheus would.

A real `python -m connector daemon` process serves the endpoint; the test reads it
with urllib and prometheus_client's own text parser, lets the schedule fire a goal
against moto's S3, and sees the counters move. The in-process tests fire the job
through APScheduler (as in test_daemon_runs) to check each counter without waiting
for a minute's turn.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from service_support import (
    CONNECTION,
    GOAL,
    GateProgress,
    closed_port,
    connector,
    connector_env,
    customers_csv,
    eventually,
    finished_runs,
    fire_now,
    put_files,
    running_daemon,
    service_settings,
    start_daemon,
    wait_until,
    write_connection,
)

from connector.config import load_workspace
from connector.goals.context import GoalResult
from connector.goals.runner import GoalOutcome, RunOptions, RunOutcome, run_connection
from connector.service.daemon import Daemon
from connector.service.metrics import RUN_STATUSES, SKIP_REASONS, DaemonMetrics
from connector.service.notify import SystemdNotifier
from connector.storage import RunCounts, RunRecord, RunStatus, SQLiteStore, Trigger

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    """Every sample of `GET /metrics`, keyed by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def answering(port: int) -> Samples | None:
    try:
        return scrape(port)
    except (urllib.error.URLError, ConnectionError):
        return None


# -- a real daemon process --------------------------------------------------------------


@pytest.mark.slow
def test_a_daemon_process_serves_metrics_and_its_counters_move_after_a_run(
    root: Path, endpoint: str
) -> None:
    schedule = {"timezone": "UTC", "every_minutes": 1, "at": "00:00"}
    write_connection(root / "goals", endpoint, schedule=schedule)
    asyncio.run(put_files(endpoint, {"in/day1.csv": customers_csv(6, bad_points={3})}))
    port = closed_port()
    log = root / "daemon.log"
    process = start_daemon(root, log, CONNECTOR_METRICS__LISTEN=f"127.0.0.1:{port}")
    try:
        before = wait_until(lambda: answering(port), timeout=30, what="the metrics endpoint")
        labels = {"connection": CONNECTION, "goal": GOAL}
        # every series of the connection exists from the start, at zero
        assert value(before, "connector_rows_read_total", **labels) == 0
        assert value(before, "connector_runs_total", connection=CONNECTION, status="partial") == 0
        assert value(before, "connector_connections_scheduled") == 1
        next_fire = value(before, "connector_next_fire_timestamp_seconds", connection=CONNECTION)
        assert next_fire is not None
        assert 0 < next_fire - time.time() <= 61
        # the daemon's own process
        assert value(before, "process_resident_memory_bytes") > 0  # type: ignore[operator]
        assert value(before, "process_start_time_seconds") is not None

        database = root / "store" / "connector.db"
        wait_until(lambda: finished_runs(database), timeout=90, what="the scheduled run")
        after = wait_until(
            lambda: (
                (s := scrape(port))
                and value(s, "connector_runs_total", connection=CONNECTION, status="partial")
                and s
            ),
            timeout=10,
            what="the run in the metrics",
        )
        assert value(after, "connector_goal_runs_total", **labels, status="partial") == 1
        assert value(after, "connector_rows_read_total", **labels) == 6
        assert value(after, "connector_rows_applied_total", **labels) == 5
        assert value(after, "connector_rows_rejected_total", **labels) == 1
        assert value(after, "connector_profiles_created_total", **labels) == 5
        assert value(after, "connector_files_imported_total", **labels) == 1
        assert value(after, "connector_bytes_read_total", **labels) > 0  # type: ignore[operator]
        assert value(after, "connector_run_duration_seconds_count", connection=CONNECTION) == 1
        assert value(after, "connector_goal_duration_seconds_count", **labels) == 1
        # a partial run is not a success: no last-success time yet
        assert (
            value(after, "connector_last_success_timestamp_seconds", connection=CONNECTION) is None
        )
        assert (
            value(after, "connector_next_fire_timestamp_seconds", connection=CONNECTION) > next_fire  # type: ignore[operator]
        )
    finally:
        if process.poll() is None:
            process.terminate()
        assert process.wait(timeout=20) == 0, log.read_text("utf-8")
    assert answering(port) is None  # the endpoint stops with the daemon
    assert "metrics endpoint listening" in log.read_text("utf-8")


def test_a_daemon_that_cannot_listen_for_metrics_exits_naming_the_setting(root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = root / "daemon.log"
        process = start_daemon(root, log, CONNECTOR_METRICS__LISTEN=f"127.0.0.1:{port}")
        try:
            assert process.wait(timeout=30) == 1
        finally:
            if process.poll() is None:
                process.kill()
    text = log.read_text("utf-8")
    assert "metrics.listen" in text
    assert "Traceback" not in text


def test_a_bad_listen_address_is_refused_naming_the_variable(root: Path) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "connector", "daemon"],
        env=connector_env(root, CONNECTOR_METRICS__LISTEN="9464"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode != 0
    assert "CONNECTOR_METRICS__LISTEN" in process.stderr
    assert "HOST:PORT" in process.stderr
    assert "Traceback" not in process.stderr


def test_the_daemon_help_says_how_to_turn_metrics_on(root: Path) -> None:
    result = connector(root, "daemon", "--help")
    assert result.returncode == 0
    assert "metrics.listen" in result.stdout
    assert "CONNECTOR_METRICS__LISTEN" in result.stdout


# -- the daemon in this process -----------------------------------------------------------


async def counted_runs(port: int, count: int) -> Samples:
    """The first scrape that counts `count` successful runs of the connection."""

    def scraped() -> Samples | None:
        samples = scrape(port)
        done = value(samples, "connector_runs_total", connection=CONNECTION, status="success")
        return samples if done == count else None

    found: Samples = await eventually(scraped, what=f"{count} run(s) in the metrics")
    return found


async def test_each_counter_follows_the_runs_of_the_daemon(root: Path, endpoint: str) -> None:
    write_connection(root / "goals", endpoint)
    await put_files(endpoint, {"in/day1.csv": customers_csv(4)})
    port = closed_port()
    settings = service_settings(root, metrics={"listen": f"127.0.0.1:{port}"})
    database = root / "store" / "connector.db"
    labels = {"connection": CONNECTION, "goal": GOAL}
    async with running_daemon(settings) as daemon:
        fire_now(daemon)
        # the run's record is written a moment before the daemon counts it: wait for both
        first = await counted_runs(port, 1)
        assert len(finished_runs(database)) == 1
        assert value(first, "connector_profiles_created_total", **labels) == 4
        ended = finished_runs(database)[0].ended_at
        assert ended is not None
        assert value(
            first, "connector_last_success_timestamp_seconds", connection=CONNECTION
        ) == pytest.approx(ended.timestamp())

        # the same file again is skipped; a new one updates the profiles it names
        await put_files(endpoint, {"in/day2.csv": customers_csv(2, start=3)})
        fire_now(daemon)
        second = await counted_runs(port, 2)
        assert value(second, "connector_files_skipped_total", **labels) == 1
        assert value(second, "connector_files_imported_total", **labels) == 2
        assert value(second, "connector_profiles_updated_total", **labels) == 2
        assert value(second, "connector_rows_read_total", **labels) == 6
        # the gauge falls back once the run's mail is sent, a moment after its record
        await eventually(
            lambda: value(scrape(port), "connector_run_in_progress", connection=CONNECTION) == 0,
            what="the run to be over",
        )

        # a reload counts; an invalid edit counts as rejected
        assert await daemon.reload()
        (root / "goals" / f"{CONNECTION}.yaml").write_text("id: [", "utf-8")
        assert not await daemon.reload()
        third = await asyncio.to_thread(scrape, port)
        assert value(third, "connector_reloads_total", outcome="applied") == 1
        assert value(third, "connector_reloads_total", outcome="rejected") == 1

        # only /metrics is served
        with pytest.raises(urllib.error.HTTPError) as caught:
            await asyncio.to_thread(urllib.request.urlopen, f"http://127.0.0.1:{port}/", timeout=5)
        assert caught.value.code == 404
        caught.value.close()


async def test_a_run_in_progress_shows_while_it_goes_on(
    root: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = GateProgress()
    monkeypatch.setattr("connector.cli.progress.LogProgress", gate)
    write_connection(root / "goals", endpoint)
    await put_files(endpoint, {"in/day1.csv": customers_csv(3)})
    port = closed_port()
    settings = service_settings(root, metrics={"listen": f"127.0.0.1:{port}"})
    async with running_daemon(settings) as daemon:
        fire_now(daemon)
        await eventually(gate.entered.is_set, what="the import to hold mid-file")
        during = await asyncio.to_thread(scrape, port)
        gate.release.set()
        assert value(during, "connector_run_in_progress", connection=CONNECTION) == 1
        assert value(during, "connector_runs_total", connection=CONNECTION, status="success") == 0
        await eventually(
            lambda: value(scrape(port), "connector_run_in_progress", connection=CONNECTION) == 0,
            what="the run to be over",
        )


async def test_a_fire_held_by_a_manual_run_counts_as_skipped(root: Path, endpoint: str) -> None:
    write_connection(root / "goals", endpoint)
    port = closed_port()
    settings = service_settings(root, metrics={"listen": f"127.0.0.1:{port}"})
    (root / "store").mkdir()
    store = SQLiteStore(root / "store" / "connector.db")
    store.acquire_run_lock(CONNECTION, "someone-else:1")
    try:
        async with running_daemon(settings) as daemon:
            fire_now(daemon)

            def skipped() -> float | None:
                samples = scrape(port)
                return value(
                    samples,
                    "connector_fires_skipped_total",
                    connection=CONNECTION,
                    reason="run_in_progress",
                )

            await eventually(lambda: skipped() == 1, what="the skipped fire")
    finally:
        store.release_run_lock(CONNECTION, "someone-else:1")
        store.close()


async def test_the_last_success_is_read_from_the_history_at_start(
    root: Path, endpoint: str
) -> None:
    """After a restart the gauge is right before the next run (alerts must not fire)."""
    write_connection(root / "goals", endpoint)
    await put_files(endpoint, {"in/day1.csv": customers_csv(2)})
    (root / "store").mkdir()
    store = SQLiteStore(root / "store" / "connector.db")
    try:
        workspace = load_workspace(root / "goals")
        outcome = await run_connection(store, workspace, CONNECTION, RunOptions())
    finally:
        store.close()
    assert outcome.record.status is RunStatus.SUCCESS
    assert outcome.record.ended_at is not None
    port = closed_port()
    settings = service_settings(root, metrics={"listen": f"127.0.0.1:{port}"})
    async with running_daemon(settings):

        def seeded() -> float | None:
            return value(
                scrape(port), "connector_last_success_timestamp_seconds", connection=CONNECTION
            )

        seen = await eventually(seeded, what="the last success from the history")
        assert seen == pytest.approx(outcome.record.ended_at.timestamp())


async def test_a_port_in_use_stops_the_start_and_says_which_setting(
    root: Path, endpoint: str
) -> None:
    write_connection(root / "goals", endpoint)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = service_settings(root, metrics={"listen": f"127.0.0.1:{port}"})
        daemon = Daemon(settings, SystemdNotifier(address=""))
        assert await asyncio.wait_for(daemon.serve(), timeout=20) == 1


# -- labels stay bounded ------------------------------------------------------------------


def outcome(run_id: int, status: RunStatus, goal: str = GOAL) -> RunOutcome:
    """A run as the runner reports it; each has its own id and time, as real runs do."""
    started = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=run_id)
    counts = RunCounts(files=3, files_skipped=run_id, rows_read=100, rows_applied=99)
    counts.rows_rejected = 1
    counts.bytes_transferred = 1234
    record = RunRecord(
        id=run_id,
        connection=CONNECTION,
        goal=None,
        trigger=Trigger.SCHEDULE,
        status=status,
        started_at=started,
        ended_at=started + timedelta(seconds=run_id),
        counts=counts,
    )
    return RunOutcome(
        record, GoalResult(), [GoalOutcome(goal, "import-profiles", status, counts, 1.5)]
    )


def series(metrics: DaemonMetrics) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    return {
        (sample.name, frozenset(sample.labels.items()))
        for family in metrics.registry.collect()
        if family.name.startswith("connector_")
        for sample in family.samples
    }


def test_labels_are_bounded_by_the_configuration_not_by_the_runs() -> None:
    metrics = DaemonMetrics()
    metrics.prepare({CONNECTION: [GOAL, "orders"]})
    prepared = series(metrics)
    statuses = [status for status in RunStatus if status is not RunStatus.RUNNING]
    for run_id in range(1, 201):
        metrics.observe_run(outcome(run_id, statuses[run_id % len(statuses)]))
        metrics.fire_skipped(CONNECTION, SKIP_REASONS[run_id % len(SKIP_REASONS)])
        metrics.store_retry(CONNECTION)
        metrics.reloaded(applied=run_id % 2 == 0)
    after = series(metrics)
    # runs add samples to series that exist already, never new series; only the
    # last-success gauge appears, once, with the first success
    assert after - prepared == {
        ("connector_last_success_timestamp_seconds", frozenset({("connection", CONNECTION)}))
    }
    names = {name for _, labels in after for name, _ in labels}
    assert names <= {"connection", "goal", "status", "reason", "outcome", "le"}
    values = {value for _, labels in after for name, value in labels if name != "le"}
    assert values <= {CONNECTION, GOAL, "orders", "applied", "rejected"} | set(RUN_STATUSES) | set(
        SKIP_REASONS
    )


def test_two_daemons_in_one_process_keep_their_own_numbers() -> None:
    first, second = DaemonMetrics(), DaemonMetrics()
    first.observe_run(outcome(1, RunStatus.SUCCESS))
    total = first.registry.get_sample_value(
        "connector_runs_total", {"connection": CONNECTION, "status": "success"}
    )
    assert total == 1
    assert (
        second.registry.get_sample_value(
            "connector_runs_total", {"connection": CONNECTION, "status": "success"}
        )
        is None
    )


def test_an_unknown_skip_reason_is_a_bug_not_a_new_series() -> None:
    with pytest.raises(ValueError, match="unknown skip reason"):
        DaemonMetrics().fire_skipped(CONNECTION, "in/day1.csv")


def test_the_readme_alert_rules_name_only_metrics_the_daemon_serves() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "alert:" in b]
    rules = yaml.safe_load(block)["groups"][0]["rules"]
    metrics = DaemonMetrics()
    metrics.prepare({CONNECTION: [GOAL]})
    metrics.observe_run(outcome(1, RunStatus.SUCCESS))
    served = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    named = {name for rule in rules for name in re.findall(r"connector_\w+", rule["expr"])}
    assert named
    assert named <= served
