"""Working days: Monday to Friday, minus the configured public holidays.

Invariants:

1. A working day is a weekday (Mon-Fri) that is not in the calendar's holiday set.
   Holidays that fall on a weekend change nothing.
2. ``add_working_days(start, n)`` is the n-th working day strictly after ``start``; the
   start day never counts, whether or not it is a working day. ``n == 0`` gives ``start``.
3. ``working_days_between(start, end)`` counts the working days in (start, end]; it is 0
   when the dates are equal and antisymmetric: ``between(a, b) == -between(b, a)``.
   So ``working_days_between(start, add_working_days(start, n)) == n`` for every n >= 0.
4. Both are O(log H) per call for H holidays (weekday arithmetic on ordinals plus a
   binary search over the sorted holidays), independent of the distance in days.

Dates are calendar dates in the node's local time zone; convert an instant with
``local_date`` first. Nothing here reads a clock.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from node.errors import ConfigError, ValidationError

__all__ = [
    "INDONESIAN_TIME_ZONES",
    "WorkingCalendar",
    "local_date",
]

# The tz database zones that cover Indonesia: WIB (Jakarta, Pontianak), WITA (Makassar),
# WIT (Jayapura).
INDONESIAN_TIME_ZONES: tuple[str, ...] = (
    "Asia/Jakarta",
    "Asia/Pontianak",
    "Asia/Makassar",
    "Asia/Jayapura",
)


def _require_date(value: object, name: str) -> date:
    # datetime is a subclass of date; mixing them breaks comparisons, so refuse it here.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValidationError(
            f"{name} must be a datetime.date, found {type(value).__name__}; "
            "convert instants with local_date() first"
        )
    return value


def _weekdays_through(ordinal: int) -> int:
    """Number of Mon-Fri days among proleptic ordinals 1..ordinal (ordinal 1 is a Monday)."""
    weeks, rest = divmod(ordinal, 7)
    return weeks * 5 + min(rest, 5)


def _ordinal_of_weekday_number(count: int) -> int:
    """The ordinal of the ``count``-th weekday (count >= 1); inverse of _weekdays_through."""
    weeks, rest = divmod(count, 5)
    return weeks * 7 - 2 if rest == 0 else weeks * 7 + rest


class WorkingCalendar:
    """Mon-Fri minus holidays. Immutable; cheap to share between threads."""

    __slots__ = ("_holidays", "_sorted")

    def __init__(self, holidays: Iterable[date] = ()) -> None:
        days = frozenset(_require_date(d, "holiday") for d in holidays)
        self._holidays = days
        # Only weekday holidays affect counting; keep their ordinals sorted for bisect.
        self._sorted: tuple[int, ...] = tuple(
            sorted(d.toordinal() for d in days if d.weekday() < 5)
        )

    @property
    def holidays(self) -> frozenset[date]:
        """Every holiday the calendar was given, weekend ones included."""
        return self._holidays

    def __repr__(self) -> str:
        return f"WorkingCalendar({len(self._holidays)} holidays)"

    def is_working_day(self, d: date) -> bool:
        """True for a Monday to Friday that is not a holiday."""
        d = _require_date(d, "d")
        return d.weekday() < 5 and d not in self._holidays

    def _holidays_in(self, lo: int, hi: int) -> int:
        """Weekday holidays with ordinal in (lo, hi]."""
        return bisect_right(self._sorted, hi) - bisect_right(self._sorted, lo)

    def add_working_days(self, start: date, n: int) -> date:
        """The date n working days after ``start`` (start itself not counted).

        This is the deadline date for "within n working days of start". ``n`` must be
        >= 0; ``n == 0`` returns ``start`` unchanged.
        """
        start = _require_date(start, "start")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValidationError(f"n must be a non-negative int, found {n!r}")
        current = start.toordinal()
        remaining = n
        while remaining > 0:
            # Step over `remaining` weekdays, then count the holidays we stepped over:
            # each one is a weekday that did not count, so step that many more.
            target = _ordinal_of_weekday_number(_weekdays_through(current) + remaining)
            remaining = self._holidays_in(current, target)
            current = target
        return date.fromordinal(current)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]; negative (minus those in (end, start]) if end < start."""
        start = _require_date(start, "start")
        end = _require_date(end, "end")
        if end < start:
            return -self.working_days_between(end, start)
        lo, hi = start.toordinal(), end.toordinal()
        return _weekdays_through(hi) - _weekdays_through(lo) - self._holidays_in(lo, hi)


def local_date(instant: datetime, tz: str) -> date:
    """The calendar date of ``instant`` in the IANA time zone ``tz`` (e.g. Asia/Makassar).

    Naive datetimes are refused (ValidationError): the wall-clock date of an instant
    depends on its zone, and guessing it moves deadlines by a day near midnight. An
    unknown zone name is a ConfigError, since the zone comes from node.yaml.
    """
    if not isinstance(instant, datetime):
        raise ValidationError(f"instant must be a datetime, found {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValidationError(
            "instant is a naive datetime; pass an aware one (e.g. with tzinfo=UTC)"
        )
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:  # OSError: "America", too long
        raise ConfigError(
            f"unknown time zone {tz!r}; expected an IANA name such as "
            f"{', '.join(INDONESIAN_TIME_ZONES)}"
        ) from e
    return instant.astimezone(zone).date()
