"""One measured phase per process, so each peak RSS is that phase's own.

`python -m bench.phases PHASE --file F --endpoint URL --work DIR` prints one
JSON object: rows, bytes, seconds (wall, end to end) and anything else the
phase knows, or `{"unavailable": reason}` for a phase whose backend is not
ready. The parent reads the child's peak RSS from `wait4`.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gzip
import io
import json
import os
import sqlite3
import sys
import time
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BUCKET_IN = "bench-in"
BUCKET_OUT = "bench-out"
CONNECTION = "bench"
IMPORT_GOAL = "customers"
EXPORT_GOAL = "everyone"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

SEGMENT = {
    "all": [
        {"property": "total_spent", "gte": 1000},
        {"property": "email", "exists": True},
        {
            "any": [
                {"property": "vip", "equals": True},
                {"property": "country", "one_of": ["NL", "BE"]},
                {"property": "birth_date", "lt": "1970-01-01"},
                {"property": "last_seen", "gte": "2026-10-01T00:00:00+00:00"},
            ]
        },
    ]
}
"""The measured segment: numbers, dates, date-times, exists and one_of, nested two deep."""


class PhaseError(RuntimeError):
    """A phase that ran and failed: the benchmark stops, it does not report a figure."""


def goals_yaml(endpoint: str) -> str:
    """The benchmark's connection: set, set_if_empty, add and sum, a unique-property match."""
    return f"""\
id: {CONNECTION}
{_storage_yaml(endpoint)}
goals:
{_import_goal_yaml(BUCKET_IN)}
  - type: export-profiles
    name: {EXPORT_GOAL}
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


def _storage_yaml(endpoint: str) -> str:
    return (
        f'storage: {{region: eu-west-1, endpoint_url: "{endpoint}", '
        "access_key_id: bench, secret_access_key: bench}"
    )


def _import_goal_yaml(bucket: str) -> str:
    """The measured import goal, reading every CSV file of `bucket`."""
    return f"""\
  - type: import-profiles
    name: {IMPORT_GOAL}
    source: {{bucket: {bucket}, files: ["*.csv", "*.csv.gz"]}}
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
      - {{column: vip, property: vip, rule: set, type: boolean}}"""


def daemon_connection_yaml(endpoint: str, connection: str, bucket: str) -> str:
    """A connection for `connector daemon`: the measured import goal on its own bucket,
    fired at every minute boundary (UTC), so daemons started together fire together."""
    return f"""\
id: {connection}
{_storage_yaml(endpoint)}
schedule: {{timezone: UTC, every_minutes: 1, at: "00:00"}}
goals:
{_import_goal_yaml(bucket)}
"""


def write_goals(folder: Path, endpoint: str) -> Path:
    """The goals folder a run of the benchmark's connection reads (in-process or `connector`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{CONNECTION}.yaml").write_text(goals_yaml(endpoint), encoding="utf-8")
    return folder


def _result(rows: int, nbytes: int, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"rows": rows, "bytes": nbytes, "seconds": seconds, **extra}


def csv_reader_baseline(file: Path) -> dict[str, Any]:
    """The floor for a Python parser: csv.reader iterating the rows, nothing else."""
    started = time.perf_counter()
    rows = -1
    opener = gzip.open if file.suffix == ".gz" else open
    with opener(file, "rt", encoding="utf-8", newline="") as handle:
        for _row in csv.reader(handle, delimiter=";"):
            rows += 1
    return _result(rows, file.stat().st_size, time.perf_counter() - started)


def pandas_glue(file: Path, work: Path) -> dict[str, Any]:
    """What a user might write instead: read_csv, then to_sql into SQLite. No rules at all."""
    import pandas as pd  # type: ignore[import-untyped]  # noqa: PLC0415 -- bench-only

    database = work / "pandas.sqlite"
    database.unlink(missing_ok=True)
    started = time.perf_counter()
    frame = pd.read_csv(file, sep=";", decimal=",", dtype=str, keep_default_na=False)
    with sqlite3.connect(database) as connection:
        frame.to_sql("customers", connection, index=False, chunksize=10_000)
    return _result(len(frame), file.stat().st_size, time.perf_counter() - started)


def _s3(endpoint: str) -> Any:
    from connector.sources import S3Client, S3Credentials  # noqa: PLC0415

    return S3Client(S3Credentials("eu-west-1", endpoint, "bench", "bench"))


async def _upload(
    endpoint: str, file: Path, key: str, *, suffix: bytes = b"", bucket: str = BUCKET_IN
) -> None:
    async with _s3(endpoint) as s3:
        for name in dict.fromkeys((bucket, BUCKET_OUT)):
            await s3.ensure_bucket(name)
        async for stale in s3.list_objects(bucket, ""):
            if stale.key != key:  # the plain and the gzip run must not import each other's file
                await s3.delete_object(bucket, stale.key)
        async with s3.open_upload(bucket, key) as upload:
            with file.open("rb") as handle:
                while chunk := handle.read(8 << 20):
                    await upload.write(chunk)
            if suffix:
                await upload.write(suffix)


def _key(file: Path) -> str:
    return "customers" + "".join(file.suffixes)


def connector_run(
    phase: str, endpoint: str, work: Path, goal: str, database: Path | str
) -> dict[str, Any]:
    """Our import or export in this process, end to end: S3 to committed store, or back."""
    from connector.arrow_memory import choose_memory_pool  # noqa: PLC0415
    from connector.arrow_pandas import keep_pandas_out  # noqa: PLC0415
    from connector.config import load_workspace  # noqa: PLC0415
    from connector.gc_tuning import tune_garbage_collector  # noqa: PLC0415
    from connector.goals.runner import RunOptions, run_connection  # noqa: PLC0415
    from connector.logging import configure_logging  # noqa: PLC0415
    from connector.storage import open_store  # noqa: PLC0415

    configure_logging("json", os.environ.get("BENCH_LOG_LEVEL", "warning"))
    workspace = load_workspace(write_goals(work / "goals", endpoint), {})
    store = open_store(database)
    tune_garbage_collector()  # as the command line does
    choose_memory_pool()
    keep_pandas_out()
    try:
        started = time.perf_counter()
        outcome = asyncio.run(run_connection(store, workspace, CONNECTION, RunOptions(goal=goal)))
        seconds = time.perf_counter() - started
    finally:
        store.close()
    counts = outcome.record.counts
    if outcome.result.errors:
        raise PhaseError(f"{phase} failed: {outcome.result.errors}")
    rows = counts.rows_read if phase.startswith("import") else counts.profiles_exported
    return _result(
        rows,
        counts.bytes_transferred,
        seconds,
        status=str(outcome.record.status),
        created=counts.profiles_created,
        updated=counts.profiles_updated,
        rejected=counts.rows_rejected,
        store=type(store).__name__,
    )


def sqlite_import(phase: str, endpoint: str, work: Path) -> dict[str, Any]:
    """The import into the embedded SQLite store; a fresh one starts from no store at all."""
    if phase.startswith("import-fresh"):
        for stale in work.glob("connector.sqlite*"):
            stale.unlink()
    return connector_run(phase, endpoint, work, IMPORT_GOAL, work / "connector.sqlite")


def create_database(admin_url: str, name: str) -> str:
    """A new, empty database `name` on the admin URL's server (any stale one dropped first);
    its URL. Raises psycopg.Error when the server cannot be reached or refuses."""
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def drop_database(admin_url: str, name: str) -> None:
    """Drop a database the bench made (its sessions too); a failure is said, not raised."""
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(drop)
    except psycopg.Error as error:
        sys.stderr.write(f"could not drop database {name}: {error}\n")


def postgres_import(
    endpoint: str, work: Path, admin_url: str, database: str | None = None
) -> dict[str, Any]:
    """The same fresh import into PostgreSQL, in a database made for it.

    Dropped after, unless `database` names it: then it stays for the export
    phase (`postgres_export`), which drops it. Anything that keeps the run from
    starting or finishing (server down, backend not built yet) makes the phase
    `unavailable` with the error, not a failed run.
    """
    import psycopg  # noqa: PLC0415

    from connector.settings import load_settings  # noqa: PLC0415

    name = database or f"bench_{os.getpid()}"
    try:
        url = create_database(admin_url, name)
    except psycopg.Error as error:
        return {"unavailable": f"cannot create a database: {error}".strip()}
    keep = False
    try:
        setting = load_settings(database=url).database  # as CONNECTOR_DATABASE=<url> would
        result = None
        if isinstance(setting, str):
            result = connector_run("import-fresh", endpoint, work, IMPORT_GOAL, setting)
            keep = database is not None
    except Exception as error:
        return {"unavailable": f"{type(error).__name__}: {error}"}
    finally:
        if not keep:
            drop_database(admin_url, name)
    if result is None:
        return {"unavailable": "the database setting does not accept a PostgreSQL URL yet"}
    if result["store"] == "SQLiteStore":
        return {"unavailable": "open_store opened SQLite for a PostgreSQL URL"}
    return result


def postgres_export(endpoint: str, work: Path, admin_url: str, database: str) -> dict[str, Any]:
    """The full gzip export from the database `postgres_import` left (`database`), dropped
    after; `unavailable` when that import did not leave one."""
    import psycopg  # noqa: PLC0415

    url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{database}"))
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as error:
        return {"unavailable": f"no imported database {database}: {error}".strip()}
    try:
        result = connector_run("export-full-gzip", endpoint, work, EXPORT_GOAL, url)
    finally:
        drop_database(admin_url, database)
    asyncio.run(_download_export(endpoint, work))
    return result


def segment_eval(work: Path) -> dict[str, Any]:
    """Profiles/s for `SEGMENT` over the imported store, as an export selects its members:
    the store's Arrow batches of the properties the segment reads, masked by the engine's
    vectorised evaluator. `seconds` includes reading the batches; `evaluate_seconds` not."""
    import pyarrow.compute as pc  # noqa: PLC0415

    from connector.arrow_memory import choose_memory_pool  # noqa: PLC0415
    from connector.arrow_pandas import keep_pandas_out  # noqa: PLC0415
    from connector.config.segments import Condition  # noqa: PLC0415
    from connector.engine.segments import (  # noqa: PLC0415
        condition_mask,
        condition_properties,
        profile_columns,
    )
    from connector.storage import open_store  # noqa: PLC0415

    condition = Condition.model_validate(SEGMENT)
    names = list(dict.fromkeys(condition_properties(condition)))
    choose_memory_pool()  # as the command line does
    keep_pandas_out()
    store = open_store(work / "connector.sqlite")
    rows = members = 0
    evaluating = 0.0
    try:
        started = time.perf_counter()
        for table in store.profile_batches(names):
            begun = time.perf_counter()
            mask = condition_mask(condition, profile_columns(table, names), table.num_rows)
            members += int(pc.sum(mask).as_py() or 0)
            evaluating += time.perf_counter() - begun
            rows += table.num_rows
        seconds = time.perf_counter() - started
    finally:
        store.close()
    return _result(
        rows,
        0,
        seconds,
        members=members,
        evaluate_seconds=evaluating,
        evaluator="connector.engine.segments.condition_mask",
    )


def csv_writer_gzip_baseline(work: Path) -> dict[str, Any]:
    """A bare csv.writer + gzip 6 write of the same rows our export wrote (rows held in
    memory in slices of 100k so only the write is timed)."""
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


async def _download_export(endpoint: str, work: Path) -> int:
    """Fetch the full export into work/exported.csv.gz (the csv.writer baseline's rows)."""
    size = 0
    async with _s3(endpoint) as s3:
        with (work / "exported.csv.gz").open("wb") as out:
            async for obj in s3.list_objects(BUCKET_OUT, "full/"):
                if obj.key.endswith(".gz"):
                    async for chunk in s3.iter_object(BUCKET_OUT, obj.key):
                        size += out.write(chunk)
    return size


def run_phase(args: argparse.Namespace) -> dict[str, Any]:
    phase = args.phase
    if phase == "csv-reader":
        return csv_reader_baseline(args.file)
    if phase == "pandas":
        return pandas_glue(args.file, args.work)
    if phase in ("upload-fresh", "upload-update"):
        # the re-import's file is the same rows with one trailing newline: a new ETag
        suffix = b"" if phase == "upload-fresh" else b"\n"
        asyncio.run(_upload(args.endpoint, args.file, _key(args.file), suffix=suffix))
        return _result(0, args.file.stat().st_size + len(suffix), 1.0)
    if phase == "upload-daemon":  # one connection's file of the daemons pair, in its bucket
        asyncio.run(_upload(args.endpoint, args.file, _key(args.file), bucket=args.bucket))
        return _result(0, args.file.stat().st_size, 1.0)
    if phase in ("import-fresh", "import-update"):
        return sqlite_import(phase, args.endpoint, args.work)
    if phase == "import-fresh-postgres":
        return postgres_import(args.endpoint, args.work, args.postgres, args.database)
    if phase == "export-full-gzip-postgres":
        if args.database is None:
            raise PhaseError(f"{phase} needs --database: the one import-fresh-postgres kept")
        return postgres_export(args.endpoint, args.work, args.postgres, args.database)
    if phase == "segment-eval":
        return segment_eval(args.work)
    if phase == "export-full-gzip":
        result = connector_run(
            phase, args.endpoint, args.work, EXPORT_GOAL, args.work / "connector.sqlite"
        )
        asyncio.run(_download_export(args.endpoint, args.work))
        return result
    if phase == "download-export":
        return _result(0, asyncio.run(_download_export(args.endpoint, args.work)), 1.0)
    if phase == "csv-writer-gzip":
        return csv_writer_gzip_baseline(args.work)
    raise PhaseError(f"unknown phase {phase}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase")
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--postgres", default=POSTGRES_ADMIN, help="a URL to create databases")
    parser.add_argument("--bucket", default=BUCKET_IN, help="upload-daemon: the bucket to fill")
    parser.add_argument(
        "--database",
        help="import-fresh-postgres: keep the database under this name for "
        "export-full-gzip-postgres, which exports from it and drops it",
    )
    args = parser.parse_args()
    try:
        result = run_phase(args)
    except PhaseError as error:
        raise SystemExit(str(error)) from None
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
