"""Async access to S3 (or an S3-compatible store) for the connector.

Everything the rest of connector needs from S3 goes through `S3Client`, so that
one place decides how data is streamed (never a whole object in memory), how
retries and timeouts work, and how botocore's errors become `SourceError`s an
analyst can act on. Messages name the bucket and key, never a credential.

Multipart uploads live in `_s3_multipart`, the translation of failures in
`_s3_errors`; this module holds the client and its single requests.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack, aclosing
from datetime import UTC
from typing import Any, Self, Unpack

import aioboto3
from botocore.config import Config
from botocore.exceptions import ClientError

from connector.limits import S3_CONNECT_TIMEOUT_SECONDS, S3_MAX_ATTEMPTS, S3_READ_TIMEOUT_SECONDS
from connector.sources._s3_errors import (
    S3_ERRORS,
    S3Errors,
    error_code,
    exists_error,
    http_status,
    is_precondition,
    strip_quotes,
)
from connector.sources._s3_multipart import (
    MIN_PART_SIZE,
    MultipartUpload,
    UploadJournal,
    UploadOptions,
)
from connector.sources.s3_types import S3Credentials, S3Object

__all__ = [
    "MIN_PART_SIZE",
    "MultipartUpload",
    "S3Client",
    "S3Credentials",
    "S3Object",
    "UploadJournal",
]

DEFAULT_MAX_ATTEMPTS = S3_MAX_ATTEMPTS
DEFAULT_CONNECT_TIMEOUT = S3_CONNECT_TIMEOUT_SECONDS
DEFAULT_READ_TIMEOUT = S3_READ_TIMEOUT_SECONDS


@functools.cache
def _shared_session() -> Any:
    """One session per process: it caches botocore's service models (tens of MB, ~0.2 s to load).

    Credentials are given per client, so connections never share them.
    """
    return aioboto3.Session()


class S3Client:
    """One aioboto3 S3 client, opened with `async with S3Client(creds) as s3:`.

    Retries use botocore's "standard" mode (exponential backoff with jitter on
    throttling, 5xx and connection errors), so callers never retry themselves.
    """

    def __init__(
        self,
        credentials: S3Credentials,
        *,
        max_attempts: int | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> None:
        # an argument wins over the connection's setting, which wins over the module default
        # (read here, not bound at import, so tests can shorten them)
        if max_attempts is None:
            max_attempts = credentials.max_attempts or DEFAULT_MAX_ATTEMPTS
        if connect_timeout is None:
            connect_timeout = credentials.connect_timeout or DEFAULT_CONNECT_TIMEOUT
        if read_timeout is None:
            read_timeout = credentials.read_timeout or DEFAULT_READ_TIMEOUT
        self._credentials = credentials
        self._config = Config(
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._error = S3Errors(credentials, max_attempts, connect_timeout, read_timeout).error
        self._stack: AsyncExitStack | None = None
        self._client: Any = None

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("S3Client is already open")
        creds = self._credentials
        stack = AsyncExitStack()
        # A plain-http endpoint (MinIO, moto) has no TLS: loading the CA bundle for it
        # costs ~35 ms a client, most of a no-op run (the daemon opens one per run).
        plain_http = (creds.endpoint_url or "").lower().startswith("http://")
        self._client = await stack.enter_async_context(
            _shared_session().client(
                "s3",
                endpoint_url=creds.endpoint_url,
                region_name=creds.region,
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=creds.secret_access_key,
                aws_session_token=creds.session_token,
                config=self._config,
                **({"verify": False} if plain_http else {}),
            )
        )
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    @property
    def _s3(self) -> Any:
        if self._client is None:
            raise RuntimeError("S3Client is not open: use `async with S3Client(...) as s3:`")
        return self._client

    # -- reading ---------------------------------------------------------------

    async def list_objects(self, bucket: str, prefix: str = "") -> AsyncGenerator[S3Object, None]:
        """Every object under `prefix`, page by page, skipping "folder" markers (keys ending /)."""
        paginator = self._s3.get_paginator("list_objects_v2")
        # aiter(): aiobotocore's page iterator is iterable, but not an iterator itself.
        async with aclosing(aiter(paginator.paginate(Bucket=bucket, Prefix=prefix))) as pages:
            while True:
                try:
                    page = await anext(pages)
                except StopAsyncIteration:
                    return
                except S3_ERRORS as exc:
                    raise self._error(exc, "listing objects", bucket=bucket) from exc
                for item in page.get("Contents", ()):
                    key: str = item["Key"]
                    if key.endswith("/"):
                        continue
                    yield S3Object(
                        key=key,
                        size=int(item["Size"]),
                        etag=strip_quotes(item["ETag"]),
                        last_modified=item["LastModified"].astimezone(UTC),
                    )

    async def iter_object(
        self,
        obj_bucket: str,
        key: str,
        *,
        etag: str | None = None,
        chunk_size: int = 1 << 20,
    ) -> AsyncGenerator[bytes, None]:
        """Stream an object in chunks of at most `chunk_size` bytes.

        With `etag`, S3 only answers if the object still has that content
        (IfMatch), so a file replaced after listing raises ObjectChangedError
        instead of mixing two versions. Chunks come from `iter_chunks`, which
        validates the response checksum at the end. Consume this inside
        `contextlib.aclosing(...)` when you may stop early, so the HTTP
        connection is released at once rather than at garbage collection.
        """
        params: dict[str, Any] = {"Bucket": obj_bucket, "Key": key}
        if etag is not None:
            params["IfMatch"] = f'"{strip_quotes(etag)}"'
        try:
            response = await self._s3.get_object(**params)
        except S3_ERRORS as exc:
            raise self._error(exc, "reading the object", bucket=obj_bucket, key=key) from exc
        body = response["Body"]
        try:
            async with aclosing(body.iter_chunks(chunk_size)) as chunks:
                while True:
                    try:
                        chunk: bytes = await anext(chunks)
                    except StopAsyncIteration:
                        return
                    except S3_ERRORS as exc:
                        raise self._error(
                            exc, "reading the object", bucket=obj_bucket, key=key, retried=False
                        ) from exc
                    yield chunk
        finally:
            # Drops the connection if the body was not read to the end; after a
            # full read aiohttp has already returned it to the pool.
            body.close()

    # -- writing ---------------------------------------------------------------

    async def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """Write a small object in one request; returns its ETag (without quotes).

        With `if_none_match`, S3 writes only if no object has the key
        (`If-None-Match: *`), else ObjectExistsError: never a silent overwrite.
        """
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": data}
        if content_type is not None:
            params["ContentType"] = content_type
        if if_none_match:
            params["IfNoneMatch"] = "*"
        try:
            response = await self._s3.put_object(**params)
        except S3_ERRORS as exc:
            if if_none_match and is_precondition(exc):
                raise exists_error(bucket, key) from exc
            raise self._error(exc, "writing the object", bucket=bucket, key=key) from exc
        return strip_quotes(response["ETag"])

    async def object_exists(self, bucket: str, key: str) -> bool:
        """Whether an object has this key (a HEAD request)."""
        try:
            await self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if http_status(exc) == 404 or error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._error(exc, "looking for the object", bucket=bucket, key=key) from exc
        except S3_ERRORS as exc:
            raise self._error(exc, "looking for the object", bucket=bucket, key=key) from exc
        return True

    def open_upload(
        self, bucket: str, key: str, **options: Unpack[UploadOptions]
    ) -> MultipartUpload:
        """A streaming upload of unknown length; see `MultipartUpload`."""
        return MultipartUpload(self, bucket, key, **options)

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> bool:
        """Abort a multipart upload (its parts are deleted); False when S3 no longer has it."""
        try:
            await self._s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if error_code(exc) == "NoSuchUpload" or http_status(exc) == 404:
                return False
            raise self._error(exc, "aborting a multipart upload", bucket=bucket, key=key) from exc
        except S3_ERRORS as exc:
            raise self._error(exc, "aborting a multipart upload", bucket=bucket, key=key) from exc
        return True

    async def copy_object(
        self, bucket: str, source_key: str, dest_key: str, *, if_match: str | None = None
    ) -> None:
        """Server-side copy within one bucket (S3 limits a single copy to 5 GB).

        With `if_match` (an ETag), S3 copies only if the source still has that
        content, else ObjectChangedError.
        """
        params: dict[str, Any] = {
            "Bucket": bucket,
            "Key": dest_key,
            "CopySource": {"Bucket": bucket, "Key": source_key},
        }
        if if_match is not None:
            params["CopySourceIfMatch"] = f'"{strip_quotes(if_match)}"'
        try:
            await self._s3.copy_object(**params)
        except S3_ERRORS as exc:
            raise self._error(
                exc, f"copying the object to {dest_key!r}", bucket=bucket, key=source_key
            ) from exc

    async def delete_object(self, bucket: str, key: str, *, if_match: str | None = None) -> None:
        """Delete one object; deleting a missing key is not an error in S3.

        With `if_match` (an ETag), S3 deletes only if the object still has that
        content (a newer version is kept), else ObjectChangedError.
        """
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if if_match is not None:
            params["IfMatch"] = f'"{strip_quotes(if_match)}"'
        try:
            await self._s3.delete_object(**params)
        except S3_ERRORS as exc:
            raise self._error(exc, "deleting the object", bucket=bucket, key=key) from exc

    async def ensure_bucket(self, bucket: str) -> None:
        """Create the bucket in the connection's region unless it exists (demo and tests)."""
        try:
            await self._s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if http_status(exc) != 404:
                raise self._error(exc, "checking the bucket", bucket=bucket) from exc
        except S3_ERRORS as exc:
            raise self._error(exc, "checking the bucket", bucket=bucket) from exc
        else:
            return
        params: dict[str, Any] = {"Bucket": bucket}
        region = self._credentials.region
        if region != "us-east-1":
            # us-east-1 is the default location and S3 rejects it as a constraint.
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            await self._s3.create_bucket(**params)
        except ClientError as exc:
            if error_code(exc) != "BucketAlreadyOwnedByYou":  # lost a race with ourselves
                raise self._error(exc, "creating the bucket", bucket=bucket) from exc
        except S3_ERRORS as exc:
            raise self._error(exc, "creating the bucket", bucket=bucket) from exc
