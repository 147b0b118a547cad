"""Segment conditions compiled to predicates over a profile's canonical values.

Values are stored as text; a comparison reads them as the type of the
condition's operand (number, date or date-time). A value that cannot be
read as that type does not match, it is never an error: segments are
evaluated over profiles that many different files wrote.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connector.config.segments import ALL_SEGMENT, Condition, Segment
from connector.storage import Profile

Properties = Mapping[str, list[str]]
Predicate = Callable[[Properties], bool]
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def compile_condition(condition: Condition) -> Predicate:
    """A fast predicate for one condition tree."""
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
        tests.append(_equals(condition.equals))
    if condition.one_of is not None:
        options = [_equals(option) for option in condition.one_of]
        tests.append(lambda value: any(option(value) for option in options))
    for name, compare in _COMPARISONS.items():
        operand = getattr(condition, name)
        if operand is not None:
            tests.append(_comparison(compare, operand))
    return tests


def _equals(expected: object) -> Callable[[str], bool]:
    if isinstance(expected, bool):
        text = "true" if expected else "false"
        return lambda value: value.lower() == text
    if isinstance(expected, int | float):
        number = Decimal(str(expected))
        return lambda value: _number(value) == number
    if isinstance(expected, datetime | date):
        return _comparison(operator.eq, expected)
    text = str(expected)
    return lambda value: value == text


def _comparison(compare: Callable[[Any, Any], bool], operand: object) -> Callable[[str], bool]:
    if isinstance(operand, datetime):
        moment = operand if operand.tzinfo else operand.replace(tzinfo=UTC)

        def on_datetime(value: str) -> bool:
            parsed = _datetime(value)
            return parsed is not None and compare(parsed, moment)

        return on_datetime
    if isinstance(operand, date):
        day = operand

        def on_date(value: str) -> bool:
            parsed = _date(value)
            return parsed is not None and compare(parsed, day)

        return on_date
    number = Decimal(str(operand))

    def on_number(value: str) -> bool:
        parsed = _number(value)
        return parsed is not None and compare(parsed, number)

    return on_number


def _number(value: str) -> Decimal | None:
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _datetime(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
