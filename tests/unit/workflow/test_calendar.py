"""Working-day arithmetic and local dates: known answers, edge cases, properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import ConfigError, ValidationError
from node.workflow.calendar import INDONESIAN_TIME_ZONES, WorkingCalendar, local_date
from node.workflow.holidays import load_holidays

CAL = WorkingCalendar(load_holidays())
CAL_NO_CUTI = WorkingCalendar(load_holidays(include_collective_leave=False))
PLAIN = WorkingCalendar()

ADD_CASES = [
    # (id, calendar, start, n, expected)
    ("fri-before-christmas-2020-plus-3", CAL, date(2020, 12, 18), 3, date(2020, 12, 23)),
    ("fri-before-christmas-2020-plus-5", CAL, date(2020, 12, 18), 5, date(2020, 12, 29)),
    ("fri-before-christmas-2020-plus-8", CAL, date(2020, 12, 18), 8, date(2021, 1, 5)),
    ("wed-23-dec-2020-plus-3", CAL, date(2020, 12, 23), 3, date(2020, 12, 30)),
    ("saturday-start-counts-from-monday", CAL, date(2020, 12, 19), 3, date(2020, 12, 23)),
    ("holiday-start-is-not-counted", CAL, date(2020, 12, 24), 1, date(2020, 12, 28)),
    ("idul-fitri-2024-cuti-bersama", CAL, date(2024, 4, 5), 3, date(2024, 4, 18)),
    ("idul-fitri-2023-week", CAL, date(2023, 4, 18), 1, date(2023, 4, 26)),
    ("hut-ri-80-cuti-bersama-2025", CAL, date(2025, 8, 15), 1, date(2025, 8, 19)),
    ("pilkada-2020-holiday", CAL, date(2020, 12, 8), 1, date(2020, 12, 10)),
    ("cuti-bersama-excluded", CAL_NO_CUTI, date(2020, 12, 18), 4, date(2020, 12, 24)),
    ("zero-days-is-start", CAL, date(2020, 12, 19), 0, date(2020, 12, 19)),
    ("plain-week", PLAIN, date(2024, 1, 1), 5, date(2024, 1, 8)),
    ("plain-friday-plus-1", PLAIN, date(2024, 1, 5), 1, date(2024, 1, 8)),
    ("plain-sunday-plus-1", PLAIN, date(2024, 1, 7), 1, date(2024, 1, 8)),
]


@pytest.mark.parametrize(
    ("cal", "start", "n", "expected"), [pytest.param(*c[1:], id=c[0]) for c in ADD_CASES]
)
def test_add_working_days_known_answers(
    cal: WorkingCalendar, start: date, n: int, expected: date
) -> None:
    """Deadlines land on the hand-computed date around weekends, holidays and cuti bersama."""
    assert cal.add_working_days(start, n) == expected


BETWEEN_CASES = [
    ("same-day", date(2020, 12, 18), date(2020, 12, 18), 0),
    ("end-of-2020", date(2020, 12, 18), date(2021, 1, 5), 8),
    ("reversed-is-negative", date(2021, 1, 5), date(2020, 12, 18), -8),
    ("only-days-off", date(2020, 12, 24), date(2020, 12, 27), 0),
    ("start-excluded-end-included", date(2020, 12, 22), date(2020, 12, 23), 1),
    ("cut-cuti-bersama-are-working-days", date(2020, 12, 27), date(2020, 12, 30), 3),
]


@pytest.mark.parametrize(
    ("start", "end", "expected"), [pytest.param(*c[1:], id=c[0]) for c in BETWEEN_CASES]
)
def test_working_days_between_known_answers(start: date, end: date, expected: int) -> None:
    """Counting (start, end] gives the hand-computed number, negative when reversed."""
    assert CAL.working_days_between(start, end) == expected


@pytest.mark.parametrize(
    ("day", "working"),
    [
        pytest.param(date(2020, 12, 23), True, id="ordinary-wednesday"),
        pytest.param(date(2020, 12, 24), False, id="cuti-bersama"),
        pytest.param(date(2020, 12, 25), False, id="christmas"),
        pytest.param(date(2020, 12, 26), False, id="saturday"),
        pytest.param(date(2020, 12, 27), False, id="sunday"),
        pytest.param(date(2020, 12, 28), True, id="cuti-bersama-cut-in-dec-2020"),
        pytest.param(date(2020, 12, 31), False, id="cuti-bersama-kept-in-dec-2020"),
    ],
)
def test_is_working_day(day: date, working: bool) -> None:
    """Weekends and listed holidays are days off; the COVID-19 cuts are working days."""
    assert CAL.is_working_day(day) is working


def test_weekend_holidays_do_not_change_counts() -> None:
    """A holiday on a Saturday removes no working day."""
    with_saturday = WorkingCalendar([date(2024, 1, 6)])
    assert with_saturday.working_days_between(date(2024, 1, 1), date(2024, 1, 31)) == 22
    assert PLAIN.working_days_between(date(2024, 1, 1), date(2024, 1, 31)) == 22
    assert date(2024, 1, 6) in with_saturday.holidays


def test_large_n_is_fast_and_consistent() -> None:
    """A million working days is computed arithmetically and counts back exactly."""
    start = date(2020, 1, 1)
    end = CAL.add_working_days(start, 1_000_000)
    assert CAL.working_days_between(start, end) == 1_000_000
    assert CAL.is_working_day(end)


@pytest.mark.parametrize("n", [-1, 1.5, True, "3"], ids=["negative", "float", "bool", "str"])
def test_bad_n_is_refused(n: object) -> None:
    """n must be a non-negative int."""
    with pytest.raises(ValidationError):
        CAL.add_working_days(date(2024, 1, 1), n)  # type: ignore[arg-type]


def test_datetimes_are_refused_where_dates_are_expected() -> None:
    """Passing a datetime instead of a date is a ValidationError, not a silent mix."""
    instant = datetime(2024, 1, 1, 12, tzinfo=UTC)
    with pytest.raises(ValidationError, match="local_date"):
        CAL.add_working_days(instant, 1)
    with pytest.raises(ValidationError):
        CAL.working_days_between(date(2024, 1, 1), instant)
    with pytest.raises(ValidationError):
        WorkingCalendar([instant])


LOCAL_CASES = [
    ("jakarta-same-day", "Asia/Jakarta", date(2024, 1, 1)),
    ("pontianak-same-day", "Asia/Pontianak", date(2024, 1, 1)),
    ("makassar-next-day", "Asia/Makassar", date(2024, 1, 2)),
    ("jayapura-next-day", "Asia/Jayapura", date(2024, 1, 2)),
    ("utc", "UTC", date(2024, 1, 1)),
]


@pytest.mark.parametrize(("tz", "expected"), [pytest.param(*c[1:], id=c[0]) for c in LOCAL_CASES])
def test_local_date_across_indonesian_zones(tz: str, expected: date) -> None:
    """16:30 UTC is 23:30 WIB (same day) but 00:30 WITA and 01:30 WIT (next day)."""
    assert local_date(datetime(2024, 1, 1, 16, 30, tzinfo=UTC), tz) == expected


def test_local_date_accepts_any_aware_datetime() -> None:
    """An aware datetime with a fixed offset converts like its UTC equivalent."""
    plus_nine = datetime(2024, 1, 2, 1, 30, tzinfo=timezone(timedelta(hours=9)))
    assert local_date(plus_nine, "Asia/Jakarta") == date(2024, 1, 1)


def test_local_date_refuses_naive_datetimes() -> None:
    """A naive datetime is a ValidationError: its wall-clock date is unknown."""
    with pytest.raises(ValidationError, match="naive"):
        local_date(datetime(2024, 1, 1, 12), "Asia/Jakarta")


def test_local_date_refuses_unknown_zones() -> None:
    """An unknown zone name is a ConfigError that suggests the Indonesian zones."""
    for zone in ("Asia/Bandung", "America", "9" * 400):  # a folder, too long a name
        with pytest.raises(ConfigError, match="Asia/Jakarta"):
            local_date(datetime(2024, 1, 1, tzinfo=UTC), zone)


def test_indonesian_zones_are_known_to_the_system() -> None:
    """All four Indonesian tz database zones resolve on this machine."""
    for tz in INDONESIAN_TIME_ZONES:
        local_date(datetime(2024, 1, 1, tzinfo=UTC), tz)


# --- properties -----------------------------------------------------------------------

days = st.dates(min_value=date(2019, 6, 1), max_value=date(2028, 6, 30))
holiday_sets = st.frozensets(st.dates(date(2019, 1, 1), date(2029, 12, 31)), max_size=80)


def _naive_add(holidays: frozenset[date], start: date, n: int) -> date:
    d, counted = start, 0
    while counted < n:
        d += timedelta(days=1)
        if d.weekday() < 5 and d not in holidays:
            counted += 1
    return d


def _naive_between(holidays: frozenset[date], start: date, end: date) -> int:
    sign = 1
    if end < start:
        start, end, sign = end, start, -1
    count = 0
    d = start
    while d < end:
        d += timedelta(days=1)
        count += d.weekday() < 5 and d not in holidays
    return sign * count


@given(holiday_sets, days, st.integers(0, 300))
def test_add_matches_day_by_day_reference(holidays: frozenset[date], start: date, n: int) -> None:
    """The arithmetic add_working_days equals a day-by-day count."""
    assert WorkingCalendar(holidays).add_working_days(start, n) == _naive_add(holidays, start, n)


@given(holiday_sets, days, days)
def test_between_matches_day_by_day_reference(
    holidays: frozenset[date], start: date, end: date
) -> None:
    """The arithmetic working_days_between equals a day-by-day count, sign included."""
    cal = WorkingCalendar(holidays)
    assert cal.working_days_between(start, end) == _naive_between(holidays, start, end)


@given(days, st.integers(0, 2000))
def test_between_inverts_add(start: date, n: int) -> None:
    """working_days_between(start, add_working_days(start, n)) == n."""
    end = CAL.add_working_days(start, n)
    assert CAL.working_days_between(start, end) == n
    if n > 0:
        assert CAL.is_working_day(end)
        assert end > start


@given(days, days)
def test_add_inverts_between_on_working_days(start: date, end: date) -> None:
    """For a working day end after start, add_working_days(start, between) == end."""
    n = CAL.working_days_between(start, end)
    if end > start and CAL.is_working_day(end):
        assert CAL.add_working_days(start, n) == end
    assert CAL.working_days_between(end, start) == -n


@given(days, st.integers(0, 500))
def test_add_is_strictly_increasing_in_n(start: date, n: int) -> None:
    """One more working day always gives a later date."""
    assert CAL.add_working_days(start, n + 1) > CAL.add_working_days(start, n)
