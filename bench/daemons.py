"""The daemons pair: does throughput grow with daemons on one PostgreSQL store?

Two connections, each the benchmark's import goal on a bucket of its own
holding N rows. The second file is the same generator from customer N on,
so no customer id is in both files: with the same ids, the second import's
new identifiers would wait on the first's uncommitted ones and then fail on
the unique index, and the pair would measure that, not throughput.

- `daemons-one`: ONE `connector daemon` process with both connections. They
  fire at the same minute boundary, so the daemon runs both imports at once,
  as it does on any shared fire.
- `daemons-two`: TWO `connector daemon` processes, one connection each,
  started together.

Both are the real daemon (schedules, fire claims, run locks, history), as a
process. The start state is the same for both: the same database made fresh
again (created, migrated by `connector history --json`, empty), and the
files already in S3 (uploaded once, before either variant). Schedules fire
on minute boundaries, no sooner, so the daemons are spawned `LEAD_S` before
one; the bench polls the `runs` table until each connection has a finished
run, stops the daemons with SIGTERM and reads each one's peak RSS from
`wait4`. `seconds` is from the first run's start to the last run's end, as
`connector history --json` records them (the wait for the boundary does not
count; spawn to exit is in `daemons[].spawn_to_exit_seconds`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from bench import cpu, processes
from bench.phases import create_database, daemon_connection_yaml, drop_database

CONNECTIONS = ("daemons-a", "daemons-b")
LAYOUTS = {"daemons-one": (CONNECTIONS,), "daemons-two": tuple((name,) for name in CONNECTIONS)}
"""Each variant as the connections of each of its daemon processes."""
LEAD_S = 12.0
"""Daemons are spawned this long before the minute boundary their schedules fire at."""
POLL_S = 0.5
DATABASE = f"bench_daemons_{os.getpid()}"
_MIGRATE_SCRIPT = (
    "import sys; from connector.storage import open_store; open_store(sys.argv[1]).close()"
)
"""Opening a store creates and migrates it; the bench times nothing of it."""
"""Ours alone: another bench run on the server makes and drops its own."""


def bucket(connection: str) -> str:
    return f"bench-{connection}"


def fire_boundary(now: float, lead: float = LEAD_S) -> float:
    """The first minute boundary (epoch seconds) at least `lead` seconds after `now`."""
    boundary = (now // 60 + 1) * 60
    return boundary if boundary - now >= lead else boundary + 60


def pair_phase(
    runs: list[dict[str, Any]],
    daemons: list[dict[str, Any]],
    nbytes: int,
    cpu_samples: Sequence[cpu.CpuSample] = (),
) -> dict[str, Any]:
    """A variant's figures from its run history (`connector history --json` objects) and
    its daemons: the first run of each connection, from the earliest start to the last end,
    and how many of the machine's cores were busy meanwhile (`cpu_samples`)."""
    first: dict[str, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda run: run["id"]):
        first.setdefault(run["connection"], run)
    missing = sorted(set(CONNECTIONS) - first.keys())
    if missing:
        raise ValueError(f"no run of {', '.join(missing)} in the history")
    failed = [run for run in first.values() if run["status"] != "success" or not run["ended_at"]]
    if failed:
        raise ValueError(f"runs did not succeed: {failed}")
    started = min(datetime.fromisoformat(run["started_at"]) for run in first.values())
    ended = max(datetime.fromisoformat(run["ended_at"]) for run in first.values())
    seconds = (ended - started).total_seconds()
    rows = sum(run["counts"]["rows_read"] for run in first.values())
    cores = os.cpu_count() or 1
    return {
        "rows": rows,
        "bytes": nbytes,
        "seconds": seconds,
        "rows_per_s": round(rows / seconds),
        "mb_per_s": round(nbytes / seconds / 1e6, 1),
        "busy_cores": cpu.busy_cores(cpu_samples, started.timestamp(), ended.timestamp(), cores),
        "cores": cores,
        "peak_rss_mb": max(daemon["peak_rss_mb"] for daemon in daemons),
        "daemons": daemons,
        "runs": [_run_figures(run) for _, run in sorted(first.items())],
        "runs_recorded": len(runs),
    }


def _run_figures(run: dict[str, Any]) -> dict[str, Any]:
    started = datetime.fromisoformat(run["started_at"])
    ended = datetime.fromisoformat(run["ended_at"])
    counts = run["counts"]
    return {
        "connection": run["connection"],
        "ran_by": run["ran_by"],
        "started_at": run["started_at"],
        "ended_at": run["ended_at"],
        "seconds": (ended - started).total_seconds(),
        "rows_read": counts["rows_read"],
        "created": counts["profiles_created"],
    }


class DaemonsPair:
    """Both variants on one S3 endpoint and PostgreSQL server; `upload(file, bucket)` puts
    a connection's file in its bucket (in a process of its own, as the bench's uploads)."""

    def __init__(
        self, endpoint: str, work: Path, postgres: str, upload: Callable[[Path, str], object]
    ) -> None:
        self.endpoint = endpoint
        self.work = work
        self.postgres = postgres
        self.upload = upload

    def run(self, files: tuple[Path, Path]) -> dict[str, dict[str, Any]]:
        """`daemons-one` then `daemons-two`; both `unavailable` without a PostgreSQL server."""
        try:
            create_database(self.postgres, DATABASE)
        except psycopg.Error as error:
            reason = {"unavailable": f"cannot create a database: {error}".strip()}
            return dict.fromkeys(LAYOUTS, reason)
        drop_database(self.postgres, DATABASE)
        for connection, file in zip(CONNECTIONS, files, strict=True):
            self.upload(file, bucket(connection))
        nbytes = sum(file.stat().st_size for file in files)
        phases: dict[str, dict[str, Any]] = {}
        for variant, layout in LAYOUTS.items():
            sys.stderr.write(f"  {variant} ...\n")
            phases[variant] = self._variant(variant, layout, nbytes)
        return phases

    def _variant(
        self, variant: str, layout: tuple[tuple[str, ...], ...], nbytes: int
    ) -> dict[str, Any]:
        work = self.work / variant
        url = create_database(self.postgres, DATABASE)
        try:
            envs = [
                processes.connector_env(self._goals(work / f"daemon{number}", names), url)
                for number, names in enumerate(layout, 1)
            ]
            self._migrate(envs[0], work / "logs" / "migrate.log")
            if self._history(envs[0], work / "logs" / "fresh.log"):
                raise SystemExit(f"{variant}: the fresh database already has runs")
            boundary = fire_boundary(time.time())
            time.sleep(max(0.0, boundary - LEAD_S - time.time()))
            started = [
                processes.start(
                    [sys.executable, "-m", "connector", "daemon"],
                    env=env,
                    log=work / "logs" / f"daemon{number}.log",
                )
                for number, env in enumerate(envs, 1)
            ]
            try:
                # a generous bound: 200 kB/s, a tenth of what a loaded 2-core machine does
                deadline = boundary + max(300.0, nbytes / 200e3)
                samples = self._wait_for_runs(url, started, deadline=deadline)
            finally:
                finished = [processes.stop(daemon) for daemon in started]
            daemons = [
                {
                    "connections": list(names),
                    "peak_rss_mb": done.peak_rss_mb,
                    "cpu_seconds": done.cpu_seconds,
                    "exit_code": done.exit_code,
                    "spawn_to_exit_seconds": round(done.seconds, 2),
                }
                for names, done in zip(layout, finished, strict=True)
            ]
            if any(daemon["exit_code"] != 0 for daemon in daemons):
                raise SystemExit(f"{variant}: a daemon exited badly {daemons} (see {work}/logs)")
            runs = self._history(envs[0], work / "logs" / "history.log")
        finally:
            drop_database(self.postgres, DATABASE)
        try:
            return pair_phase(runs, daemons, nbytes, samples)
        except ValueError as error:
            raise SystemExit(f"{variant}: {error} (see {work}/logs)") from None

    def _goals(self, folder: Path, connections: tuple[str, ...]) -> Path:
        goals = folder / "goals"
        goals.mkdir(parents=True, exist_ok=True)
        for stale in goals.glob("*.yaml"):
            stale.unlink()
        for connection in connections:
            text = daemon_connection_yaml(self.endpoint, connection, bucket(connection))
            (goals / f"{connection}.yaml").write_text(text, encoding="utf-8")
        return goals

    @staticmethod
    def _migrate(env: dict[str, str], log: Path) -> None:
        """Create and migrate the variant's store before the daemons start, in a process of its
        own as the daemons would (the read commands never create a store)."""
        finished = processes.spawn(
            [sys.executable, "-c", _MIGRATE_SCRIPT, env["CONNECTOR_DATABASE"]], env=env, log=log
        )
        if finished.exit_code != 0:
            raise SystemExit(f"migrating the store exited {finished.exit_code} (see {log})")

    @staticmethod
    def _history(env: dict[str, str], log: Path) -> list[dict[str, Any]]:
        """`connector history --json` on the variant's database."""
        finished = processes.spawn(
            [sys.executable, "-m", "connector", "history", "--json"], env=env, log=log
        )
        if finished.exit_code != 0:
            raise SystemExit(f"connector history exited {finished.exit_code} (see {log})")
        return [json.loads(line) for line in finished.stdout.splitlines() if line.strip()]

    def _wait_for_runs(
        self, url: str, daemons: list[processes.Started], deadline: float
    ) -> list[cpu.CpuSample]:
        """Until each connection has a finished run (a cheap query of the history's table;
        `connector history` costs a whole interpreter start per look); the machine's CPU
        counters at each look."""
        samples: list[cpu.CpuSample] = []
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                if (now := cpu.sample()) is not None:
                    samples.append(now)
                rows = conn.execute(
                    "SELECT DISTINCT connection FROM runs WHERE ended_at IS NOT NULL"
                ).fetchall()
                if {name for (name,) in rows} >= set(CONNECTIONS):
                    if (now := cpu.sample()) is not None:
                        samples.append(now)
                    return samples
                if any(processes.exited(daemon) for daemon in daemons):
                    raise SystemExit(f"a daemon exited before its run ended (see {self.work})")
                if time.time() > deadline:
                    raise SystemExit(f"the daemons' runs did not end in time (see {self.work})")
                time.sleep(POLL_S)
