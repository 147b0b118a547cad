"""Whole processes timed from spawn to exit, with their peak RSS from `wait4`.

What a user waits for when they type `connector run ...`: interpreter start,
imports, settings, the goals folder, the store, the S3 fetch, the run, the
exit. The pandas baseline is timed the same way, as a script of its own.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_RUN_LINE = re.compile(
    r"run \d+ (?P<status>\w+).*?(?P<read>\d+) rows read.*?"
    r"(?P<created>\d+) created, (?P<updated>\d+) updated, (?P<exported>\d+) exported"
)


@dataclass(frozen=True)
class Finished:
    """A process that ran to its end: what it printed, how long, how much memory at most,
    how much CPU (user and system, its threads together)."""

    stdout: str
    exit_code: int
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float


def spawn(command: list[str], *, env: dict[str, str] | None = None, log: Path) -> Finished:
    """Run `command` to its exit; its stderr goes to `log` (so a chatty child never blocks)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, env=env, cwd=ROOT
        )
        assert process.stdout is not None
        with process.stdout:
            output = process.stdout.read()
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    return Finished(
        output.decode(errors="replace"),
        process.returncode,
        seconds,
        round(usage.ru_maxrss / 1024, 1),
        _cpu_seconds(usage),
    )


@dataclass(frozen=True)
class Started:
    """A process running on its own (a daemon): `stop` ends it and reads its peak RSS."""

    process: subprocess.Popen[bytes]
    started: float


def start(command: list[str], *, env: dict[str, str] | None = None, log: Path) -> Started:
    """Start `command` without waiting; its stderr goes to `log`, its stdout nowhere."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=env,
            cwd=ROOT,
        )
    return Started(process, started)


def stop(running: Started, *, signum: int = signal.SIGTERM, timeout: float = 60.0) -> Finished:
    """Send `signum` (unless it has exited) and wait for the exit, killing it after
    `timeout` s; seconds are from spawn to exit, peak RSS from `wait4`."""
    # os.kill, not Popen.send_signal: that polls, and a poll that reaps loses the rusage
    process = running.process
    deadline = time.monotonic() + timeout
    if not exited(running):
        os.kill(process.pid, signum)
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            os.kill(process.pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)
    seconds = time.perf_counter() - running.started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    peak = round(usage.ru_maxrss / 1024, 1)
    return Finished("", process.returncode, seconds, peak, _cpu_seconds(usage))


def _cpu_seconds(usage: resource.struct_rusage) -> float:
    return round(usage.ru_utime + usage.ru_stime, 2)


def exited(running: Started) -> bool:
    """Whether the process has ended on its own (it stays unreaped, for `stop`'s wait4)."""
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    return os.waitid(os.P_PID, running.process.pid, flags) is not None


def connector_env(goals: Path, database: Path | str) -> dict[str, str]:
    """This environment without any `CONNECTOR_*` of the caller's, plus the run's own."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CONNECTOR_")}
    env |= {
        "CONNECTOR_GOALS_DIR": str(goals),
        "CONNECTOR_DATABASE": str(database),
        "CONNECTOR_LOG_FORMAT": "json",
        "CONNECTOR_LOG_LEVEL": "warning",
    }
    return env


def connector_command(connection: str, goal: str) -> list[str]:
    return [sys.executable, "-m", "connector", "run", connection, "--goal", goal, "--quiet"]


def run_summary(stdout: str) -> dict[str, Any]:
    """The counts of `connector run`'s summary line; ValueError when there is none."""
    found = _RUN_LINE.search(stdout)
    if found is None:
        raise ValueError(f"no run summary in: {stdout[:500]!r}")
    counts = {name: int(value) for name, value in found.groupdict().items() if name != "status"}
    return {"status": found["status"], **counts}


def cores_used(finished: Finished) -> float:
    """The process's CPU over its life from spawn to exit: above 1 when threads overlapped."""
    return round(finished.cpu_seconds / finished.seconds, 2) if finished.seconds else 0.0


def cli_phase(finished: Finished, *, rows_from: str, nbytes: int) -> dict[str, Any]:
    """A `connector run` process as a phase: rows from its summary, time from spawn to exit."""
    if finished.exit_code != 0:
        raise SystemExit(f"connector run exited {finished.exit_code}: {finished.stdout[-2000:]}")
    summary = run_summary(finished.stdout)
    return _phase(summary[rows_from], nbytes, finished, **summary)


def script_phase(finished: Finished) -> dict[str, Any]:
    """A `bench.phases` child as a whole process (e.g. the pandas script): its own JSON
    gives rows and bytes, its `seconds` become `inner_seconds`, spawn to exit is timed."""
    if finished.exit_code != 0:
        raise SystemExit(f"script exited {finished.exit_code}: {finished.stdout[-2000:]}")
    inner: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return _phase(inner["rows"], inner["bytes"], finished, inner_seconds=inner["seconds"])


def _phase(rows: int, nbytes: int, finished: Finished, **extra: Any) -> dict[str, Any]:
    return {
        "rows": rows,
        "bytes": nbytes,
        "seconds": finished.seconds,
        **extra,
        "peak_rss_mb": finished.peak_rss_mb,
        "cores_used": cores_used(finished),
        "rows_per_s": round(rows / finished.seconds),
        "mb_per_s": round(nbytes / finished.seconds / 1e6, 1),
    }
