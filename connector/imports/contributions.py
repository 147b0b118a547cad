"""`on_change: replace`: what a file put into profiles, so a corrected version can take it back.

Only *sum* and *add* accumulate, so only they are recorded and withdrawn:

- sum: the total the file added to each profile's property, and whether the
  property was absent before the file. Withdrawing subtracts the total; a
  property the file brought in is absent again when no other file's latest
  version adds to it (else that file now counts as having brought it in).
- add: every value the file listed, and whether the profile lacked it before
  the file. Withdrawing removes the values the file added, except those
  another file's latest version also lists: those stay, and that file now
  counts as having added them (so a value leaves with the last file that
  lists it, and a value the profile held before any file never leaves).
- set and set_if_empty keep the last value written: the new version writes
  its own values as usual; a value only the earlier version set stays.

Runs inside the file's transaction: the withdrawal, the new version's rows,
the new record and the ledger entry commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from connector.engine.rows import RowChanges
from connector.engine.value_rules import sum_values
from connector.formats.values import ConversionError, add_numbers
from connector.storage import Contribution, FileKey, Profile, StoreTransaction

log = structlog.get_logger("connector.import")
SUM, ADD = "sum", "add"
Slot = tuple[str, str]
"""(profile id, property)."""


def negate(number: str) -> str:
    """The canonical number with its sign turned (zero stays as it is)."""
    if number.startswith("-"):
        return number[1:]
    if number.strip("0.") == "":
        return number
    return "-" + number.removeprefix("+")


def is_zero(number: str) -> bool:
    return number.lstrip("+-").strip("0.") == ""


class FileContributions:
    """One file's contribution under `on_change: replace`: withdraw the old, record the new."""

    def __init__(self, tx: StoreTransaction, file: FileKey) -> None:
        self._tx = tx
        self._file = file
        self._sums: dict[Slot, str] = {}
        self._listed: dict[Slot, dict[str, None]] = {}
        self._before: dict[Slot, frozenset[str]] = {}
        """Each slot's values before the file first wrote to it."""
        self.withdrawn_from = 0
        """Profiles the earlier version's contribution was taken from."""
        self.not_withdrawn = 0
        """Sums that could not be taken back: the stored value is no longer a number."""

    # -- the earlier version ---------------------------------------------------------------
    def withdraw(self) -> None:
        """Take back what the version of this file applied last contributed."""
        earlier = self._tx.file_contributions(self._file)
        if not earlier:
            return
        profiles = self._tx.load_profiles({c.profile_id for c in earlier})
        kept = {
            kind: self._tx.hand_over(
                self._file,
                kind,
                [
                    (c.profile_id, c.property, c.value)
                    for c in earlier
                    if c.kind == kind and c.added and c.profile_id in profiles
                ],
            )
            for kind in (SUM, ADD)
        }
        changed: dict[str, Profile] = {}
        for contribution in earlier:
            profile = profiles.get(contribution.profile_id)
            if profile is None:
                continue  # deleted since: nothing to take back
            slot = (contribution.profile_id, contribution.property, contribution.value)
            if contribution.kind == SUM:
                started = contribution.added and slot not in kept[SUM]
                done = self._take_back_sum(profile, contribution, started=started)
            else:
                done = (
                    contribution.added and slot not in kept[ADD] and _remove(profile, contribution)
                )
            if done:
                changed[profile.id] = profile
        if changed:
            self._tx.save_profiles(changed.values())
        self.withdrawn_from = len(changed)
        log.info(
            "earlier version of the file withdrawn",
            key=self._file.key,
            profiles=self.withdrawn_from,
            sums_not_withdrawn=self.not_withdrawn,
        )

    def _take_back_sum(
        self, profile: Profile, contribution: Contribution, *, started: bool
    ) -> bool:
        """Subtract the earlier total; `started`: the file brought the property in and no
        other file adds to it, so a total of 0 means absent again."""
        values = profile.properties.get(contribution.property)
        if not values:
            return False  # emptied since (a set rule, or by hand): nothing left to take from
        try:
            total = add_numbers(values[0], negate(contribution.value))
        except ConversionError:
            self.not_withdrawn += 1
            log.warning(
                "a sum could not be withdrawn: the stored value is not a number",
                key=self._file.key,
                profile_id=profile.id,
                property=contribution.property,
            )
            return False
        if started and is_zero(total):
            del profile.properties[contribution.property]
        else:
            profile.properties[contribution.property] = [total]
        return True

    # -- this version ----------------------------------------------------------------------
    def note(self, profile: Profile, row: RowChanges) -> None:
        """An applied row, before its values land on `profile`."""
        for mapping, values in row.cells:
            if mapping.rule_name not in (SUM, ADD):
                continue
            slot = (profile.id, mapping.property)
            if slot not in self._before:
                self._before[slot] = frozenset(profile.properties.get(mapping.property, ()))
            if mapping.rule_name == SUM:
                [cell_total] = sum_values([], values)
                self._sums[slot] = add_numbers(self._sums.get(slot, "0"), cell_total)
            else:
                self._listed.setdefault(slot, {}).update(dict.fromkeys(values))

    def forget(self, profile_ids: Iterable[str]) -> None:
        """Profiles this file deleted: their contribution went with them."""
        gone = set(profile_ids)
        for slots in (self._sums, self._listed, self._before):
            for slot in [slot for slot in slots if slot[0] in gone]:
                del slots[slot]

    def save(self) -> None:
        """Record this version's contribution in place of the earlier one's."""
        contributions = [
            Contribution(profile_id, name, SUM, total, added=not self._before[slot])
            for slot, total in self._sums.items()
            for profile_id, name in (slot,)
        ]
        contributions += [
            Contribution(profile_id, name, ADD, value, added=value not in self._before[slot])
            for slot, values in self._listed.items()
            for profile_id, name in (slot,)
            for value in values
        ]
        self._tx.replace_file_contributions(self._file, contributions)


def _remove(profile: Profile, contribution: Contribution) -> bool:
    values = profile.properties.get(contribution.property, [])
    if contribution.value not in values:
        return False
    left = [value for value in values if value != contribution.value]
    if left:
        profile.properties[contribution.property] = left
    else:
        del profile.properties[contribution.property]
    return True


__all__ = ["FileContributions", "negate"]
