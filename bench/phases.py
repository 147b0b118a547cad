"""One measured phase per process, so each peak RSS is that phase's own.

`python -m bench.phases PHASE --file F --endpoint URL --work DIR` prints one
JSON object: rows, bytes, seconds (wall, end to end) and anything else the
phase knows. The parent reads the child's peak RSS from `wait4`.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gzip
import json
import os
import sqlite3
import sys
import time
import zlib
from pathlib import Path
from typing import Any

BUCKET_IN = "bench-in"
BUCKET_OUT = "bench-out"
CONNECTION = "bench"


def goals_yaml(endpoint: str) -> str:
    """The benchmark's connection: set, set_if_empty, add and sum, a unique-property match."""
    return f"""\
id: {CONNECTION}
storage: {{region: eu-west-1, endpoint_url: "{endpoint}", access_key_id: bench, secret_access_key: bench}}
goals:
  - type: import-profiles
    name: customers
    source: {{bucket: {BUCKET_IN}, files: ["*.csv", "*.csv.gz"]}}
    format:
      field_separator: ";"
      decimal_separator: ","
      multi_value_separator: "|"
      date_format: "%d-%m-%Y"
      timezone: Europe/Amsterdam
    match: {{column: customer_id, property: customer_id, create_missing: true}}
    mappings:
      - {{column: email, property: email, rule: set}}
      - {{column: first_name, property: first_name, rule: set_if_empty}}
      - {{column: last_name, property: last_name, rule: set}}
      - {{column: birth_date, property: birth_date, rule: set, type: date}}
      - {{column: last_seen, property: last_seen, rule: set, type: datetime, date_format: iso8601}}
      - {{column: city, property: city, rule: set}}
      - {{column: country, property: country, rule: set}}
      - {{column: score, property: score, rule: set, type: number}}
      - {{column: spent, property: total_spent, rule: sum, type: number}}
      - {{column: interests, property: interests, rule: add}}
      - {{column: vip, property: vip, rule: set, type: boolean}}
  - type: export-profiles
    name: everyone
    segment: all
    destination: {{bucket: {BUCKET_OUT}, directory: "full/", file_name: everyone}}
    mode: full
    compression: gzip
    format: {{field_separator: ";", decimal_separator: ","}}
    columns:
      - {{header: id, value: profile_id}}
      - {{header: customer_id, property: customer_id}}
      - {{header: email, property: email}}
      - {{header: first_name, property: first_name}}
      - {{header: last_name, property: last_name}}
      - {{header: birth_date, property: birth_date, type: date}}
      - {{header: city, property: city}}
      - {{header: country, property: country}}
      - {{header: score, property: score, type: number}}
      - {{header: total_spent, property: total_spent, type: number}}
      - {{header: interests, property: interests}}
      - {{header: vip, property: vip}}
"""


def _result(rows: int, nbytes: int, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"rows": rows, "bytes": nbytes, "seconds": seconds, **extra}


def csv_reader_baseline(file: Path) -> dict[str, Any]:
    """The floor for a Python parser: csv.reader iterating the rows, nothing else."""
    started = time.perf_counter()
    rows = -1
    opener = gzip.open if file.suffix == ".gz" else open
    with opener(file, "rt", encoding="utf-8", newline="") as handle:  # type: ignore[operator]
        for _row in csv.reader(handle, delimiter=";"):
            rows += 1
    return _result(rows, file.stat().st_size, time.perf_counter() - started)


def pandas_glue(file: Path, work: Path) -> dict[str, Any]:
    """What a user might write instead: read_csv, then to_sql into SQLite. No rules at all."""
    import pandas as pd  # noqa: PLC0415 -- a benchmark-only dependency

    database = work / "pandas.sqlite"
    database.unlink(missing_ok=True)
    started = time.perf_counter()
    frame = pd.read_csv(file, sep=";", decimal=",", dtype=str, keep_default_na=False)
    with sqlite3.connect(database) as connection:
        frame.to_sql("customers", connection, index=False, chunksize=10_000)
    return _result(len(frame), file.stat().st_size, time.perf_counter() - started)


async def _upload(endpoint: str, file: Path, key: str, *, suffix: bytes = b"") -> None:
    from connector.sources import S3Client, S3Credentials  # noqa: PLC0415

    credentials = S3Credentials("eu-west-1", endpoint, "bench", "bench")
    async with S3Client(credentials) as s3:
        for bucket in (BUCKET_IN, BUCKET_OUT):
            await s3.ensure_bucket(bucket)
        async for stale in s3.list_objects(BUCKET_IN, ""):
            if stale.key != key:  # the plain and the gzip run must not import each other's file
                await s3.delete_object(BUCKET_IN, stale.key)
        async with s3.open_upload(BUCKET_IN, key) as upload:
            with file.open("rb") as handle:
                while chunk := handle.read(8 << 20):
                    await upload.write(chunk)
            if suffix:
                await upload.write(suffix)


def _key(file: Path) -> str:
    return "customers" + "".join(file.suffixes)


def connector_run(phase: str, file: Path, endpoint: str, work: Path, goal: str) -> dict[str, Any]:
    """Our import or export, end to end: S3 to committed store, or store to S3."""
    from connector.config import load_workspace  # noqa: PLC0415
    from connector.gc_tuning import tune_garbage_collector  # noqa: PLC0415
    from connector.goals.runner import RunOptions, run_connection  # noqa: PLC0415
    from connector.logging import configure_logging  # noqa: PLC0415
    from connector.storage import SQLiteStore  # noqa: PLC0415

    configure_logging("json", os.environ.get("BENCH_LOG_LEVEL", "warning"))
    goals = work / "goals"
    goals.mkdir(exist_ok=True)
    (goals / f"{CONNECTION}.yaml").write_text(goals_yaml(endpoint), encoding="utf-8")
    database = work / "connector.sqlite"
    if phase == "import-fresh":
        for stale in work.glob("connector.sqlite*"):
            stale.unlink()
    workspace = load_workspace(goals, {})
    store = SQLiteStore(database)
    tune_garbage_collector()  # as the command line does
    started = time.perf_counter()
    outcome = asyncio.run(run_connection(store, workspace, CONNECTION, RunOptions(goal=goal)))
    seconds = time.perf_counter() - started
    store.close()
    counts = outcome.record.counts
    if outcome.result.errors:
        raise SystemExit(f"{phase} failed: {outcome.result.errors}")
    rows = counts.rows_read if phase.startswith("import") else counts.profiles_exported
    return _result(
        rows,
        counts.bytes_transferred,
        seconds,
        status=str(outcome.record.status),
        created=counts.profiles_created,
        updated=counts.profiles_updated,
        rejected=counts.rows_rejected,
    )


def csv_writer_gzip_baseline(work: Path, rows: int) -> dict[str, Any]:
    """A bare csv.writer + gzip write of the same rows our export wrote (rows held in memory
    in slices of 100k so only the write is timed)."""
    import io  # noqa: PLC0415

    exported = work / "exported.csv.gz"
    elapsed = 0.0
    written = 0
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    out_bytes = 0
    with gzip.open(exported, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=";")
        while True:
            block = [row for _, row in zip(range(100_000), reader, strict=False)]
            if not block:
                break
            started = time.perf_counter()
            buffer = io.StringIO()
            csv.writer(buffer, delimiter=";").writerows(block)
            out_bytes += len(compressor.compress(buffer.getvalue().encode("utf-8")))
            elapsed += time.perf_counter() - started
            written += len(block)
    started = time.perf_counter()
    out_bytes += len(compressor.flush())
    elapsed += time.perf_counter() - started
    return _result(written - 1, out_bytes, elapsed)


def store_write_floor(file: Path, work: Path) -> dict[str, Any]:
    """The least an import can cost in our schema: bare batched inserts of ready rows.

    The file's rows are turned into profile JSON and identifiers outside the
    clock, 100k at a time; only the inserts (profiles and the unique-property
    index, 2,000 rows a batch, one transaction) are timed. No parsing, no rules.
    """
    from connector.storage import SQLiteStore  # noqa: PLC0415
    from connector.storage.sqlite import _dump_properties  # noqa: PLC0415

    database = work / "floor.sqlite"
    for stale in work.glob("floor.sqlite*"):
        stale.unlink()
    SQLiteStore(database).close()  # our schema, by our migrations
    db = sqlite3.connect(database, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA cache_size=-16384")
    elapsed = 0.0
    rows = 0
    with file.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=";")
        header = next(reader)
        db.execute("BEGIN IMMEDIATE")
        while True:
            block = [row for _, row in zip(range(100_000), reader, strict=False)]
            if not block:
                break
            now = "2026-01-01T00:00:00+00:00"
            profiles = [
                (
                    f"{rows + n:020x}",
                    _dump_properties({k: [v] for k, v in zip(header, row, strict=True)}),
                    now,
                    now,
                    1,
                )
                for n, row in enumerate(block)
            ]
            identifiers = [
                ("customer_id", row[0], profile[0])
                for row, profile in zip(block, profiles, strict=True)
            ]
            started = time.perf_counter()
            for start in range(0, len(block), 2000):
                db.executemany(
                    "INSERT INTO profiles (id, properties, created_at, updated_at, change_seq) VALUES (?, ?, ?, ?, ?)",
                    profiles[start : start + 2000],
                )
                db.executemany(
                    "INSERT INTO identifiers (property, value, profile_id) VALUES (?, ?, ?)",
                    identifiers[start : start + 2000],
                )
            elapsed += time.perf_counter() - started
            rows += len(block)
        started = time.perf_counter()
        db.execute("COMMIT")
        elapsed += time.perf_counter() - started
    db.close()
    return _result(rows, file.stat().st_size, elapsed)


def store_read_floor(work: Path) -> dict[str, Any]:
    """The least an export can cost in our schema: read every profile and decode its JSON."""
    db = sqlite3.connect(work / "connector.sqlite")
    started = time.perf_counter()
    rows = 0
    nbytes = 0
    for _id, properties in db.execute("SELECT id, properties FROM profiles"):
        json.loads(properties)
        nbytes += len(properties)
        rows += 1
    seconds = time.perf_counter() - started
    db.close()
    return _result(rows, nbytes, seconds)


async def _download_export(endpoint: str, work: Path) -> None:
    from connector.sources import S3Client, S3Credentials  # noqa: PLC0415

    credentials = S3Credentials("eu-west-1", endpoint, "bench", "bench")
    async with S3Client(credentials) as s3:
        with (work / "exported.csv.gz").open("wb") as out:
            async for obj in s3.list_objects(BUCKET_OUT, "full/"):
                if obj.key.endswith(".gz"):
                    async for chunk in s3.iter_object(BUCKET_OUT, obj.key):
                        out.write(chunk)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase")
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=0)
    args = parser.parse_args()
    if args.phase == "csv-reader":
        result = csv_reader_baseline(args.file)
    elif args.phase == "pandas":
        result = pandas_glue(args.file, args.work)
    elif args.phase in ("upload-fresh", "upload-update"):
        # the re-import's file is the same rows with one trailing newline: a new ETag
        suffix = b"" if args.phase == "upload-fresh" else b"\n"
        asyncio.run(_upload(args.endpoint, args.file, _key(args.file), suffix=suffix))
        result = _result(0, args.file.stat().st_size + len(suffix), 1.0)
    elif args.phase in ("import-fresh", "import-update"):
        result = connector_run(args.phase, args.file, args.endpoint, args.work, "customers")
    elif args.phase == "export-full-gzip":
        result = connector_run(args.phase, args.file, args.endpoint, args.work, "everyone")
        asyncio.run(_download_export(args.endpoint, args.work))
    elif args.phase == "store-write-floor":
        result = store_write_floor(args.file, args.work)
    elif args.phase == "store-read-floor":
        result = store_read_floor(args.work)
    elif args.phase == "csv-writer-gzip":
        result = csv_writer_gzip_baseline(args.work, args.rows)
    else:
        raise SystemExit(f"unknown phase {args.phase}")
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
