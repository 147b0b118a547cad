"""One data file on its way out: writer bytes → (gpg →) digest → multipart upload.

The event loop pushes the bytes the part writers made, through gpg when the
goal encrypts, into a multipart upload, and counts their size, SHA-256 and
MD5 for the manifest. In a dry run the digest is the end: the file is built
(gpg included) but nothing is uploaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from connector.exports.encryption import GpgEncryptor
from connector.exports.model import ExportProfilesGoal
from connector.exports.uploads import StoreUploadJournal
from connector.goals.context import GoalContext

if TYPE_CHECKING:
    from connector.sources.s3 import S3Client

__all__ = ["DataFile", "Part"]

Write = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DataFile:
    """A completed data file (a part): its key, and what the manifest says to check it."""

    key: str
    size: int
    records: int
    sha256: str
    md5: str


class _Digest:
    """Size, SHA-256 and MD5 of the bytes that become the object, for the manifest."""

    def __init__(self) -> None:
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self._sha256.update(data)
        self._md5.update(data)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()


class Part:
    """One data file on its way out: `close()` completes gpg and upload, `abort()` drops both."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._digest = _Digest()
        self._stack = AsyncExitStack()
        self._write: Write | None = None

    @classmethod
    async def open(
        cls, ctx: GoalContext, goal: ExportProfilesGoal, s3: S3Client | None, key: str
    ) -> Part:
        part = cls(key)
        try:
            part._write = await _open_sink(
                part._stack, ctx=ctx, goal=goal, s3=s3, key=key, digest=part._digest
            )
        except BaseException as error:
            await part.abort(error)
            raise
        return part

    async def write(self, data: bytes) -> None:
        if data and self._write is not None:
            await self._write(data)

    async def close(self, records: int) -> DataFile:
        await self._stack.aclose()
        digest = self._digest
        return DataFile(self.key, digest.size, records, digest.sha256, digest.md5)

    async def abort(self, error: BaseException) -> None:
        await self._stack.__aexit__(type(error), error, error.__traceback__)


async def _open_sink(
    stack: AsyncExitStack,
    *,
    ctx: GoalContext,
    goal: ExportProfilesGoal,
    s3: S3Client | None,
    key: str,
    digest: _Digest,
) -> Write:
    """upload ← digest ← (gpg ←) writer bytes; in a dry run the digest is the end."""
    upload_write: Write | None = None
    if s3 is not None:
        upload = await stack.enter_async_context(
            s3.open_upload(
                goal.destination.bucket,
                key,
                content_type=_content_type(goal),
                if_none_match=goal.destination.time_based,  # a fixed name is replaced
                journal=StoreUploadJournal(ctx.store, ctx.connection.id, goal.name),
            )
        )
        upload_write = upload.write

    async def record(data: bytes) -> None:
        digest.update(data)
        if upload_write is not None:
            await upload_write(data)

    if goal.encryption is None:
        return record
    encryptor = await stack.enter_async_context(
        GpgEncryptor(
            ctx.goals_dir / goal.encryption.public_key_file,
            record,
            compress=goal.compression == "none",
        )
    )
    return encryptor.write


def _content_type(goal: ExportProfilesGoal) -> str:
    if goal.encryption is not None:
        return "application/pgp-encrypted"
    if goal.compression == "gzip":
        return "application/gzip"
    return f"text/csv; charset={goal.format.encoding}"
