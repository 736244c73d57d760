"""Indonesia's holidays from the `holidays` package, and the loader's overrides.

The facts checked here (fixed holidays, Easter, the amendments of 2020-2023) held for the
hand-written table this module used to ship, and hold for the package; the table itself
is compared with the package in test_holidays_reference.py."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest

from node.errors import ConfigError
from node.workflow.holidays import (
    HolidayKind,
    covered_years,
    holiday_entries,
    holiday_sources,
    load_holidays,
)

YEARS = range(2020, 2028)
ALL_ENTRIES = holiday_entries()
ENTRIES = holiday_entries(YEARS)  # the old table's years, where its facts were checked
BY_DATE = {h.day: h for h in ENTRIES}


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * l_) // 433
    month = (h + l_ - 7 * m + 90) // 25
    day = (h + l_ - 7 * m + 33 * month + 19) % 32
    return date(year, month, day)


def test_easter_helper_known_dates() -> None:
    """The computus used below gives the known Easter Sundays."""
    assert _easter(2020) == date(2020, 4, 12)
    assert _easter(2024) == date(2024, 3, 31)
    assert _easter(2027) == date(2027, 3, 28)


def test_covers_from_2020_to_the_packages_last_year() -> None:
    """The old table's 2020-2027 and the package's years after it are covered; 2019 and
    earlier are not (never checked against the decrees)."""
    years = covered_years()
    assert min(years) == 2020
    assert years >= set(range(2020, 2101))
    assert {h.day.year for h in ALL_ENTRIES} == set(years)
    with pytest.raises(ConfigError, match="2019"):
        load_holidays([2019])


def test_entries_in_date_order_no_date_twice() -> None:
    """Entries come in date order, coinciding holidays sharing one entry."""
    days = [h.day for h in ALL_ENTRIES]
    assert days == sorted(days)
    assert [d for d, n in Counter(days).items() if n > 1] == []


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize(
    ("month", "day"),
    [(1, 1), (5, 1), (6, 1), (8, 17), (12, 25)],
    ids=["tahun-baru", "hari-buruh", "pancasila", "kemerdekaan", "natal"],
)
def test_fixed_national_holidays_present(year: int, month: int, day: int) -> None:
    """1 Jan, 1 May, 1 Jun (Pancasila, since 2017), 17 Aug and 25 Dec are listed every year."""
    entry = BY_DATE.get(date(year, month, day))
    assert entry is not None
    assert entry.kind is HolidayKind.libur_nasional
    assert not entry.tentative


@pytest.mark.parametrize("year", YEARS)
def test_christian_movable_holidays_follow_easter(year: int) -> None:
    """Good Friday and Ascension (and Easter Sunday from 2024) sit where Easter puts them."""
    easter = _easter(year)
    assert easter - timedelta(days=2) in BY_DATE
    assert easter + timedelta(days=39) in BY_DATE
    assert (easter in BY_DATE) == (year >= 2024)


@pytest.mark.parametrize("year", YEARS)
def test_yearly_totals_are_plausible(year: int) -> None:
    """Each year has 15-20 libur nasional and at most 30 days off in all."""
    kinds = Counter(h.kind for h in ENTRIES if h.day.year == year)
    assert 15 <= kinds[HolidayKind.libur_nasional] <= 20
    assert kinds[HolidayKind.cuti_bersama] <= 12
    assert 16 <= sum(kinds.values()) <= 30


def test_cuti_bersama_fall_on_weekdays() -> None:
    """Collective leave is only ever declared on a weekday."""
    assert [
        h.day for h in ENTRIES if h.kind is HolidayKind.cuti_bersama and h.day.weekday() > 4
    ] == []


REMOVED_BY_AMENDMENT = [
    ("2020-idul-fitri-cuti-moved", date(2020, 5, 22)),
    ("2020-idul-fitri-cuti-26-may", date(2020, 5, 26)),
    ("2020-idul-fitri-cuti-27-may", date(2020, 5, 27)),
    ("2020-idul-fitri-cuti-28-may", date(2020, 5, 28)),
    ("2020-idul-fitri-cuti-29-may", date(2020, 5, 29)),
    ("2020-dec-cut-28", date(2020, 12, 28)),
    ("2020-dec-cut-29", date(2020, 12, 29)),
    ("2020-dec-cut-30", date(2020, 12, 30)),
    ("2021-isra-mikraj-cuti-cut", date(2021, 3, 12)),
    ("2021-idul-fitri-cuti-cut-17", date(2021, 5, 17)),
    ("2021-idul-fitri-cuti-cut-18", date(2021, 5, 18)),
    ("2021-idul-fitri-cuti-cut-19", date(2021, 5, 19)),
    ("2021-natal-cuti-cut-24", date(2021, 12, 24)),
    ("2021-natal-cuti-cut-27", date(2021, 12, 27)),
    ("2021-tahun-baru-islam-moved-from", date(2021, 8, 10)),
    ("2021-maulid-moved-from", date(2021, 10, 19)),
    ("2022-idul-adha-moved-from", date(2022, 7, 9)),
    ("2023-idul-fitri-cuti-26-apr-moved", date(2023, 4, 26)),
]


@pytest.mark.parametrize("day", [pytest.param(d, id=i) for i, d in REMOVED_BY_AMENDMENT])
def test_amendments_removed_days(day: date) -> None:
    """Days that a later SKB amendment cut or moved are working days in the data."""
    assert day not in BY_DATE


KEPT_OR_ADDED = [
    ("2020-tahun-baru-islam-cuti", date(2020, 8, 21), HolidayKind.cuti_bersama),
    ("2020-maulid-cuti-28-oct", date(2020, 10, 28), HolidayKind.cuti_bersama),
    ("2020-maulid-cuti-30-oct", date(2020, 10, 30), HolidayKind.cuti_bersama),
    ("2020-pilkada", date(2020, 12, 9), HolidayKind.libur_nasional),
    ("2020-natal-cuti", date(2020, 12, 24), HolidayKind.cuti_bersama),
    ("2020-idul-fitri-replacement-kept", date(2020, 12, 31), HolidayKind.cuti_bersama),
    ("2021-idul-fitri-cuti-kept", date(2021, 5, 12), HolidayKind.cuti_bersama),
    ("2021-tahun-baru-islam-moved-to", date(2021, 8, 11), HolidayKind.libur_nasional),
    ("2021-maulid-moved-to", date(2021, 10, 20), HolidayKind.libur_nasional),
    ("2022-idul-adha-moved-to", date(2022, 7, 10), HolidayKind.libur_nasional),
    ("2023-idul-adha-cuti-added", date(2023, 6, 28), HolidayKind.cuti_bersama),
    ("2024-pemilu", date(2024, 2, 14), HolidayKind.libur_nasional),
    ("2024-pilkada", date(2024, 11, 27), HolidayKind.libur_nasional),
    ("2025-hut-ri-80-cuti-added", date(2025, 8, 18), HolidayKind.cuti_bersama),
    ("2026-idul-fitri-confirmed", date(2026, 3, 21), HolidayKind.libur_nasional),
]


@pytest.mark.parametrize(("day", "kind"), [pytest.param(d, k, id=i) for i, d, k in KEPT_OR_ADDED])
def test_amendments_kept_or_added_days(day: date, kind: HolidayKind) -> None:
    """Days that the amendments and Keppres kept or added are listed with their kind."""
    assert BY_DATE[day].kind is kind


def test_2020_december_matches_the_fourth_amendment() -> None:
    """After SKB 744/2020 late December 2020 has days off on 24, 25 and 31 only."""
    december = sorted(d for d in BY_DATE if d >= date(2020, 12, 20) and d.year == 2020)
    assert december == [date(2020, 12, 24), date(2020, 12, 25), date(2020, 12, 31)]


def test_tentative_entries_are_the_packages_estimates() -> None:
    """Dates the package only estimates are tentative and say so (perkiraan); 2020-2026 is
    settled, and in 2027 only the two Idul Fitri days and Idul Adha are not."""
    tentative = [h for h in ALL_ENTRIES if h.tentative]
    assert all("perkiraan" in h.name for h in tentative)
    assert not any("perkiraan" in h.name for h in ALL_ENTRIES if not h.tentative)
    assert [h.day for h in tentative if h.day.year in YEARS] == [
        date(2027, 3, 10),
        date(2027, 3, 11),
        date(2027, 5, 17),
    ]
    assert any(h.day.year == 2040 for h in tentative)
    assert not [
        h for h in ALL_ENTRIES if h.kind is HolidayKind.cuti_bersama and h.day.weekday() > 4
    ]


@pytest.mark.parametrize("year", [2028, 2035, 2050])
def test_years_beyond_the_old_table(year: int) -> None:
    """Years past 2027 have their fixed and Easter-based holidays, and no invented leave."""
    days = load_holidays([year])
    for month, day in [(1, 1), (5, 1), (6, 1), (8, 17), (12, 25)]:
        assert date(year, month, day) in days
    easter = _easter(year)
    assert {easter - timedelta(days=2), easter, easter + timedelta(days=39)} <= days
    national = load_holidays([year], include_collective_leave=False)
    assert national == days  # no cuti bersama before its SKB is published
    assert 15 <= len(days) <= 20


def test_sources_name_the_package() -> None:
    """Each covered year names the package and version its list comes from."""
    sources = holiday_sources()
    assert set(sources) == set(covered_years())
    assert all("holidays" in s and "Indonesia" in s for s in sources[2027])


def test_load_all_years_with_and_without_cuti_bersama() -> None:
    """load_holidays returns every entry, or only libur nasional when asked."""
    everything = load_holidays()
    national = load_holidays(include_collective_leave=False)
    assert everything == {h.day for h in ALL_ENTRIES}
    assert national == {h.day for h in ALL_ENTRIES if h.kind is HolidayKind.libur_nasional}
    assert date(2020, 12, 24) in everything - national


def test_load_selected_years() -> None:
    """years limits the packaged data to those years."""
    days = load_holidays([2021])
    assert days and {d.year for d in days} == {2021}
    assert load_holidays([]) == frozenset()


def test_uncovered_year_is_refused() -> None:
    """Asking for a year the package does not know is a ConfigError, not a silent empty
    set; 2031 (past the old table) is covered."""
    assert load_holidays([2026, 2031])
    beyond = max(covered_years()) + 1
    with pytest.raises(ConfigError, match=str(beyond)):
        load_holidays([2026, beyond])


def test_overrides_add_and_remove() -> None:
    """extra dates are added and removed dates dropped, after the packaged data."""
    extra = date(2026, 12, 31)
    days = load_holidays([2026], extra=[extra], removed=[date(2026, 5, 28)])
    assert extra in days
    assert date(2026, 5, 28) not in days
    assert date(2026, 5, 27) in days


@pytest.mark.parametrize(
    ("extra", "removed", "message"),
    [
        pytest.param([date(2026, 5, 28)], [date(2026, 5, 28)], "both", id="add-and-remove"),
        pytest.param([], [date(2026, 5, 29)], "not a packaged holiday", id="remove-unknown"),
        pytest.param(["2026-12-31"], [], "not a date", id="string-date"),
    ],
)
def test_bad_overrides_are_refused(extra: list[date], removed: list[date], message: str) -> None:
    """Contradictory or mistyped node.yaml overrides are ConfigErrors."""
    with pytest.raises(ConfigError, match=message):
        load_holidays(extra=extra, removed=removed)
