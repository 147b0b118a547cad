"""The daemon's Prometheus metrics: what its runs did, when they fire next, its own process.

Each daemon owns a registry (never prometheus_client's global one), so several
daemons in one process — the tests — keep their numbers apart. Every label
value comes from the goal files or a fixed list: a connection id, a goal name,
a run status, a skip reason. Never a file name, a profile id or a run id, so
the number of series is bounded by the configuration, not by the traffic.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from connector.goals.runner import RunOutcome
from connector.limits import THREAD_JOIN_SECONDS
from connector.storage import RunRecord, RunStatus

RUN_STATUSES = tuple(str(status) for status in RunStatus if status is not RunStatus.RUNNING)
SKIP_REASONS = ("still_running", "missed", "claimed_elsewhere", "run_in_progress")
"""Why a scheduled fire did not run: the job is still running, the fire came too late
(daemon paused or busy), another daemon on the same store claimed it, or a manual
`connector run` holds the connection's lock."""
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
"""Seconds: a run takes from a second (nothing new) to hours (a first full import)."""

NextFires = Callable[[], Iterable[tuple[str, datetime | None]]]
"""(connection id, next fire time or None when paused) for each scheduled connection."""


class DaemonMetrics:
    """Counters, gauges and histograms of one daemon, in its own registry."""

    def __init__(self, next_fires: NextFires = lambda: ()) -> None:
        # no `*_created` twin of every counter: it doubles the series for a start time
        # nobody alerts on (prometheus_client's switch is process-wide; the daemon owns it)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self._successes: dict[str, float] = {}
        self._lock = threading.Lock()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.registry.register(_NextFireCollector(next_fires))
        registry = self.registry
        run = ["connection"]
        goal = ["connection", "goal"]
        self.runs = Counter(
            "connector_runs",
            "Connection runs by final status (as in the history).",
            [*run, "status"],
            registry=registry,
        )
        self.goal_runs = Counter(
            "connector_goal_runs",
            "Goals run, by connection, goal and status.",
            [*goal, "status"],
            registry=registry,
        )
        self.run_duration = Histogram(
            "connector_run_duration_seconds",
            "Wall time of a connection run, all its goals.",
            run,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.goal_duration = Histogram(
            "connector_goal_duration_seconds",
            "Wall time of one goal of a run.",
            goal,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.last_success = Gauge(
            "connector_last_success_timestamp_seconds",
            "When the connection's last successful run ended (Unix time).",
            run,
            registry=registry,
        )
        self.running = Gauge(
            "connector_run_in_progress",
            "1 while the daemon runs the connection (including retries of an unreachable store).",
            run,
            registry=registry,
        )
        self.fires_skipped = Counter(
            "connector_fires_skipped",
            "Scheduled fires that did not run, by reason: " + ", ".join(SKIP_REASONS) + ".",
            [*run, "reason"],
            registry=registry,
        )
        self.store_retries = Counter(
            "connector_store_retries",
            "Runs put off because the store's server could not be reached.",
            run,
            registry=registry,
        )
        self.reloads = Counter(
            "connector_reloads",
            "Reloads of the goals folder; outcome=rejected kept the previous configuration.",
            ["outcome"],
            registry=registry,
        )
        self._per_goal = {
            name: Counter(f"connector_{name}", text, goal, registry=registry)
            for name, text in _GOAL_COUNTERS.items()
        }

    # -- what happened ------------------------------------------------------------------
    def prepare(self, goals_by_connection: dict[str, list[str]]) -> None:
        """Create every series of these connections at zero, so that the first failure
        is an increase a rule can see (a series born at 1 has no increase)."""
        for connection, goals in goals_by_connection.items():
            self.run_duration.labels(connection)
            self.running.labels(connection)  # 0 when new; a reload mid-run keeps its 1
            self.store_retries.labels(connection)
            for status in RUN_STATUSES:
                self.runs.labels(connection, status)
            for reason in SKIP_REASONS:
                self.fires_skipped.labels(connection, reason)
            for goal in goals:
                self.goal_duration.labels(connection, goal)
                for status in RUN_STATUSES:
                    self.goal_runs.labels(connection, goal, status)
                for counter in self._per_goal.values():
                    counter.labels(connection, goal)
        for outcome in ("applied", "rejected"):
            self.reloads.labels(outcome)

    def forget(self, connections: Iterable[str]) -> None:
        """Drop the gauges of connections no longer configured (counters stay: they are
        history, and a rule's `increase()` must not see them vanish mid-window)."""
        for connection in connections:
            with self._lock:
                self._successes.pop(connection, None)
            for gauge in (self.last_success, self.running):
                try:
                    gauge.remove(connection)
                except KeyError:
                    continue

    def observe_run(self, outcome: RunOutcome) -> None:
        """Count a finished run: its status and duration, and each goal's numbers."""
        record = outcome.record
        connection = record.connection
        self.runs.labels(connection, str(record.status)).inc()
        if record.ended_at is not None:
            seconds = (record.ended_at - record.started_at).total_seconds()
            self.run_duration.labels(connection).observe(max(seconds, 0.0))
        self.note_success(record)
        for goal in outcome.goals:
            self.goal_runs.labels(connection, goal.name, str(goal.status)).inc()
            self.goal_duration.labels(connection, goal.name).observe(goal.seconds)
            counts = goal.counts
            exported = goal.type == "export-profiles"
            amounts = {
                "rows_read": counts.rows_read,
                "rows_applied": counts.rows_applied,
                "rows_rejected": counts.rows_rejected,
                "profiles_created": counts.profiles_created,
                "profiles_updated": counts.profiles_updated,
                "profiles_exported": counts.profiles_exported,
                "files_imported": 0 if exported else counts.files,
                "files_exported": counts.files if exported else 0,
                "files_skipped": counts.files_skipped,
                "bytes_read": 0 if exported else counts.bytes_transferred,
                "bytes_written": counts.bytes_transferred if exported else 0,
            }
            for name, amount in amounts.items():
                self._per_goal[name].labels(connection, goal.name).inc(amount)

    def note_success(self, record: RunRecord) -> None:
        """Move the connection's last-success time forward to this run, if it succeeded."""
        if record.status is not RunStatus.SUCCESS or record.ended_at is None:
            return
        with self._lock:  # the history read at start and a run ending may race
            ended = max(self._successes.get(record.connection, 0.0), record.ended_at.timestamp())
            self._successes[record.connection] = ended
            self.last_success.labels(record.connection).set(ended)

    def run_failed(self, connection: str) -> None:
        """A run that failed before it could be recorded (the store would not open, a bug)."""
        self.runs.labels(connection, str(RunStatus.FAILURE)).inc()

    def fire_skipped(self, connection: str, reason: str) -> None:
        if reason not in SKIP_REASONS:
            raise ValueError(f"unknown skip reason {reason!r}")
        self.fires_skipped.labels(connection, reason).inc()

    def store_retry(self, connection: str) -> None:
        self.store_retries.labels(connection).inc()

    def reloaded(self, *, applied: bool) -> None:
        self.reloads.labels("applied" if applied else "rejected").inc()


_GOAL_COUNTERS = {
    "rows_read": "Rows read from files.",
    "rows_applied": "Rows applied to the store.",
    "rows_rejected": "Rows rejected (see `connector history --run`).",
    "profiles_created": "Profiles created.",
    "profiles_updated": "Profiles updated.",
    "profiles_exported": "Profiles written to export files.",
    "files_imported": "Files imported.",
    "files_exported": "Files written by exports.",
    "files_skipped": "Files skipped as already imported.",
    "bytes_read": "Bytes of the files imported.",
    "bytes_written": "Bytes of the files exported.",
}


class _NextFireCollector(Collector):
    """The scheduler's next fire times, read at scrape time so they are never stale."""

    def __init__(self, next_fires: NextFires) -> None:
        self._next_fires = next_fires

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "connector_next_fire_timestamp_seconds",
            "When the connection is next scheduled to run (Unix time); absent while paused.",
            labels=["connection"],
        )
        scheduled = 0
        for connection, fire_time in self._next_fires():
            scheduled += 1
            if fire_time is not None:
                family.add_metric([connection], fire_time.timestamp())
        yield family
        yield GaugeMetricFamily(
            "connector_connections_scheduled",
            "Connections the daemon runs on a schedule.",
            value=scheduled,
        )

    def describe(self) -> Iterator[Metric]:
        return iter(())  # names are not known before collecting; nothing to check up front


# -- the HTTP endpoint ------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """A scrape every few seconds is not news; the daemon's log stays for runs."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class MetricsServer:
    """`GET /metrics` on HOST:PORT, served from a thread beside the daemon's event loop."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        server_class = type("_Server", (_ThreadingServer,), {"address_family": family})
        exposition = make_wsgi_app(registry)

        def metrics_only(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if environ.get("PATH_INFO", "/").rstrip("/") != "/metrics":
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found: the metrics are at /metrics\n"]
            result: Iterable[bytes] = exposition(environ, start_response)
            return result

        self._server: WSGIServer = make_server(
            host, port, metrics_only, server_class=server_class, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-endpoint", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The bound port (the one asked for)."""
        port: int = self._server.server_address[1]
        return port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=THREAD_JOIN_SECONDS)


__all__ = ["RUN_STATUSES", "SKIP_REASONS", "DaemonMetrics", "MetricsServer"]
