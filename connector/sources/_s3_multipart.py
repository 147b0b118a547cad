"""Streaming an object of unknown length into S3, one part at a time (multipart upload).

`S3Client.open_upload` opens one; see `MultipartUpload`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol, Self, TypedDict

from connector.errors import SourceError
from connector.sources._s3_errors import S3_ERRORS, exists_error, is_precondition, strip_quotes

if TYPE_CHECKING:
    from connector.sources.s3 import S3Client

__all__ = ["MAX_PARTS", "MIN_PART_SIZE", "MultipartUpload", "UploadJournal", "UploadOptions"]

log = logging.getLogger("connector.sources.s3")

MIN_PART_SIZE = 5 << 20
"""S3 rejects multipart parts smaller than 5 MiB (except the last one)."""

MAX_PARTS = 10_000
"""S3 refuses part numbers above 10,000."""

PARTS_IN_FLIGHT = 2
"""Parts sent at once while the caller goes on writing the next one. With one, the
writer waited for each part's round trip (a 1M-row export is 4 parts; a dry run, which
uploads nothing, took 1.7 s against 2.3 s); more would hold more parts in memory."""


class UploadJournal(Protocol):
    """Told when S3 gives a multipart upload its id and when the upload is gone again
    (completed or aborted), so one a killed process left behind can be found later."""

    async def started(self, bucket: str, key: str, upload_id: str) -> None: ...

    async def ended(self, upload_id: str) -> None: ...


class UploadOptions(TypedDict, total=False):
    """The keyword arguments of `MultipartUpload` after its client, bucket and key."""

    part_size: int
    parts_in_flight: int
    content_type: str | None
    if_none_match: bool
    journal: UploadJournal | None


class MultipartUpload:
    """Streams data of unknown length into one object, holding a few parts in memory at most.

    `async with s3.open_upload(bucket, key) as upload: await upload.write(data)`.
    Each full `part_size` of data is sent as one part, in a task of its own:
    `write` returns while the part travels, and waits only when
    `parts_in_flight` parts are still on their way (so memory holds that many
    parts and the one being filled). Nothing is created in S3 until the first
    part is full, so a small upload is a single put_object. On a clean exit
    the parts still travelling are awaited and the upload is completed; on an
    exception (or cancellation, or a part that failed) the parts in flight are
    cancelled and the upload aborted, so no half-written object and no
    orphaned parts are left behind.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        *,
        part_size: int = 8 << 20,
        parts_in_flight: int = PARTS_IN_FLIGHT,
        content_type: str | None = None,
        if_none_match: bool = False,
        journal: UploadJournal | None = None,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        if parts_in_flight < 1:
            raise ValueError(f"parts_in_flight must be at least 1, not {parts_in_flight}")
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
        self._parts_in_flight = parts_in_flight
        self._sending: list[asyncio.Task[dict[str, Any]]] = []
        self._numbered = 0
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

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._open = False
        if exc_type is not None:
            self._buffer = bytearray()
            await self._stop_sending()
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
            while self._sending:
                await self._sent(self._sending.pop(0))
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
            except S3_ERRORS as exc:
                if self._if_none_match and is_precondition(exc):
                    raise exists_error(self.bucket, self.key) from exc
                raise self._error(exc) from exc
            self._etag = strip_quotes(response["ETag"])
            if self._journal is not None:
                await self._journal.ended(params["UploadId"])
        except BaseException:
            await self._stop_sending()
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
        """Send the buffer as the next part, in a task; wait first if too many travel."""
        if self._numbered >= MAX_PARTS:
            raise SourceError(
                f"the upload needs more than {MAX_PARTS} parts: use a larger part_size",
                bucket=self.bucket,
                key=self.key,
            )
        if self._upload_id is None:
            params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key}
            if self._content_type is not None:
                params["ContentType"] = self._content_type
            try:
                response = await self._client._s3.create_multipart_upload(**params)
            except S3_ERRORS as exc:
                raise self._error(exc) from exc
            self._upload_id = response["UploadId"]
            if self._journal is not None:
                await self._journal.started(self.bucket, self.key, response["UploadId"])
        while len(self._sending) >= self._parts_in_flight:
            await self._sent(self._sending.pop(0))
        self._numbered += 1
        # bytes, not the bytearray: botocore wraps only bytes in a BytesIO (without
        # copying), which aiohttp streams instead of warning about a large raw body.
        body, self._buffer = bytes(self._buffer), bytearray()
        self._sending.append(asyncio.ensure_future(self._send(self._numbered, body)))

    async def _send(self, number: int, body: bytes) -> dict[str, Any]:
        try:
            response = await self._client._s3.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
            )
        except S3_ERRORS as exc:
            raise self._error(exc) from exc
        return {"PartNumber": number, "ETag": response["ETag"]}

    async def _sent(self, sending: asyncio.Task[dict[str, Any]]) -> None:
        """Wait for the oldest part still travelling (parts are listed in their order)."""
        self._parts.append(await sending)

    async def _stop_sending(self) -> None:
        """Cancel the parts still travelling, and wait until they have stopped."""
        sending, self._sending = self._sending, []
        for task in sending:
            task.cancel()
        await asyncio.gather(*sending, return_exceptions=True)

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
        except S3_ERRORS as exc:
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
