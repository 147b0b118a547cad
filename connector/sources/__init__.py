"""Where profile files come from and go to: S3 access and key matching."""

from connector.sources.matching import KeyMatcher
from connector.sources.s3 import (
    MultipartUpload,
    S3Client,
    S3Credentials,
    S3Object,
)

__all__ = ["KeyMatcher", "MultipartUpload", "S3Client", "S3Credentials", "S3Object"]
