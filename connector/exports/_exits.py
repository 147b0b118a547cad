"""Exits (`exits: rows | file`): who left the segment since the goal's last export.

An incremental run with exits reads every profile in id order beside the
members of the goal's last export (also in id order, a page at a time) and
compares each batch with them: a member is written as `realized` when it
entered or changed since, a former member that left (or withdrew consent)
as `exited`, a former member no longer in the store as its id alone. The
members found now are staged in the store and replace the old ones in the
transaction that moves the watermark, so a killed run leaves both as they
were and its re-run finds the same exits.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from connector.exports.model import ExportProfilesGoal
from connector.goals.context import GoalContext
from connector.limits import EXPORT_MEMBER_PAGE

__all__ = ["MEMBER_PAGE", "BatchExits", "Exits", "PreviousMembers", "exits_of"]

MEMBER_PAGE = EXPORT_MEMBER_PAGE


class PreviousMembers:
    """The members of the goal's last export, read in pages in id order beside the profiles.

    Profiles come in id order too, so each batch takes the previous members up
    to its last id: those not in the batch were deleted since. Memory holds one
    page, whatever the segment size.
    """

    def __init__(self, fetch: Callable[[str], list[str]], page: int) -> None:
        self._fetch = fetch
        self._page = page
        self._buffer: list[str] = []
        self._after = ""
        self._exhausted = False

    def through(self, last: str | None) -> list[str]:
        """The previous members up to and including `last` (every one left when None)."""
        taken: list[str] = []
        while True:
            if not self._buffer:
                if self._exhausted:
                    return taken
                self._buffer = self._fetch(self._after)
                self._exhausted = len(self._buffer) < self._page
                if not self._buffer:
                    return taken
                self._after = self._buffer[-1]
            cut = len(self._buffer) if last is None else bisect.bisect_right(self._buffer, last)
            taken += self._buffer[:cut]
            self._buffer = self._buffer[cut:]
            if self._buffer:
                return taken


@dataclass(frozen=True, slots=True)
class BatchExits:
    """One batch compared with the last export: which of its rows are written (and their ids),
    which of the written ones exited, and the previous members (up to its last id) no longer
    in the store."""

    written: pa.Array
    written_ids: pa.Array
    exited: pa.Array
    deleted: pa.Array


@dataclass(frozen=True, slots=True)
class Exits:
    """An incremental export that reports exits: the last export's members, where the members
    found now are staged (None in a dry run), and whether exits go to their own file."""

    previous: PreviousMembers
    stage: Callable[[list[str]], None] | None
    since: int | None
    to_file: bool

    def compare(
        self, table: pa.Table, member: pa.Array, valued: pa.Array, until: int | None
    ) -> BatchExits:
        """Compare a batch of profiles (id, change sequence, ...) with the last export's
        members and stage the members found now.

        `member` masks the segment's consented members, `valued` those with a value
        in a property column. A profile changed after `until` (the run's watermark)
        keeps its former membership and is the next run's, so no exit is lost or
        written twice.
        """
        ids = table.column(0).combine_chunks()
        seqs = table.column(1)
        last = ids[-1].as_py() if len(ids) else ""
        previous = pa.array(self.previous.through(last), pa.string())
        was_member = pc.is_in(ids, value_set=previous)
        deleted = previous.filter(pc.invert(pc.is_in(previous, value_set=ids)))
        # changes after the watermark are the next run's: such a profile keeps its old membership
        fresh = pc.less_equal(seqs, until)
        news = pc.invert(was_member)
        if self.since is not None:
            news = pc.or_(news, pc.greater(seqs, self.since))
        realized = pc.and_(pc.and_(member, fresh), pc.and_(news, valued))
        left = pc.and_(pc.and_(was_member, fresh), pc.invert(member))
        if self.stage is not None:
            keep = pc.or_(pc.and_(member, fresh), pc.and_(pc.invert(fresh), was_member))
            self.stage(ids.filter(keep).to_pylist())
        written = pc.or_(realized, left)
        return BatchExits(written, ids.filter(written), left.filter(written), deleted)

    def rest(self) -> pa.Array:
        """After the last batch: the previous members beyond the last profile, deleted since."""
        return pa.array(self.previous.through(None), pa.string())


def exits_of(ctx: GoalContext, goal: ExportProfilesGoal, since: int | None) -> Exits | None:
    """What an export with exits reads and stages; None when the goal reports no exits."""
    mode = goal.exits_mode
    if mode == "none":
        return None
    store, connection = ctx.store, ctx.connection.id

    def fetch(after: str) -> list[str]:
        return store.export_members(connection, goal.name, after=after, limit=MEMBER_PAGE)

    def stage(profile_ids: list[str]) -> None:
        if profile_ids:
            store.stage_export_members(connection, goal.name, profile_ids)

    return Exits(
        PreviousMembers(fetch, MEMBER_PAGE),
        None if ctx.dry_run else stage,
        since,
        to_file=mode == "file",
    )
