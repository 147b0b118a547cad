"""Bad input gets a clear error naming file, line and column; nothing is lost; the work goes on.

One goal, one run, every kind of bad file side by side with good ones. A
file that cannot be read at all fails alone, with `KEY:LINE: reason`, and
nothing of it is applied (its half-parsed rows are rolled back); a row that
cannot be used is rejected with file, line, column and reason while the rest
of its file is applied; the good files of the same run are imported. A gzip
bomb is refused with bounded memory, a folder marker is ignored, an object
S3 refuses to hand out (403 AccessDenied, answered by the fault proxy since
moto does not enforce IAM) fails alone. Last, a daemon that runs a bad file
keeps running and runs the connection again.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fault_proxy import Answer, FaultProxy, is_get_object
from helpers import BUCKET, CONNECTION, Harness, csv_bytes, gzipped, import_goal
from reliability_support import ledger_etags, profiles_by_customer

from connector.goals.runner import RunOutcome
from connector.imports.model import ImportProfilesGoal
from connector.imports.parsing import parse_batches, parse_batches_in_child
from connector.service.daemon import Daemon
from connector.settings import Settings
from connector.storage import RowReject, RunStatus, SQLiteStore

PREFIX = "bad/"
GOAL = "customers"
HEADER = "customer_id,email,points,birth"
GOAL_DEFINITION = import_goal(
    prefix=PREFIX,
    files=["*"],
    mappings=[
        {"column": "email", "property": "email", "rule": "set"},
        {"column": "points", "property": "points", "rule": "sum", "type": "number"},
        {"column": "birth", "property": "birth", "rule": "set", "type": "date"},
    ],
)
BIG_FIELD = "x" * (3 << 20)
"""Several MB in one cell: under the 16 MiB field limit, so imported whole."""


def truncated_gzip() -> bytes:
    whole = gzipped(csv_bytes(HEADER, *(f"T{i},t{i}@x.org,1," for i in range(2000))))
    return whole[: len(whole) // 2]


GOOD_FILES: dict[str, bytes] = {
    "good-1.csv": csv_bytes(HEADER, "G1,g1@x.org,1,1990-01-31", "G2,g2@x.org,2,"),
    "good-2.csv.gz": gzipped(csv_bytes(HEADER, "G3,g3@x.org,3,", "G4,g4@x.org,4,")),
    "bom.csv": b"\xef\xbb\xbf" + csv_bytes(HEADER, "BOM1,bom@x.org,1,"),
    "header-only.csv": csv_bytes(HEADER),
    "empty.csv": b"",  # a 0-byte delivery is recorded with 0 rows (README: Import profiles)
    "big-field.csv": csv_bytes(HEADER, f"BIG1,{BIG_FIELD},1,"),
    # rows rejected, the rest of the file applied
    "ragged.csv": csv_bytes(
        HEADER, "R1,r1@x.org,1,", "R2,r2@x.org,2", "R3,r3@x.org,3,,extra", "R4,r4@x.org,4,"
    ),
    "not-a-number.csv": csv_bytes(HEADER, "P1,p1@x.org,lots,", "P2,p2@x.org,2,"),
    "impossible-date.csv": csv_bytes(
        HEADER, "D1,d1@x.org,1,2023-02-30", "D2,d2@x.org,2,2023-02-28"
    ),
    "empty-id.csv": csv_bytes(HEADER, " ,e@x.org,1,", "E2,e2@x.org,2,"),
}
"""Files that are imported (some with rejected rows)."""


@dataclass(frozen=True)
class Broken:
    content: bytes
    error: str
    """The run's error for this file, exactly."""


BROKEN_FILES: dict[str, Broken] = {
    "latin1.csv": Broken(
        csv_bytes(HEADER, "L1,l1@x.org,1,", "L2,müller@x.org,1,", encoding="latin-1"),
        "bad/latin1.csv:3: bytes 0xfc are not valid utf-8; set `format.encoding` (e.g. latin-1)",
    ),
    "utf16.csv": Broken(
        csv_bytes(HEADER, "U1,u@x.org,1,", encoding="utf-16"),
        "bad/utf16.csv:1: bytes 0xff are not valid utf-8; set `format.encoding` (e.g. latin-1)",
    ),
    "blank.csv": Broken(b"\n\r\n\n", "bad/blank.csv: file is empty"),
    "duplicate-header.csv": Broken(
        csv_bytes("customer_id,email,email,points,birth", "X1,a,b,1,"),
        "bad/duplicate-header.csv:1: the header repeats column names: 'email' (positions 2, 3)",
    ),
    "empty-header.csv": Broken(
        csv_bytes("customer_id,,email,points,birth", "X1,a,b,1,"),
        "bad/empty-header.csv:1: the header has empty column names at positions 2",
    ),
    "missing-id-column.csv": Broken(
        csv_bytes("id,email,points,birth", "X1,a,1,"),
        "bad/missing-id-column.csv:1: the header has no column 'customer_id' "
        "(columns: id, email, points, birth)",
    ),
    "unterminated-quote.csv": Broken(
        csv_bytes(HEADER, "Q1,q1@x.org,1,", 'Q2,"q2@x.org,2,', "Q3,q3@x.org,3,"),
        "bad/unterminated-quote.csv:3: a quoted field starting on this line is never closed "
        "(quote character '\"'); the rest of the file is unreadable",
    ),
    "huge-field.csv": Broken(
        csv_bytes(HEADER, "H1,h@x.org,1,", f"H2,{'y' * (20 << 20)},1,"),
        "bad/huge-field.csv:3: field longer than 16 MiB",
    ),
    "nul.csv": Broken(
        csv_bytes(HEADER, "N1,n1@x.org,1,", "N2,n\x002@x.org,1,"),
        "bad/nul.csv:3: contains a NUL character (is the file UTF-16? set `format.encoding`)",
    ),
    "corrupt.csv.gz": Broken(
        b"\x1f\x8b\x08\x00" + os.urandom(64),
        "bad/corrupt.csv.gz: file is not valid gzip: Error -3 while decompressing data: ",
    ),
    "truncated.csv.gz": Broken(
        truncated_gzip(), "bad/truncated.csv.gz: gzip data ends early (truncated file?)"
    ),
    "denied.csv": Broken(
        csv_bytes(HEADER, "A1,a1@x.org,1,"),
        f"s3://{BUCKET}/bad/denied.csv: reading the object failed: access denied "
        "(check the connection's credentials and the bucket policy)",
    ),
}
"""Files that cannot be read at all: each fails alone, nothing of it applied."""

EXPECTED_REJECTS = {
    RowReject("bad/ragged.csv", 3, None, "expected 4 fields, found 3"),
    RowReject("bad/ragged.csv", 4, None, "expected 4 fields, found 5"),
    RowReject("bad/empty-id.csv", 2, "customer_id", "the identifier is empty"),
}
REJECTED_COLUMNS = {("bad/not-a-number.csv", 2, "points"), ("bad/impossible-date.csv", 2, "birth")}


@dataclass
class BadRun:
    harness: Harness
    outcome: RunOutcome
    proxy: FaultProxy


@pytest.fixture(scope="module")
async def bad_run(
    tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str
) -> AsyncIterator[BadRun]:
    """One run over every good and broken file (its own prefix: no moto reset needed)."""
    with FaultProxy(moto_endpoint) as proxy:
        proxy.add(
            Answer(403, "AccessDenied", "Access Denied"),
            path_contains="bad/denied.csv",
            when=is_get_object,
        )
        harness = Harness(tmp_path_factory.mktemp("bad-input"), moto_endpoint)
        harness.endpoint = proxy.url  # the connection reads through the proxy
        harness.write_connection(GOAL_DEFINITION)
        files = {PREFIX + key: data for key, data in GOOD_FILES.items()}
        files |= {PREFIX + key: broken.content for key, broken in BROKEN_FILES.items()}
        files[f"{PREFIX}folder/"] = b""  # a "folder" marker, as the S3 console creates them
        await harness.put(files)
        outcome = await harness.run(batch_size=1)  # one row a batch: rows applied before a fault
        yield BadRun(harness, outcome, proxy)
        await harness.aclose()


def test_the_run_reports_failure_and_records_every_error(bad_run: BadRun) -> None:
    record = bad_run.outcome.record
    assert record.status is RunStatus.FAILURE
    assert record.counts.files == len(GOOD_FILES)
    assert record.error is not None
    for key in BROKEN_FILES:
        assert f"bad/{key}" in record.error


@pytest.mark.parametrize("key", sorted(BROKEN_FILES))
def test_a_file_that_cannot_be_read_fails_alone_with_file_line_and_reason(
    bad_run: BadRun, key: str
) -> None:
    expected = BROKEN_FILES[key].error
    [error] = [e for e in bad_run.outcome.result.errors if f"bad/{key}" in e]
    assert error.startswith(expected), error
    assert "Traceback" not in error
    assert f"bad/{key}" not in ledger_etags(bad_run.harness.store, CONNECTION, GOAL)


def test_nothing_of_a_broken_file_is_applied(bad_run: BadRun) -> None:
    """Rows read before the fault (batches of one row were applied) were rolled back."""
    customers = set(profiles_by_customer(bad_run.harness.store))
    for never in ("L1", "L2", "U1", "Q1", "Q2", "Q3", "H1", "H2", "N1", "N2", "T0", "A1", "X1"):
        assert never not in customers


def test_rows_that_cannot_be_used_are_rejected_with_line_and_column_and_the_rest_applied(
    bad_run: BadRun,
) -> None:
    rejects = set(bad_run.outcome.result.rejects)
    assert rejects >= EXPECTED_REJECTS
    assert {(r.file, r.line, r.column) for r in rejects} == {
        *((r.file, r.line, r.column) for r in EXPECTED_REJECTS),
        *REJECTED_COLUMNS,
    }
    reasons = {r.column: r.reason for r in rejects if r.column in ("points", "birth")}
    assert "lots" in reasons["points"]
    assert "2023-02-30" in reasons["birth"]
    stored = bad_run.harness.store.run_rejects(bad_run.outcome.record.id)
    assert set(stored) == rejects
    customers = profiles_by_customer(bad_run.harness.store)
    for applied in ("R1", "R4", "P2", "D2", "E2"):
        assert applied in customers
    for rejected in ("R2", "R3", "P1", "D1"):
        assert rejected not in customers


def test_good_files_of_the_same_run_are_imported(bad_run: BadRun) -> None:
    customers = profiles_by_customer(bad_run.harness.store)
    assert customers["G1"]["birth"] == ["1990-01-31"]
    assert {"G1", "G2", "G3", "G4"} <= set(customers)
    ledger = ledger_etags(bad_run.harness.store, CONNECTION, GOAL)
    assert {PREFIX + key for key in GOOD_FILES} == set(ledger)


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(bad_run: BadRun) -> None:
    assert profiles_by_customer(bad_run.harness.store)["BOM1"]["email"] == ["bom@x.org"]


def test_a_field_of_several_megabytes_is_imported_whole(bad_run: BadRun) -> None:
    assert profiles_by_customer(bad_run.harness.store)["BIG1"]["email"] == [BIG_FIELD]


def test_a_folder_marker_is_not_a_file_and_is_ignored(bad_run: BadRun) -> None:
    assert not [e for e in bad_run.outcome.result.errors if "folder" in e]
    ledger = ledger_etags(bad_run.harness.store, CONNECTION, GOAL)
    assert not [key for key in ledger if key.endswith("/")]
    assert [seen for seen in bad_run.proxy.requests() if seen.target.endswith("folder/")] == []


async def test_after_the_files_are_fixed_the_next_run_imports_only_them(bad_run: BadRun) -> None:
    harness = bad_run.harness
    bad_run.proxy.clear()  # the bucket policy was fixed
    fixed = {
        "latin1.csv": csv_bytes(HEADER, "L1,l1@x.org,1,", "L2,muller@x.org,1,"),
        "unterminated-quote.csv": csv_bytes(HEADER, "Q1,q1@x.org,1,", "Q2,q2@x.org,2,"),
    }
    await harness.put({PREFIX + key: data for key, data in fixed.items()})

    again = await harness.run()

    assert again.record.counts.files == 3  # the two fixed files and the readable denied.csv
    assert again.record.counts.files_skipped == len(GOOD_FILES)
    assert {"L1", "L2", "Q1", "Q2", "A1"} <= set(profiles_by_customer(harness.store))
    assert profiles_by_customer(harness.store)["G1"]["points"] == ["1"]  # not applied twice


# -- a gzip bomb ----------------------------------------------------------------------------------


def bomb(inflated: int) -> bytes:
    """A gzip file of a header and `inflated` bytes of one endless line (~1000x smaller)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(f"{HEADER}\n".encode())]
    block = b"a" * (1 << 20)
    parts += [compressor.compress(block) for _ in range(inflated >> 20)]
    parts.append(compressor.flush())
    return b"".join(parts)


async def test_a_gzip_bomb_is_refused_with_a_clear_error_and_memory_stays_bounded(
    plain_harness: Harness, reset_moto: None
) -> None:
    harness = plain_harness
    harness.write_connection(GOAL_DEFINITION)
    data = await asyncio.to_thread(bomb, 512 << 20)  # 512 MiB inflated
    assert len(data) < (512 << 10)
    await harness.put({f"{PREFIX}bomb.csv.gz": data, f"{PREFIX}good.csv": GOOD_FILES["good-1.csv"]})

    result, peak_kib = run_measured(harness)

    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "error: bad/bomb.csv.gz: inflates more than 1000x: refusing a possible gzip bomb"
        in result.stdout
    )
    assert "Traceback" not in result.stdout + result.stderr
    # about 130 MiB to start (pyarrow and numpy loaded), plus the 64 MiB line limit and one
    # piece: bounded, and far from the 512 MiB the bomb inflates to
    assert peak_kib < 300 * 1024, f"peak RSS {peak_kib} KiB"
    assert set(profiles_by_customer(harness.store)) == {"G1", "G2"}


MEASURED = (
    "import atexit, pathlib, runpy, sys\n"
    "out = pathlib.Path(sys.argv.pop(1))\n"
    "def peak():\n"
    "    status = pathlib.Path('/proc/self/status').read_text()\n"
    "    out.write_text(status.split('VmHWM:')[1].split()[0])\n"
    "atexit.register(peak)\n"
    "sys.argv[0] = 'connector'\n"
    "runpy.run_module('connector', run_name='__main__')\n"
)
"""`python -m connector ...` that writes its peak resident memory (VmHWM, KiB) on exit.

Measured in the process itself: `ru_maxrss` from wait4 would count the pages the child
shared with this (large) test process between fork and exec."""


def run_measured(harness: Harness) -> tuple[subprocess.CompletedProcess[str], int]:
    """`connector run` in a child process; its output and its peak resident memory (KiB)."""
    peak = harness.root / "peak.txt"
    completed = subprocess.run(
        [sys.executable, "-c", MEASURED, str(peak), "run", CONNECTION, "--quiet"],
        env=harness.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return completed, int(peak.read_text())


# -- the daemon keeps running -------------------------------------------------------------------


async def test_a_daemon_that_meets_bad_files_keeps_running_and_runs_again(
    plain_harness: Harness, reset_moto: None
) -> None:
    harness = plain_harness
    harness.write_connection(GOAL_DEFINITION)
    await harness.put(
        {
            f"{PREFIX}good.csv": GOOD_FILES["good-1.csv"],
            f"{PREFIX}nul.csv": BROKEN_FILES["nul.csv"].content,
        }
    )
    settings = Settings(goals_dir=harness.goals_dir, database=harness.db_path, watch_goals=False)
    daemon = Daemon(settings)
    served = asyncio.create_task(daemon.serve())
    try:
        await until(lambda: daemon._scheduler is not None and daemon._scheduler.running)
        for expected_runs in (1, 2):
            await asyncio.to_thread(fire, daemon)
            await until(lambda n=expected_runs: len(finished(harness.db_path)) == n)
            assert not served.done()
        first, second = finished(harness.db_path)
        assert first.status is RunStatus.FAILURE
        assert first.error is not None
        assert "bad/nul.csv:3: contains a NUL character" in first.error
        assert second.status is RunStatus.FAILURE  # the bad file is still there, tried again
        assert second.counts.files_skipped == 1  # the good file is not applied twice
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(served, timeout=30) == 0


def fire(daemon: Daemon) -> None:
    """Make the scheduler fire the connection's job now, through APScheduler itself."""
    assert daemon._scheduler is not None
    daemon._scheduler.add_job(
        daemon._fire, args=[CONNECTION], id=f"now-{datetime.now(UTC).timestamp()}"
    )


def finished(database: Path) -> list[Any]:
    store = SQLiteStore(database)
    try:
        return [run for run in reversed(store.list_runs(CONNECTION)) if run.ended_at]
    finally:
        store.close()


async def until(check: Any, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


# -- memory stays flat, even when every row is bad ---------------------------------------------


@pytest.mark.parametrize("where", ["thread", "child"])
def test_a_file_whose_every_row_is_rejected_is_handed_on_in_bounded_batches(where: str) -> None:
    """Rejects count toward a batch, so a file of bad rows never piles them up in memory."""
    goal = ImportProfilesGoal.model_validate(GOAL_DEFINITION)
    rows = 20_000
    data = csv_bytes(HEADER, *(f"C{i},c{i}@x.org,lots," for i in range(rows)))
    parse = parse_batches if where == "thread" else parse_batches_in_child
    batches = parse(
        [data[i : i + 65536] for i in range(0, len(data), 65536)],
        goal,
        file="bad/all-rejected.csv",
        extra_column=None,
        batch_size=500,
    )
    sizes = [len(batch.rows) + len(batch.rejects) for batch in batches]
    assert sum(sizes) == rows
    assert max(sizes) <= 500
