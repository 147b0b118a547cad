"""The daemon's lifecycle: schedule, run, reload, stop — and tell systemd about each.

Over 400 lines as one class because every part of the lifecycle reads and changes the
same state (the scheduler, the running fires, the stop and reload events); what needs
none of it lives apart: a fire's own work in `_scheduled_run`, the goal-file snapshot
in `_goal_files`.

- SIGTERM / SIGINT: no new runs start; a running import rolls back its current
  file at the next batch boundary (it is imported again next run) and the
  process exits within `shutdown_timeout`. A second signal exits at once;
  SQLite's journal makes even that safe.
- SIGHUP, or a changed goal file: reload. An invalid edit keeps the previous
  configuration running; the problems are logged (and mailed) as FILE:LINE.
- A connection never runs twice at once: APScheduler's max_instances=1 inside
  the daemon, the store's run lock against a manual `connector run`.
- Several daemons on one (PostgreSQL) store: each fire is claimed in the store
  by its scheduled time first; the daemons that lose the claim skip that fire.
- A store whose server cannot be reached: the fire is retried with backoff
  (`database_retry_initial` doubling up to `database_retry_max`) until the
  server answers or the daemon stops; the daemon and its other connections
  keep running, and later fires of the same connection wait for this one.
- `metrics.listen` set: `/metrics` is served there for Prometheus (see metrics.py);
  an address it cannot listen on stops the start, like invalid goal files.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import threading
from datetime import UTC, datetime
from typing import Any

import structlog
from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from connector.config import Workspace, load_workspace
from connector.errors import (
    ConfigError,
    ConnectorError,
    RunInProgressError,
    StoreUnavailableError,
)
from connector.limits import THREAD_JOIN_SECONDS
from connector.redaction import register_secrets
from connector.service._goal_files import Snapshot, goal_files_snapshot
from connector.service._scheduled_run import run_fire
from connector.service.backoff import Backoff
from connector.service.mail import (
    compose_config_mail,
    send_mail,
    warn_unverified_tls,
)
from connector.service.metrics import DaemonMetrics, MetricsServer
from connector.service.notify import SystemdNotifier, watchdog_interval
from connector.service.scheduling import build_trigger, spread_of
from connector.settings import Settings
from connector.storage import (
    RunRecord,
    RunStatus,
    Trigger,
    default_owner,
    open_store,
)

log = structlog.get_logger("connector.daemon")


class Daemon:
    """One process running every enabled connection on its schedule."""

    def __init__(self, settings: Settings, notifier: SystemdNotifier | None = None) -> None:
        self.settings = settings
        if settings.smtp_password is not None:
            register_secrets([settings.smtp_password.get_secret_value()])
        self.notifier = notifier or SystemdNotifier()
        self.workspace: Workspace | None = None
        self.stopping = threading.Event()
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._fires: set[asyncio.Task[Any]] = set()
        self._fire_times: dict[str, datetime] = {}
        self._scheduler: AsyncIOScheduler | None = None
        self._snapshot: Snapshot = {}
        self._signals = 0
        self.metrics = DaemonMetrics(self._next_fires)
        self._metrics_server: MetricsServer | None = None
        # who claims fires: host:pid, and a token for this daemon, so a retry knows its own
        # claim even where two daemons share a pid (a restart, or two daemons in one process)
        self.claimant = f"{default_owner()}/{secrets.token_hex(4)}"

    # -- lifecycle -------------------------------------------------------------
    async def serve(self) -> int:
        """Run until stopped: 0 on a clean stop, 2 (a configuration error, as the command line's
        exit codes say) when the goals cannot be loaded at start, 1 when metrics cannot listen."""
        try:
            self.workspace = load_workspace(self.settings.goals_dir)
        except ConfigError as error:
            for problem in error.problems:
                log.error("invalid goal file", problem=str(problem))  # noqa: TRY400 -- no trace for bad YAML
            return 2
        self._snapshot = goal_files_snapshot(self.settings.goals_dir)
        if not self._serve_metrics():
            return 1
        loop = asyncio.get_running_loop()
        for signum, handler in (
            (signal.SIGTERM, self.request_stop),
            (signal.SIGINT, self.request_stop),
            (signal.SIGHUP, self.request_reload),
        ):
            loop.add_signal_handler(signum, handler)
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_listener(
            self._on_skipped_fire, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED
        )
        self._scheduler.add_listener(self._on_submitted_fire, EVENT_JOB_SUBMITTED)
        self._scheduler.start()
        self._schedule(self.workspace)
        helpers = [asyncio.create_task(self._reload_loop())]
        if self._metrics_server is not None:
            helpers.append(asyncio.create_task(self._seed_last_success(self.workspace)))
        if self.settings.watch_goals:
            helpers.append(asyncio.create_task(self._watch_goal_files()))
        interval = watchdog_interval()
        if interval:
            helpers.append(asyncio.create_task(self._watchdog(interval)))
        self.notifier.ready(self._status())
        log.info("daemon started", pid=os.getpid(), status=self._status())
        warn_unverified_tls(self.settings)
        try:
            await self._stop.wait()
        finally:
            await self._shutdown(helpers)
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
        return 0

    def request_stop(self) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second stop signal: exiting now")
            os._exit(1)
        log.info("stop requested: no new runs; running ones roll back their current file")
        self.stopping.set()
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    async def _shutdown(self, helpers: list[asyncio.Task[Any]]) -> None:
        self.notifier.stopping()
        if self._scheduler is not None:
            # no new fires; the jobs that run now finish as jobs (no "Error running job")
            self._scheduler.pause()
        for task in helpers:
            task.cancel()
        fires = {task for task in self._fires if not task.done()}
        if fires:
            log.info("waiting for running connections", connections=sorted(self._runs))
            _done, pending = await asyncio.wait(fires, timeout=self.settings.shutdown_timeout)
            if pending:
                for run in self._runs.values():
                    run.cancel()
                await asyncio.wait(pending, timeout=THREAD_JOIN_SECONDS)
                log.warning("runs did not finish in time; cancelled", count=len(pending))
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        await asyncio.gather(*helpers, return_exceptions=True)
        if self._metrics_server is not None:
            self._metrics_server.close()
        log.info("daemon stopped")

    # -- metrics ---------------------------------------------------------------
    def _serve_metrics(self) -> bool:
        """Start the `/metrics` endpoint if `metrics.listen` asks; False when it cannot."""
        address = self.settings.metrics.address
        if address is None:
            return True
        try:
            self._metrics_server = MetricsServer(self.metrics.registry, *address)
        except OSError as error:
            log.error(  # noqa: TRY400 -- an operator's setting: the message says it all
                "metrics endpoint cannot listen; fix the setting metrics.listen",
                listen=self.settings.metrics.listen,
                error=str(error),
            )
            return False
        log.info("metrics endpoint listening", url=f"http://{self.settings.metrics.listen}/metrics")
        return True

    def _next_fires(self) -> list[tuple[str, datetime | None]]:
        """Each scheduled connection's next fire; called from the endpoint's thread."""
        scheduler = self._scheduler
        if scheduler is None or not scheduler.running:
            return []
        return [(job.id, job.next_run_time) for job in scheduler.get_jobs()]

    async def _seed_last_success(self, workspace: Workspace) -> None:
        """Read each connection's last successful run from the history, so the gauge
        is right from the first scrape after a restart, not only after the next run."""
        connections = sorted(workspace.connections)

        def read() -> list[RunRecord]:
            store = open_store(self.settings.database)
            try:
                found = []
                for connection in connections:
                    runs = store.list_runs(connection)
                    found += [run for run in runs if run.status is RunStatus.SUCCESS][:1]
                return found
            finally:
                store.close()

        try:
            successes = await asyncio.to_thread(read)
        except ConnectorError as error:
            log.warning("last successful runs not read for the metrics", error=str(error))
            return
        for record in successes:
            self.metrics.note_success(record)

    # -- scheduling ------------------------------------------------------------
    def _schedule(self, workspace: Workspace) -> None:
        scheduler = self._scheduler
        assert scheduler is not None  # noqa: S101 -- started in serve()
        wanted = {
            connection.id: connection
            for connection in workspace.connections.values()
            if connection.enabled and connection.schedule is not None
        }
        for job in scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
        self.metrics.prepare(
            {key: [goal.name for goal in connection.goals] for key, connection in wanted.items()}
        )
        for connection_id, connection in wanted.items():
            assert connection.schedule is not None  # noqa: S101 -- filtered above
            scheduler.add_job(
                self._fire,
                build_trigger(connection.schedule, offset=spread_of(connection, self.settings)),
                args=[connection_id],
                id=connection_id,
                name=connection_id,
                replace_existing=True,
                max_instances=1,
                coalesce=True,  # after a pause, one catch-up run, not a burst
                misfire_grace_time=300,
            )
        log.info("schedules set", connections=sorted(wanted))

    def _on_skipped_fire(self, event: JobExecutionEvent) -> None:
        reason = "still running" if event.code == EVENT_JOB_MAX_INSTANCES else "missed"
        log.warning("scheduled run skipped", connection=event.job_id, reason=reason)
        self.metrics.fire_skipped(event.job_id, reason.replace(" ", "_"))

    def _on_submitted_fire(self, event: JobSubmissionEvent) -> None:
        # dispatched before the job's coroutine starts: the time it was scheduled for
        self._fire_times[event.job_id] = event.scheduled_run_times[-1]

    async def _fire(self, connection_id: str) -> None:
        """The scheduler's job: one run, awaited, so max_instances=1 holds while it runs."""
        fire_time = self._fire_times.pop(connection_id, None)
        if self.stopping.is_set():
            return
        fire = asyncio.current_task()
        task = asyncio.create_task(self._run(connection_id, fire_time), name=f"run {connection_id}")
        self._runs[connection_id] = task
        if fire is not None:
            self._fires.add(fire)
        try:
            # not `await task`: a run cancelled at shutdown is not an error of this job,
            # and cancelling this job (scheduler shutdown) must not cancel the run
            await asyncio.wait({task})
        finally:
            if fire is not None:
                self._fires.discard(fire)
            if self._runs.get(connection_id) is task and task.done():
                del self._runs[connection_id]

    async def _run(self, connection_id: str, fire_time: datetime | None = None) -> None:
        # every line of this run (progress and mail lines too) names its connection
        with structlog.contextvars.bound_contextvars(
            connection=connection_id, trigger=str(Trigger.SCHEDULE)
        ):
            await self._run_logged(connection_id, fire_time)

    async def _run_logged(self, connection_id: str, fire_time: datetime | None) -> None:
        """One fire, retried with backoff while the store's server cannot be reached."""
        backoff = Backoff(self.settings.database_retry_initial, self.settings.database_retry_max)
        self.notifier.status(f"running {connection_id}")
        self.metrics.running.labels(connection_id).set(1)
        try:
            while True:
                workspace = self.workspace
                assert workspace is not None  # noqa: S101 -- loaded in serve()
                try:
                    await run_fire(
                        self.settings,
                        workspace,
                        connection_id,
                        fire_time,
                        claimant=self.claimant,
                        metrics=self.metrics,
                        stopping=self.stopping,
                    )
                except StoreUnavailableError as error:
                    self.metrics.store_retry(connection_id)
                    delay = backoff.next_delay()
                    report = log.error if backoff.failures == 1 else log.warning
                    report(
                        "store unreachable; the run is retried",
                        connection=connection_id,
                        error=str(error),
                        attempt=backoff.failures,
                        retry_in_s=round(delay, 1),
                    )
                    self.notifier.status(f"waiting for the store to run {connection_id}")
                    if await self._stop_within(delay):
                        log.info("stop requested: retry abandoned", connection=connection_id)
                        return
                    continue
                if backoff.failures:
                    log.info(
                        "store reachable again", connection=connection_id, attempts=backoff.failures
                    )
                return
        except RunInProgressError as error:
            log.warning("scheduled run skipped", connection=connection_id, reason=str(error))
            self.metrics.fire_skipped(connection_id, "run_in_progress")
        except ConnectorError as error:
            log.error(  # noqa: TRY400 -- an expected failure: its message says it all
                "scheduled run failed", connection=connection_id, error=str(error)
            )
            self.metrics.run_failed(connection_id)
        except Exception:
            # a bug, not bad input: the daemon and the other connections keep running
            log.exception("scheduled run failed unexpectedly", connection=connection_id)
            self.metrics.run_failed(connection_id)
        finally:
            self.metrics.running.labels(connection_id).set(0)
            self.notifier.status(self._status())

    async def _stop_within(self, seconds: float) -> bool:
        """Wait `seconds`, or less when a stop is requested; True when it was."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    # -- reload ------------------------------------------------------------------
    async def _reload_loop(self) -> None:
        while True:
            await self._reload.wait()
            self._reload.clear()
            await self.reload()

    async def reload(self) -> bool:
        """Load the goals folder again; keep the old configuration if the new one is invalid."""
        self.notifier.reloading()
        self._snapshot = goal_files_snapshot(self.settings.goals_dir)
        try:
            workspace = await asyncio.to_thread(load_workspace, self.settings.goals_dir)
        except ConfigError as error:
            problems = [str(problem) for problem in error.problems]
            for problem in problems:
                log.error(  # noqa: TRY400 -- FILE:LINE is the whole story; no trace
                    "reload rejected: invalid goal file; previous configuration kept",
                    problem=problem,
                )
            self.metrics.reloaded(applied=False)
            await self._mail_config_problems(problems)
            self.notifier.ready(self._status())
            return False
        old = self.workspace.connections if self.workspace else {}
        new = workspace.connections
        log.info(
            "goals reloaded",
            added=sorted(new.keys() - old.keys()),
            removed=sorted(old.keys() - new.keys()),
            changed=sorted(key for key in new.keys() & old.keys() if new[key] != old[key]),
        )
        self.workspace = workspace
        self._schedule(workspace)
        self.metrics.forget(old.keys() - new.keys())
        self.metrics.reloaded(applied=True)
        self.notifier.ready(self._status())
        return True

    async def _mail_config_problems(self, problems: list[str]) -> None:
        recipients = sorted(
            {
                address
                for connection in (self.workspace.connections.values() if self.workspace else [])
                for address in connection.notifications.email
            }
        )
        if recipients:
            message = compose_config_mail(self.settings, recipients, problems)
            await asyncio.to_thread(send_mail, self.settings, message)

    async def _watch_goal_files(self) -> None:
        while True:
            await asyncio.sleep(self.settings.watch_interval)
            if goal_files_snapshot(self.settings.goals_dir) != self._snapshot:
                log.info("goal files changed; reloading")
                self.request_reload()

    # -- systemd -------------------------------------------------------------------
    async def _watchdog(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    def _status(self) -> str:
        scheduled = len(self._scheduler.get_jobs()) if self._scheduler else 0
        running = sorted(self._runs)
        return f"{scheduled} connection(s) scheduled" + (
            f"; running {', '.join(running)}" if running else ""
        )


def run_daemon(settings: Settings) -> int:
    """Run the daemon in a fresh event loop until it stops."""
    return asyncio.run(Daemon(settings).serve())
