"""Wall-clock fields to UTC microseconds and back to today's canonical text, on whole columns.

Naive times are read in the format's zone exactly as `_datetime_converter`
does: `moment - zone.utcoffset(moment)`. The offset is asked of the same
`zoneinfo` zone once per distinct wall-clock day, at its first and its last
microsecond, with `fold=0` and `fold=1`. When all four agree the whole day has
that offset: in the tz database every zone's `fold=0` change points lie more
than two days apart (`tests/engine/test_convert.py` checks this for every
zone), so a day holds at most one change, and a change makes its ends differ
(or, for a gap or overlap touching an end, its folds). Days that hold a change
are asked per hour the same way; hours that hold one are left to the per-cell
converter, which rejects a wall-clock time that does not exist (clocks go
forward) or happens twice (clocks go back) in the zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "canonical_text",
    "days_from_civil",
    "in_range",
    "is_leap",
    "utc_from_wall",
    "valid_day",
    "wall_micros",
]

_MICROS = 1_000_000
_HOUR = 3600 * _MICROS
_DAY = 86400 * _MICROS
_YEAR_ONE = datetime(1, 1, 1)  # naive on purpose: wall-clock arithmetic
_SINCE_YEAR_ONE = 62_135_596_800 * _MICROS
"""Microseconds from 0001-01-01 to 1970-01-01: shifts walls to non-negative for floor division."""
_LOW = (datetime(1000, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
    microseconds=1
)
_HIGH = (
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
) // timedelta(microseconds=1)
_MONTH_DAYS = pa.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], pa.int64())


def _divisible(values: pa.Int64Array, by: int) -> pa.BooleanArray:
    return pc.equal(pc.modulo(values, by), 0)


def is_leap(year: pa.Int64Array) -> pa.BooleanArray:
    """Gregorian leap years."""
    return pc.or_(
        pc.and_(_divisible(year, 4), pc.invert(_divisible(year, 100))), _divisible(year, 400)
    )


def valid_day(year: pa.Int64Array, month: pa.Int64Array, day: pa.Int64Array) -> pa.BooleanArray:
    """Whether `day` exists in that month (months and days already 1-12 and 1-31)."""
    leap = is_leap(year)
    longest = pc.add(
        _MONTH_DAYS.take(month), pc.cast(pc.and_(leap, pc.equal(month, 2)), pa.int64())
    )
    return pc.less_equal(day, longest)


def days_from_civil(year: pa.Int64Array, month: pa.Int64Array, day: pa.Int64Array) -> pa.Int64Array:
    """Days since 1970-01-01 of a valid proleptic Gregorian date from year 1 on (H. Hinnant)."""
    shifted = pc.subtract(year, pc.cast(pc.less_equal(month, 2), pa.int64()))
    era = pc.divide(shifted, 400)
    year_of_era = pc.subtract(shifted, pc.multiply(era, 400))
    march_based = pc.modulo(pc.add(month, 9), 12)
    day_of_year = pc.add(
        pc.divide(pc.add(pc.multiply(march_based, 153), 2), 5), pc.subtract(day, 1)
    )
    day_of_era = pc.add(
        pc.subtract(
            pc.add(pc.multiply(year_of_era, 365), pc.divide(year_of_era, 4)),
            pc.divide(year_of_era, 100),
        ),
        day_of_year,
    )
    return pc.subtract(pc.add(pc.multiply(era, 146_097), day_of_era), 719_468)


def _offsets(walls: pa.Int64Array, zone: tzinfo, span: int) -> pa.Int64Array:
    """The zone's offset (microseconds) per wall, asked once per `span`; null where it changes."""
    buckets = pc.divide(pc.add(walls, _SINCE_YEAR_ONE), span)
    encoded = pc.dictionary_encode(buckets)
    offsets: list[int | None] = []
    for bucket in encoded.dictionary.to_pylist():
        if bucket is None:
            offsets.append(None)
            continue
        start = _YEAR_ONE + timedelta(microseconds=bucket * span)
        end = start + timedelta(microseconds=span - 1)
        first, last = zone.utcoffset(start), zone.utcoffset(end)
        # fold=1 differs from fold=0 only inside a gap or an overlap: those go per cell
        doubt = (zone.utcoffset(start.replace(fold=1)), zone.utcoffset(end.replace(fold=1)))
        if first is None or first != last or doubt != (first, last):
            offsets.append(None)
        else:
            offsets.append(first // timedelta(microseconds=1))
    return pa.array(offsets, pa.int64()).take(encoded.indices)


def utc_from_wall(walls: pa.Int64Array, zone: tzinfo) -> pa.Int64Array:
    """UTC microseconds for wall-clock microseconds read in `zone`; null where left undecided.

    Offsets are asked per day, then per hour for the days that hold a change.
    """
    if zone is UTC or not len(walls):
        return walls
    offsets = _offsets(walls, zone, _DAY)
    changing = pc.is_null(offsets)
    if changing.true_count:
        hourly = _offsets(walls.filter(changing), zone, _HOUR)
        offsets = pc.replace_with_mask(offsets, changing, hourly)
    return pc.subtract(walls, offsets)


def in_range(utc: pa.Int64Array) -> pa.BooleanArray:
    """Years 1000-9999: four-digit years, and far from where today's converter overflows."""
    return pc.and_(pc.greater_equal(utc, _LOW), pc.less_equal(utc, _HIGH))


def canonical_text(utc: pa.Int64Array) -> pa.StringArray:
    """`datetime.isoformat()` of the UTC moment plus "+00:00", as `_datetime_converter` writes.

    Arrow writes `YYYY-MM-DD HH:MM:SS.ffffff` (26 characters for years 1000-9999);
    isoformat drops the fraction when it is zero.
    """
    text = pc.cast(pc.cast(utc, pa.timestamp("us")), pa.string())
    text = pc.binary_replace_slice(text, start=10, stop=11, replacement="T")
    whole = pc.binary_replace_slice(text, start=19, stop=26, replacement="+00:00")
    fraction = pc.fill_null(pc.not_equal(pc.modulo(utc, _MICROS), 0), False)
    if not fraction.true_count:
        return whole
    return pc.if_else(fraction, pc.binary_join_element_wise(text, "+00:00", ""), whole)


def wall_micros(
    days: pa.Int64Array, hour: pa.Int64Array, minute: pa.Int64Array, second: pa.Int64Array
) -> pa.Int64Array:
    """Microseconds since 1970 of a wall-clock time given as days and clock fields."""
    seconds = pc.add(pc.add(pc.multiply(hour, 3600), pc.multiply(minute, 60)), second)
    return pc.add(pc.multiply(days, _DAY), pc.multiply(seconds, _MICROS))
