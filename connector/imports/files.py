"""Which files an import goal takes, and whether each is new, changed or already imported.

A file is imported again only when its content (ETag) or the goal's
configuration changed; never because of its modification time, whose
one-second resolution loses files written in the same second.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from connector.config.connection import ImportGoal
from connector.sources import KeyMatcher, S3Object
from connector.storage import LedgerEntry

if TYPE_CHECKING:
    from connector.sources.s3 import S3Client

DONE_SUFFIX = ".done"


class FileState(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    IMPORTED = "imported"


@dataclass(frozen=True, slots=True)
class ScannedFile:
    object: S3Object
    state: FileState
    reason: str

    @property
    def key(self) -> str:
        return self.object.key


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """An object under the goal's prefix that a run did not import, and why (`run --verbose`)."""

    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


def goal_fingerprint(goal: ImportGoal, objectives: list[str]) -> str:
    """A digest of everything that decides how a file's rows are applied.

    `enabled`, `source`, `after_import` and `on_change` do not change how rows
    apply, so toggling a goal, widening its file patterns, choosing what happens
    to imported files or how a changed file is taken re-imports nothing (a
    re-import would add every *sum* again). Nor does `match.normalize`: the
    stored keys are rewritten to it instead (`imports.match_keys`).
    An unset `delete_column` is left out, so goals written before it existed
    keep their fingerprint across the upgrade.
    """
    settings = goal.model_dump(
        mode="json", exclude={"enabled", "source", "after_import", "on_change"}
    )
    if settings.get("delete_column", "") is None:
        del settings["delete_column"]
    settings.get("match", {}).pop("normalize", None)  # stored keys are rewritten instead
    if settings.get("members_mode") == "add":
        del settings["members_mode"]  # the default: goals written before it keep their print
    payload = json.dumps({"goal": settings, "objectives": sorted(objectives)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def file_state(obj: S3Object, entry: LedgerEntry | None, fingerprint: str) -> tuple[FileState, str]:
    if entry is None:
        return FileState.NEW, "never imported"
    if entry.etag != obj.etag:
        return FileState.CHANGED, "content changed since it was imported"
    if entry.config_fingerprint != fingerprint:
        return FileState.CHANGED, "the goal's configuration changed since it was imported"
    return FileState.IMPORTED, f"imported {entry.imported_at:%Y-%m-%d %H:%M:%S} UTC"


def unchanged_reason(scanned: ScannedFile) -> str:
    """Why a run skips a file it imported before (`run --verbose`)."""
    return f"already imported, unchanged (same ETag); {scanned.reason}"


def _window(goal: ImportGoal) -> str:
    source = goal.source
    if source.max_age_days is not None:
        return f"max_age_days {source.max_age_days}"
    since = source.modified_since
    return f"modified_since {since.isoformat() if since is not None else '-'}"


def _not_matching(goal: ImportGoal, key: str) -> str:
    if key.endswith(DONE_SUFFIX):
        return "marked as imported by an earlier run (after_import)"
    if key.endswith("/"):
        return "a folder marker"
    return f"does not match the goal's files {goal.source.files}"


async def scan_files(
    s3: S3Client,
    goal: ImportGoal,
    ledger: Mapping[str, LedgerEntry],
    fingerprint: str,
    passed_over: list[SkippedFile] | None = None,
) -> list[ScannedFile]:
    """The goal's matching files, oldest first (then by key), each with its state.

    Files last modified before the goal's window (`modified_since`,
    `max_age_days`) are left out; within it, change detection is by ETag only.
    The objects left out, and why, go to `passed_over` when one is given.
    """
    matcher = KeyMatcher(goal.source.files, prefix=goal.source.prefix)
    oldest = goal.source.oldest_allowed(datetime.now(UTC))
    scanned = []
    async for obj in s3.list_objects(goal.source.bucket, goal.source.prefix):
        if oldest is not None and obj.last_modified < oldest:
            if passed_over is not None:
                passed_over.append(
                    SkippedFile(
                        obj.key,
                        f"last modified {obj.last_modified:%Y-%m-%d %H:%M:%S} UTC, "
                        f"before the goal's window ({_window(goal)})",
                    )
                )
            continue
        if not matcher.matches(obj.key):
            if passed_over is not None:
                passed_over.append(SkippedFile(obj.key, _not_matching(goal, obj.key)))
            continue
        state, reason = file_state(obj, ledger.get(obj.key), fingerprint)
        scanned.append(ScannedFile(obj, state, reason))
    scanned.sort(key=lambda item: (item.object.last_modified, item.key))
    return scanned
