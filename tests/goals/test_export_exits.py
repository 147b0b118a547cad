"""Exits in incremental exports: who left the segment (or withdrew consent) since the last export.

Real parts: a SQLite file or a PostgreSQL schema (see `store_kind`), the
moto server over HTTP, gpg for the encrypted sibling file.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import config_problems, gpg_decrypt

from connector.config import Workspace, load_workspace
from connector.goals.runner import RunOptions, RunOutcome, run_connection
from connector.sources import S3Client
from connector.storage import Profile, ProfileStore, RunStatus, open_store
from connector.storage.archive import copy_store

CONN = "crm"
BUCKET = "partner-exits"
SEGMENTS: list[dict[str, Any]] = [
    {"id": "dutch", "name": "Dutch", "where": {"property": "country", "equals": "NL"}},
]
STATUS_COLUMNS: list[dict[str, Any]] = [
    {"header": "id", "value": "profile_id"},
    {"header": "email", "property": "email"},
    {"header": "status", "value": "segment_status"},
]


def export_goal(**settings: Any) -> dict[str, Any]:
    goal: dict[str, Any] = {
        "type": "export-profiles",
        "name": "out",
        "segment": "dutch",
        "mode": "incremental",
        "destination": {"bucket": BUCKET, "file_name": "dutch.csv"},
        "columns": STATUS_COLUMNS,
    }
    goal.update(settings)
    return goal


def write_goals(
    goals_dir: Path,
    endpoint: str,
    goal: dict[str, Any],
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
        "goals": [goal],
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


def delete(store: ProfileStore, *profile_ids: str) -> None:
    with store.transaction() as tx:
        tx.delete_profiles(profile_ids)


async def run(store: ProfileStore, workspace: Workspace) -> RunOutcome:
    outcome = await run_connection(store, workspace, CONN, RunOptions())
    assert outcome.record.status is RunStatus.SUCCESS, outcome.result.errors
    return outcome


async def read(s3: S3Client, key: str) -> bytes:
    return b"".join([chunk async for chunk in s3.iter_object(BUCKET, key)])


async def keys(s3: S3Client) -> list[str]:
    return sorted([obj.key async for obj in s3.list_objects(BUCKET, "")])


def rows(text: str) -> set[str]:
    """The data lines (header dropped) as a set: batch order is not a promise."""
    return set(text.splitlines()[1:])


def dutch(email: str, **more: list[str]) -> dict[str, list[str]]:
    return {"email": [email], "country": ["NL"], **more}


@pytest.fixture
def goals_dir(tmp_path: Path) -> Path:
    return tmp_path / "goals"


@pytest.fixture
def store(tmp_path: Path, new_database: Callable[[Path], str]) -> Iterator[ProfileStore]:
    with open_store(new_database(tmp_path)) as opened:
        yield opened


@pytest.fixture
async def bucket(reset_moto: None, s3: S3Client) -> str:
    await s3.ensure_bucket(BUCKET)
    return BUCKET


async def test_the_first_export_holds_every_member_as_realized_and_later_ones_add_exits(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    workspace = write_goals(goals_dir, moto_endpoint, export_goal(), objectives=["marketing"])
    consent = {"consented_objectives": ["marketing"]}
    save(
        store,
        Profile("p1", dutch("ann@x.nl", **consent)),
        Profile("p2", dutch("bob@x.nl", **consent)),
        Profile("p3", dutch("cas@x.nl", **consent)),
        Profile("p4", dutch("dan@x.nl", **consent)),
        Profile("p5", dutch("eve@x.nl", **consent)),
        Profile("p6", {"email": ["fay@x.nl"], "country": ["DE"], **consent}),
    )

    await run(store, workspace)
    assert await read(s3, "dutch.csv") == (
        b"id,email,status\n"
        b"p1,ann@x.nl,realized\np2,bob@x.nl,realized\np3,cas@x.nl,realized\n"
        b"p4,dan@x.nl,realized\np5,eve@x.nl,realized\n"
    )

    save(
        store,
        Profile("p1", dutch("ann@new.nl", **consent)),  # changed: realized again
        Profile("p2", {"email": ["bob@x.nl"], "country": ["BE"], **consent}),  # left
        Profile("p3", dutch("cas@x.nl", consented_objectives=["sales"])),  # withdrew consent
        Profile("p6", dutch("fay@x.nl", **consent)),  # entered
    )
    delete(store, "p4")  # deleted: its id only

    outcome = await run(store, workspace)

    assert rows((await read(s3, "dutch.csv")).decode()) == {
        "p1,ann@new.nl,realized",
        "p6,fay@x.nl,realized",
        "p2,bob@x.nl,exited",
        "p3,cas@x.nl,exited",
        "p4,,exited",
    }
    assert outcome.result.counts.profiles_exported == 5
    # a run of one goal counts the ids it wrote without keeping them: members and exits
    assert outcome.record.counts.unique_profiles == 5
    members = store.export_members(CONN, "out")
    assert members == ["p1", "p5", "p6"]

    # nothing changed: no file, and no exit is repeated
    before = await read(s3, "dutch.csv")
    await run(store, workspace)
    assert await read(s3, "dutch.csv") == before
    assert store.export_members(CONN, "out") == members


async def test_a_profile_that_enters_without_changing_is_realized(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    """A segment edited in segments.yaml changes who is in it though no profile changed."""
    workspace = write_goals(goals_dir, moto_endpoint, export_goal())
    save(
        store,
        Profile("p1", dutch("ann@x.nl")),
        Profile("p2", {"email": ["bob@x.nl"], "country": ["BE"]}),
    )
    await run(store, workspace)

    benelux = [{"id": "dutch", "name": "Dutch", "where": {"property": "country", "equals": "BE"}}]
    workspace = write_goals(goals_dir, moto_endpoint, export_goal(), segments=benelux)
    await run(store, workspace)

    assert rows((await read(s3, "dutch.csv")).decode()) == {
        "p2,bob@x.nl,realized",
        "p1,ann@x.nl,exited",
    }


async def test_without_a_status_column_exits_default_to_none_and_leavers_are_not_written(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    columns = STATUS_COLUMNS[:2]
    workspace = write_goals(goals_dir, moto_endpoint, export_goal(columns=columns))
    save(store, Profile("p1", dutch("ann@x.nl")), Profile("p2", dutch("bob@x.nl")))
    await run(store, workspace)
    save(store, Profile("p1", {"email": ["ann@x.nl"], "country": ["BE"]}))
    save(store, Profile("p2", dutch("bob@new.nl")))

    await run(store, workspace)

    assert await read(s3, "dutch.csv") == b"id,email\np2,bob@new.nl\n"
    assert store.export_members(CONN, "out") == []


async def test_exits_none_with_a_status_column_writes_members_as_realized_only(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    workspace = write_goals(goals_dir, moto_endpoint, export_goal(exits="none"))
    save(store, Profile("p1", dutch("ann@x.nl")), Profile("p2", dutch("bob@x.nl")))
    await run(store, workspace)
    save(store, Profile("p1", {"email": ["ann@x.nl"], "country": ["BE"]}))
    save(store, Profile("p2", dutch("bob@new.nl")))

    await run(store, workspace)

    assert await read(s3, "dutch.csv") == b"id,email,status\np2,bob@new.nl,realized\n"


async def test_a_full_export_writes_every_member_as_realized(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    workspace = write_goals(goals_dir, moto_endpoint, export_goal(mode="full"))
    save(store, Profile("p1", dutch("ann@x.nl")))

    await run(store, workspace)

    assert await read(s3, "dutch.csv") == b"id,email,status\np1,ann@x.nl,realized\n"


async def test_exits_file_writes_a_gzipped_sibling_with_its_own_manifest(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    goal = export_goal(
        exits="file",
        compression="gzip",
        manifest=True,
        destination={"bucket": BUCKET, "directory": "out/", "file_name": "segment_timestamp"},
    )
    workspace = write_goals(goals_dir, moto_endpoint, goal)
    save(store, Profile("p1", dutch("ann@x.nl")), Profile("p2", dutch("bob@x.nl")))
    await run(store, workspace)
    first_keys = await keys(s3)
    [first] = [key for key in first_keys if key.endswith(".csv.gz") and "_exited" not in key]
    first_exited = first.removesuffix(".csv.gz") + "_exited.csv.gz"
    # a run that writes one file writes the pair: the first export has no exits yet
    assert first_keys == sorted(
        [first, first + ".manifest.json", first_exited, first_exited + ".manifest.json"]
    )
    assert gzip.decompress(await read(s3, first_exited)) == b"id,email,status\n"

    save(store, Profile("p1", {"email": ["ann@x.nl"], "country": ["BE"]}))
    await run(store, workspace)

    new = [key for key in await keys(s3) if key not in first_keys]
    [data] = [[key] for key in new if key.endswith(".csv.gz") and "_exited" not in key]
    [exited] = [key for key in new if key.endswith("_exited.csv.gz")]
    assert exited == data[0].removesuffix(".csv.gz") + "_exited.csv.gz"
    assert sorted(new) == sorted(
        [data[0], data[0] + ".manifest.json", exited, exited + ".manifest.json"]
    )
    # the run changed no member: the data file is header-only, the sibling holds the exit
    assert gzip.decompress(await read(s3, data[0])) == b"id,email,status\n"
    assert gzip.decompress(await read(s3, exited)) == b"id,email,status\np1,ann@x.nl,exited\n"
    manifest = json.loads(await read(s3, exited + ".manifest.json"))
    assert manifest["contents"] == "exits"
    assert [f["key"] for f in manifest["files"]] == [exited]
    assert manifest["records"] == 1
    data_manifest = json.loads(await read(s3, data[0] + ".manifest.json"))
    assert data_manifest["contents"] == "members"
    assert data_manifest["records"] == 0


async def test_exits_file_is_encrypted_and_split_like_the_data_file(
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
    gpg_home: Path,
) -> None:
    goals_dir.mkdir(parents=True, exist_ok=True)
    (goals_dir / "partner.asc").write_bytes((gpg_home / "partner.asc").read_bytes())
    goal = export_goal(
        exits="file",
        columns=STATUS_COLUMNS[:2],  # `file` needs no status column: the file says it
        encryption={"public_key_file": "partner.asc"},
        max_rows_per_file=1,
    )
    workspace = write_goals(goals_dir, moto_endpoint, goal)
    save(store, Profile("p1", dutch("ann@x.nl")), Profile("p2", dutch("bob@x.nl")))
    await run(store, workspace)
    save(store, Profile("p1", {"country": ["BE"]}), Profile("p2", {"country": ["DE"]}))

    await run(store, workspace)

    exited = ["dutch_exited_part0001.csv.gpg", "dutch_exited_part0002.csv.gpg"]
    assert set(exited) <= set(await keys(s3))
    texts = [gpg_decrypt(gpg_home, await read(s3, key)).decode() for key in exited]
    assert sorted(texts) == ["id,email\np1,\n", "id,email\np2,\n"]


async def test_a_dry_run_neither_moves_the_members_nor_the_watermark(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    workspace = write_goals(goals_dir, moto_endpoint, export_goal())
    save(store, Profile("p1", dutch("ann@x.nl")))
    await run(store, workspace)
    save(store, Profile("p1", {"email": ["ann@x.nl"], "country": ["BE"]}))

    await run_connection(store, workspace, CONN, RunOptions(dry_run=True))
    assert store.export_members(CONN, "out") == ["p1"]

    await run(store, workspace)
    assert await read(s3, "dutch.csv") == b"id,email,status\np1,ann@x.nl,exited\n"


async def test_a_store_copy_carries_the_members_so_exits_continue(
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    workspace = write_goals(goals_dir, moto_endpoint, export_goal())
    save(store, Profile("p1", dutch("ann@x.nl")), Profile("p2", dutch("bob@x.nl")))
    await run(store, workspace)

    with open_store(tmp_path / "copy" / "connector.db") as target:
        counts = copy_store(store, target)
        assert counts["export_members"] == 2
        save(target, Profile("p2", {"email": ["bob@x.nl"], "country": ["BE"]}))
        await run(target, workspace)

    assert await read(s3, "dutch.csv") == b"id,email,status\np2,bob@x.nl,exited\n"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"mode": "full", "exits": "rows"}, "exits: rows needs mode: incremental"),
        (
            {"exits": "rows", "columns": STATUS_COLUMNS[:2]},
            "needs a column with value: segment_status",
        ),
        ({"exits": "sometimes"}, "exits"),
    ],
)
def test_validate_rejects_bad_exits_settings_with_their_line(
    tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    goal = export_goal(**settings)
    text = yaml.safe_dump(
        {"id": CONN, "storage": {"region": "eu-west-1"}, "goals": [goal]}, sort_keys=False
    )
    problems = config_problems(tmp_path, text)
    assert problems, text
    assert any(re.match(r"crm\.yaml:[0-9]+: ", p) and message in p for p in problems), problems


def test_a_profile_changed_after_the_watermark_keeps_its_old_membership_until_the_next_run(
    store: ProfileStore,
) -> None:
    """A change made while an export runs is the next export's: the exit is neither written
    early (its cells would be newer than the watermark) nor lost."""
    from connector.config.formats import ExportFormat  # noqa: PLC0415
    from connector.config.segments import Segment  # noqa: PLC0415
    from connector.engine.segment_index import SegmentIndex  # noqa: PLC0415
    from connector.exports._exits import Exits, PreviousMembers  # noqa: PLC0415
    from connector.exports._rows import RowSource  # noqa: PLC0415
    from connector.exports.columns import ExportColumns, RowRules  # noqa: PLC0415
    from connector.exports.model import ExportColumn  # noqa: PLC0415
    from connector.formats.arrow_writer import ArrowWriter  # noqa: PLC0415

    fmt = ExportFormat()
    plan = ExportColumns([ExportColumn.model_validate(c) for c in STATUS_COLUMNS], fmt)
    segments = SegmentIndex([Segment.model_validate(s) for s in SEGMENTS])

    def export(since: int, until: int) -> str:
        store.stage_export_members(CONN, "out", [], fresh=True)
        exits = Exits(
            PreviousMembers(
                lambda after: store.export_members(CONN, "out", after=after, limit=1), 1
            ),
            lambda ids: store.stage_export_members(CONN, "out", ids),
            since,
            to_file=False,
        )
        source = RowSource(
            store,
            plan,
            RowRules(plan.headers, fmt),
            [lambda _part: ArrowWriter(fmt, gzip=False, file="test.csv")],
            segments=segments,
            segment_id="dutch",
            objectives=[],
            since=since,
            until=until,
            batch_size=1,
            max_rows=None,
            exits=exits,
        )
        data = b""
        while True:
            step = source.step()
            data += b"".join(chunk.data for chunk in step.chunks)
            if step.done:
                break
        source.close()
        store.set_export_watermark(CONN, "out", until, datetime.now(UTC), members=True)
        return data.decode()

    save(store, Profile("p1", dutch("ann@x.nl")), Profile("p2", dutch("bob@x.nl")))
    first = store.change_seq()
    assert rows(export(0, first)) == {"p1,ann@x.nl,realized", "p2,bob@x.nl,realized"}
    save(store, Profile("p1", {"email": ["ann@x.nl"], "country": ["BE"]}))
    save(store, Profile("p3", dutch("cas@x.nl")))
    watermark = store.change_seq()
    save(store, Profile("p2", {"email": ["bob@x.nl"], "country": ["BE"]}))  # after the watermark

    assert rows(export(first, watermark)) == {"p1,ann@x.nl,exited", "p3,cas@x.nl,realized"}
    assert store.export_members(CONN, "out") == ["p2", "p3"]
    assert rows(export(watermark, store.change_seq())) == {"p2,bob@x.nl,exited"}
    assert store.export_members(CONN, "out") == ["p3"]
