"""Where profile files come from and go to: S3 access and key matching.

The S3 library (aioboto3, botocore, aiohttp: about 0.4 s of a command's
start) loads when the first client is made (`s3_client`), not when this
package is imported: `connector validate`, `history`, `status` and `--help`
never reach S3 and start without it. `S3Client` and `MultipartUpload` are
still importable from here; naming them loads the library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connector.sources.matching import KeyMatcher
from connector.sources.s3_types import S3Credentials, S3Object

if TYPE_CHECKING:
    from connector.sources.s3 import MultipartUpload, S3Client

__all__ = ["KeyMatcher", "MultipartUpload", "S3Client", "S3Credentials", "S3Object", "s3_client"]

_LOADED_ON_USE = frozenset({"MultipartUpload", "S3Client"})


def s3_client(credentials: S3Credentials) -> S3Client:
    """A new, unopened client for `credentials` (`async with s3_client(creds) as s3:`)."""
    from connector.sources.s3 import S3Client  # noqa: PLC0415 -- the library loads on first use

    return S3Client(credentials)


def __getattr__(name: str) -> Any:
    if name in _LOADED_ON_USE:
        from connector.sources import s3  # noqa: PLC0415 -- the library loads on first use

        return getattr(s3, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
