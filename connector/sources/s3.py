"""Async access to S3 (or an S3-compatible store) for the connector.

Everything the rest of connector needs from S3 goes through `S3Client`, so that
one place decides how data is streamed (never a whole object in memory), how
retries and timeouts work, and how botocore's errors become `SourceError`s an
analyst can act on. Messages name the bucket and key, never a credential.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import urlsplit, urlunsplit

import aioboto3
import aiohttp
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    FlexibleChecksumError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
    SSLError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from connector.errors import ObjectChangedError, ObjectExistsError, SourceError
from connector.limits import S3_CONNECT_TIMEOUT_SECONDS, S3_MAX_ATTEMPTS, S3_READ_TIMEOUT_SECONDS
from connector.redaction import redact_text

__all__ = ["MIN_PART_SIZE", "MultipartUpload", "S3Client", "S3Credentials", "S3Object"]

log = logging.getLogger(__name__)

MIN_PART_SIZE = 5 << 20
"""S3 rejects multipart parts smaller than 5 MiB (except the last one)."""

MAX_PARTS = 10_000
"""S3 refuses part numbers above 10,000."""

DEFAULT_MAX_ATTEMPTS = S3_MAX_ATTEMPTS
DEFAULT_CONNECT_TIMEOUT = S3_CONNECT_TIMEOUT_SECONDS
DEFAULT_READ_TIMEOUT = S3_READ_TIMEOUT_SECONDS

# Everything botocore/aiobotocore raise for a failed request; raw TimeoutError,
# aiohttp's errors (ClientPayloadError: the body broke off) and a plain
# ConnectionResetError can escape aiobotocore while a body is streamed.
_S3_ERRORS = (ClientError, BotoCoreError, TimeoutError, aiohttp.ClientError, ConnectionError)

_CREDENTIALS_HINT = "check the connection's credentials"

_WRONG_REGION_CODES = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)


@dataclass(frozen=True, slots=True)
class S3Object:
    """One listed object; `etag` identifies its content so a later read can insist on it."""

    key: str
    size: int
    etag: str
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class S3Credentials:
    """Plain connection settings; the secrets are kept out of `repr` so they never reach a log.

    Leaving the keys at None lets botocore's default chain (environment, shared
    config, instance role) find credentials.
    """

    region: str = "us-east-1"
    endpoint_url: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    connect_timeout: float | None = None
    """Seconds; None is `DEFAULT_CONNECT_TIMEOUT` (the same for the two below)."""
    read_timeout: float | None = None
    max_attempts: int | None = None
    """Attempts per request, the first included."""


def _strip_quotes(etag: str) -> str:
    return etag.strip('"')


def _safe_url(url: str) -> str:
    """The endpoint without user info or query, which may carry secrets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


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
        self._attempts = max_attempts
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        if credentials.endpoint_url:
            self._endpoint = _safe_url(credentials.endpoint_url)
        else:
            self._endpoint = f"for region {credentials.region}"
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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
                except _S3_ERRORS as exc:
                    raise self._error(exc, "listing objects", bucket=bucket) from exc
                for item in page.get("Contents", ()):
                    key: str = item["Key"]
                    if key.endswith("/"):
                        continue
                    yield S3Object(
                        key=key,
                        size=int(item["Size"]),
                        etag=_strip_quotes(item["ETag"]),
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
            params["IfMatch"] = f'"{_strip_quotes(etag)}"'
        try:
            response = await self._s3.get_object(**params)
        except _S3_ERRORS as exc:
            raise self._error(exc, "reading the object", bucket=obj_bucket, key=key) from exc
        body = response["Body"]
        try:
            async with aclosing(body.iter_chunks(chunk_size)) as chunks:
                while True:
                    try:
                        chunk: bytes = await anext(chunks)
                    except StopAsyncIteration:
                        return
                    except _S3_ERRORS as exc:
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
        except _S3_ERRORS as exc:
            if if_none_match and _is_precondition(exc):
                raise _exists(bucket, key) from exc
            raise self._error(exc, "writing the object", bucket=bucket, key=key) from exc
        return _strip_quotes(response["ETag"])

    async def object_exists(self, bucket: str, key: str) -> bool:
        """Whether an object has this key (a HEAD request)."""
        try:
            await self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _status(exc) == 404 or _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._error(exc, "looking for the object", bucket=bucket, key=key) from exc
        except _S3_ERRORS as exc:
            raise self._error(exc, "looking for the object", bucket=bucket, key=key) from exc
        return True

    def open_upload(
        self,
        bucket: str,
        key: str,
        *,
        part_size: int = 8 << 20,
        content_type: str | None = None,
        if_none_match: bool = False,
        journal: UploadJournal | None = None,
    ) -> MultipartUpload:
        """A streaming upload of unknown length; see `MultipartUpload`."""
        return MultipartUpload(
            self,
            bucket,
            key,
            part_size=part_size,
            content_type=content_type,
            if_none_match=if_none_match,
            journal=journal,
        )

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> bool:
        """Abort a multipart upload (its parts are deleted); False when S3 no longer has it."""
        try:
            await self._s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if _code(exc) == "NoSuchUpload" or _status(exc) == 404:
                return False
            raise self._error(exc, "aborting a multipart upload", bucket=bucket, key=key) from exc
        except _S3_ERRORS as exc:
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
            params["CopySourceIfMatch"] = f'"{_strip_quotes(if_match)}"'
        try:
            await self._s3.copy_object(**params)
        except _S3_ERRORS as exc:
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
            params["IfMatch"] = f'"{_strip_quotes(if_match)}"'
        try:
            await self._s3.delete_object(**params)
        except _S3_ERRORS as exc:
            raise self._error(exc, "deleting the object", bucket=bucket, key=key) from exc

    async def ensure_bucket(self, bucket: str) -> None:
        """Create the bucket in the connection's region unless it exists (demo and tests)."""
        try:
            await self._s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if _status(exc) != 404:
                raise self._error(exc, "checking the bucket", bucket=bucket) from exc
        except _S3_ERRORS as exc:
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
            if _code(exc) != "BucketAlreadyOwnedByYou":  # lost a race with ourselves
                raise self._error(exc, "creating the bucket", bucket=bucket) from exc
        except _S3_ERRORS as exc:
            raise self._error(exc, "creating the bucket", bucket=bucket) from exc

    # -- errors ----------------------------------------------------------------

    def _error(
        self,
        exc: BaseException,
        action: str,
        *,
        bucket: str,
        key: str | None = None,
        retried: bool = True,
    ) -> SourceError:
        """Turn a botocore failure into a SourceError an analyst can act on.

        `retried` is False for a body that broke off or stalled after its answer began:
        botocore cannot retry those, so the message does not count attempts.
        """
        if isinstance(exc, ClientError):
            code, status = _code(exc), _status(exc)
            if status == 412 or code == "PreconditionFailed":
                return ObjectChangedError(
                    "the object changed after it was listed (its ETag no longer matches); "
                    "it is left for the next run",
                    bucket=bucket,
                    key=key,
                )
            reason = self._client_error_reason(exc, code, status, has_key=key is not None)
        else:
            reason = self._transport_error_reason(exc, retried=retried)
        return SourceError(f"{action} failed: {self._scrub(reason)}", bucket=bucket, key=key)

    def _scrub(self, text: str) -> str:
        """`text` without this client's credentials.

        Some endpoints echo the access key id (or worse) in their error
        messages, and this message goes to logs, the run history and mails.
        """
        creds = self._credentials
        secrets = [creds.secret_access_key, creds.session_token, creds.access_key_id]
        if creds.endpoint_url:
            # botocore's connection errors quote the request URL, user info and all
            parts = urlsplit(creds.endpoint_url)
            secrets += [parts.password, parts.username, parts.query]
        return redact_text(text, also=secrets)

    def _client_error_reason(
        self, exc: ClientError, code: str, status: int | None, *, has_key: bool
    ) -> str:
        region = self._credentials.region
        if code == "NoSuchBucket" or (code in ("404", "NotFound") and not has_key):
            return "bucket does not exist"
        if code in ("NoSuchKey", "404", "NotFound"):
            return "object does not exist (it may have been moved or deleted)"
        if code == "InvalidAccessKeyId":
            return f"the access key id is not known to S3 ({_CREDENTIALS_HINT})"
        if code == "SignatureDoesNotMatch":
            return f"the secret access key does not match the access key id ({_CREDENTIALS_HINT})"
        if code in ("ExpiredToken", "TokenRefreshRequired", "InvalidToken"):
            return f"the session token is expired or invalid ({_CREDENTIALS_HINT})"
        if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
            return f"access denied ({_CREDENTIALS_HINT} and the bucket policy)"
        if code in _WRONG_REGION_CODES or status == 301:
            return f"the bucket is not in the connection's region {region!r}"
        if code == "InvalidBucketName":
            return "bucket name is not valid"
        if code == "NoSuchUpload":
            return "the multipart upload no longer exists (it was aborted or expired)"
        if code == "EntityTooSmall":
            return "a multipart part is smaller than S3's 5 MiB minimum"
        if code in ("SlowDown", "Throttling", "RequestLimitExceeded") or status == 503:
            return "S3 is throttling requests and retries were exhausted; try again later"
        if status is not None and status >= 500:
            return f"S3 had an internal error ({code}) and retries were exhausted; try again later"
        message = exc.response.get("Error", {}).get("Message") or "no details given"
        return f"S3 refused the request ({code}: {message})"

    def _transport_error_reason(self, exc: BaseException, *, retried: bool) -> str:
        endpoint = self._endpoint
        cause = exc.kwargs.get("error", exc) if isinstance(exc, BotoCoreError) else exc
        tries = f", {self._attempts} attempts" if retried and self._attempts > 1 else ""
        if isinstance(exc, SSLError):
            return f"TLS with the S3 endpoint {endpoint} failed: {cause}"
        if isinstance(exc, ConnectTimeoutError):
            return (
                f"could not reach the S3 endpoint {endpoint}: no connection within "
                f"{self._connect_timeout:g} s{tries} (storage.connect_timeout_seconds; check "
                "endpoint_url and the network)"
            )
        if isinstance(exc, BotoConnectionError):
            return f"could not reach the S3 endpoint {endpoint}{tries}: {cause}"
        if isinstance(exc, ReadTimeoutError | TimeoutError):
            return (
                f"the S3 endpoint {endpoint} did not answer within {self._read_timeout:g} s"
                f"{tries} (storage.read_timeout_seconds)"
            )
        if isinstance(
            exc,
            ConnectionClosedError
            | ResponseStreamingError
            | IncompleteReadError
            | aiohttp.ClientPayloadError
            | aiohttp.ServerDisconnectedError
            | ConnectionError,
        ):
            return f"the connection to the S3 endpoint {endpoint} broke off; try again"
        if isinstance(exc, FlexibleChecksumError | ChecksumError):
            return "the data received does not match S3's checksum (corrupted in transit)"
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return "no complete credentials: set the connection's access key id and secret key"
        return f"unexpected error talking to the S3 endpoint {endpoint}: {exc}"


def _is_precondition(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and (
        _status(exc) == 412 or _code(exc) == "PreconditionFailed"
    )


def _exists(bucket: str, key: str) -> ObjectExistsError:
    return ObjectExistsError(
        "an object with this name already exists; it was not overwritten (the export writes "
        "only new names, If-None-Match)",
        bucket=bucket,
        key=key,
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


class UploadJournal(Protocol):
    """Told when S3 gives a multipart upload its id and when the upload is gone again
    (completed or aborted), so one a killed process left behind can be found later."""

    async def started(self, bucket: str, key: str, upload_id: str) -> None: ...

    async def ended(self, upload_id: str) -> None: ...


class MultipartUpload:
    """Streams data of unknown length into one object, holding at most one part in memory.

    `async with s3.open_upload(bucket, key) as upload: await upload.write(data)`.
    Each full `part_size` of data is sent as one part; nothing is created in S3
    until the first part is full, so a small upload is a single put_object. On a
    clean exit the upload is completed; on an exception (or cancellation) it is
    aborted, so no half-written object and no orphaned parts are left behind.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        *,
        part_size: int = 8 << 20,
        content_type: str | None = None,
        if_none_match: bool = False,
        journal: UploadJournal | None = None,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        self._client = client
        self.bucket = bucket
        self.key = key
        self._part_size = part_size
        self._content_type = content_type
        self._if_none_match = if_none_match
        self._journal = journal
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._etag: str | None = None
        self._open = False
        self._used = False
        self.bytes_written = 0

    @property
    def etag(self) -> str:
        """The new object's ETag (without quotes; "md5-N" for a multipart object)."""
        if self._etag is None:
            raise RuntimeError("the upload has not completed")
        return self._etag

    async def __aenter__(self) -> Self:
        if self._used:
            raise RuntimeError("a MultipartUpload can be used only once")
        self._used = self._open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._open = False
        if exc_type is not None:
            self._buffer = bytearray()
            await self._abort()
            return
        try:
            if self._upload_id is None:
                data, self._buffer = bytes(self._buffer), bytearray()
                self._etag = await self._client.put_object(
                    self.bucket,
                    self.key,
                    data,
                    content_type=self._content_type,
                    if_none_match=self._if_none_match,
                )
                return
            if self._buffer:
                await self._upload_part()
            params: dict[str, Any] = {
                "Bucket": self.bucket,
                "Key": self.key,
                "UploadId": self._upload_id,
                "MultipartUpload": {"Parts": self._parts},
            }
            if self._if_none_match:
                params["IfNoneMatch"] = "*"
            try:
                response = await self._client._s3.complete_multipart_upload(**params)
            except _S3_ERRORS as exc_:
                if self._if_none_match and _is_precondition(exc_):
                    raise _exists(self.bucket, self.key) from exc_
                raise self._error(exc_) from exc_
            self._etag = _strip_quotes(response["ETag"])
            if self._journal is not None:
                await self._journal.ended(params["UploadId"])
        except BaseException:
            await self._abort()
            raise

    async def write(self, data: bytes) -> None:
        """Buffer `data`, uploading each part as soon as it is full."""
        if not self._open:
            raise RuntimeError("write() outside `async with` of the upload")
        view = memoryview(data)
        while view:
            room = self._part_size - len(self._buffer)
            piece = view[:room]
            self._buffer += piece
            self.bytes_written += len(piece)
            view = view[room:]
            if len(self._buffer) >= self._part_size:
                await self._upload_part()

    async def _upload_part(self) -> None:
        s3 = self._client._s3
        if len(self._parts) >= MAX_PARTS:
            raise SourceError(
                f"the upload needs more than {MAX_PARTS} parts: use a larger part_size",
                bucket=self.bucket,
                key=self.key,
            )
        try:
            if self._upload_id is None:
                params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key}
                if self._content_type is not None:
                    params["ContentType"] = self._content_type
                response = await s3.create_multipart_upload(**params)
                self._upload_id = response["UploadId"]
                if self._journal is not None:
                    await self._journal.started(self.bucket, self.key, response["UploadId"])
            number = len(self._parts) + 1
            # bytes, not the bytearray: botocore wraps only bytes in a BytesIO (without
            # copying), which aiohttp streams instead of warning about a large raw body.
            body, self._buffer = bytes(self._buffer), bytearray()
            response = await s3.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
            )
        except _S3_ERRORS as exc:
            raise self._error(exc) from exc
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})

    async def _abort(self) -> None:
        """Best effort: the error that made us abort matters more than a failed abort."""
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            await self._client._s3.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=upload_id
            )
            if self._journal is not None:
                await self._journal.ended(upload_id)
        except _S3_ERRORS as exc:
            log.warning(
                "could not abort multipart upload %s of s3://%s/%s: %s; its parts keep "
                "using storage until a lifecycle rule (AbortIncompleteMultipartUpload) "
                "removes them",
                upload_id,
                self.bucket,
                self.key,
                self._error(exc),
            )

    def _error(self, exc: BaseException) -> SourceError:
        return self._client._error(exc, "uploading the object", bucket=self.bucket, key=self.key)
