"""The export-profiles goal end to end: goals folder → SQLite store → moto S3 over HTTP."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from helpers import gpg_decrypt

from connector.config import Workspace, load_workspace
from connector.exports._rows import RowSource
from connector.goals.runner import RunOptions, RunOutcome, run_connection
from connector.sources import S3Client, S3Object
from connector.sources.s3 import MultipartUpload
from connector.storage import Group, Profile, ProfileStore, RunStatus, open_store

CONN = "crm"
BUCKET = "partner-in"
SEGMENTS: list[dict[str, Any]] = [
    {
        "id": "high-value",
        "name": "High value customers",
        "where": {
            "all": [
                {"property": "total_spent", "gte": 1000},
                {"property": "email", "exists": True},
                {
                    "any": [
                        {"property": "vip", "equals": True},
                        {"property": "country", "one_of": ["NL", "BE"]},
                    ]
                },
            ]
        },
    },
    {"id": "dutch", "name": "Dutch", "where": {"property": "country", "equals": "NL"}},
]
ID_AND_EMAIL = [{"header": "id", "value": "profile_id"}, {"header": "email", "property": "email"}]


# -- helpers -------------------------------------------------------------------------


def export_goal(name: str = "out", **settings: Any) -> dict[str, Any]:
    goal: dict[str, Any] = {
        "type": "export-profiles",
        "name": name,
        "segment": "all",
        "destination": {"bucket": BUCKET, "file_name": "profiles.csv"},
        "columns": ID_AND_EMAIL,
    }
    goal.update(settings)
    return goal


def write_goals(
    goals_dir: Path,
    endpoint: str,
    goals: list[dict[str, Any]],
    *,
    objectives: list[str] | None = None,
    segments: list[dict[str, Any]] | None = None,
) -> Workspace:
    connection: dict[str, Any] = {
        "id": CONN,
        "storage": {
            "region": "eu-west-1",
            "endpoint_url": endpoint,
            "access_key_id": "testing",
            "secret_access_key": "testing",
        },
        "goals": goals,
    }
    if objectives is not None:
        connection["objectives"] = objectives
    goals_dir.mkdir(parents=True, exist_ok=True)
    (goals_dir / f"{CONN}.yaml").write_text(yaml.safe_dump(connection, sort_keys=False))
    segments_file = {"segments": SEGMENTS if segments is None else segments}
    (goals_dir / "segments.yaml").write_text(yaml.safe_dump(segments_file, sort_keys=False))
    return load_workspace(goals_dir, {})


def save(store: ProfileStore, *profiles: Profile) -> None:
    with store.transaction() as tx:
        tx.save_profiles(profiles)


async def run(
    store: ProfileStore, workspace: Workspace, goal: str | None = None, **options: Any
) -> RunOutcome:
    return await run_connection(store, workspace, CONN, RunOptions(goal=goal, **options))


async def objects(s3: S3Client, prefix: str = "") -> list[S3Object]:
    return [obj async for obj in s3.list_objects(BUCKET, prefix)]


async def read(s3: S3Client, key: str) -> bytes:
    return b"".join([chunk async for chunk in s3.iter_object(BUCKET, key)])


async def read_text(s3: S3Client, key: str = "profiles.csv") -> str:
    return (await read(s3, key)).decode("utf-8")


@pytest.fixture
def goals_dir(tmp_path: Path) -> Path:
    return tmp_path / "goals"


@pytest.fixture
def store(tmp_path: Path, new_database: Callable[[Path], str]) -> Iterator[ProfileStore]:
    """A SQLite file, or a PostgreSQL schema (see `store_kind`)."""
    with open_store(new_database(tmp_path)) as opened:
        yield opened


@pytest.fixture
async def bucket(reset_moto: None, s3: S3Client) -> str:
    await s3.ensure_bucket(BUCKET)
    return BUCKET


# -- columns and values ----------------------------------------------------------------


async def test_columns_follow_the_configured_order_headers_and_sources(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    columns = [
        {"header": "Source", "text": "CDP"},
        {"header": "E-mail", "property": "email"},
        {"header": "Customer", "value": "profile_id"},
        {"header": "All segments", "value": "segments"},
        {"header": "Dutch?", "value": "segments", "segments": ["dutch", "all"]},
        {"header": "Permission", "value": "permission_level"},
        {"header": "Viewed", "value": "viewed_interactions"},
        {"header": "Households", "value": "groups", "group_type": "household"},
    ]
    workspace = write_goals(goals_dir, moto_endpoint, [export_goal(columns=columns)])
    save(
        store,
        Profile(
            "p1",
            {
                "email": ["ann@example.com"],
                "total_spent": ["1500"],
                "country": ["NL"],
                "permission_level": ["opt-in"],
                "viewed_interactions": ["banner-1", "mail-7"],
            },
        ),
        Profile("p2", {"email": ["bob@example.com"], "country": ["DE"]}),
    )
    with store.transaction() as tx:
        tx.save_groups([Group("household", "h1"), Group("household", "h2")])
        tx.add_members("household", [("h1", "p1"), ("h2", "p1"), ("h2", "p2")])

    outcome = await run(store, workspace)

    assert outcome.record.status is RunStatus.SUCCESS, outcome.result.errors
    assert await read_text(s3) == (
        "Source,E-mail,Customer,All segments,Dutch?,Permission,Viewed,Households\n"
        "CDP,ann@example.com,p1,high-value|dutch,dutch|all,opt-in,banner-1|mail-7,h1|h2\n"
        "CDP,bob@example.com,p2,,all,,,h2\n"
    )


async def test_multi_values_are_joined_with_the_multi_value_separator(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    goal = export_goal(
        format={"field_separator": ";", "multi_value_separator": "/"},
        columns=[*ID_AND_EMAIL, {"header": "tags", "property": "tags"}],
    )
    workspace = write_goals(goals_dir, moto_endpoint, [goal])
    save(store, Profile("p1", {"email": ["a@x.nl", "b@x.nl"], "tags": ["gold", "new", "nl"]}))

    await run(store, workspace)

    assert await read_text(s3) == "id;email;tags\np1;a@x.nl/b@x.nl;gold/new/nl\n"


async def test_numbers_and_dates_are_written_in_the_goals_format_and_time_zone(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    dates = export_goal(
        name="dates",
        destination={"bucket": BUCKET, "file_name": "dates.csv"},
        format={"field_separator": ";", "decimal_separator": ",", "date_format": "%d-%m-%Y"},
        columns=[
            {"header": "id", "value": "profile_id"},
            {"header": "points", "property": "points", "type": "number"},
            {"header": "born", "property": "birth", "type": "date"},
        ],
    )
    moments = export_goal(
        name="moments",
        destination={"bucket": BUCKET, "file_name": "moments.csv"},
        format={"timezone": "Europe/Amsterdam"},
        columns=[
            {"header": "id", "value": "profile_id"},
            {"header": "seen", "property": "last_seen", "type": "datetime"},
            {"header": "points (as text)", "property": "points"},
        ],
    )
    workspace = write_goals(goals_dir, moto_endpoint, [dates, moments])
    save(
        store,
        Profile(
            "p1",
            {
                "points": ["12.50", "-3.10"],
                "birth": ["1990-05-17"],
                "last_seen": ["2024-03-01T09:30:00+00:00"],
            },
        ),
    )

    await run(store, workspace)

    assert await read_text(s3, "dates.csv") == "id;points;born\np1;12,50|-3,10;17-05-1990\n"
    assert await read_text(s3, "moments.csv") == (
        "id,seen,points (as text)\np1,2024-03-01T10:30:00+01:00,12.50|-3.10\n"
    )


async def test_only_profiles_with_a_value_in_a_property_column_are_written(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    columns = [
        {"header": "id", "value": "profile_id"},
        {"header": "source", "text": "CDP"},
        {"header": "permission", "value": "permission_level"},
        {"header": "email", "property": "email"},
        {"header": "phone", "property": "phone"},
    ]
    workspace = write_goals(goals_dir, moto_endpoint, [export_goal(columns=columns)])
    save(
        store,
        Profile("email-only", {"email": ["e@x.nl"]}),
        Profile("phone-only", {"phone": ["06 1234"]}),
        Profile("neither", {"permission_level": ["opt-in"], "country": ["NL"]}),
        Profile("empty"),
    )

    outcome = await run(store, workspace)

    assert await read_text(s3) == (
        "id,source,permission,email,phone\nemail-only,CDP,,e@x.nl,\nphone-only,CDP,,,06 1234\n"
    )
    assert outcome.record.counts.profiles_exported == 2


async def test_only_profiles_that_consented_to_an_objective_are_exported(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    workspace = write_goals(
        goals_dir, moto_endpoint, [export_goal()], objectives=["marketing", "profiling"]
    )
    save(
        store,
        Profile("yes", {"email": ["y@x"], "consented_objectives": ["marketing"]}),
        Profile("other", {"email": ["o@x"], "consented_objectives": ["analytics"]}),
        Profile("none", {"email": ["n@x"]}),
        Profile("both", {"email": ["b@x"], "consented_objectives": ["analytics", "profiling"]}),
    )

    await run(store, workspace)

    assert await read_text(s3) == "id,email\nboth,b@x\nyes,y@x\n"


async def test_a_segment_with_nested_all_and_any_exports_exactly_its_members(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    workspace = write_goals(goals_dir, moto_endpoint, [export_goal(segment="high-value")])
    save(
        store,
        Profile("vip", {"email": ["v@x"], "total_spent": ["1000"], "vip": ["true"]}),
        Profile("belgian", {"email": ["b@x"], "total_spent": ["2500.50"], "country": ["BE"]}),
        Profile("poor-vip", {"email": ["p@x"], "total_spent": ["999.99"], "vip": ["true"]}),
        Profile("no-email", {"total_spent": ["5000"], "country": ["NL"], "phone": ["1"]}),
        Profile("german", {"email": ["g@x"], "total_spent": ["5000"], "country": ["DE"]}),
    )

    await run(store, workspace)

    assert await read_text(s3) == "id,email\nbelgian,b@x\nvip,v@x\n"


async def test_the_formula_guard_defuses_cells_a_spreadsheet_would_run(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    columns = [*ID_AND_EMAIL, {"header": "balance", "property": "balance", "type": "number"}]
    guarded = export_goal(name="guarded", columns=columns)
    unguarded = export_goal(
        name="raw",
        destination={"bucket": BUCKET, "file_name": "raw.csv"},
        format={"formula_guard": False},
        columns=columns,
    )
    workspace = write_goals(goals_dir, moto_endpoint, [guarded, unguarded])
    save(
        store,
        Profile("p1", {"email": ['=HYPERLINK("http://evil","x")'], "balance": ["-12.50"]}),
        Profile("p2", {"email": ["@SUM(A1)"], "balance": ["3"]}),
    )

    await run(store, workspace)

    assert await read_text(s3) == (
        'id,email,balance\np1,"\'=HYPERLINK(""http://evil"",""x"")",-12.50\np2,\'@SUM(A1),3\n'
    )
    assert await read_text(s3, "raw.csv") == (
        'id,email,balance\np1,"=HYPERLINK(""http://evil"",""x"")",-12.50\np2,@SUM(A1),3\n'
    )


async def test_missing_values_are_written_as_the_null_value(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    goal = export_goal(
        format={"null_value": "NULL", "quote_all": True, "line_terminator": "\r\n"},
        columns=[*ID_AND_EMAIL, {"header": "phone", "property": "phone"}],
    )
    workspace = write_goals(goals_dir, moto_endpoint, [goal])
    save(store, Profile("p1", {"email": ["a@x"]}), Profile("p2", {"phone": ["06"]}))

    await run(store, workspace)

    assert await read_text(s3) == (
        '"id","email","phone"\r\n"p1","a@x","NULL"\r\n"p2","NULL","06"\r\n'
    )


async def test_a_format_without_header_writes_only_rows(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    goal = export_goal(format={"header": False, "field_separator": "\\t"})
    workspace = write_goals(goals_dir, moto_endpoint, [goal])
    save(store, Profile("p1", {"email": ["a@x"]}))

    await run(store, workspace)

    assert await read_text(s3) == "p1\ta@x\n"


# -- full and incremental ----------------------------------------------------------------


def numbered_profiles(count: int) -> list[Profile]:
    return [Profile(f"p{i:04d}", {"email": [f"user{i}@example.com"]}) for i in range(count)]


async def test_incremental_exports_exactly_the_profiles_changed_since_the_last_export(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    workspace = write_goals(goals_dir, moto_endpoint, [export_goal(mode="incremental")])
    save(store, *numbered_profiles(1000))

    first = await run(store, workspace)
    assert first.record.counts.profiles_exported == 1000
    assert (await read_text(s3)).count("\n") == 1001

    with store.transaction() as tx:  # what an import does: load, change, save
        changed = tx.load_profiles(["p0007", "p0500", "p0999"])
        for profile in changed.values():
            profile.properties["email"] = [f"new-{profile.id}@example.com"]
        tx.save_profiles(changed.values())

    second = await run(store, workspace)

    assert second.record.counts.profiles_exported == 3
    assert await read_text(s3) == (
        "id,email\n"
        "p0007,new-p0007@example.com\n"
        "p0500,new-p0500@example.com\n"
        "p0999,new-p0999@example.com\n"
    )
    watermark = store.export_watermark(CONN, "out")
    assert watermark is not None
    assert watermark.change_seq == store.change_seq()


async def test_incremental_rerun_without_changes_writes_no_file_and_succeeds(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    goal = export_goal(
        mode="incremental",
        manifest=True,
        destination={"bucket": BUCKET, "directory": "out/", "file_name": "segment_timestamp"},
    )
    workspace = write_goals(goals_dir, moto_endpoint, [goal])
    save(store, *numbered_profiles(10))
    await run(store, workspace)
    before = await objects(s3)

    again = await run(store, workspace)

    assert again.record.status is RunStatus.SUCCESS
    assert again.record.counts.files == 0
    assert again.record.counts.profiles_exported == 0
    assert [obj.key for obj in await objects(s3)] == [obj.key for obj in before]
    assert len(before) == 2  # the first run's data file and manifest


async def test_an_incremental_run_skips_changes_to_profiles_outside_the_segment(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    workspace = write_goals(
        goals_dir, moto_endpoint, [export_goal(mode="incremental", segment="dutch")]
    )
    save(store, Profile("nl", {"email": ["n@x"], "country": ["NL"]}))
    await run(store, workspace)
    save(store, Profile("de", {"email": ["d@x"], "country": ["DE"]}))

    outcome = await run(store, workspace)

    assert outcome.record.counts.files == 0
    assert await read_text(s3) == "id,email\nnl,n@x\n"
    watermark = store.export_watermark(CONN, "out")
    assert watermark is not None
    assert watermark.change_seq == store.change_seq()


async def test_a_full_export_writes_every_member_each_run(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    workspace = write_goals(goals_dir, moto_endpoint, [export_goal(mode="full")])
    save(store, *numbered_profiles(5))
    await run(store, workspace)

    outcome = await run(store, workspace)

    assert outcome.record.counts.profiles_exported == 5
    assert (await read_text(s3)).count("\n") == 6


async def test_a_full_export_of_an_empty_segment_writes_the_header_only(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    workspace = write_goals(goals_dir, moto_endpoint, [export_goal(segment="dutch")])
    save(store, Profile("de", {"email": ["d@x"], "country": ["DE"]}))

    outcome = await run(store, workspace)

    assert outcome.record.counts.files == 1
    assert await read_text(s3) == "id,email\n"


def export_threads() -> list[str]:
    """The threads an export starts (cells one batch ahead, the store's page reads)."""
    names = ("export-cells", "sqlite-profile-pages", "postgres-profile-pages")
    return [thread.name for thread in threading.enumerate() if thread.name in names]


async def test_the_watermark_stays_when_the_upload_fails_so_the_next_run_exports_all(
    reset_moto: None, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    workspace = write_goals(goals_dir, moto_endpoint, [export_goal(mode="incremental")])
    save(store, *numbered_profiles(20))

    failed = await run(store, workspace)

    assert failed.record.status is RunStatus.FAILURE
    assert "bucket does not exist" in (failed.record.error or "")
    assert store.export_watermark(CONN, "out") is None
    assert export_threads() == []

    await s3.ensure_bucket(BUCKET)
    retried = await run(store, workspace)

    assert retried.record.status is RunStatus.SUCCESS
    assert retried.record.counts.profiles_exported == 20
    assert (await read_text(s3)).count("\n") == 21


async def test_a_dry_run_uploads_nothing_and_keeps_the_watermark(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    goal = export_goal(mode="incremental", manifest=True, compression="gzip")
    workspace = write_goals(goals_dir, moto_endpoint, [goal])
    save(store, *numbered_profiles(7))

    outcome = await run(store, workspace, dry_run=True)

    assert outcome.record.dry_run
    assert outcome.record.counts.profiles_exported == 7
    assert outcome.record.counts.bytes_transferred == 0
    assert await objects(s3) == []
    assert store.export_watermark(CONN, "out") is None


async def test_a_graceful_stop_abandons_the_upload_and_keeps_the_watermark(
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace = write_goals(goals_dir, moto_endpoint, [export_goal(mode="incremental")])
    save(store, *numbered_profiles(100))
    stopping = threading.Event()
    left_at_close: list[list[str]] = []
    close = RowSource.close

    def closed(source: RowSource) -> None:
        close(source)
        left_at_close.append(export_threads())

    monkeypatch.setattr(RowSource, "close", closed)

    class StopAfterFirstBatch:
        def file_started(self, goal: str, key: str, size: int) -> None:
            pass

        def advance(self, rows: int) -> None:
            stopping.set()

        def file_finished(self, goal: str, key: str, outcome: str) -> None:
            self.outcome = outcome

    progress = StopAfterFirstBatch()
    outcome = await run(store, workspace, batch_size=10, stopping=stopping, progress=progress)

    assert outcome.record.status is RunStatus.INTERRUPTED
    assert "stopped during the export" in (outcome.record.error or "")
    assert progress.outcome.startswith("stopped")
    assert await objects(s3) == []
    assert store.export_watermark(CONN, "out") is None
    # the export closed its source: the batches built ahead were dropped, their threads ended
    assert left_at_close == [[]]


# -- file naming -------------------------------------------------------------------------


async def test_segment_timestamp_naming_writes_a_new_file_each_run_in_the_macro_folder(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    destination = {
        "bucket": BUCKET,
        "directory": "cdp/%SEGMENT_NAME%/%SEGMENT_ID%/",
        "file_name": "segment_timestamp",
    }
    workspace = write_goals(
        goals_dir, moto_endpoint, [export_goal(segment="high-value", destination=destination)]
    )
    save(store, Profile("p1", {"email": ["a@x"], "total_spent": ["2000"], "vip": ["true"]}))
    before = datetime.now(UTC).replace(microsecond=0)

    await run(store, workspace)
    await run(store, workspace)

    keys = sorted(obj.key for obj in await objects(s3))
    assert len(keys) == 2
    pattern = re.compile(
        r"cdp/High_value_customers/high-value/High_value_customers_(\d{8}T\d{6}Z)\.csv"
    )
    stamps = []
    for key in keys:
        match = pattern.fullmatch(key)
        assert match, key
        stamps.append(datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC))
    assert before <= stamps[0] < stamps[1] <= datetime.now(UTC)


async def test_a_fixed_file_name_is_replaced_each_run_and_gets_the_content_extensions(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    plain = export_goal(destination={"bucket": BUCKET, "directory": "x", "file_name": "all.csv"})
    zipped = export_goal(
        name="zipped",
        compression="gzip",
        destination={"bucket": BUCKET, "directory": "%SEGMENT_ID%", "file_name": "all.csv"},
    )
    named = export_goal(
        name="named",
        compression="gzip",
        destination={"bucket": BUCKET, "file_name": "feeds/%SEGMENT_ID%.csv.gz"},
    )
    workspace = write_goals(goals_dir, moto_endpoint, [plain, zipped, named])
    save(store, Profile("p1", {"email": ["a@x"]}))
    await run(store, workspace)
    save(store, Profile("p2", {"email": ["b@x"]}))

    await run(store, workspace)

    assert sorted(obj.key for obj in await objects(s3)) == [
        "all/all.csv.gz",
        "feeds/all.csv.gz",
        "x/all.csv",
    ]
    assert await read_text(s3, "x/all.csv") == "id,email\np1,a@x\np2,b@x\n"


async def test_a_segment_name_cannot_move_the_file_out_of_the_configured_folder(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    segments = [
        {
            "id": "sneaky",
            "name": "../../../etc/passwd\x07 /..//x",
            "where": {"property": "email", "exists": True},
        }
    ]
    destination = {
        "bucket": BUCKET,
        "directory": "exports/%SEGMENT_NAME%/",
        "file_name": "segment_timestamp",
    }
    workspace = write_goals(
        goals_dir,
        moto_endpoint,
        [export_goal(segment="sneaky", destination=destination)],
        segments=segments,
    )
    save(store, Profile("p1", {"email": ["a@x"]}))

    outcome = await run(store, workspace)

    assert outcome.record.status is RunStatus.SUCCESS
    (obj,) = await objects(s3)
    folder, name = obj.key.rsplit("/", 1)
    assert folder == "exports/etc_passwd_x"
    assert re.fullmatch(r"etc_passwd_x_\d{8}T\d{6}Z\.csv", name)


# -- gzip, multipart, manifest ------------------------------------------------------------


async def test_a_gzip_export_decompresses_to_the_csv(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    workspace = write_goals(goals_dir, moto_endpoint, [export_goal(compression="gzip")])
    save(store, *numbered_profiles(3))

    await run(store, workspace)

    assert gzip.decompress(await read(s3, "profiles.csv.gz")).decode() == (
        "id,email\np0000,user0@example.com\np0001,user1@example.com\np0002,user2@example.com\n"
    )


async def test_a_large_export_streams_as_a_multipart_upload(
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    columns = [*ID_AND_EMAIL, {"header": "note", "property": "note"}]
    goal = export_goal(compression="gzip", manifest=True, columns=columns)
    workspace = write_goals(goals_dir, moto_endpoint, [goal])
    count = 24_000  # random text gzip cannot shrink: about 10 MiB compressed, over one 8 MiB part
    save(
        store,
        *(
            Profile(
                f"p{i:06d}",
                {"email": [f"u{i}@x.nl"], "note": [base64.b64encode(os.urandom(420)).decode()]},
            )
            for i in range(count)
        ),
    )

    handed_to_upload: list[int] = []
    original_write = MultipartUpload.write

    async def write(self: MultipartUpload, data: bytes) -> None:
        handed_to_upload.append(len(data))
        await original_write(self, data)

    monkeypatch.setattr(MultipartUpload, "write", write)

    outcome = await run(store, workspace, batch_size=2000)

    assert outcome.record.status is RunStatus.SUCCESS, outcome.result.errors
    data = next(obj for obj in await objects(s3) if obj.key == "profiles.csv.gz")
    assert data.size > 8 << 20
    assert max(handed_to_upload) < 3 << 20  # streamed in bounded chunks, never the whole file
    assert re.fullmatch(r"[0-9a-f]{32}-[2-9]", data.etag), data.etag
    body = await read(s3, data.key)
    lines = gzip.decompress(body).decode().splitlines()
    assert len(lines) == count + 1
    assert lines[-1].startswith(f"p{count - 1:06d},u{count - 1}@x.nl,")
    manifest = json.loads(await read(s3, "profiles.csv.gz.manifest.json"))
    assert manifest["files"][0]["sha256"] == hashlib.sha256(body).hexdigest()
    assert outcome.record.counts.profiles_exported == count


async def test_the_manifest_describes_the_complete_data_file_and_is_written_after_it(
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    destination = {"bucket": BUCKET, "directory": "cdp/", "file_name": "segment_timestamp"}
    goal = export_goal(
        segment="dutch",
        mode="incremental",
        manifest=True,
        compression="gzip",
        destination=destination,
    )
    workspace = write_goals(goals_dir, moto_endpoint, [goal])
    save(store, Profile("nl", {"email": ["n@x"], "country": ["NL"]}))
    data_present_when_manifest_put: list[bool] = []
    original_put = S3Client.put_object

    async def put_object(self: S3Client, bucket: str, key: str, data: bytes, **kwargs: Any) -> str:
        if key.endswith(".manifest.json"):
            listed = [obj.key async for obj in self.list_objects(bucket, "cdp/")]
            data_present_when_manifest_put.append(key.removesuffix(".manifest.json") in listed)
        return await original_put(self, bucket, key, data, **kwargs)

    monkeypatch.setattr(S3Client, "put_object", put_object)

    outcome = await run(store, workspace)

    assert data_present_when_manifest_put == [True]
    keys = sorted(obj.key for obj in await objects(s3))
    data_key, manifest_key = keys
    assert manifest_key == data_key + ".manifest.json"
    body = await read(s3, data_key)
    manifest = json.loads(await read(s3, manifest_key))
    exported_at = manifest.pop("exported_at")
    stamp = re.search(r"_(\d{8}T\d{6}Z)\.csv\.gz$", data_key)
    assert stamp
    assert exported_at == datetime.strptime(stamp.group(1), "%Y%m%dT%H%M%SZ").strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert manifest == {
        "manifest_version": 1,
        "connection": CONN,
        "goal": "out",
        "run_id": outcome.record.id,
        "segment": {"id": "dutch", "name": "Dutch"},
        "mode": "incremental",
        "incremental_since": None,
        "watermark": store.change_seq(),
        "format": {
            "encoding": "utf-8",
            "field_separator": ",",
            "header": True,
            "columns": ["id", "email"],
            "compression": "gzip",
            "encryption": None,
        },
        "records": 1,
        "files": [
            {
                "bucket": BUCKET,
                "key": data_key,
                "size_bytes": len(body),
                "records": 1,
                "sha256": hashlib.sha256(body).hexdigest(),
                "md5": hashlib.md5(body, usedforsecurity=False).hexdigest(),
            }
        ],
    }


async def test_no_manifest_is_written_when_the_data_upload_fails(
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace = write_goals(goals_dir, moto_endpoint, [export_goal(manifest=True)])
    save(store, Profile("p1", {"email": ["a@x"]}))
    original_put = S3Client.put_object

    async def put_object(self: S3Client, bucket: str, key: str, data: bytes, **kwargs: Any) -> str:
        if not key.endswith(".manifest.json"):
            return await original_put(self, "no-such-bucket", key, data, **kwargs)
        return await original_put(self, bucket, key, data, **kwargs)

    monkeypatch.setattr(S3Client, "put_object", put_object)

    outcome = await run(store, workspace)

    assert outcome.record.status is RunStatus.FAILURE
    assert await objects(s3) == []


# -- OpenPGP -------------------------------------------------------------------------------


async def test_an_encrypted_export_decrypts_with_gpg_to_the_csv(
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
    gpg_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (goals_dir / "keys").mkdir(parents=True)
    (goals_dir / "keys" / "partner.asc").write_bytes((gpg_home / "partner.asc").read_bytes())
    plain = export_goal(encryption={"public_key_file": "keys/partner.asc"})
    zipped = export_goal(
        name="zipped",
        compression="gzip",
        manifest=True,
        encryption={"public_key_file": "keys/partner.asc"},
    )
    workspace = write_goals(goals_dir, moto_endpoint, [plain, zipped])
    save(store, *numbered_profiles(2000))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    outcome = await run(store, workspace)

    assert outcome.record.status is RunStatus.SUCCESS, outcome.result.errors
    expected = "id,email\n" + "".join(f"p{i:04d},user{i}@example.com\n" for i in range(2000))
    encrypted = await read(s3, "profiles.csv.gpg")
    assert expected.encode() not in encrypted
    assert gpg_decrypt(gpg_home, encrypted).decode() == expected
    zipped_body = await read(s3, "profiles.csv.gz.gpg")
    assert gzip.decompress(gpg_decrypt(gpg_home, zipped_body)).decode() == expected
    manifest = json.loads(await read(s3, "profiles.csv.gz.gpg.manifest.json"))
    assert manifest["files"][0]["size_bytes"] == len(zipped_body)
    assert manifest["format"]["encryption"] == "openpgp"
    assert list(scratch.iterdir()) == []  # the temporary GNUPGHOME is gone


async def test_an_unusable_public_key_fails_the_run_with_gpgs_reason_and_uploads_nothing(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    goals_dir.mkdir(parents=True)
    (goals_dir / "broken.asc").write_text("this is not a key\n")
    goal = export_goal(encryption={"public_key_file": "broken.asc"})
    workspace = write_goals(goals_dir, moto_endpoint, [goal])
    save(store, *numbered_profiles(3))

    outcome = await run(store, workspace)

    assert outcome.record.status is RunStatus.FAILURE
    assert "broken.asc" in (outcome.record.error or "")
    assert await objects(s3) == []
    assert store.export_watermark(CONN, "out") is None


# -- history and command line ----------------------------------------------------------------


async def test_the_run_history_counts_exported_profiles_files_and_bytes(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    workspace = write_goals(goals_dir, moto_endpoint, [export_goal(manifest=True)])
    save(store, *numbered_profiles(4), Profile("no-email", {"phone": ["1"]}))

    outcome = await run(store, workspace)

    sizes = {obj.key: obj.size for obj in await objects(s3)}
    (record,) = store.list_runs(CONN)
    assert record.id == outcome.record.id
    assert record.counts.profiles_exported == 4
    assert record.counts.files == 1
    assert record.counts.bytes_transferred == sum(sizes.values())
    assert record.counts.unique_profiles == 4


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`main` points structlog and the root logger at this test's captured stderr; undo it."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_connector_run_exports_from_the_command_line_and_exits_zero(
    restore_logging: None,
    bucket: str,
    s3: S3Client,
    goals_dir: Path,
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    new_database: Callable[[Path], str],
) -> None:
    from connector.cli import main  # noqa: PLC0415 -- after the environment is set

    write_goals(goals_dir, moto_endpoint, [export_goal(name="nightly", compression="gzip")])
    database = new_database(tmp_path / "cli")
    with open_store(database) as cli_store:
        save(cli_store, *numbered_profiles(3))
    monkeypatch.setenv("CONNECTOR_GOALS_DIR", str(goals_dir))
    monkeypatch.setenv("CONNECTOR_DATABASE", str(database))
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)

    code = await asyncio.to_thread(main, ["run", CONN, "--goal", "nightly", "--quiet"])

    assert code == 0
    text = gzip.decompress(await read(s3, "profiles.csv.gz")).decode()
    assert text.splitlines() == [
        "id,email",
        "p0000,user0@example.com",
        "p0001,user1@example.com",
        "p0002,user2@example.com",
    ]
