"""What both group appliers share: the goal's member settings, the counts, how a file ends.

`groups.goal.GroupApplier` (the row path) and `groups.columnar.GroupBatchApplier`
(the columnar engine) apply a group file differently but count it the same
way and end it with the same warning about members that matched no profile.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import structlog

from connector.config.goal_parts import PROFILE_ID
from connector.formats.keys import stored_key_normalizer
from connector.groups.model import ImportGroupsGoal
from connector.storage import RunCounts, StoreTransaction
from connector.storage.batches import BatchTransaction

log = structlog.get_logger("connector.import")

UNMATCHED_EXAMPLES = 5
"""Members that matched no profile, named in the file's warning (the rest are counted)."""

Tx = TypeVar("Tx", StoreTransaction, BatchTransaction)


class GroupApplierBase(Generic[Tx]):
    """The member settings of an import-groups goal and the counts of one file."""

    def __init__(
        self, tx: Tx, goal: ImportGroupsGoal, *, file: str, member_normalize: str = "trim"
    ) -> None:
        """`member_normalize`: how the store writes the member property's values
        (`match.normalize` of the goals that match on it); member cells are written alike."""
        self._tx: Tx = tx
        self._file = file
        self._type = goal.group_type
        self._member_key = stored_key_normalizer(member_normalize)
        self._member_property = goal.members.property if goal.members else PROFILE_ID
        self._replace = goal.members_mode == "replace"
        self._touched: set[str] = set()
        self._unmatched_examples: list[str] = []
        self.counts = RunCounts()

    def finish(self) -> tuple[RunCounts, int]:
        """This file's counts, and the change sequence its writes carry."""
        self.counts.groups_updated = len(self._touched) - self.counts.groups_created
        if self.counts.members_unmatched:
            log.warning(
                "members matched no profile and were not linked",
                file=self._file,
                count=self.counts.members_unmatched,
                examples=self._unmatched_examples,
            )
        # a group file counts groups, not profiles: the sequence alone, no count
        return self.counts, self._tx.change_sequence()
