"""The first bytes of a sample file, local or on S3, for `connector draft`.

Only the head of a file is read (a few MiB), never the whole of it: a draft
needs the dialect and enough rows to see each column's type. Gzip is
recognised by its magic bytes and inflated up to the same bound.
"""

from __future__ import annotations

import re
import zlib
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

from connector.errors import ConnectorError
from connector.formats.reader import GZIP_MAGIC
from connector.sources import S3Credentials, s3_client

SAMPLE_BYTES = 4 << 20
"""Bytes read from a sample by default (after inflating, at most this many too)."""

_S3_URL = re.compile(r"s3://(?P<bucket>[^/]+)/(?P<key>.+)")


@dataclass(frozen=True, slots=True)
class Sample:
    """The head of a file: `data` is inflated; `truncated` when the file goes on after it."""

    name: str
    """The file as the user named it (a path or an s3:// URL)."""
    data: bytes
    read: int
    """Bytes read from the file itself (compressed, for a gzip file)."""
    size: int | None
    truncated: bool
    compressed: bool = False
    bucket: str | None = None
    key: str | None = None


def parse_s3_url(text: str) -> tuple[str, str] | None:
    """`(bucket, key)` of an `s3://bucket/key` URL, None for anything else (a local path)."""
    if not text.startswith("s3://"):
        return None
    match = _S3_URL.fullmatch(text)
    if match is None:
        raise ConnectorError(f"{text!r} is not an s3://BUCKET/KEY URL")
    return match["bucket"], match["key"]


def read_local_sample(path: Path, limit: int = SAMPLE_BYTES) -> Sample:
    """The first `limit` bytes of a local file."""
    try:
        with path.open("rb") as file:
            head = file.read(limit + 1)
            size = path.stat().st_size
    except FileNotFoundError:
        raise ConnectorError(f"sample file {path} does not exist") from None
    except OSError as error:
        raise ConnectorError(f"sample file {path} cannot be read: {error.strerror}") from None
    return _sample(str(path), head, limit, size)


async def read_s3_sample(
    credentials: S3Credentials, bucket: str, key: str, limit: int = SAMPLE_BYTES
) -> Sample:
    """The first `limit` bytes of an object; the download stops there (the body is closed)."""
    parts: list[bytes] = []
    read = 0
    async with s3_client(credentials) as s3:
        chunks = s3.iter_object(bucket, key, chunk_size=min(limit + 1, 1 << 20))
        async with aclosing(chunks):
            async for chunk in chunks:
                parts.append(chunk)
                read += len(chunk)
                if read > limit:
                    break
    sample = _sample(f"s3://{bucket}/{key}", b"".join(parts), limit, None)
    return Sample(
        sample.name,
        sample.data,
        sample.read,
        sample.size,
        sample.truncated,
        sample.compressed,
        bucket,
        key,
    )


def _sample(name: str, head: bytes, limit: int, size: int | None) -> Sample:
    truncated = len(head) > limit
    head = head[:limit]
    if not head:
        raise ConnectorError(f"sample {name} is empty")
    if not head.startswith(GZIP_MAGIC):
        return Sample(name, head, len(head), size, truncated)
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(head, limit)
    except zlib.error as error:
        raise ConnectorError(f"sample {name} is not valid gzip: {error}") from None
    cut = truncated or not inflater.eof or bool(inflater.unconsumed_tail)
    return Sample(name, data, len(head), size, cut, compressed=True)
