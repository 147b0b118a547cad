"""What S3's answers mean: botocore's failures as `SourceError`s an analyst can act on.

Every request of `S3Client` and `MultipartUpload` catches `S3_ERRORS` and
hands the failure to its client's `S3Errors`, which names the action, the
bucket and the key, says what to check (credentials, region, endpoint,
timeouts: the retries themselves are botocore's "standard" mode, configured
by the client), and never quotes a credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import aiohttp
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
from connector.redaction import redact_text

if TYPE_CHECKING:
    from connector.sources.s3 import S3Credentials

__all__ = [
    "S3_ERRORS",
    "S3Errors",
    "error_code",
    "exists_error",
    "http_status",
    "is_precondition",
    "strip_quotes",
]

# Everything botocore/aiobotocore raise for a failed request; raw TimeoutError,
# aiohttp's errors (ClientPayloadError: the body broke off) and a plain
# ConnectionResetError can escape aiobotocore while a body is streamed.
S3_ERRORS = (ClientError, BotoCoreError, TimeoutError, aiohttp.ClientError, ConnectionError)

_CREDENTIALS_HINT = "check the connection's credentials"

_WRONG_REGION_CODES = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)


def strip_quotes(etag: str) -> str:
    """An ETag as S3 quotes it in answers, without the quotes."""
    return etag.strip('"')


def _safe_url(url: str) -> str:
    """The endpoint without user info or query, which may carry secrets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True, slots=True)
class S3Errors:
    """The failures of one client, told with its endpoint, attempts and timeouts."""

    credentials: S3Credentials
    attempts: int
    connect_timeout: float
    read_timeout: float

    @property
    def _endpoint(self) -> str:
        if self.credentials.endpoint_url:
            return _safe_url(self.credentials.endpoint_url)
        return f"for region {self.credentials.region}"

    def error(
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
            if is_precondition(exc):
                return ObjectChangedError(
                    "the object changed after it was listed (its ETag no longer matches); "
                    "it is left for the next run",
                    bucket=bucket,
                    key=key,
                )
            code, status = error_code(exc), http_status(exc)
            reason = self._client_error_reason(exc, code, status, has_key=key is not None)
        else:
            reason = self._transport_error_reason(exc, retried=retried)
        return SourceError(f"{action} failed: {self._scrub(reason)}", bucket=bucket, key=key)

    def _scrub(self, text: str) -> str:
        """`text` without this client's credentials.

        Some endpoints echo the access key id (or worse) in their error
        messages, and this message goes to logs, the run history and mails.
        """
        creds = self.credentials
        secrets = [creds.secret_access_key, creds.session_token, creds.access_key_id]
        if creds.endpoint_url:
            # botocore's connection errors quote the request URL, user info and all
            parts = urlsplit(creds.endpoint_url)
            secrets += [parts.password, parts.username, parts.query]
        return redact_text(text, also=secrets)

    def _client_error_reason(
        self, exc: ClientError, code: str, status: int | None, *, has_key: bool
    ) -> str:
        region = self.credentials.region
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
        tries = f", {self.attempts} attempts" if retried and self.attempts > 1 else ""
        if isinstance(exc, SSLError):
            return f"TLS with the S3 endpoint {endpoint} failed: {cause}"
        if isinstance(exc, ConnectTimeoutError):
            return (
                f"could not reach the S3 endpoint {endpoint}: no connection within "
                f"{self.connect_timeout:g} s{tries} (storage.connect_timeout_seconds; check "
                "endpoint_url and the network)"
            )
        if isinstance(exc, BotoConnectionError):
            return f"could not reach the S3 endpoint {endpoint}{tries}: {cause}"
        if isinstance(exc, ReadTimeoutError | TimeoutError):
            return (
                f"the S3 endpoint {endpoint} did not answer within {self.read_timeout:g} s"
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


def is_precondition(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and (
        http_status(exc) == 412 or error_code(exc) == "PreconditionFailed"
    )


def exists_error(bucket: str, key: str) -> ObjectExistsError:
    return ObjectExistsError(
        "an object with this name already exists; it was not overwritten (the export writes "
        "only new names, If-None-Match)",
        bucket=bucket,
        key=key,
    )


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None
