"""Naming a run: the second a timestamped export is named after is never reused.

Timestamped names have one-second resolution, so a run waits for a second
later than the previous export's, and skips a second whose data file or
manifest already exists in S3 (a clock set back, another writer). A fixed
name is replaced by every run and needs neither.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import structlog

from connector.errors import SourceError
from connector.exports.keys import RunKeys, run_keys
from connector.exports.model import ExportProfilesGoal
from connector.goals.context import GoalContext
from connector.sources import s3_client
from connector.storage import ExportWatermark

__all__ = ["NAME_ATTEMPTS", "name_run"]

log = structlog.get_logger("connector.export")

_MAX_NAME_WAIT = timedelta(seconds=1)

NAME_ATTEMPTS = 5
"""Seconds tried for a timestamped name whose data file or manifest already exists."""


async def name_run(
    ctx: GoalContext,
    goal: ExportProfilesGoal,
    previous: ExportWatermark | None,
    segment_name: str,
) -> tuple[RunKeys, datetime]:
    """The run's keys and the second that names it (a free one, for timestamped names)."""
    if not goal.destination.time_based:
        moment = datetime.now(UTC).replace(microsecond=0)
        return run_keys(goal, segment_name, moment), moment
    moment = await _distinct_second(previous)
    keys = run_keys(goal, segment_name, moment)
    if ctx.dry_run:
        return keys, moment
    return await _free_keys(ctx, goal, segment_name, moment, keys)


async def _free_keys(
    ctx: GoalContext, goal: ExportProfilesGoal, segment_name: str, moment: datetime, keys: RunKeys
) -> tuple[RunKeys, datetime]:
    """Timestamped names are never reused: when an object already has this run's name (a
    clock set back, another writer), the next second names the run instead. The writes
    themselves are conditional too (If-None-Match), so a name taken meanwhile fails the run
    rather than overwriting anything."""
    bucket = goal.destination.bucket
    async with s3_client(ctx.credentials) as s3:
        for _attempt in range(NAME_ATTEMPTS):
            both = [keys, keys.exited()] if goal.exits_mode == "file" else [keys]
            names = [
                name for k in both for name in [k.part(1), *([k.manifest] if goal.manifest else [])]
            ]
            taken = [name for name in names if await s3.object_exists(bucket, name)]
            if not taken:
                return keys, moment
            log.warning(
                "an object already has this export's name; the next second names it instead",
                bucket=bucket,
                taken=taken,
            )
            moment += timedelta(seconds=1)
            keys = run_keys(goal, segment_name, moment)
    raise SourceError(
        f"{NAME_ATTEMPTS} timestamped names in a row are taken by existing objects "
        "(is the clock set back?); nothing was written",
        bucket=bucket,
        key=keys.part(1),
    )


async def _distinct_second(previous: ExportWatermark | None) -> datetime:
    """Now, to the second, but later than the previous export's second.

    Timestamped names have one-second resolution: a run started within the
    same second as the last export would replace that file, and a partner
    who had not fetched it yet would lose it. Waiting at most a second keeps
    every name distinct (a clock set far back is not waited for).
    """
    now = datetime.now(UTC)
    if previous is not None:
        earliest = previous.exported_at.astimezone(UTC).replace(microsecond=0) + timedelta(
            seconds=1
        )
        wait = earliest - now
        if timedelta(0) < wait <= _MAX_NAME_WAIT:
            await asyncio.sleep(wait.total_seconds())
            now = datetime.now(UTC)
    return now.replace(microsecond=0)
