"""Segment conditions: per-profile predicates, and whole-table masks for exports and counts.

Values are stored as text; a comparison reads them as the type of the
condition's operand (number, date or date-time). A value that cannot be
read as that type does not match, it is never an error: segments are
evaluated over profiles that many different files wrote. The value tests
are defined once, in `connector.engine.segments`; `compile_condition` applies
them to one profile, `SegmentIndex.masks` to a whole Arrow batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from connector.config.segments import ALL_SEGMENT, Condition, Segment
from connector.engine.segments import (
    condition_mask,
    condition_properties,
    profile_columns,
    value_test,
)
from connector.storage import Profile, StoredProfiles

Properties = Mapping[str, list[str]]
Predicate = Callable[[Properties], bool]
_OPERATORS = ("equals", "gt", "gte", "lt", "lte")


def compile_condition(condition: Condition) -> Predicate:
    """A predicate for one condition tree, over one profile's properties."""
    if condition.all is not None:
        parts = [compile_condition(part) for part in condition.all]
        return lambda properties: all(part(properties) for part in parts)
    if condition.any is not None:
        parts = [compile_condition(part) for part in condition.any]
        return lambda properties: any(part(properties) for part in parts)
    assert condition.property is not None  # noqa: S101 -- guaranteed by Condition's validator
    name = condition.property
    tests = _value_tests(condition)

    def holds(properties: Properties) -> bool:
        values = properties.get(name) or []
        if condition.exists is not None and bool(values) != condition.exists:
            return False
        return all(any(test(value) for value in values) for test in tests)

    return holds


def _value_tests(condition: Condition) -> list[Callable[[str], bool]]:
    tests: list[Callable[[str], bool]] = []
    if condition.equals is not None:
        tests.append(value_test("equals", condition.equals))
    if condition.one_of is not None:
        options = [value_test("equals", option) for option in condition.one_of]
        tests.append(lambda value: any(option(value) for option in options))
    for name in _OPERATORS[1:]:
        operand = getattr(condition, name)
        if operand is not None:
            tests.append(value_test(name, operand))
    return tests


class SegmentIndex:
    """Every segment of the workspace, compiled once, plus the built-in `all`."""

    def __init__(self, segments: Iterable[Segment]) -> None:
        self.segments = {segment.id: segment for segment in segments}
        self._predicates = {
            segment.id: compile_condition(segment.where) for segment in self.segments.values()
        }

    def predicate(self, segment_id: str) -> Predicate:
        if segment_id == ALL_SEGMENT:
            return lambda _properties: True
        return self._predicates[segment_id]

    def title(self, segment_id: str) -> str:
        if segment_id == ALL_SEGMENT:
            return "All profiles"
        return self.segments[segment_id].title

    def properties(self, segment_id: str | None = None) -> list[str]:
        """The properties one segment reads (every segment's when None), each once."""
        segments = self.segments.values() if segment_id is None else self._only(segment_id)
        return list(dict.fromkeys(name for s in segments for name in condition_properties(s.where)))

    def mask(
        self, segment_id: str, columns: Mapping[str, pa.ListArray], rows: int
    ) -> pa.BooleanArray:
        """Which of `rows` profiles are in the segment; `columns` as `profile_columns` gives."""
        if segment_id == ALL_SEGMENT:
            all_rows: pa.BooleanArray = pa.repeat(pa.scalar(value=True), rows)
            return all_rows
        return condition_mask(self.segments[segment_id].where, columns, rows)

    def masks(self, columns: Mapping[str, pa.ListArray], rows: int) -> dict[str, pa.BooleanArray]:
        """Every segment's mask (not `all`), in the order of segments.yaml."""
        return {segment_id: self.mask(segment_id, columns, rows) for segment_id in self.segments}

    def memberships(self, properties: Properties) -> list[str]:
        """The ids of the segments a profile belongs to (not counting `all`)."""
        return [segment_id for segment_id, test in self._predicates.items() if test(properties)]

    def members(self, profiles: Iterable[Profile], segment_id: str) -> Iterator[Profile]:
        test = self.predicate(segment_id)
        return (profile for profile in profiles if test(profile.properties))

    def count_members(self, profiles: Iterable[Profile]) -> dict[str, int]:
        """Member counts of every segment in one pass over the profiles."""
        counts = dict.fromkeys([ALL_SEGMENT, *self._predicates], 0)
        for profile in profiles:
            counts[ALL_SEGMENT] += 1
            for segment_id in self.memberships(profile.properties):
                counts[segment_id] += 1
        return counts

    def count_in_store(self, store: StoredProfiles) -> dict[str, int]:
        """Member counts of every segment, evaluated on the store's Arrow batches."""
        names = self.properties()
        counts = dict.fromkeys([ALL_SEGMENT, *self.segments], 0)
        for table in store.profile_batches(names):
            columns = profile_columns(table, names)
            counts[ALL_SEGMENT] += table.num_rows
            for segment_id, mask in self.masks(columns, table.num_rows).items():
                counts[segment_id] += pc.sum(mask).as_py() or 0
        return counts

    def _only(self, segment_id: str) -> list[Segment]:
        return [] if segment_id == ALL_SEGMENT else [self.segments[segment_id]]
