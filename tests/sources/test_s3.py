"""S3Client against a real moto server over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import time
from contextlib import aclosing
from datetime import UTC
from typing import Any

import pytest
from botocore.exceptions import ClientError

from connector.errors import ObjectChangedError, SourceError
from connector.sources import S3Client, S3Credentials, S3Object
from connector.sources.s3 import MIN_PART_SIZE

BUCKET = "connector-test"
MiB = 1 << 20


@pytest.fixture
async def bucket(reset_moto: None, s3: S3Client) -> str:
    await s3.ensure_bucket(BUCKET)
    return BUCKET


async def listed(s3: S3Client, bucket: str, prefix: str = "") -> list[S3Object]:
    return [obj async for obj in s3.list_objects(bucket, prefix)]


async def read_all(s3: S3Client, bucket: str, key: str, **kwargs: Any) -> bytes:
    return b"".join([chunk async for chunk in s3.iter_object(bucket, key, **kwargs)])


async def pending_uploads(s3: S3Client, bucket: str) -> list[dict[str, Any]]:
    response = await s3._s3.list_multipart_uploads(Bucket=bucket)
    uploads: list[dict[str, Any]] = response.get("Uploads", [])
    return uploads


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- listing -------------------------------------------------------------------


async def test_list_paginates_past_1000_keys(s3: S3Client, bucket: str) -> None:
    keys = [f"many/file-{i:04d}.csv" for i in range(1050)]
    for start in range(0, len(keys), 100):
        group = keys[start : start + 100]
        await asyncio.gather(*(s3.put_object(bucket, key, key.encode()) for key in group))

    objects = await listed(s3, bucket)

    assert [obj.key for obj in objects] == keys
    first = objects[0]
    assert first.size == len(keys[0])
    assert first.etag == hashlib.md5(keys[0].encode()).hexdigest()  # noqa: S324
    assert first.last_modified.tzinfo is not None
    assert first.last_modified.utcoffset() == UTC.utcoffset(None)


async def test_list_by_prefix_skips_folder_markers(s3: S3Client, bucket: str) -> None:
    for key in ("in/", "in/a.csv", "in/sub/", "in/sub/b.csv", "inbox/c.csv", "out/d.csv"):
        await s3.put_object(bucket, key, b"x")

    assert [obj.key for obj in await listed(s3, bucket, "in/")] == ["in/a.csv", "in/sub/b.csv"]
    assert [obj.key for obj in await listed(s3, bucket, "in")] == [
        "in/a.csv",
        "in/sub/b.csv",
        "inbox/c.csv",
    ]
    assert await listed(s3, bucket, "nothing/") == []


async def test_list_missing_bucket(s3: S3Client, reset_moto: None) -> None:
    with pytest.raises(SourceError, match="bucket does not exist") as caught:
        await listed(s3, "no-such-bucket")
    assert caught.value.bucket == "no-such-bucket"
    assert "s3://no-such-bucket" in str(caught.value)


# -- reading -------------------------------------------------------------------


async def test_iter_object_streams_in_chunks(s3: S3Client, bucket: str) -> None:
    data = os.urandom(3 * MiB + 123)
    await s3.put_object(bucket, "big.bin", data)

    chunks = [chunk async for chunk in s3.iter_object(bucket, "big.bin", chunk_size=MiB)]

    assert len(chunks) >= 4
    assert all(len(chunk) <= MiB for chunk in chunks)
    assert b"".join(chunks) == data


async def test_iter_object_stopped_early_releases_connection(s3: S3Client, bucket: str) -> None:
    await s3.put_object(bucket, "big.bin", os.urandom(3 * MiB))

    async with aclosing(s3.iter_object(bucket, "big.bin", chunk_size=64 * 1024)) as chunks:
        async for _chunk in chunks:
            break

    assert await read_all(s3, bucket, "big.bin") != b""


async def test_iter_object_with_current_etag(s3: S3Client, bucket: str) -> None:
    await s3.put_object(bucket, "a.csv", b"v1")
    [obj] = await listed(s3, bucket)

    assert await read_all(s3, bucket, "a.csv", etag=obj.etag) == b"v1"


async def test_iter_object_with_stale_etag_raises_object_changed(s3: S3Client, bucket: str) -> None:
    await s3.put_object(bucket, "a.csv", b"v1")
    [old] = await listed(s3, bucket)
    await s3.put_object(bucket, "a.csv", b"version two")

    with pytest.raises(ObjectChangedError, match="changed after it was listed") as caught:
        await read_all(s3, bucket, "a.csv", etag=old.etag)
    assert (caught.value.bucket, caught.value.key) == (bucket, "a.csv")


async def test_iter_object_missing_key(s3: S3Client, bucket: str) -> None:
    with pytest.raises(SourceError, match="object does not exist") as caught:
        await read_all(s3, bucket, "in/missing.csv")
    assert not isinstance(caught.value, ObjectChangedError)
    assert (caught.value.bucket, caught.value.key) == (bucket, "in/missing.csv")
    assert f"s3://{bucket}/in/missing.csv" in str(caught.value)


async def test_iter_object_missing_bucket(s3: S3Client, reset_moto: None) -> None:
    with pytest.raises(SourceError, match="bucket does not exist") as caught:
        await read_all(s3, "no-such-bucket", "a.csv")
    assert "s3://no-such-bucket/a.csv" in str(caught.value)


# -- writing -------------------------------------------------------------------


async def test_multipart_upload_round_trip(s3: S3Client, bucket: str) -> None:
    data = os.urandom(12 * MiB + 4321)

    async with s3.open_upload(bucket, "out/big.csv", part_size=5 * MiB) as upload:
        for start in range(0, len(data), MiB + 7):  # writes not aligned with parts
            await upload.write(data[start : start + MiB + 7])

    assert upload.bytes_written == len(data)
    assert upload.etag.endswith("-3")
    [obj] = await listed(s3, bucket)
    assert (obj.key, obj.size, obj.etag) == ("out/big.csv", len(data), upload.etag)
    assert await read_all(s3, bucket, "out/big.csv") == data
    assert await pending_uploads(s3, bucket) == []


async def test_multipart_upload_of_exactly_one_part(s3: S3Client, bucket: str) -> None:
    data = os.urandom(MIN_PART_SIZE)

    async with s3.open_upload(bucket, "one.bin", part_size=MIN_PART_SIZE) as upload:
        await upload.write(data)

    assert upload.etag.endswith("-1")
    assert await read_all(s3, bucket, "one.bin") == data


async def test_small_upload_falls_back_to_put_object(s3: S3Client, bucket: str) -> None:
    data = b"email,name\na@example.com,A\n"

    async with s3.open_upload(bucket, "small.csv", content_type="text/csv") as upload:
        await upload.write(data[:10])
        await upload.write(data[10:])

    assert upload.bytes_written == len(data)
    assert upload.etag == hashlib.md5(data).hexdigest()  # noqa: S324 - S3's single-part ETag
    head = await s3._s3.head_object(Bucket=bucket, Key="small.csv")
    assert head["ContentType"] == "text/csv"
    assert await read_all(s3, bucket, "small.csv") == data


async def test_empty_upload_creates_empty_object(s3: S3Client, bucket: str) -> None:
    async with s3.open_upload(bucket, "empty.csv") as upload:
        pass

    assert upload.bytes_written == 0
    assert await read_all(s3, bucket, "empty.csv") == b""


async def test_exception_in_upload_aborts(s3: S3Client, bucket: str) -> None:
    upload = s3.open_upload(bucket, "out/partial.csv", part_size=5 * MiB)

    async def fail_midway() -> None:
        async with upload:
            await upload.write(os.urandom(6 * MiB))  # one part is already in S3
            assert len(await pending_uploads(s3, bucket)) == 1
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_midway()

    assert await listed(s3, bucket) == []
    assert await pending_uploads(s3, bucket) == []
    with pytest.raises(RuntimeError, match="not completed"):
        _ = upload.etag


async def test_upload_rejects_parts_below_s3_minimum(s3: S3Client) -> None:
    with pytest.raises(ValueError, match="part_size"):
        s3.open_upload(BUCKET, "x", part_size=MIN_PART_SIZE - 1)


async def test_write_outside_context_is_an_error(s3: S3Client) -> None:
    upload = s3.open_upload(BUCKET, "x")
    with pytest.raises(RuntimeError, match="outside"):
        await upload.write(b"x")


async def test_put_object_returns_etag(s3: S3Client, bucket: str) -> None:
    etag = await s3.put_object(bucket, "a.csv", b"abc")
    assert etag == hashlib.md5(b"abc").hexdigest()  # noqa: S324
    assert not etag.startswith('"')


async def test_put_object_missing_bucket(s3: S3Client, reset_moto: None) -> None:
    with pytest.raises(SourceError, match="bucket does not exist"):
        await s3.put_object("no-such-bucket", "a.csv", b"abc")


async def test_copy_and_delete(s3: S3Client, bucket: str) -> None:
    await s3.put_object(bucket, "in/a.csv", b"payload")

    await s3.copy_object(bucket, "in/a.csv", "archive/a.csv")
    await s3.delete_object(bucket, "in/a.csv")

    assert [obj.key for obj in await listed(s3, bucket)] == ["archive/a.csv"]
    assert await read_all(s3, bucket, "archive/a.csv") == b"payload"
    await s3.delete_object(bucket, "in/a.csv")  # deleting twice is fine in S3


async def test_copy_missing_source(s3: S3Client, bucket: str) -> None:
    with pytest.raises(SourceError, match="does not exist") as caught:
        await s3.copy_object(bucket, "in/missing.csv", "archive/missing.csv")
    assert caught.value.key == "in/missing.csv"


async def test_ensure_bucket_is_idempotent_and_respects_region(
    s3: S3Client, reset_moto: None
) -> None:
    await s3.ensure_bucket("regional")
    await s3.ensure_bucket("regional")

    location = await s3._s3.get_bucket_location(Bucket="regional")
    assert location["LocationConstraint"] == "eu-west-1"


async def test_ensure_bucket_in_us_east_1(moto_endpoint: str, reset_moto: None) -> None:
    credentials = S3Credentials(region="us-east-1", endpoint_url=moto_endpoint)
    async with S3Client(credentials) as s3:
        await s3.ensure_bucket("virginia")
        assert [obj async for obj in s3.list_objects("virginia")] == []


# -- failures --------------------------------------------------------------------


async def test_unreachable_endpoint_fails_fast_without_secrets() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    credentials = S3Credentials(
        endpoint_url=endpoint,
        access_key_id="AKIDLEAKCHECK",
        secret_access_key="SECRETLEAKCHECK",
    )
    started = time.monotonic()
    async with S3Client(credentials, max_attempts=1, connect_timeout=1, read_timeout=1) as s3:
        with pytest.raises(SourceError, match="could not reach the S3 endpoint") as caught:
            await listed(s3, BUCKET)

    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert endpoint in message
    assert "AKIDLEAKCHECK" not in message
    assert "SECRETLEAKCHECK" not in message


def test_credentials_repr_hides_secrets() -> None:
    credentials = S3Credentials(
        access_key_id="AKIDLEAKCHECK", secret_access_key="SECRETLEAKCHECK", session_token="TOK"
    )
    text = repr(credentials)
    assert "AKIDLEAKCHECK" not in text
    assert "SECRETLEAKCHECK" not in text
    assert "TOK" not in text


def test_endpoint_user_info_never_reaches_messages() -> None:
    credentials = S3Credentials(endpoint_url="https://user:pw@minio.example:9000/?token=x")
    client = S3Client(credentials)
    error = client._error(ConnectionRefusedError("refused"), "listing objects", bucket="b")
    assert "pw" not in str(error)
    assert "token" not in str(error)


def client_error(code: str, status: int) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "details"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("AccessDenied", 403, r"access denied \(check the connection's credentials"),
        ("InvalidAccessKeyId", 403, "access key id is not known"),
        ("SignatureDoesNotMatch", 403, "secret access key does not match"),
        ("NoSuchBucket", 404, "bucket does not exist"),
        ("NoSuchKey", 404, "object does not exist"),
        ("PermanentRedirect", 301, "not in the connection's region 'us-east-1'"),
        ("SlowDown", 503, "throttling"),
        ("InternalError", 500, "internal error"),
        ("SomethingNew", 400, r"S3 refused the request \(SomethingNew: details\)"),
    ],
)
def test_client_errors_become_readable_messages(code: str, status: int, expected: str) -> None:
    client = S3Client(S3Credentials())
    error = client._error(client_error(code, status), "reading the object", bucket="b", key="k")
    assert type(error) is SourceError
    assert str(error).startswith("s3://b/k: reading the object failed: ")
    assert re.search(expected, str(error))


def test_precondition_failed_becomes_object_changed() -> None:
    client = S3Client(S3Credentials())
    error = client._error(client_error("PreconditionFailed", 412), "reading", bucket="b", key="k")
    assert isinstance(error, ObjectChangedError)
