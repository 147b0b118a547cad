"""Shared helpers of the reliability tests: processes, kills, store snapshots.

Processes are found through /proc (no psutil): every `connector` process a
test starts, and every process *those* start (the parse child, the
multiprocessing resource tracker), inherits `CONNECTOR_DATABASE=<the test's
own store>`, so scanning /proc/*/environ for that entry finds all of them,
even once a killed parent's children have been re-parented to init.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import Harness
from moto.core import DEFAULT_ACCOUNT_ID  # type: ignore[attr-defined]
from moto.s3.models import s3_backends

from connector.storage import SQLiteStore


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    state: str
    cmdline: str


def processes_using(database: Path) -> list[ProcessInfo]:
    """Live (not zombie) processes whose environment names `database` as their store."""
    marker = f"CONNECTOR_DATABASE={database}".encode()
    found = []
    for path in Path("/proc").iterdir():
        entry = path.name
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker not in environ.split(b"\0"):
            continue
        state = stat.rsplit(")", 1)[1].split()[0]
        if state != "Z":
            found.append(ProcessInfo(int(entry), state, cmdline.replace(b"\0", b" ").decode()))
    return found


def wait_until_no_process_uses(database: Path, timeout: float = 10) -> None:
    """Fail if any process started for `database` is still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = processes_using(database)
        if not left:
            return
        if time.monotonic() > deadline:
            for process in left:  # do not leave them behind for the next test
                os.kill(process.pid, 9)
            raise AssertionError(f"orphaned processes outlived their killed parent: {left}")
        time.sleep(0.05)


def start_run(harness: Harness, connection: str, **env: str) -> subprocess.Popen[bytes]:
    """`python -m connector run CONNECTION` in the background, output discarded."""
    return subprocess.Popen(
        [sys.executable, "-m", "connector", "run", connection, "--quiet"],
        env=harness.env(**env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_after(process: subprocess.Popen[bytes], ready: Callable[[], bool], delay: float) -> bool:
    """SIGKILL `process` `delay` seconds after `ready()` first holds.

    Returns False when the process ended by itself before the kill point (the
    point fell after the run's end); the caller decides what that means.
    """
    while not ready():
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        time.sleep(min(0.005, max(deadline - time.monotonic(), 0)))
    if process.poll() is not None:
        return False
    process.kill()
    process.wait(timeout=30)
    return True


def copy_store(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite store (the backup API, so WAL content comes along)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        sqlite3.connect(source) as src,
        sqlite3.connect(target) as dst,
    ):
        src.backup(dst)
    src.close()
    dst.close()


def profiles_by_customer(store: SQLiteStore) -> dict[str, dict[str, list[str]]]:
    """Every profile's properties keyed by customer_id (profile ids are random per store)."""
    return {
        profile.properties["customer_id"][0]: profile.properties
        for profile in store.iter_profiles()
    }


def profiles_by_id(store: SQLiteStore) -> dict[str, dict[str, list[str]]]:
    return {profile.id: profile.properties for profile in store.iter_profiles()}


def groups_snapshot(database: Path) -> tuple[dict[tuple[str, str], Any], set[tuple[str, ...]]]:
    """(group properties by (type, id), memberships), straight from the tables."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        groups = {
            (kind, group_id): properties
            for kind, group_id, properties in db.execute("SELECT type, id, properties FROM groups")
        }
        members = set(db.execute("SELECT type, group_id, profile_id FROM group_members"))
    db.close()
    return groups, members


def moto_s3_backend() -> Any:
    """The S3 backend of the session's moto server, which runs in this process."""
    return s3_backends[DEFAULT_ACCOUNT_ID]["global"]


def ledger_etags(store: SQLiteStore, connection: str, goal: str) -> dict[str, str]:
    return {key: entry.etag for key, entry in store.ledger(connection, goal).items()}


__all__ = [
    "ProcessInfo",
    "copy_store",
    "groups_snapshot",
    "kill_after",
    "ledger_etags",
    "moto_s3_backend",
    "processes_using",
    "profiles_by_customer",
    "profiles_by_id",
    "start_run",
    "wait_until_no_process_uses",
]
