"""The manifest: one JSON document per output file, written after its last part.

It lists every part in order with its size, SHA-256 and MD5, so a partner
can check the data arrived whole before loading (or decrypting) it; it sits
beside the data at `<unsplit data key>.manifest.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connector.exports._sink import DataFile
from connector.exports.model import ExportProfilesGoal
from connector.goals.context import GoalContext

if TYPE_CHECKING:
    from connector.sources.s3 import S3Client

__all__ = [
    "MANIFEST_VERSION",
    "ManifestFacts",
    "manifest_contents",
    "manifest_document",
    "put_manifest",
]

MANIFEST_VERSION = 1


@dataclass(frozen=True, slots=True)
class ManifestFacts:
    """What the run knows before it writes anything, for its manifests."""

    segment_name: str
    moment: datetime
    since: int | None
    watermark: int


def manifest_contents(goal: ExportProfilesGoal, *, exited: bool) -> str:
    """What a manifest's files hold, for a partner's loader."""
    if exited:
        return "exits"
    return "members and exits" if goal.exits_mode == "rows" else "members"


async def put_manifest(
    s3: S3Client,
    ctx: GoalContext,
    *,
    goal: ExportProfilesGoal,
    key: str,
    files: list[DataFile],
    facts: ManifestFacts,
    contents: str,
) -> int:
    """Write the run's manifest after every data object is complete; returns its size.

    One manifest per run, at `<unsplit data key>.manifest.json`, listing
    every part in order. It is never encrypted: it holds no profile data,
    and a partner needs it to check the data files (size, SHA-256, MD5)
    before decrypting them.
    """
    document = manifest_document(
        connection=ctx.connection.id,
        goal=goal,
        run_id=ctx.run_id,
        segment_name=facts.segment_name,
        exported_at=facts.moment,
        since=facts.since,
        watermark=facts.watermark,
        files=files,
        contents=contents,
    )
    data = json.dumps(document, indent=2).encode("utf-8") + b"\n"
    await s3.put_object(
        goal.destination.bucket,
        key,
        data,
        content_type="application/json",
        if_none_match=goal.destination.time_based,
    )
    return len(data)


def manifest_document(
    *,
    connection: str,
    goal: ExportProfilesGoal,
    run_id: int,
    segment_name: str,
    exported_at: datetime,
    since: int | None,
    watermark: int,
    files: list[DataFile],
    contents: str = "members",
) -> dict[str, Any]:
    """The manifest's JSON: what was exported, how, and how to check it arrived whole.

    `incremental_since` is null when the file holds every member (a full
    export, or the first incremental one); otherwise only members changed
    after that change sequence, up to `watermark`, are in it. With exits, `contents` says
    whether the files hold members, exits (the `_exited` sibling) or both (`exits: rows`).
    """
    return {
        "manifest_version": MANIFEST_VERSION,
        "connection": connection,
        "goal": goal.name,
        "run_id": run_id,
        "segment": {"id": goal.segment, "name": segment_name},
        "mode": goal.mode,
        **({"contents": contents} if goal.exits_mode != "none" else {}),
        "incremental_since": since,
        "watermark": watermark,
        "exported_at": exported_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "format": {
            "encoding": goal.format.encoding,
            "field_separator": goal.format.field_separator,
            "header": goal.format.header,
            "columns": [column.header for column in goal.columns],
            "compression": goal.compression,
            "encryption": "openpgp" if goal.encryption is not None else None,
        },
        "records": sum(file.records for file in files),
        "files": [
            {
                "bucket": goal.destination.bucket,
                "key": file.key,
                "size_bytes": file.size,
                "records": file.records,
                "sha256": file.sha256,
                "md5": file.md5,
            }
            for file in files
        ],
    }
