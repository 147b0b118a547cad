"""The plain records the store hands out and takes in; no SQL, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


@dataclass(slots=True)
class Profile:
    """A profile: an id and multi-valued properties (values kept as canonical text).

    `change_seq` grows on every write, so an export can ask what changed since
    its last watermark without trusting clocks.
    """

    id: str
    properties: dict[str, list[str]] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    change_seq: int = 0

    def first(self, name: str) -> str | None:
        values = self.properties.get(name)
        return values[0] if values else None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "properties": self.properties,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "change_seq": self.change_seq,
        }


@dataclass(slots=True)
class Group:
    """A household, company or account: properties by the same rules, and member profiles."""

    type: str
    id: str
    properties: dict[str, list[str]] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "id": self.id,
            "properties": self.properties,
            "members": self.members,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A file a goal has applied: the version (ETag) and the goal configuration used."""

    connection: str
    goal: str
    key: str
    etag: str
    config_fingerprint: str
    rows: int
    imported_at: datetime
    run_id: int | None = None


@dataclass(frozen=True, slots=True)
class FileKey:
    """A file as one goal of one connection sees it: the ledger's key."""

    connection: str
    goal: str
    key: str


@dataclass(frozen=True, slots=True)
class Contribution:
    """What the latest applied version of a file put into one property of one profile.

    Kept for goals with `on_change: replace`, so a corrected version can take
    its earlier contribution back first. `kind` "sum": `value` is the total the
    file added. `kind` "add": `value` is one value the file listed; `added`
    when the profile did not hold it before the file.
    """

    profile_id: str
    property: str
    kind: str
    value: str
    added: bool = True


@dataclass(frozen=True, slots=True)
class OpenUpload:
    """A multipart upload an export started and has not yet completed or aborted."""

    upload_id: str
    connection: str
    goal: str
    bucket: str
    key: str
    started_at: datetime


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    PARTIAL = "partial"
    FAILURE = "failure"
    INTERRUPTED = "interrupted"


class Trigger(StrEnum):
    MANUAL = "manual"
    SCHEDULE = "schedule"


@dataclass(frozen=True, slots=True)
class RowReject:
    """A row that was not applied, and why; shown in the history with its place."""

    file: str
    line: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        column = f" column {self.column!r}" if self.column else ""
        return f"{self.file}:{self.line}{column}: {self.reason}"


@dataclass(slots=True)
class RunCounts:
    """What a run did; added up over its goals and files."""

    files: int = 0
    files_skipped: int = 0
    files_reapplied: int = 0
    """Changed files applied again on top of their earlier version (`on_change: reapply`)."""
    files_replaced: int = 0
    """Changed files that replaced their earlier version (`on_change: replace`)."""
    rows_read: int = 0
    rows_applied: int = 0
    rows_rejected: int = 0
    rows_skipped: int = 0
    profiles_created: int = 0
    profiles_updated: int = 0
    profiles_deleted: int = 0
    profiles_exported: int = 0
    groups_created: int = 0
    groups_updated: int = 0
    members_unmatched: int = 0
    members_removed: int = 0
    """Memberships ended by `members_mode: replace`."""
    groups_deleted: int = 0
    """Groups an empty member list removed (`members_mode: replace`)."""
    uploads_aborted: int = 0
    """Multipart uploads an earlier, killed export left behind, aborted by this run."""
    unique_profiles: int = 0
    bytes_transferred: int = 0

    def add(self, other: RunCounts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> RunCounts:
        return cls(**{name: data.get(name, 0) for name in cls.__slots__})


@dataclass(slots=True)
class RunRecord:
    """One run of a connection (or one of its goals), as the history shows it."""

    id: int
    connection: str
    goal: str | None
    trigger: Trigger
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None = None
    dry_run: bool = False
    counts: RunCounts = field(default_factory=RunCounts)
    error: str | None = None
    rejects_stored: int = 0
    ran_by: str | None = None
    """`host:pid` of the process that ran it (several daemons may share one store)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "connection": self.connection,
            "goal": self.goal,
            "trigger": str(self.trigger),
            "status": str(self.status),
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "dry_run": self.dry_run,
            "counts": self.counts.as_dict(),
            "error": self.error,
            "ran_by": self.ran_by,
        }


@dataclass(frozen=True, slots=True)
class ExportWatermark:
    """How far an incremental export has got, in the store's change sequence."""

    connection: str
    goal: str
    change_seq: int
    exported_at: datetime


def unique_identifiers(profile: Profile, unique: frozenset[str]) -> list[tuple[str, str]]:
    """The (property, value) pairs of `profile` that the unique-identifier index holds."""
    properties = profile.properties
    pairs = [
        (name, value) for name in sorted(unique) if name in properties for value in properties[name]
    ]
    if len(pairs) < 2:
        return pairs
    return list(dict.fromkeys(pairs))  # a value repeated in one profile is one identifier
