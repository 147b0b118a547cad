"""The profile store: the one interface every layer above storage uses.

Nothing above `connector.storage` knows SQL. A backend implements
`ProfileStore` (reads, run history, locks) and `StoreTransaction` (writes
that land together or not at all). An import applies a whole file and its
ledger entry in one transaction: that is what makes "each file exactly once"
hold when the process is killed at any moment.

Stores are synchronous and used from one thread at a time; async code calls
them through `asyncio.to_thread`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

import pyarrow as pa

from connector.limits import MAX_REJECTS_STORED, PROFILE_BATCH_ROWS, STORE_PAGE_ROWS
from connector.storage.batches import BatchTransaction
from connector.storage.records import (
    Contribution,
    ExportWatermark,
    FileKey,
    Group,
    LedgerEntry,
    OpenUpload,
    Profile,
    RowReject,
    RunCounts,
    RunRecord,
    RunStatus,
    Trigger,
)

PROFILE_ID = "profile_id"
"""Resolving by this property name means the values are profile ids."""


class StoreTransaction(ABC):
    """Writes that commit together when the `with` block ends, or roll back on error."""

    @abstractmethod
    def resolve_profiles(self, property_name: str, values: Collection[str]) -> dict[str, str]:
        """Map each value of a unique property (or profile id) to the profile that holds it."""

    @abstractmethod
    def load_profiles(self, profile_ids: Collection[str]) -> dict[str, Profile]:
        """The existing profiles among `profile_ids`."""

    @abstractmethod
    def save_profiles(self, profiles: Iterable[Profile]) -> int:
        """Insert or replace whole profiles; stamps a new change sequence. Returns the count.

        The unique-identifier index follows the saved values.
        """

    @abstractmethod
    def delete_profiles(self, profile_ids: Collection[str]) -> int:
        """Remove profiles, their identifiers and memberships. Returns how many existed."""

    @abstractmethod
    def load_groups(self, group_type: str, group_ids: Collection[str]) -> dict[str, Group]:
        """The existing groups among `group_ids` (members not loaded)."""

    @abstractmethod
    def save_groups(self, groups: Iterable[Group]) -> int:
        """Insert or replace groups' properties (not members). Returns the count."""

    @abstractmethod
    def add_members(self, group_type: str, memberships: Iterable[tuple[str, str]]) -> int:
        """Add (group id, profile id) pairs; existing pairs are kept. Returns pairs added.

        A profile that joins a group is stamped with this transaction's change
        sequence: its group columns changed, so incremental exports include it.
        """

    @abstractmethod
    def replace_members(
        self, group_type: str, members: Mapping[str, Collection[str]]
    ) -> tuple[int, int]:
        """Make each group's members exactly the given profile ids; (joined, left).

        Profiles that join or leave are stamped with this transaction's change
        sequence, as `add_members` does.
        """

    @abstractmethod
    def delete_groups(self, group_type: str, group_ids: Collection[str]) -> tuple[int, int]:
        """Remove groups and their memberships (leavers stamped); (groups, memberships)."""

    @abstractmethod
    def record_file(self, entry: LedgerEntry) -> None:
        """Note in the ledger that a goal applied this version of a file."""

    @abstractmethod
    def set_key_normalization(self, name: str, mode: str) -> None:
        """Record that the stored values of unique property `name` now follow `mode`."""

    @abstractmethod
    def file_contributions(self, file: FileKey) -> list[Contribution]:
        """What the version of `file` applied last contributed (`on_change: replace`)."""

    @abstractmethod
    def replace_file_contributions(
        self, file: FileKey, contributions: Iterable[Contribution]
    ) -> None:
        """Forget what `file` contributed before; remember `contributions` instead."""

    @abstractmethod
    def hand_over(
        self, file: FileKey, kind: str, slots: Collection[tuple[str, str, str]]
    ) -> set[tuple[str, str, str]]:
        """Of the (profile id, property, value) that `file` brought into a profile, those
        another file's latest version contributes to as well (`kind` "add": the same value;
        "sum": any total, the value is ignored). Those stay; from now on the other files
        count as having brought them, so withdrawing the last of them takes them away."""

    @abstractmethod
    def changed_profiles(self) -> tuple[int, int]:
        """(change sequence of this transaction, profiles it has written so far).

        Distinct profiles, however often each was saved: the exact "profiles
        touched by this file" count without keeping their ids in memory.
        """


class ProfileStore(ABC):
    """Profiles, groups, the file ledger, run history, run locks and export watermarks."""

    # -- writing ------------------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractContextManager[StoreTransaction]:
        """Open a write transaction; at most one is open at a time per store."""

    columnar: bool = False
    """Whether `batch_transaction` is available (the columnar import engine)."""

    def batch_transaction(self) -> AbstractContextManager[BatchTransaction]:
        """Open a write transaction for the columnar engine (one file's batches and ledger)."""
        raise NotImplementedError(f"{type(self).__name__} has no columnar engine")

    @abstractmethod
    def ensure_unique_properties(self, names: Collection[str]) -> None:
        """Declare properties whose values identify one profile, indexing existing values."""

    @abstractmethod
    def unique_properties(self) -> frozenset[str]:
        """The properties declared unique."""

    @abstractmethod
    def key_normalization(self, name: str) -> str:
        """How the stored values of unique property `name` are normalised (`match.normalize`);
        "trim" for a property never declared otherwise."""

    @abstractmethod
    def identifier_values(self, name: str) -> Iterator[tuple[str, str]]:
        """Every (value, profile id) of unique property `name`."""

    # -- reading profiles ----------------------------------------------------
    @abstractmethod
    def get_profile(self, profile_id: str) -> Profile | None: ...

    @abstractmethod
    def find_profiles(self, property_name: str, value: str) -> list[Profile]:
        """Profiles with `value` among the values of `property_name`."""

    @abstractmethod
    def iter_profiles(
        self, *, changed_after: int | None = None, batch_size: int = STORE_PAGE_ROWS
    ) -> Iterator[Profile]:
        """Every profile (or those changed after a sequence number), streamed in batches."""

    def profile_batches(
        self,
        properties: Sequence[str],
        *,
        changed_after: int | None = None,
        batch_size: int = PROFILE_BATCH_ROWS,
    ) -> Iterator[pa.Table]:
        """Profiles as Arrow tables, in the order of `iter_profiles`, for columnar readers.

        Columns: `id` (string), `change_seq` (int64), then one `list<string>`
        column per requested property, named after it (null when the profile
        has no value). A store with columns per property overrides this with a
        native read; this default builds the tables from `iter_profiles`.
        """
        ids: list[str] = []
        seqs: list[int] = []
        values: list[list[list[str] | None]] = [[] for _ in properties]

        def table() -> pa.Table:
            arrays = [pa.array(ids, pa.string()), pa.array(seqs, pa.int64())]
            arrays += [pa.array(column, pa.list_(pa.string())) for column in values]
            return pa.Table.from_arrays(arrays, names=["id", "change_seq", *properties])

        for profile in self.iter_profiles(changed_after=changed_after, batch_size=batch_size):
            ids.append(profile.id)
            seqs.append(profile.change_seq)
            for column, name in zip(values, properties, strict=True):
                column.append(profile.properties.get(name) or None)
            if len(ids) >= batch_size:
                yield table()
                ids, seqs, values = [], [], [[] for _ in properties]
        if ids:
            yield table()

    @abstractmethod
    def count_profiles(self) -> int: ...

    @abstractmethod
    def change_seq(self) -> int:
        """The latest committed change sequence number."""

    @abstractmethod
    def count_profiles_changed_in(self, change_seqs: Collection[int]) -> int:
        """Profiles whose latest change carries one of these sequence numbers."""

    @abstractmethod
    def count_changed_among(self, change_seqs: Collection[int], ids: pa.Array) -> int:
        """Of the distinct profile `ids` (Arrow strings), those whose latest change carries
        one of these sequence numbers: what a run's imports and exports have in common.
        Read in slices, so a large export never becomes one list of Python strings."""

    # -- groups --------------------------------------------------------------
    @abstractmethod
    def get_group(self, group_type: str, group_id: str) -> Group | None:
        """A group with its properties and member profile ids."""

    @abstractmethod
    def groups_of_profile(self, profile_id: str) -> dict[str, list[str]]:
        """The groups a profile belongs to, as {group type: [group ids]}."""

    @abstractmethod
    def groups_of_profiles(
        self, profile_ids: Collection[str], group_type: str
    ) -> dict[str, list[str]]:
        """For a batch of profiles, their group ids of one type (for export columns)."""

    # -- file ledger ---------------------------------------------------------
    @abstractmethod
    def ledger(self, connection: str, goal: str) -> dict[str, LedgerEntry]:
        """The files a goal has applied, by key."""

    # -- runs ----------------------------------------------------------------
    @abstractmethod
    def start_run(
        self, connection: str, goal: str | None, trigger: Trigger, *, dry_run: bool = False
    ) -> RunRecord: ...

    @abstractmethod
    def finish_run(
        self, run_id: int, status: RunStatus, counts: RunCounts, error: str | None = None
    ) -> RunRecord: ...

    @abstractmethod
    def add_rejects(self, run_id: int, rejects: Iterable[RowReject]) -> None: ...

    @abstractmethod
    def list_runs(
        self, connection: str | None = None, *, limit: int = 50, since: datetime | None = None
    ) -> list[RunRecord]:
        """The latest runs first; with `since` (aware), only those started at or after it."""

    @abstractmethod
    def get_run(self, run_id: int) -> RunRecord | None: ...

    @abstractmethod
    def run_rejects(self, run_id: int, *, limit: int = MAX_REJECTS_STORED) -> list[RowReject]: ...

    # -- locks ---------------------------------------------------------------
    @abstractmethod
    def acquire_run_lock(self, connection: str, owner: str) -> None:
        """Take the connection's run lock or raise RunInProgressError naming the holder.

        A lock whose owner process is gone is taken over, and its run marked interrupted.
        """

    @abstractmethod
    def release_run_lock(self, connection: str, owner: str) -> None: ...

    def claim_fire(self, connection: str, fire_time: datetime, owner: str) -> bool:
        """Claim one scheduled fire of a connection; False when another daemon has it.

        Several daemons on one store each schedule every connection; the one
        whose claim lands runs that fire. A SQLite file has one daemon: always True.
        """
        return True

    # -- open multipart uploads ------------------------------------------------
    @abstractmethod
    def note_upload(self, upload: OpenUpload) -> None:
        """Remember a multipart upload as soon as S3 has given it an id."""

    @abstractmethod
    def forget_upload(self, upload_id: str) -> None:
        """The upload was completed or aborted: nothing is left in S3 to clean up."""

    @abstractmethod
    def open_uploads(self, connection: str, started_before: datetime) -> list[OpenUpload]:
        """The connection's uploads started before that moment and never completed or aborted."""

    # -- export watermarks ---------------------------------------------------
    @abstractmethod
    def export_watermark(self, connection: str, goal: str) -> ExportWatermark | None: ...

    @abstractmethod
    def set_export_watermark(
        self,
        connection: str,
        goal: str,
        change_seq: int,
        exported_at: datetime,
        *,
        members: bool = False,
    ) -> None:
        """Record an export as complete; with `members`, the staged members become the goal's
        members in the same transaction (so a killed export changes neither)."""

    # -- export members (exits) ----------------------------------------------
    @abstractmethod
    def export_members(
        self, connection: str, goal: str, *, after: str = "", limit: int = 10000
    ) -> list[str]:
        """Profile ids that were members at the goal's last export, in id order, after `after`."""

    @abstractmethod
    def stage_export_members(
        self, connection: str, goal: str, profile_ids: Sequence[str], *, fresh: bool = False
    ) -> None:
        """Add to the members a running export found (`fresh` drops what a killed run staged)."""

    # -- lifecycle -----------------------------------------------------------
    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> ProfileStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
