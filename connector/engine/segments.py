"""Segment conditions over whole Arrow tables: one boolean per profile, no loop per profile.

A table holds one `list<string>` column per property (null when the profile
has none), as `ProfileStore.profile_batches` yields it. The semantics are
those of the per-profile predicates (`value_test` below is that definition,
and `connector.engine.segment_index.compile_condition` is built on it): a property
test passes when the profile has values (`exists`) and, for each operator,
*some* value passes; numbers, dates and date-times compare by value; a value
that cannot be read as the operand's type does not match.

Canonical spellings (the store's own: `-12.50`, `2024-03-01`,
`2024-03-01T09:30:00+00:00`) are decided in Arrow: numbers through float64
(correctly rounded parsing is monotonic, so unequal floats order exactly as
the decimals do; equal ones go to the exact test), dates and date-times as
fixed-width text after a round-trip validity check. What Arrow cannot decide
exactly (any other spelling that holds a digit, a number equal to the operand
in float64) is decided by `value_test` once per *distinct* value. A value
without a digit can be no number, date or date-time, so it never matches.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from connector.config.segments import Condition

__all__ = [
    "any_value_in",
    "condition_mask",
    "condition_properties",
    "has_values",
    "profile_columns",
    "value_test",
]

ValueTest = Callable[[str], bool]
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
_ARROW_COMPARISONS: dict[Callable[[Any, Any], bool], Callable[..., Any]] = {
    operator.gt: pc.greater,
    operator.ge: pc.greater_equal,
    operator.lt: pc.less,
    operator.le: pc.less_equal,
    operator.eq: pc.equal,
}
_HAS_DIGIT = r"\p{Nd}"
_PLAIN_NUMBER = r"^[+-]?[0-9]{1,300}(?:\.[0-9]{1,300})?$"
_YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_DATE_PREFIX = rf"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}"
_CANONICAL_DATETIME = rf"{_DATE_PREFIX}T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}(?:\.[0-9]{{6}})?\+00:00$"

# -- one value at a time: the definition ------------------------------------------------------


def value_test(operator_name: str, operand: object) -> ValueTest:
    """The test of one operator (`equals`, `gt`, ...) on one canonical value."""
    if operator_name == "equals":
        return _equals(operand)
    return _comparison(_COMPARISONS[operator_name], operand)


def _equals(expected: object) -> ValueTest:
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


def _comparison(compare: Callable[[Any, Any], bool], operand: object) -> ValueTest:
    if isinstance(operand, datetime):
        moment = _aware(operand)

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


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
    return _aware(parsed)


# -- whole tables -------------------------------------------------------------------------------


def condition_properties(condition: Condition) -> Iterator[str]:
    """The properties a condition reads, in order of appearance (may repeat)."""
    for part in (condition.all or []) + (condition.any or []):
        yield from condition_properties(part)
    if condition.property is not None:
        yield condition.property


def profile_columns(table: pa.Table, names: Sequence[str]) -> dict[str, pa.ListArray]:
    """The property columns of a `profile_batches` table, by position (a property may be `id`).

    `names` are the properties the table was asked for, in that order.
    """
    return {name: _lists(table.column(2 + index)) for index, name in enumerate(names)}


def condition_mask(
    condition: Condition, columns: Mapping[str, pa.ListArray], rows: int
) -> pa.BooleanArray:
    """Which of `rows` profiles meet `condition`; `columns` holds each property it reads."""
    if condition.all is not None or condition.any is not None:
        parts = condition.all if condition.all is not None else condition.any
        combine = pc.and_ if condition.all is not None else pc.or_
        result = _constant(condition.all is not None, rows)
        for part in parts or []:
            result = combine(result, condition_mask(part, columns, rows))
        return result
    assert condition.property is not None  # noqa: S101 -- guaranteed by Condition's validator
    column = columns[condition.property]
    result = _constant(True, rows)
    if condition.exists is not None:
        present = has_values(column)
        result = present if condition.exists else pc.invert(present)
    values = _values(column)
    for test in _value_masks(condition):
        result = pc.and_(result, _any_per_row(column, test(values)))
    return result


def has_values(column: pa.Array | pa.ChunkedArray) -> pa.BooleanArray:
    """Rows whose list holds at least one value (an empty text counts, as in Python)."""
    lists = _lists(column)
    return pc.greater(pc.list_value_length(lists), 0).fill_null(False)


def any_value_in(column: pa.Array | pa.ChunkedArray, options: Iterable[str]) -> pa.BooleanArray:
    """Rows with some value among `options` (exact text), e.g. consent to an objective."""
    lists = _lists(column)
    wanted = pa.array(list(options), pa.string())
    return _any_per_row(lists, pc.is_in(_values(lists), value_set=wanted))


def _value_masks(condition: Condition) -> list[Callable[[pa.StringArray], pa.BooleanArray]]:
    tests: list[Callable[[pa.StringArray], pa.BooleanArray]] = []
    if condition.equals is not None:
        tests.append(_equals_mask(condition.equals))
    if condition.one_of is not None:
        options = [_equals_mask(option) for option in condition.one_of]

        def one_of(values: pa.StringArray) -> pa.BooleanArray:
            result = _constant(False, len(values))
            for option in options:
                result = pc.or_(result, option(values))
            return result

        tests.append(one_of)
    for name, compare in _COMPARISONS.items():
        operand = getattr(condition, name)
        if operand is not None:
            tests.append(_comparison_mask(compare, operand))
    return tests


def _equals_mask(expected: object) -> Callable[[pa.StringArray], pa.BooleanArray]:
    if isinstance(expected, bool):
        text = "true" if expected else "false"
        return lambda values: pc.equal(pc.utf8_lower(values), text)
    if isinstance(expected, int | float | datetime | date):
        return _comparison_mask(operator.eq, expected)
    text = str(expected)
    return lambda values: pc.equal(values, text)


def _comparison_mask(
    compare: Callable[[Any, Any], bool], operand: object
) -> Callable[[pa.StringArray], pa.BooleanArray]:
    exact = _comparison(compare, operand)
    arrow_compare = _ARROW_COMPARISONS[compare]
    if isinstance(operand, datetime):
        try:
            utc = _aware(operand).astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # a moment at the calendar's very edge: ask `exact` for each value
            return lambda values: _settle(
                values, _constant(False, len(values)), values.is_valid(), exact
            )
        key = utc.isoformat(timespec="microseconds")
        return lambda values: _on_datetimes(values, arrow_compare, key, exact)
    if isinstance(operand, date):
        return lambda values: _on_dates(values, arrow_compare, operand.isoformat(), exact)
    bound = float(Decimal(str(operand)))
    return lambda values: _on_numbers(values, arrow_compare, bound, exact)


def _on_numbers(
    values: pa.StringArray, compare: Callable[..., Any], bound: float, exact: ValueTest
) -> pa.BooleanArray:
    plain = pc.match_substring_regex(values, _PLAIN_NUMBER)
    floats = pc.cast(pc.if_else(plain, values, pa.scalar("0")), pa.float64())
    decided = pc.and_(plain, pc.not_equal(floats, bound))
    result = pc.and_(decided, compare(floats, bound))
    return _settle(values, result, pc.invert(decided), exact)


def _on_dates(
    values: pa.StringArray, compare: Callable[..., Any], key: str, exact: ValueTest
) -> pa.BooleanArray:
    canonical = pc.match_substring_regex(values, _DATE_PREFIX)
    day = pc.utf8_slice_codeunits(pc.if_else(canonical, values, pa.scalar("2000-01-01")), 0, 10)
    parsed = pc.strptime(day, "%Y-%m-%d", "s", error_is_null=True)
    valid = pc.and_(canonical, _reads_back(parsed, day, _DATE_FIELDS))
    result = pc.and_(valid, compare(day, key))
    return _settle(values, result, pc.invert(valid), exact)


def _on_datetimes(
    values: pa.StringArray, compare: Callable[..., Any], key: str, exact: ValueTest
) -> pa.BooleanArray:
    canonical = pc.match_substring_regex(values, _CANONICAL_DATETIME)
    text = pc.if_else(canonical, values, pa.scalar("2000-01-01T00:00:00+00:00"))
    seconds = pc.utf8_slice_codeunits(text, 0, 19)
    parsed = pc.strptime(seconds, "%Y-%m-%dT%H:%M:%S", "us", error_is_null=True)
    whole = pc.binary_join_element_wise(seconds, pa.scalar(".000000"), "")
    valid = pc.and_(canonical, _reads_back(parsed, seconds, _DATETIME_FIELDS))
    fraction = pc.equal(pc.utf8_length(text), 32)
    moment = pc.if_else(fraction, pc.utf8_slice_codeunits(text, 0, 26), whole)
    result = pc.and_(valid, compare(moment, key))
    return _settle(values, result, pc.invert(valid), exact)


_DATE_FIELDS = ((pc.year, 0, 4), (pc.month, 5, 7), (pc.day, 8, 10))
_DATETIME_FIELDS = (*_DATE_FIELDS, (pc.hour, 11, 13), (pc.minute, 14, 16), (pc.second, 17, 19))


def _reads_back(
    parsed: pa.TimestampArray,
    text: pa.StringArray,
    fields: tuple[tuple[Callable[..., Any], int, int], ...],
) -> pa.BooleanArray:
    """Did `strptime` take `text` (fixed-width digits) as written, not rolled over (02-30 as
    03-02) or refused? Each field of the moment against its digits: the same verdict as
    formatting it back with `strftime`, which re-imbues a locale per value (7x slower)."""
    same = _constant(True, len(text))
    for field, start, stop in fields:
        digits = pc.cast(pc.utf8_slice_codeunits(text, start, stop), pa.int64())
        same = pc.and_(same, pc.equal(field(parsed), digits))
    filled: pa.BooleanArray = same.fill_null(False)
    return filled


def _settle(
    values: pa.StringArray, result: pa.BooleanArray, undecided: pa.BooleanArray, exact: ValueTest
) -> pa.BooleanArray:
    """`result`, with the undecided values that hold a digit decided by `exact`, once each."""
    ask = pc.and_(undecided, pc.match_substring_regex(values, _HAS_DIGIT))
    if not pc.any(ask).as_py():
        return result
    asked = pc.filter(values, ask)
    encoded = pc.dictionary_encode(asked)
    verdicts = pa.array([exact(value) for value in encoded.dictionary.to_pylist()], pa.bool_())
    answers = pc.take(verdicts, encoded.indices)
    answered: pa.BooleanArray = pc.replace_with_mask(result, ask, answers)
    return answered


# -- lists -----------------------------------------------------------------------------------


def _lists(column: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.type != pa.list_(pa.string()):
        column = column.cast(pa.list_(pa.string()))
    lists: pa.ListArray = column
    return lists


def _values(lists: pa.ListArray) -> pa.StringArray:
    """Every value under the lists' offsets, nulls' hidden values included (masked later)."""
    offsets = lists.offsets
    start = offsets[0].as_py()
    values: pa.StringArray = lists.values.slice(start, offsets[-1].as_py() - start)
    return values.fill_null("") if values.null_count else values


def _any_per_row(lists: pa.ListArray, hits: pa.BooleanArray) -> pa.BooleanArray:
    """Per row: does any of its values hit? A prefix sum over the hits, read at the offsets."""
    offsets = lists.offsets
    relative = pc.subtract(offsets, offsets[0])
    running = pc.cumulative_sum(pc.cast(hits.fill_null(False), pa.int64()))
    prefix = pa.concat_arrays([pa.array([0], pa.int64()), running])
    ends = pc.take(prefix, relative.slice(1))
    starts = pc.take(prefix, relative.slice(0, len(lists)))
    return pc.and_(pc.greater(pc.subtract(ends, starts), 0), lists.is_valid())


def _constant(value: bool, rows: int) -> pa.BooleanArray:
    constant: pa.BooleanArray = pa.repeat(pa.scalar(value), rows)
    return constant
