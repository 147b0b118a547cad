"""Apply a batch of rows to profiles: resolve, load, run the rules, save — a few queries a batch.

Each row's changes are staged first and land on the profile only when the
whole row is good (every rule applied, unique values free, consent given),
so a rejected row leaves no trace.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Collection, Sequence

from connector.config.goal_parts import PROFILE_ID
from connector.engine.rows import RowChanges, stage_rules
from connector.goals.consent import CONSENT_PROPERTY, has_consent
from connector.imports.contributions import FileContributions
from connector.imports.model import ImportProfilesGoal
from connector.storage import Profile, RowReject, RunCounts, StoreTransaction

_sequence = itertools.count()
_PROCESS_TAG = os.urandom(4).hex()


def new_profile_id() -> str:
    """A unique, time-ordered id (like UUIDv7): new profiles append to the store's indexes.

    Random ids (uuid4) land all over the B-trees and make large imports
    page-bound; these sort by creation time, then by process and counter.
    """
    return f"{time.time_ns() // 1_000_000:012x}{_PROCESS_TAG}{next(_sequence) & 0xFFFFFFFF:08x}"


class ProfileApplier:
    """Applies `RowChanges` of one import goal inside one store transaction."""

    def __init__(
        self,
        tx: StoreTransaction,
        goal: ImportProfilesGoal,
        *,
        file: str,
        objectives: Collection[str],
        unique_properties: Collection[str],
        contributions: FileContributions | None = None,
    ) -> None:
        """`contributions`: given under `on_change: replace`, with the earlier version's
        already withdrawn; this version's is noted row by row and recorded at the end."""
        self._tx = tx
        self._contributions = contributions
        self._file = file
        self._match_property = goal.match.property
        self._create_missing = goal.match.create_missing
        self._objectives = frozenset(objectives)
        self._unique = frozenset(unique_properties) - {goal.match.property}
        self.counts = RunCounts()

    def finish(self) -> tuple[RunCounts, int]:
        """This file's counts, and the change sequence its writes carry."""
        if self._contributions is not None:
            self._contributions.save()
        seq, touched = self._tx.changed_profiles()
        self.counts.profiles_updated = touched - self.counts.profiles_created
        return self.counts, seq

    def apply(self, rows: Sequence[RowChanges], rejects: list[RowReject]) -> None:
        outcome = self.counts
        keys = [row.key for row in rows]
        owner_of_key = self._tx.resolve_profiles(self._match_property, keys)
        profiles = self._tx.load_profiles(set(owner_of_key.values()))
        owners = self._unique_owners(rows)
        changed: dict[str, Profile] = {}
        deleted: list[str] = []
        gone: set[str] = set()  # deleted by an earlier row: their unique values are free again
        for row in rows:
            profile_id = owner_of_key.get(row.key)
            if row.delete:
                # erasure needs no consent: a deletion request is always honoured
                if profile_id is None:
                    outcome.rows_skipped += 1
                else:
                    del owner_of_key[row.key]
                    profiles.pop(profile_id, None)
                    changed.pop(profile_id, None)
                    deleted.append(profile_id)
                    gone.add(profile_id)
                    outcome.rows_applied += 1
                continue
            created = profile_id is None
            if profile_id is None:
                if not self._create_missing:
                    outcome.rows_skipped += 1
                    continue
                profile = self._new_profile(row.key)
                gone.discard(profile.id)  # matched by profile id: deleted, then created again
            else:
                profile = profiles[profile_id]
            staged = self._stage(profile, row, owners, gone, rejects)
            if staged is None:
                continue
            if self._objectives and not has_consent(
                {**profile.properties, **staged}, self._objectives
            ):
                outcome.rows_skipped += 1
                continue
            if self._contributions is not None:
                self._contributions.note(profile, row)
            if created:
                owner_of_key[row.key] = profile.id
                profiles[profile.id] = profile
                outcome.profiles_created += 1
            for name, values in staged.items():
                if name in self._unique:
                    for value in values:
                        owners[(name, value)] = profile.id
            if staged or created:
                profile.properties.update(staged)
                changed[profile.id] = profile
            outcome.rows_applied += 1
        self._write(deleted, changed)

    def _write(self, deleted: list[str], changed: dict[str, Profile]) -> None:
        # deletions first: a profile saved in this batch came after its deletion (a customer
        # deleted and added again), and a freed unique value may already belong to another
        if deleted:
            self.counts.profiles_deleted += self._tx.delete_profiles(deleted)
            if self._contributions is not None:
                self._contributions.forget(deleted)
        if changed:
            self._tx.save_profiles(changed.values())

    def _new_profile(self, key: str) -> Profile:
        if self._match_property == PROFILE_ID:
            return Profile(key)
        return Profile(new_profile_id(), {self._match_property: [key]})

    def _stage(
        self,
        profile: Profile,
        row: RowChanges,
        owners: dict[tuple[str, str], str],
        gone: set[str],
        rejects: list[RowReject],
    ) -> dict[str, list[str]] | None:
        """The row's new values by property, or None (and a reject) if the row cannot apply."""

        def taken(name: str, values: list[str]) -> str | None:
            """Why a unique property's values cannot be this profile's, or None."""
            if name not in self._unique:
                return None
            for value in values:
                owner = owners.get((name, value))
                if owner is not None and owner != profile.id and owner not in gone:
                    return f"{name} {value!r} already belongs to profile {owner}"
            return None

        staged = stage_rules(
            row, profile.properties, file=self._file, check=taken if self._unique else None
        )
        if isinstance(staged, RowReject):
            rejects.append(staged)
            return None
        if CONSENT_PROPERTY in staged and not staged[CONSENT_PROPERTY]:
            del staged[CONSENT_PROPERTY]
        return staged

    def _unique_owners(self, rows: Sequence[RowChanges]) -> dict[tuple[str, str], str]:
        """Who already holds the unique values these rows would write."""
        wanted: dict[str, set[str]] = {}
        for row in rows:
            for mapping, values in row.cells:
                if mapping.property in self._unique:
                    wanted.setdefault(mapping.property, set()).update(values)
        owners: dict[tuple[str, str], str] = {}
        for name, candidates in wanted.items():
            for value, owner in self._tx.resolve_profiles(name, candidates).items():
                owners[(name, value)] = owner
        return owners
