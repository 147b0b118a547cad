"""The import-groups goal: households, companies, accounts, with properties and members.

It shares the whole file pipeline of profile imports (scan, stream, parse,
ledger, one transaction per file); only the applier differs: the columnar
engine's `GroupBatchApplier` where it can take the file, else `GroupApplier`
(the row path, and the oracle the engine is tested against). Members are
linked through the profile id or a unique profile property; a member that
matches no profile is counted, never created.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from connector.config.goal_parts import PROFILE_ID
from connector.engine.rows import RowChanges, RowPlan, stage_rules
from connector.goals.context import GoalContext, GoalResult
from connector.groups._applier import UNMATCHED_EXAMPLES, GroupApplierBase
from connector.groups.columnar import GroupBatchApplier
from connector.groups.model import ImportGroupsGoal
from connector.imports.pipeline import run_import
from connector.storage import Group, RowReject, StoreTransaction
from connector.storage.batches import BatchTransaction


class GroupApplier(GroupApplierBase[StoreTransaction]):
    """Applies rows of one group file: group properties by the rules, then memberships."""

    def apply(self, rows: Sequence[RowChanges], rejects: list[RowReject]) -> None:
        groups = self._tx.load_groups(self._type, {row.key for row in rows})
        for row in rows:
            row.extra = [self._member_key(value) for value in row.extra]
        member_values = {value for row in rows for value in row.extra}
        profile_of = self._tx.resolve_profiles(self._member_property, member_values)
        changed: dict[str, Group] = {}
        memberships: list[tuple[str, str]] = []
        latest: dict[str, list[str] | None] = {}
        for row in rows:
            group = groups.get(row.key)
            created = group is None
            if group is None:
                group = Group(self._type, row.key)
            staged = stage_rules(row, group.properties, file=self._file)
            if isinstance(staged, RowReject):
                rejects.append(staged)
                continue
            if created:
                groups[row.key] = group
                self.counts.groups_created += 1
            if staged or created:
                group.properties.update(staged)
                changed[group.id] = group
            row_members: list[str] = []
            for value in row.extra:
                profile_id = profile_of.get(value)
                if profile_id is None:
                    self.counts.members_unmatched += 1
                    if len(self._unmatched_examples) < UNMATCHED_EXAMPLES:
                        self._unmatched_examples.append(f"line {row.line}: {value}")
                else:
                    row_members.append(profile_id)
            if self._replace:
                # a later row of the group replaces it again; None: the row lists no member
                latest[group.id] = row_members if row.extra else None
            else:
                memberships += [(group.id, profile_id) for profile_id in row_members]
            self._touched.add(group.id)
            self.counts.rows_applied += 1
        if changed:
            self._tx.save_groups(changed.values())
        if memberships:
            self._tx.add_members(self._type, memberships)
        if latest:
            self._replace_members(latest)

    def _replace_members(self, latest: dict[str, list[str] | None]) -> None:
        """`members_mode: replace`: each group's members become its latest row's list; an
        empty list removes the group (a list whose members all match no profile does not)."""
        emptied = [group_id for group_id, members in latest.items() if members is None]
        kept = {group_id: members for group_id, members in latest.items() if members is not None}
        if kept:
            _joined, left = self._tx.replace_members(self._type, kept)
            self.counts.members_removed += left
        if emptied:
            deleted, left = self._tx.delete_groups(self._type, emptied)
            self.counts.groups_deleted += deleted
            self.counts.members_removed += left


async def import_groups(ctx: GoalContext, goal: ImportGroupsGoal) -> GoalResult:
    """Apply every new or changed group file of the goal."""
    member_normalize = "trim"
    if goal.members and goal.members.property != PROFILE_ID:
        await asyncio.to_thread(ctx.store.ensure_unique_properties, [goal.members.property])
        member_normalize = await asyncio.to_thread(
            ctx.store.key_normalization, goal.members.property
        )

    def make_applier(tx: StoreTransaction, file: str) -> GroupApplier:
        return GroupApplier(tx, goal, file=file, member_normalize=member_normalize)

    def make_piece_applier(tx: BatchTransaction, plan: RowPlan, file: str) -> GroupBatchApplier:
        return GroupBatchApplier(tx, goal, plan, file=file, member_normalize=member_normalize)

    extra = goal.members.column if goal.members else None
    return await run_import(
        ctx, goal, make_applier, extra_column=extra, make_piece_applier=make_piece_applier
    )
