"""Multipart uploads a killed export leaves behind are remembered in the store and aborted
by a later export of the connection once old enough; younger ones are left alone."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import BUCKET, CONNECTION, Harness, save

from connector.storage import OpenUpload, Profile, RunStatus

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def export_goal(**settings: Any) -> dict[str, Any]:
    return {
        "type": "export-profiles",
        "name": "nightly",
        "destination": {"bucket": BUCKET, "directory": "out", "file_name": "profiles.csv"},
        "columns": [
            {"header": "id", "value": "profile_id"},
            {"header": "email", "property": "email"},
        ],
        **settings,
    }


async def open_in_s3(harness: Harness) -> list[str]:
    s3 = await harness.s3()
    listed = await s3._s3.list_multipart_uploads(Bucket=BUCKET)
    return sorted(upload["UploadId"] for upload in listed.get("Uploads", []))


async def left_behind(harness: Harness, key: str, age: timedelta) -> str:
    """An upload with a part, as a killed export leaves it, recorded `age` ago."""
    s3 = await harness.s3()
    created = await s3._s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    upload_id = str(created["UploadId"])
    await s3._s3.upload_part(
        Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x" * 1024
    )
    moment = datetime.now(UTC) - age
    harness.store.note_upload(OpenUpload(upload_id, CONNECTION, "nightly", BUCKET, key, moment))
    return upload_id


async def test_an_old_abandoned_upload_is_aborted_and_a_young_one_kept(harness: Harness) -> None:
    harness.write_connection(export_goal(abandoned_upload_hours=24))
    save(harness, Profile("p1", {"email": ["a@x"]}))
    await left_behind(harness, "out/profiles.csv", timedelta(hours=30))
    young = await left_behind(harness, "out/profiles.csv", timedelta(hours=1))

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS
    assert outcome.record.counts.uploads_aborted == 1
    assert await open_in_s3(harness) == [young]
    assert [u.upload_id for u in harness.store.open_uploads(CONNECTION, FAR_FUTURE)] == [young]


async def test_an_upload_s3_no_longer_has_is_forgotten_without_counting(harness: Harness) -> None:
    harness.write_connection(export_goal())
    save(harness, Profile("p1", {"email": ["a@x"]}))
    moment = datetime.now(UTC) - timedelta(days=3)
    harness.store.note_upload(OpenUpload("gone", CONNECTION, "nightly", BUCKET, "out/x", moment))

    outcome = await harness.run()

    assert outcome.record.counts.uploads_aborted == 0
    assert harness.store.open_uploads(CONNECTION, FAR_FUTURE) == []


@pytest.mark.slow
async def test_an_export_killed_mid_upload_leaves_a_record_the_next_export_aborts(
    harness: Harness,
) -> None:
    harness.write_connection(export_goal(abandoned_upload_hours=0.0005))  # 1.8 s
    filler = "y" * 120
    with harness.store.transaction() as tx:
        tx.save_profiles(
            Profile(f"p{n:06d}", {"email": [f"{n}-{filler}@example.com"]}) for n in range(200_000)
        )
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "run", CONNECTION],
        env=harness.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not harness.store.open_uploads(CONNECTION, FAR_FUTURE):
        assert process.poll() is None, "the export ended before its upload could be killed"
        time.sleep(0.002)
    process.kill()
    process.wait(timeout=30)
    [record] = harness.store.open_uploads(CONNECTION, FAR_FUTURE)
    assert await open_in_s3(harness) == [record.upload_id]  # its parts are still billed
    time.sleep(2)

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS
    assert outcome.record.counts.uploads_aborted == 1
    assert await open_in_s3(harness) == []
    assert harness.store.open_uploads(CONNECTION, FAR_FUTURE) == []
