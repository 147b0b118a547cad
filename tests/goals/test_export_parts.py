"""`max_rows_per_file`: an export split into numbered parts, each a whole file, one manifest.

End to end on the moto server: every part is a complete CSV (with its
header), gzipped and encrypted on its own, the manifest lists every part
and is written last, and a run never leaves a partial set behind.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import BUCKET, CONNECTION, Harness, gpg_decrypt

from connector.sources import S3Client
from connector.storage import Profile, RunStatus

COLUMNS = [{"header": "id", "value": "profile_id"}, {"header": "email", "property": "email"}]


def export_goal(**settings: Any) -> dict[str, Any]:
    goal: dict[str, Any] = {
        "type": "export-profiles",
        "name": "out",
        "destination": {"bucket": BUCKET, "directory": "out", "file_name": "profiles.csv"},
        "columns": COLUMNS,
        "max_rows_per_file": 3,
    }
    goal.update(settings)
    return goal


def profiles(count: int) -> list[Profile]:
    return [Profile(f"p{i:02d}", {"email": [f"u{i}@x.nl"]}) for i in range(count)]


def save(harness: Harness, *saved: Profile) -> None:
    with harness.store.transaction() as tx:
        tx.save_profiles(saved)


async def read(harness: Harness, key: str) -> bytes:
    s3 = await harness.s3()
    return b"".join([chunk async for chunk in s3.iter_object(BUCKET, key)])


async def keys(harness: Harness) -> list[str]:
    return sorted(await harness.listed("out/"))


def rows(first: int, last: int) -> str:
    return "".join(f"p{i:02d},u{i}@x.nl\n" for i in range(first, last + 1))


@pytest.mark.parametrize("batch_size", [2, 5000], ids=["parts-across-batches", "within-a-batch"])
async def test_each_part_is_a_complete_csv_with_its_header_and_at_most_n_rows(
    harness: Harness, batch_size: int
) -> None:
    harness.write_connection(export_goal())
    save(harness, *profiles(7))

    outcome = await harness.run(batch_size=batch_size)

    assert outcome.record.status is RunStatus.SUCCESS, outcome.result.errors
    assert await keys(harness) == [
        "out/profiles_part0001.csv",
        "out/profiles_part0002.csv",
        "out/profiles_part0003.csv",
    ]
    assert (await read(harness, "out/profiles_part0001.csv")).decode() == "id,email\n" + rows(0, 2)
    assert (await read(harness, "out/profiles_part0002.csv")).decode() == "id,email\n" + rows(3, 5)
    assert (await read(harness, "out/profiles_part0003.csv")).decode() == "id,email\n" + rows(6, 6)
    assert outcome.record.counts.files == 3
    assert outcome.record.counts.profiles_exported == 7


async def test_without_a_header_the_parts_hold_only_rows(harness: Harness) -> None:
    harness.write_connection(export_goal(format={"header": False}))
    save(harness, *profiles(4))

    await harness.run()

    assert (await read(harness, "out/profiles_part0001.csv")).decode() == rows(0, 2)
    assert (await read(harness, "out/profiles_part0002.csv")).decode() == rows(3, 3)


async def test_an_export_that_fills_its_last_part_exactly_writes_no_empty_part(
    harness: Harness,
) -> None:
    harness.write_connection(export_goal())
    save(harness, *profiles(6))

    outcome = await harness.run(batch_size=3)

    assert await keys(harness) == ["out/profiles_part0001.csv", "out/profiles_part0002.csv"]
    assert outcome.record.counts.files == 2


async def test_a_full_export_of_an_empty_segment_writes_one_header_only_part(
    harness: Harness,
) -> None:
    harness.write_connection(export_goal())

    outcome = await harness.run()

    assert await keys(harness) == ["out/profiles_part0001.csv"]
    assert (await read(harness, "out/profiles_part0001.csv")).decode() == "id,email\n"
    assert outcome.record.counts.files == 1


async def test_each_part_is_its_own_gzip_stream(harness: Harness) -> None:
    harness.write_connection(export_goal(compression="gzip"))
    save(harness, *profiles(5))

    await harness.run()

    first = await read(harness, "out/profiles_part0001.csv.gz")
    second = await read(harness, "out/profiles_part0002.csv.gz")
    assert gzip.decompress(first).decode() == "id,email\n" + rows(0, 2)
    assert gzip.decompress(second).decode() == "id,email\n" + rows(3, 4)


async def test_one_manifest_lists_every_part_and_is_written_after_the_last_part(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.write_connection(export_goal(compression="gzip", manifest=True))
    save(harness, *profiles(7))
    parts_listed_when_manifest_put: list[list[str]] = []
    original_put = S3Client.put_object

    async def put_object(self: S3Client, bucket: str, key: str, data: bytes, **kwargs: Any) -> str:
        if key.endswith(".manifest.json"):
            listed = sorted([obj.key async for obj in self.list_objects(bucket, "out/")])
            parts_listed_when_manifest_put.append(listed)
        return await original_put(self, bucket, key, data, **kwargs)

    monkeypatch.setattr(S3Client, "put_object", put_object)

    outcome = await harness.run()

    part_keys = [f"out/profiles_part000{n}.csv.gz" for n in (1, 2, 3)]
    assert parts_listed_when_manifest_put == [part_keys]
    assert await keys(harness) == ["out/profiles.csv.gz.manifest.json", *part_keys]
    manifest = json.loads(await read(harness, "out/profiles.csv.gz.manifest.json"))
    assert manifest["records"] == 7
    assert manifest["run_id"] == outcome.record.id
    expected_files = []
    for key, records in zip(part_keys, (3, 3, 1), strict=True):
        body = await read(harness, key)
        expected_files.append(
            {
                "bucket": BUCKET,
                "key": key,
                "size_bytes": len(body),
                "records": records,
                "sha256": hashlib.sha256(body).hexdigest(),
                "md5": hashlib.md5(body, usedforsecurity=False).hexdigest(),
            }
        )
    assert manifest["files"] == expected_files
    assert outcome.record.counts.bytes_transferred == sum(
        obj.size for obj in (await harness.listed("out/")).values()
    )


async def test_a_smaller_export_under_a_fixed_name_deletes_the_parts_a_larger_one_left(
    harness: Harness,
) -> None:
    harness.write_connection(export_goal())
    save(harness, *profiles(7))
    await harness.run()
    await harness.put({"out/profiles_part0002.csv.bak": "keep me", "out/other_part0002.csv": "x"})
    harness.write_connection(export_goal(max_rows_per_file=10))

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS, outcome.result.errors
    assert await keys(harness) == [
        "out/other_part0002.csv",
        "out/profiles_part0001.csv",
        "out/profiles_part0002.csv.bak",
    ]
    assert (await read(harness, "out/profiles_part0001.csv")).decode() == "id,email\n" + rows(0, 6)


async def test_timestamped_parts_of_earlier_runs_are_kept(harness: Harness) -> None:
    destination = {
        "bucket": BUCKET,
        "directory": "out",
        "file_name": {"pattern": "%DESTINATION%_%DATETIME%.csv"},
    }
    harness.write_connection(export_goal(destination=destination))
    save(harness, *profiles(4))

    await harness.run()
    harness.write_connection(export_goal(destination=destination, max_rows_per_file=10))
    await harness.run()

    names = await keys(harness)
    assert len(names) == 3
    assert [name.rsplit("_", 1)[-1] for name in names] == [
        "part0001.csv",
        "part0002.csv",
        "part0001.csv",
    ]


async def test_a_failed_part_deletes_the_parts_already_written_and_keeps_the_watermark(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.write_connection(export_goal(mode="incremental", manifest=True))
    save(harness, *profiles(8))
    original_put = S3Client.put_object

    async def put_object(self: S3Client, bucket: str, key: str, data: bytes, **kwargs: Any) -> str:
        target = "no-such-bucket" if "_part0003" in key else bucket
        return await original_put(self, target, key, data, **kwargs)

    monkeypatch.setattr(S3Client, "put_object", put_object)

    outcome = await harness.run(batch_size=2)

    assert outcome.record.status is RunStatus.FAILURE
    assert "profiles_part0003.csv" in (outcome.record.error or "")
    assert await keys(harness) == []
    assert harness.store.export_watermark(CONNECTION, "out") is None


async def test_a_stop_between_parts_deletes_the_completed_parts(harness: Harness) -> None:
    harness.write_connection(export_goal(max_rows_per_file=2))
    save(harness, *profiles(10))
    stopping = threading.Event()

    class StopAfterFirstBatch:
        def file_started(self, goal: str, key: str, size: int) -> None:
            pass

        def advance(self, rows: int) -> None:
            stopping.set()

        def file_finished(self, goal: str, key: str, outcome: str) -> None:
            self.outcome = outcome

    progress = StopAfterFirstBatch()

    outcome = await harness.run(batch_size=4, stopping=stopping, progress=progress)

    assert outcome.record.status is RunStatus.INTERRUPTED
    assert progress.outcome.startswith("stopped")
    assert await keys(harness) == []


async def test_a_dry_run_builds_and_counts_the_parts_and_uploads_nothing(
    harness: Harness,
) -> None:
    harness.write_connection(export_goal(compression="gzip", manifest=True))
    save(harness, *profiles(7))

    outcome = await harness.run(dry_run=True)

    assert outcome.record.counts.files == 3
    assert outcome.record.counts.profiles_exported == 7
    assert outcome.record.counts.bytes_transferred == 0
    assert await keys(harness) == []


async def test_an_incremental_run_without_changes_writes_no_part(harness: Harness) -> None:
    harness.write_connection(export_goal(mode="incremental", manifest=True))
    save(harness, *profiles(4))
    await harness.run()
    before = await keys(harness)

    again = await harness.run()

    assert again.record.counts.files == 0
    assert await keys(harness) == before


# -- OpenPGP --------------------------------------------------------------------------------


async def test_each_part_is_encrypted_on_its_own(harness: Harness, gpg_home: Path) -> None:
    (harness.goals_dir / "partner.asc").write_bytes((gpg_home / "partner.asc").read_bytes())
    harness.write_connection(
        export_goal(compression="gzip", encryption={"public_key_file": "partner.asc"})
    )
    save(harness, *profiles(5))

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS, outcome.result.errors
    assert await keys(harness) == [
        "out/profiles_part0001.csv.gz.gpg",
        "out/profiles_part0002.csv.gz.gpg",
    ]
    first = gpg_decrypt(gpg_home, await read(harness, "out/profiles_part0001.csv.gz.gpg"))
    second = gpg_decrypt(gpg_home, await read(harness, "out/profiles_part0002.csv.gz.gpg"))
    assert gzip.decompress(first).decode() == "id,email\n" + rows(0, 2)
    assert gzip.decompress(second).decode() == "id,email\n" + rows(3, 4)
