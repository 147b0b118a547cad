"""Moving a whole store to another (`connector store copy`): SQLite to PostgreSQL and back.

Profiles, history and export state keep their ids, time stamps and change
numbers, so incremental exports and the ledger carry on in the new store
as if nothing moved. What `ProfileStore` cannot express (listing every
group, restoring a run with its id) each backend offers through a
`StoreArchive`; everything else goes through the store interface.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Iterator
from typing import Any, LiteralString, Protocol, TypeVar

from connector.errors import StoreError
from connector.limits import COPY_MEMBER_PAGE
from connector.storage.base import ProfileStore
from connector.storage.export_state import ExportState
from connector.storage.records import (
    Contribution,
    ExportWatermark,
    FileKey,
    Group,
    LedgerEntry,
    Profile,
    RowReject,
    RunRecord,
)

COUNTED = (
    "profiles",
    "groups",
    "group_members",
    "unique_properties",
    "identifiers",
    "ledger",
    "contributions",
    "runs",
    "run_rejects",
    "export_watermarks",
    "export_members",
)
CLEARED = (
    "run_rejects",
    "runs",
    "run_locks",
    "identifiers",
    "unique_properties",
    "group_members",
    "groups",
    "profiles",
    "ledger",
    "contributions",
    "export_watermarks",
    "export_members",
    "export_members_next",
)
"""The tables `StoreArchive.clear` empties, in an order their foreign keys allow."""
_MEMBER_PAGE = COPY_MEMBER_PAGE
_ALL = 2**62
T = TypeVar("T")


class StoreArchive(Protocol):
    """A store's whole contents, read and restored as they are."""

    def counts(self) -> dict[str, int]:
        """Rows of each kind in `COUNTED`."""

    def clear(self) -> None:
        """Delete every profile, group, run, ledger entry and watermark."""

    def rows(self, query: LiteralString) -> list[tuple[Any, ...]]:
        """The rows of a query without parameters that reads the same in both dialects."""

    def contributions(self) -> Iterator[tuple[FileKey, list[Contribution]]]:
        """What each file contributed (`on_change: replace`), file by file."""

    def restore_profiles(self, profiles: Iterable[Profile]) -> None:
        """Insert profiles keeping their time stamps and change numbers."""

    def restore_groups(self, groups: Iterable[Group]) -> None:
        """Insert groups with their members, keeping their time stamps."""

    def restore_runs(self, runs: Iterable[tuple[RunRecord, list[RowReject]]]) -> None:
        """Insert runs with their ids, and their rejected rows."""

    def restore_change_seq(self, change_seq: int) -> None:
        """Continue the change sequence after `change_seq`."""


def archive_of(store: ProfileStore) -> StoreArchive:
    # imported here: each backend's archive imports its store module
    from connector.storage.sqlite.store import SQLiteStore  # noqa: PLC0415

    if isinstance(store, SQLiteStore):
        from connector.storage.sqlite._archive import SQLiteArchive  # noqa: PLC0415

        return SQLiteArchive(store)
    from connector.storage.postgres.store import PostgresStore  # noqa: PLC0415

    if isinstance(store, PostgresStore):
        from connector.storage.postgres._archive import PostgresArchive  # noqa: PLC0415

        return PostgresArchive(store)
    raise StoreError(f"a {type(store).__name__} cannot be copied")


def copy_store(
    source: ProfileStore, target: ProfileStore, *, force: bool = False
) -> dict[str, int]:
    """Copy everything from `source` into `target`; returns the verified counts.

    A target that holds anything is refused unless `force`, which empties it first.
    """
    src, dst = archive_of(source), archive_of(target)
    present = {kind: count for kind, count in dst.counts().items() if count}
    if present and not force:
        raise StoreError(
            f"the target store is not empty ({_listing(present)}); --force replaces it"
        )
    if present:
        dst.clear()
    # groups first: joining a group stamps a profile, and the profiles then get their own stamps
    dst.restore_groups(_groups(source, src))
    dst.restore_profiles(source.iter_profiles())
    target.ensure_unique_properties(source.unique_properties())
    with target.transaction() as tx:
        for name in sorted(source.unique_properties()):
            tx.set_key_normalization(name, source.key_normalization(name))
    dst.restore_runs(
        (run, source.run_rejects(run.id, limit=_ALL))
        for run in reversed(source.list_runs(limit=_ALL))
    )
    with target.transaction() as tx:
        for entry in _ledger_entries(source, src):
            tx.record_file(entry)
        for file, contributions in src.contributions():
            tx.replace_file_contributions(file, contributions)
    for mark in _watermarks(source, src):
        _copy_members(source, target, mark.connection, mark.goal)
        target.set_export_watermark(
            mark.connection, mark.goal, mark.change_seq, mark.exported_at, members=True
        )
    dst.restore_change_seq(source.change_seq())
    expected, copied = src.counts(), dst.counts()
    if copied != expected:
        differ = {
            kind: f"{copied[kind]} of {expected[kind]}"
            for kind in COUNTED
            if copied[kind] != expected[kind]
        }
        raise StoreError(f"the copy does not match its source: {_listing(differ)}")
    return copied


def _groups(store: ProfileStore, archive: StoreArchive) -> Iterator[Group]:
    """Every group with its members, in (type, id) order."""
    for group_type, group_id in archive.rows("SELECT type, id FROM groups ORDER BY type, id"):
        group = store.get_group(group_type, group_id)
        if group is not None:
            yield group


def _ledger_entries(store: ProfileStore, archive: StoreArchive) -> Iterator[LedgerEntry]:
    """Every ledger entry, goal by goal, in key order."""
    for connection, goal in archive.rows(
        "SELECT DISTINCT connection, goal FROM ledger ORDER BY connection, goal"
    ):
        entries = store.ledger(connection, goal)
        yield from (entries[key] for key in sorted(entries))


def _watermarks(store: ProfileStore, archive: StoreArchive) -> list[ExportWatermark]:
    """Every goal's export watermark, in (connection, goal) order."""
    marks = []
    for connection, goal in archive.rows(
        "SELECT connection, goal FROM export_watermarks ORDER BY connection, goal"
    ):
        mark = store.export_watermark(connection, goal)
        if mark is not None:
            marks.append(mark)
    return marks


def _copy_members(source: ExportState, target: ExportState, connection: str, goal: str) -> None:
    """Stage the goal's export members in `target`, page by page (they become its members with
    the watermark)."""
    after, fresh = "", True
    while True:
        page = source.export_members(connection, goal, after=after, limit=_MEMBER_PAGE)
        target.stage_export_members(connection, goal, page, fresh=fresh)
        fresh = False
        if len(page) < _MEMBER_PAGE:
            return
        after = page[-1]


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (itertools.batched arrives with Python 3.12)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def by_file(
    rows: Iterable[tuple[FileKey, Contribution]],
) -> Iterator[tuple[FileKey, list[Contribution]]]:
    """Contributions ordered by file, grouped into one list per file."""
    for file, group in itertools.groupby(rows, key=operator.itemgetter(0)):
        yield file, [contribution for _file, contribution in group]


def _listing(counts: dict[str, int] | dict[str, str]) -> str:
    return ", ".join(f"{kind}: {count}" for kind, count in counts.items())
