"""What a goal run is given (`GoalContext`) and what it gives back (`GoalResult`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import pyarrow as pa

from connector.config import Connection
from connector.engine.segment_index import SegmentIndex
from connector.limits import MAX_REJECTS_STORED, ROW_BATCH_ROWS
from connector.sources import S3Credentials
from connector.storage import ProfileStore, RowReject, RunCounts

if TYPE_CHECKING:
    from connector.imports.files import SkippedFile


class Progress(Protocol):
    """Told about files and rows as they go; the CLI draws a bar, the daemon logs."""

    def file_started(self, goal: str, key: str, size: int) -> None: ...

    def advance(self, rows: int) -> None: ...

    def file_finished(self, goal: str, key: str, outcome: str) -> None: ...


@runtime_checkable
class SizedProgress(Progress, Protocol):
    """A progress that also shows totals: how many files a goal will import, and how many
    bytes of the current file are read. Optional: a plain `Progress` is told neither."""

    def files_planned(self, goal: str, count: int) -> None: ...

    def bytes_read(self, done: int) -> None: ...


def tell_files_planned(progress: Progress, goal: str, count: int) -> None:
    if isinstance(progress, SizedProgress):
        progress.files_planned(goal, count)


def tell_bytes_read(progress: Progress, done: int) -> None:
    if isinstance(progress, SizedProgress):
        progress.bytes_read(done)


class NoProgress:
    def file_started(self, goal: str, key: str, size: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass

    def file_finished(self, goal: str, key: str, outcome: str) -> None:
        pass


@dataclass
class GoalContext:
    connection: Connection
    store: ProfileStore
    credentials: S3Credentials
    run_id: int
    goals_dir: Path
    segments: SegmentIndex
    dry_run: bool = False
    batch_size: int = ROW_BATCH_ROWS
    max_rejects: int = MAX_REJECTS_STORED
    parse_in_child_bytes: int | None = None
    """Files at least this large are parsed in a child process (None: never; see parsing.py)."""
    columnar: bool = True
    """Import profiles through the columnar engine where the goal allows (False: row path)."""
    piece_bytes: int | None = None
    """Bytes of a file the engine parses and applies at once; None: by the imports running
    in the process (`limits.PIECE_BYTES` alone, `PIECE_BYTES_SHARED` beside another)."""
    progress: Progress = field(default_factory=NoProgress)
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set on a graceful stop: finish (or roll back) the current file, start no other."""
    keep_exported_ids: bool = True
    """Keep the ids an export writes, for a run of several goals whose distinct-profile count
    must not count a profile twice. A run of one goal needs only their number (an export
    writes each profile once), and keeping them costs memory far beyond their size (a
    million ids added about 150 MB to an export's peak RSS)."""


@dataclass
class GoalResult:
    """Counts, kept rejects (bounded), file-level errors, the change sequences written,
    and the objects under the goal's prefix that were not imported, with why."""

    counts: RunCounts = field(default_factory=RunCounts)
    rejects: list[RowReject] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    change_seqs: list[int] = field(default_factory=list)
    profiles_changed: dict[int, int] = field(default_factory=dict)
    """For a change sequence of a profile import, the profiles its file wrote, counted in
    the file's own transaction: a run of one such file needs no count in the store."""
    exported_ids: list[pa.Array] = field(default_factory=list)
    """Ids of the profiles exported (Arrow string arrays): with `change_seqs`, what the run's
    distinct-profile count is made of, so a profile imported and exported counts once.
    Empty when the context did not ask to keep them (`keep_exported_ids`)."""
    profiles_written: int = 0
    """Distinct profiles an export wrote (members and exits): each profile at most once a goal."""
    skipped: list[SkippedFile] = field(default_factory=list)

    def reject(self, reject: RowReject, limit: int) -> None:
        self.counts.rows_rejected += 1
        if len(self.rejects) < limit:
            self.rejects.append(reject)

    def merge(self, other: GoalResult, limit: int) -> None:
        self.counts.add(other.counts)
        self.rejects.extend(other.rejects[: max(0, limit - len(self.rejects))])
        self.errors.extend(other.errors)
        self.change_seqs.extend(other.change_seqs)
        self.profiles_changed.update(other.profiles_changed)
        self.exported_ids.extend(other.exported_ids)
        self.profiles_written += other.profiles_written
        self.skipped.extend(other.skipped)
