"""A multipart upload sends its parts while the writer goes on, a bounded number at a time,
and a part that fails aborts the whole upload (real moto server over HTTP)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from connector.errors import SourceError
from connector.sources import S3Client
from connector.sources.s3 import MIN_PART_SIZE, MultipartUpload

BUCKET = "connector-parts"
PART = MIN_PART_SIZE


@pytest.fixture
async def bucket(reset_moto: None, s3: S3Client) -> str:
    await s3.ensure_bucket(BUCKET)
    return BUCKET


class PartsSeen:
    """Wraps the client's `upload_part`: how many parts were on their way at once, at most,
    and how many have arrived."""

    def __init__(self, s3: S3Client, *, fail_part: int | None = None) -> None:
        self.travelling = 0
        self.most_at_once = 0
        self.arrived = 0
        self.numbers: list[int] = []
        self.travelling_at_abort: list[int] = []
        self._send = s3._s3.upload_part
        self._abort = s3._s3.abort_multipart_upload
        self._fail_part = fail_part

    async def abort_multipart_upload(self, **params: Any) -> Any:
        self.travelling_at_abort.append(self.travelling)
        return await self._abort(**params)

    async def upload_part(self, **params: Any) -> Any:
        self.travelling += 1
        self.most_at_once = max(self.most_at_once, self.travelling)
        self.numbers.append(params["PartNumber"])
        try:
            await asyncio.sleep(0.05)  # a slow network: the writer must not wait for it
            if params["PartNumber"] == self._fail_part:
                error = {"Error": {"Code": "InternalError", "Message": "part lost"}}
                raise ClientError(error, "UploadPart")  # type: ignore[arg-type]
            response = await self._send(**params)
            self.arrived += 1
            return response
        finally:
            self.travelling -= 1


def watch(s3: S3Client, monkeypatch: pytest.MonkeyPatch, **options: Any) -> PartsSeen:
    seen = PartsSeen(s3, **options)
    monkeypatch.setattr(s3._s3, "upload_part", seen.upload_part)
    monkeypatch.setattr(s3._s3, "abort_multipart_upload", seen.abort_multipart_upload)
    return seen


async def pending_uploads(s3: S3Client) -> list[dict[str, Any]]:
    response = await s3._s3.list_multipart_uploads(Bucket=BUCKET)
    uploads: list[dict[str, Any]] = response.get("Uploads", [])
    return uploads


async def write_in_parts(
    upload: MultipartUpload, data: bytes, after_write: Callable[[int], None] = lambda _: None
) -> None:
    async with upload:
        for start in range(0, len(data), PART):
            piece = data[start : start + PART]
            await upload.write(piece)
            after_write(len(piece))


@pytest.mark.parametrize("in_flight", [1, 2, 3])
async def test_parts_travel_while_the_writer_goes_on_at_most_so_many_at_once(
    bucket: str, s3: S3Client, monkeypatch: pytest.MonkeyPatch, in_flight: int
) -> None:
    seen = watch(s3, monkeypatch)
    data = os.urandom(5 * PART + 123)
    full_parts = 0
    returned_before_arrival = 0

    def count(written: int) -> None:
        nonlocal full_parts, returned_before_arrival
        if written == PART:
            full_parts += 1
            returned_before_arrival += seen.arrived < full_parts

    upload = s3.open_upload(bucket, "big.bin", part_size=PART, parts_in_flight=in_flight)
    await write_in_parts(upload, data, count)

    assert seen.most_at_once == in_flight
    assert returned_before_arrival == 5  # each full part's write returned before it arrived
    assert sorted(seen.numbers) == [1, 2, 3, 4, 5, 6]
    assert upload.etag.endswith("-6")
    body = await (await s3._s3.get_object(Bucket=bucket, Key="big.bin"))["Body"].read()
    assert body == data  # the parts are listed in their order, whatever order they arrived in
    assert await pending_uploads(s3) == []


async def test_a_part_that_fails_aborts_the_upload_and_stops_the_parts_in_flight(
    bucket: str, s3: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = watch(s3, monkeypatch, fail_part=2)
    upload = s3.open_upload(bucket, "lost.bin", part_size=PART, parts_in_flight=2)

    with pytest.raises(SourceError, match="part lost") as raised:
        await write_in_parts(upload, os.urandom(8 * PART))

    assert "lost.bin" in str(raised.value)
    assert seen.travelling_at_abort == [0]  # the parts in flight stopped before the abort
    assert 2 in seen.numbers
    assert len(seen.numbers) < 8  # it stopped soon after the failure
    listed = await s3._s3.list_objects_v2(Bucket=bucket)
    assert listed.get("KeyCount", 0) == 0
    assert await pending_uploads(s3) == []
    with pytest.raises(RuntimeError, match="not completed"):
        _ = upload.etag


async def test_an_error_of_the_writer_cancels_the_parts_in_flight_and_aborts(
    bucket: str, s3: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = watch(s3, monkeypatch)
    upload = s3.open_upload(bucket, "partial.bin", part_size=PART, parts_in_flight=2)

    async def fail_with_two_parts_travelling() -> None:
        async with upload:
            await upload.write(os.urandom(2 * PART))
            await asyncio.sleep(0.01)  # both parts on their way
            assert seen.travelling == 2
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_with_two_parts_travelling()

    assert seen.travelling_at_abort == [0]
    assert await pending_uploads(s3) == []


async def test_fewer_than_one_part_in_flight_is_refused(s3: S3Client) -> None:
    with pytest.raises(ValueError, match="parts_in_flight"):
        s3.open_upload(BUCKET, "x", parts_in_flight=0)
