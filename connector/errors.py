"""The exceptions a caller of connector can catch.

    ConnectorError                 anything the operator or analyst can fix
     +-- ConfigError               a goal, segment or settings file is wrong (file, line)
     +-- SourceError               S3 could not be listed, read or written (bucket, key)
     |    +-- ObjectChangedError   the object changed between listing and reading
     +-- FormatError               a data file cannot be parsed (file, line, column)
     +-- StoreError                the profile store failed or is busy
     |    +-- RunInProgressError   another run of the same connection holds the lock
     +-- RunStopped                a graceful stop rolled the current file back
     +-- NotFoundError             no such connection, goal, run, profile or group (a KeyError)
          +-- StoreNotFoundError   a read command found no store at the configured place

Every message is written for the person who must fix the YAML or the file:
it names the place and says what was expected, never a secret's value.
Rejected rows are not exceptions: they are data in a run's report.
"""

from __future__ import annotations

from pathlib import Path

from connector.redaction import redact_text


class ConnectorError(Exception):
    """Base class of every error connector raises on purpose.

    Its text passes through `connector.redaction`, so a secret echoed by S3 or a
    driver never reaches the CLI's error line, a log, the history or a mail.
    """

    def __str__(self) -> str:
        return redact_text(super().__str__())


class ConfigError(ConnectorError):
    """A configuration file is invalid; `problems` holds one entry per mistake."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


class ConfigProblem:
    """One mistake in one file, printed as `FILE:LINE: message`."""

    __slots__ = ("file", "line", "message")

    def __init__(self, file: Path | str, line: int | None, message: str) -> None:
        self.file = str(file)
        self.line = line
        self.message = message

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"ConfigProblem({self!s})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConfigProblem) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class SourceError(ConnectorError):
    """S3 (or an S3-compatible store) refused or failed a request."""

    def __init__(self, message: str, *, bucket: str | None = None, key: str | None = None) -> None:
        self.bucket = bucket
        self.key = key
        where = f"s3://{bucket}/{key}" if bucket and key else (f"s3://{bucket}" if bucket else "")
        super().__init__(f"{where}: {message}" if where else message)


class ObjectChangedError(SourceError):
    """The object's ETag no longer matches the listed one; it is left for the next run."""


class ObjectExistsError(SourceError):
    """A conditional write found an object under its key: nothing was overwritten."""


class FormatError(ConnectorError):
    """A data file cannot be read at all (as opposed to one rejected row)."""

    def __init__(
        self, message: str, *, file: str, line: int | None = None, column: str | None = None
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.reason = message
        where = file if line is None else f"{file}:{line}"
        if column:
            where += f" column {column!r}"
        super().__init__(f"{where}: {message}")


class StoreError(ConnectorError):
    """The profile store could not complete an operation; nothing was half-written."""


class StoreUnavailableError(StoreError):
    """The store's server cannot be reached (down, restarting, network): a later attempt may
    succeed, so the daemon retries with backoff instead of waiting for the next fire."""


class RunInProgressError(StoreError):
    """Another run of this connection holds the lock."""


class RunStopped(ConnectorError):  # noqa: N818 -- a requested stop, not an error
    """A stop was requested; the file in progress was rolled back and is imported next run."""


class NotFoundError(ConnectorError, KeyError):
    """What was asked for by name does not exist; the message names what there is.

    A KeyError too, for callers that look things up like a mapping.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StoreNotFoundError(NotFoundError):
    """No profile store where the settings point: read commands never create one."""
