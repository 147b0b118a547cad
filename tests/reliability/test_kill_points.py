"""Exactly once under SIGKILL: an import, a group import and an export are killed at seeded
random points, run again, and end exactly as after one clean run.

Every kill point is one test: a fresh store (empty, or a copy of the clean
import's store for groups and exports), a real `python -m connector run`
killed with SIGKILL at a random moment (drawn from a seeded generator and
scaled to the clean run's measured duration; some points fall before the run
has even recorded itself), sometimes killed a second time while it recovers,
then one plain run. Then:

- imports (profiles and groups): the store equals the clean run's store
  (sums included) and the ledger holds the same files and ETags;
- full export with a fixed file name: the final object equals the clean
  run's, its manifest matches it, and the watermark equals the clean run's;
- incremental export: the delivered files together hold every changed
  profile (at least once, none that did not change) and the watermark
  equals the clean run's;
- the killed runs show as interrupted, and no process started for the
  killed run (the parse child, multiprocessing's resource tracker) outlives
  it: half the import and group points parse in the child process
  (CONNECTOR_PARSE_IN_CHILD_BYTES=0), half in the importing thread.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import BUCKET, CONNECTION, Harness, import_goal
from reliability_support import (
    copy_store,
    groups_snapshot,
    kill_after,
    ledger_etags,
    processes_using,
    profiles_by_customer,
    profiles_by_id,
    start_run,
    wait_until_no_process_uses,
)

from connector.storage import RunStatus, SQLiteStore

pytestmark = pytest.mark.slow

SEED = 20261123
OUT_BUCKET = "kill-out"
IMPORT_PREFIX = "kill-in/"
GROUP_PREFIX = "kill-hh/"
UPDATE_PREFIX = "kill-upd/"
IMPORT_FILES, IMPORT_ROWS, CUSTOMERS = 4, 10_000, 12_000
GROUP_FILES, GROUP_ROWS, HOUSEHOLDS = 4, 7_500, 5_000
UPDATED = 3_000
CHILD = "0"
"""CONNECTOR_PARSE_IN_CHILD_BYTES that sends every file to the parse child."""
THREAD = str(1 << 40)
"""... and one that keeps every file in the importing thread."""
BEFORE_START = 0.15
"""Share of kill points that fall before the run has recorded itself."""
ATTEMPTS = 3
"""A kill point that falls after the run ended is drawn again, earlier."""

IMPORT_GOAL = import_goal(
    prefix=IMPORT_PREFIX,
    format={"field_separator": ";", "decimal_separator": ","},
    mappings=[
        {"column": "email", "property": "email", "rule": "set"},
        {"column": "points", "property": "points", "rule": "sum", "type": "number"},
        {"column": "tags", "property": "tags", "rule": "add"},
        {"column": "tier", "property": "tier", "rule": "set_if_empty"},
    ],
)
GROUP_GOAL: dict[str, Any] = {
    "type": "import-groups",
    "name": "households",
    "group_type": "household",
    "source": {"bucket": BUCKET, "prefix": GROUP_PREFIX, "files": ["*.csv"]},
    "match": {"column": "household_id"},
    "members": {"column": "members", "property": "customer_id"},
    "mappings": [
        {"column": "size", "property": "household_size", "rule": "set", "type": "number"},
        {"column": "visits", "property": "visits", "rule": "sum", "type": "number"},
        {"column": "labels", "property": "labels", "rule": "add"},
    ],
}
UPDATE_GOAL = import_goal(
    "updates",
    prefix=UPDATE_PREFIX,
    match={"column": "customer_id", "property": "customer_id"},
    mappings=[{"column": "points", "property": "points", "rule": "sum", "type": "number"}],
)
EXPORT_COLUMNS = [
    {"header": "id", "value": "profile_id"},
    {"header": "customer", "property": "customer_id"},
    {"header": "email", "property": "email"},
    {"header": "points", "property": "points"},
    {"header": "tags", "property": "tags"},
]


def export_goal(mode: str, directory: str) -> dict[str, Any]:
    fixed = mode == "full"
    return {
        "type": "export-profiles",
        "name": "exports",
        "segment": "all",
        "destination": {
            "bucket": OUT_BUCKET,
            "directory": directory,
            "file_name": "profiles.csv" if fixed else "segment_timestamp",
        },
        "mode": mode,
        "compression": "gzip",
        "manifest": True,
        "columns": EXPORT_COLUMNS,
    }


# -- data ------------------------------------------------------------------------------------


def customer(number: int) -> str:
    return f"C{number % CUSTOMERS:05d}"


def import_file(part: int) -> bytes:
    lines = ["customer_id;email;points;tags;tier"]
    for i in range(IMPORT_ROWS):
        number = i * 7 + part * 3
        lines.append(
            f"{customer(number)};c{i}-{part}@x.org;{i % 97},{part}5;t{i % 13}|f{part};"
            f"{'gold' if (i + part) % 5 == 0 else ''}"
        )
    return ("\n".join(lines) + "\n").encode()


def group_file(part: int) -> bytes:
    lines = ["household_id,size,visits,labels,members"]
    for i in range(GROUP_ROWS):
        house = (i * 3 + part) % HOUSEHOLDS
        members = "|".join(customer(house * 2 + k) for k in range(1 + i % 3))
        if i % 50 == 0:
            members += "|C99999"  # no such customer: counted, never linked or created
        lines.append(f"H{house:05d},{1 + i % 6},{i % 7},l{i % 5}|p{part},{members}")
    return ("\n".join(lines) + "\n").encode()


def update_file() -> bytes:
    lines = ["customer_id,points"]
    lines += [f"{customer(n * 4)},1" for n in range(UPDATED)]
    return ("\n".join(lines) + "\n").encode()


# -- the clean runs every kill point is compared with ---------------------------------------


@dataclass
class Reference:
    """What one clean run produced, and how long its parts took."""

    startup: float
    duration: float
    snapshot: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class World:
    root: Path
    endpoint: str
    imported: Path
    """The store of the clean import: where groups and exports start from."""
    incremental_base: Path
    """The clean import's store after a first incremental export and an update of some profiles."""
    references: dict[str, Reference]
    landed: list[str] = field(default_factory=list)


def timed_cli_run(harness: Harness, *argv: str, **env: str) -> tuple[float, float]:
    """Run `connector run CONNECTION ARGV` to the end; (startup seconds, run seconds)."""
    started = time.monotonic()
    result = harness.cli("run", CONNECTION, "--quiet", *argv, timeout=300, **env)
    wall = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    [latest, *_] = harness.store.list_runs(CONNECTION)
    assert latest.ended_at is not None
    duration = (latest.ended_at - latest.started_at).total_seconds()
    return max(wall - duration, 0.05), duration


def harness_on(root: Path, endpoint: str, *goals: dict[str, Any], store: Path | None) -> Harness:
    harness = Harness(root, endpoint)
    harness.write_connection(*goals)
    if store is not None:
        copy_store(store, harness.db_path)
    return harness


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Any:
    root = tmp_path_factory.mktemp("kills")
    uploader = Harness(root / "uploader", moto_endpoint)
    files = {f"{IMPORT_PREFIX}part-{p}.csv": import_file(p) for p in range(IMPORT_FILES)}
    files |= {f"{GROUP_PREFIX}households-{p}.csv": group_file(p) for p in range(GROUP_FILES)}
    files[f"{UPDATE_PREFIX}update.csv"] = update_file()
    await uploader.put(files)
    await (await uploader.s3()).ensure_bucket(OUT_BUCKET)
    await uploader.aclose()
    references: dict[str, Reference] = {}

    # profile imports, once per parse mode: both must give the same store
    for mode, child_bytes in (("thread", THREAD), ("child", CHILD)):
        clean = harness_on(root / f"clean-import-{mode}", moto_endpoint, IMPORT_GOAL, store=None)
        startup, duration = timed_cli_run(clean, CONNECTOR_PARSE_IN_CHILD_BYTES=child_bytes)
        snapshot = (
            profiles_by_customer(clean.store),
            ledger_etags(clean.store, CONNECTION, "customers"),
        )
        references[f"import-{mode}"] = Reference(startup, duration, snapshot)
        clean.store.close()
        clean._store = None
    assert references["import-thread"].snapshot == references["import-child"].snapshot
    imported = root / "clean-import-thread" / "store" / "connector.db"
    expected_points: dict[str, Decimal] = {}
    for part in range(IMPORT_FILES):
        for i in range(IMPORT_ROWS):
            key = customer(i * 7 + part * 3)
            expected_points[key] = expected_points.get(key, Decimal(0)) + Decimal(
                f"{i % 97}.{part}5"
            )
    profiles = references["import-thread"].snapshot[0]
    assert {c: p["points"] for c, p in profiles.items()} == {
        c: [str(total)] for c, total in expected_points.items()
    }

    # group imports on the imported profiles, once per parse mode
    for mode, child_bytes in (("thread", THREAD), ("child", CHILD)):
        clean = harness_on(root / f"clean-groups-{mode}", moto_endpoint, GROUP_GOAL, store=imported)
        startup, duration = timed_cli_run(clean, CONNECTOR_PARSE_IN_CHILD_BYTES=child_bytes)
        groups = (
            groups_snapshot(clean.db_path),
            ledger_etags(clean.store, CONNECTION, "households"),
        )
        references[f"groups-{mode}"] = Reference(startup, duration, groups)
        clean.store.close()
    assert references["groups-thread"].snapshot == references["groups-child"].snapshot
    assert references["groups-thread"].snapshot[1]  # the goal really imported files

    # a full export with a fixed name
    clean = harness_on(
        root / "clean-full", moto_endpoint, export_goal("full", "full/clean/"), store=imported
    )
    startup, duration = timed_cli_run(clean)
    data = await object_bytes(clean, "full/clean/profiles.csv.gz")
    watermark = clean.store.export_watermark(CONNECTION, "exports")
    assert watermark is not None
    references["export-full"] = Reference(
        startup, duration, gzip.decompress(data), {"watermark": watermark.change_seq}
    )
    await clean.aclose()

    # incremental: a first export, then an update of some profiles, then the delta
    base = harness_on(
        root / "incremental-base",
        moto_endpoint,
        UPDATE_GOAL,
        export_goal("incremental", "inc/base/"),
        store=imported,
    )
    await base.run(goal="exports")
    first = base.store.export_watermark(CONNECTION, "exports")
    assert first is not None
    updated = await base.run(goal="updates")
    assert updated.record.status is RunStatus.SUCCESS
    changed = {profile.id for profile in base.store.iter_profiles(changed_after=first.change_seq)}
    assert len(changed) == UPDATED
    await base.aclose()
    incremental_base = base.db_path
    clean = harness_on(
        root / "clean-incremental",
        moto_endpoint,
        export_goal("incremental", "inc/clean/"),
        store=incremental_base,
    )
    startup, duration = timed_cli_run(clean)
    delivered = await delivered_ids(clean, "inc/clean/")
    assert delivered == changed
    watermark = clean.store.export_watermark(CONNECTION, "exports")
    assert watermark is not None
    references["export-incremental"] = Reference(
        startup, duration, changed, {"watermark": watermark.change_seq}
    )
    await clean.aclose()

    return World(root, moto_endpoint, imported, incremental_base, references)


# -- S3 reads -----------------------------------------------------------------------------


async def object_bytes(harness: Harness, key: str) -> bytes:
    s3 = await harness.s3()
    return b"".join([chunk async for chunk in s3.iter_object(OUT_BUCKET, key)])


async def delivered_files(harness: Harness, directory: str) -> dict[str, bytes]:
    s3 = await harness.s3()
    return {
        obj.key: await object_bytes(harness, obj.key)
        async for obj in s3.list_objects(OUT_BUCKET, directory)
    }


def rows_of(data: bytes) -> list[list[str]]:
    lines = gzip.decompress(data).decode().splitlines()
    assert lines[0] == ",".join(column["header"] for column in EXPORT_COLUMNS)
    return [line.split(",") for line in lines[1:]]


async def delivered_ids(harness: Harness, directory: str) -> set[str]:
    """Profile ids in every data file under `directory`; each file must hold each id once."""
    ids: set[str] = set()
    for key, data in (await delivered_files(harness, directory)).items():
        if key.endswith(".manifest.json"):
            continue
        in_file = [row[0] for row in rows_of(data)]
        assert len(in_file) == len(set(in_file)), f"{key} repeats rows"
        ids.update(in_file)
    return ids


# -- one kill point ------------------------------------------------------------------------


@dataclass(frozen=True)
class KillPoint:
    kind: str
    number: int
    parse: str = "thread"
    kills: int = 1
    """How many runs are killed in a row (a run recovering from a kill is killed too)."""

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.number}-{self.parse}-x{self.kills}"


POINTS = [
    *(
        KillPoint("import", n, "child" if n % 2 else "thread", 2 if n in (2, 5) else 1)
        for n in range(8)
    ),
    *(KillPoint("groups", n, "child" if n % 2 else "thread", 2 if n == 3 else 1) for n in range(6)),
    *(KillPoint("export-full", n) for n in range(4)),
    *(KillPoint("export-incremental", n) for n in range(4)),
]


def reference_of(world: World, point: KillPoint) -> Reference:
    if point.kind in ("import", "groups"):
        return world.references[f"{point.kind}-{point.parse}"]
    return world.references[point.kind]


def fresh_harness(world: World, point: KillPoint, attempt: int) -> Harness:
    root = world.root / f"{point.name}-{attempt}"
    shutil.rmtree(root, ignore_errors=True)
    if point.kind == "import":
        return harness_on(root, world.endpoint, IMPORT_GOAL, store=None)
    if point.kind == "groups":
        return harness_on(root, world.endpoint, GROUP_GOAL, store=world.imported)
    mode = point.kind.removeprefix("export-")
    goal = export_goal(mode, f"{directory_of(point, attempt)}")
    base = world.imported if mode == "full" else world.incremental_base
    return harness_on(root, world.endpoint, goal, store=base)


def directory_of(point: KillPoint, attempt: int) -> str:
    return f"{point.kind}/{point.number}-{attempt}/"


def kill_once(
    harness: Harness, point: KillPoint, reference: Reference, rng: random.Random, scale: float
) -> bool:
    """Start a run and SIGKILL it at a random point; True when it was still running then."""
    store = harness.store
    runs_before = len(store.list_runs(CONNECTION))
    env = {"CONNECTOR_PARSE_IN_CHILD_BYTES": CHILD if point.parse == "child" else THREAD}
    process = start_run(harness, CONNECTION, **env)
    ready: Callable[[], bool]
    if rng.random() < BEFORE_START:
        ready, delay = (lambda: True), rng.uniform(0.05, 0.95) * reference.startup
    else:

        def ready() -> bool:
            return len(store.list_runs(CONNECTION)) > runs_before

        delay = rng.uniform(0.02, 0.9) * reference.duration * scale
    landed = kill_after(process, ready, delay)
    if not landed:
        assert process.wait(timeout=300) == 0
    wait_until_no_process_uses(harness.db_path)
    return landed


def remaining_share(harness: Harness, point: KillPoint) -> float:
    """Roughly how much of the work a rerun still has to do (files not yet in the ledger)."""
    if point.kind not in ("import", "groups"):
        return 1.0
    goal = "customers" if point.kind == "import" else "households"
    files = IMPORT_FILES if point.kind == "import" else GROUP_FILES
    done = len(harness.store.ledger(CONNECTION, goal))
    return max(files - done, 1) / files


@pytest.mark.parametrize("point", POINTS, ids=[point.name for point in POINTS])
async def test_killed_at_a_random_point_then_run_again_ends_as_one_clean_run(
    world: World, point: KillPoint
) -> None:
    reference = reference_of(world, point)
    rng = random.Random(f"{SEED}-{point.name}")
    scale = 1.0
    for attempt in range(ATTEMPTS):
        harness = fresh_harness(world, point, attempt)
        inherited = len(harness.store.list_runs(CONNECTION))  # a copied store has history
        if kill_once(harness, point, reference, rng, scale):
            break
        harness.store.close()
        scale /= 2  # the point fell after the run's end: draw again, earlier
    else:
        pytest.fail(f"{point.name}: no kill point fell inside a run in {ATTEMPTS} attempts")
    world.landed.append(point.name)
    for _ in range(point.kills - 1):  # kill the recovering run too
        if kill_once(harness, point, reference, rng, remaining_share(harness, point)):
            world.landed.append(f"{point.name} (again)")

    try:
        final = harness.cli("run", CONNECTION, "--quiet", timeout=300)

        assert final.returncode == 0, final.stdout + final.stderr
        await check_outcome(harness, point, reference, directory_of(point, attempt))
        history = harness.store.list_runs(CONNECTION, limit=1000)
        history = history[: len(history) - inherited]  # newest first: the runs of this test
        assert history[0].status is RunStatus.SUCCESS
        # a killed run is marked interrupted by the run that takes its lock over; one killed
        # after recording its end but before the process exited stays a success
        assert {run.status for run in history[1:]} <= {RunStatus.INTERRUPTED, RunStatus.SUCCESS}
    finally:
        await harness.aclose()


async def check_outcome(
    harness: Harness, point: KillPoint, reference: Reference, directory: str
) -> None:
    store: SQLiteStore = harness.store
    if point.kind == "import":
        assert (profiles_by_customer(store), ledger_etags(store, CONNECTION, "customers")) == (
            reference.snapshot
        )
        return
    if point.kind == "groups":
        assert (
            groups_snapshot(harness.db_path),
            ledger_etags(store, CONNECTION, "households"),
        ) == (reference.snapshot)
        return
    watermark = store.export_watermark(CONNECTION, "exports")
    assert watermark is not None
    assert watermark.change_seq == reference.extra["watermark"]
    if point.kind == "export-full":
        files = await delivered_files(harness, directory)
        assert sorted(files) == [
            f"{directory}profiles.csv.gz",
            f"{directory}profiles.csv.gz.manifest.json",
        ]
        data = files[f"{directory}profiles.csv.gz"]
        assert gzip.decompress(data) == reference.snapshot
        manifest = json.loads(files[f"{directory}profiles.csv.gz.manifest.json"])
        assert manifest["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()
        assert manifest["records"] == len(profiles_by_id(store))
        return
    assert await delivered_ids(harness, directory) == reference.snapshot


# -- the parse child never outlives its parent ---------------------------------------------------

PARENT = """
import sys, time
from connector.imports.model import ImportProfilesGoal
from connector.imports.parsing import parse_batches_in_child
goal = ImportProfilesGoal.model_validate({
    "type": "import-profiles", "name": "g", "source": {"bucket": "abc"},
    "match": {"column": "id"}, "mappings": [{"column": "e", "property": "e"}],
})
data = [b"id,e\\n" + b"".join(b"%d,x\\n" % i for i in range(200_000))]
batches = parse_batches_in_child(iter(data), goal, file="f", extra_column=None, batch_size=10)
next(batches)  # the child is now ahead, waiting for the applier to take more batches
print("waiting", flush=True)
time.sleep(120)
"""


def test_a_parse_child_waiting_for_its_killed_parent_exits(tmp_path: Path) -> None:
    """SIGKILL never lets the parent release the child's semaphore: the child must notice."""
    marker = tmp_path / "marker.db"  # names this test's processes in /proc/*/environ
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        env={**os.environ, "CONNECTOR_DATABASE": str(marker)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert parent.stdout is not None
    assert parent.stdout.readline() == "waiting\n"
    children = [p for p in processes_using(marker) if p.pid != parent.pid]
    assert any("spawn_main" in p.cmdline for p in children), children
    parent.kill()
    parent.wait(timeout=10)
    parent.stdout.close()

    wait_until_no_process_uses(marker, timeout=5)
