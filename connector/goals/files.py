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

from connector.config.connection import ImportGoal
from connector.sources import KeyMatcher, S3Client, S3Object
from connector.storage import LedgerEntry


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


def goal_fingerprint(goal: ImportGoal, objectives: list[str]) -> str:
    """A digest of everything that decides how a file's rows are applied.

    `enabled`, `source`, `after_import` and `on_change` do not change how rows
    apply, so toggling a goal, widening its file patterns, choosing what happens
    to imported files or how a changed file is taken re-imports nothing (a
    re-import would add every *sum* again). Nor does `match.normalize`: the
    stored keys are rewritten to it instead (`goals.match_keys`).
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


async def scan_files(
    s3: S3Client, goal: ImportGoal, ledger: Mapping[str, LedgerEntry], fingerprint: str
) -> list[ScannedFile]:
    """The goal's matching files, oldest first (then by key), each with its state.

    Files last modified before the goal's window (`modified_since`,
    `max_age_days`) are left out; within it, change detection is by ETag only.
    """
    matcher = KeyMatcher(goal.source.files, prefix=goal.source.prefix)
    oldest = goal.source.oldest_allowed(datetime.now(UTC))
    scanned = []
    async for obj in s3.list_objects(goal.source.bucket, goal.source.prefix):
        if oldest is not None and obj.last_modified < oldest:
            continue
        if matcher.matches(obj.key):
            state, reason = file_state(obj, ledger.get(obj.key), fingerprint)
            scanned.append(ScannedFile(obj, state, reason))
    scanned.sort(key=lambda item: (item.object.last_modified, item.key))
    return scanned
