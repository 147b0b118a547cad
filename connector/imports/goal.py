"""The import-profiles goal: files from S3 into profiles, by the goal's mapping rules."""

from __future__ import annotations

import asyncio

from connector.config.goal_parts import PROFILE_ID
from connector.goals.context import GoalContext, GoalResult
from connector.imports.apply_rows import ProfileApplier
from connector.imports.contributions import FileContributions
from connector.imports.match_keys import align_stored_keys
from connector.imports.model import ImportProfilesGoal
from connector.imports.pipeline import ApplierFactory, run_import
from connector.storage import FileKey, StoreTransaction


async def import_profiles(ctx: GoalContext, goal: ImportProfilesGoal) -> GoalResult:
    """Apply every new or changed file; the match property becomes a unique identifier."""
    if goal.match.property != PROFILE_ID:
        await asyncio.to_thread(ctx.store.ensure_unique_properties, [goal.match.property])
        if not ctx.dry_run:
            await asyncio.to_thread(
                align_stored_keys, ctx.store, goal.match.property, goal.match.normalize
            )
    return await run_import(ctx, goal, profile_appliers(ctx, goal))


def profile_appliers(ctx: GoalContext, goal: ImportProfilesGoal) -> ApplierFactory:
    """The row path's applier for each file, inside the file's transaction; under
    `on_change: replace` the file's earlier contribution is withdrawn first."""
    unique = ctx.store.unique_properties()

    def make_applier(tx: StoreTransaction, file: str) -> ProfileApplier:
        contributions = None
        if goal.on_change == "replace":
            contributions = FileContributions(tx, FileKey(ctx.connection.id, goal.name, file))
            contributions.withdraw()
        return ProfileApplier(
            tx,
            goal,
            file=file,
            objectives=ctx.connection.objectives,
            unique_properties=unique,
            contributions=contributions,
        )

    return make_applier
