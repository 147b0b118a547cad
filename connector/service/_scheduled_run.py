"""One scheduled fire of a connection: open the store, claim the fire, run, mail.

The daemon calls this once a fire, and again (with backoff) while the
store's server cannot be reached; the store is closed whatever happens.
Several daemons on one store claim each fire by its scheduled time first:
the ones that lose the claim skip it.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime

import structlog

from connector.config import Workspace
from connector.goals.context import Progress
from connector.goals.runner import RunOptions, run_connection
from connector.service.mail import notify_run
from connector.service.metrics import DaemonMetrics
from connector.settings import Settings
from connector.storage import ProfileStore, Trigger, open_store

__all__ = ["run_fire"]

log = structlog.get_logger("connector.daemon")


async def run_fire(
    settings: Settings,
    workspace: Workspace,
    connection_id: str,
    fire_time: datetime | None,
    *,
    claimant: str,
    metrics: DaemonMetrics,
    stopping: threading.Event,
) -> None:
    """Open the store, claim the fire, run, mail; the store is closed whatever happens."""
    connection = workspace.connection(connection_id)
    store: ProfileStore | None = None
    try:
        store = await asyncio.to_thread(open_store, settings.database)
        if fire_time is not None and not await asyncio.to_thread(
            store.claim_fire, connection_id, fire_time, claimant
        ):
            log.info(
                "scheduled run skipped",
                connection=connection_id,
                reason="another daemon claimed this fire",
                fire_time=fire_time.isoformat(),
            )
            metrics.fire_skipped(connection_id, "claimed_elsewhere")
            return
        options = RunOptions(
            trigger=Trigger.SCHEDULE,
            batch_size=settings.batch_size,
            max_rejects=settings.max_rejects_stored,
            parse_in_child_bytes=settings.parse_in_child_bytes,
            columnar=settings.columnar_engine,
            progress=_log_progress(),
            stopping=stopping,
        )
        outcome = await run_connection(store, workspace, connection_id, options)
        metrics.observe_run(outcome)
        await notify_run(
            settings,
            connection,
            outcome.record,
            outcome.result.errors,
            outcome.result.rejects,
        )
    finally:
        if store is not None:
            await asyncio.to_thread(store.close)


def _log_progress() -> Progress:
    # imported here: connector.cli imports the daemon, hence this module (`connector daemon`)
    from connector.cli.progress import LogProgress  # noqa: PLC0415

    return LogProgress()
