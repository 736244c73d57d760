"""The calendar from the `holidays` package against the hand-written table it replaced
(tests/unit/workflow/data/holidays-id-2020-2027.yaml, as shipped until decision 0022).

Every date on which the two disagree for 2020-2027 is listed in DIFFERENCES with the
reason, and docs/decisions/0022-calendar-from-holidays.md explains each: a new release of
the package that moves a date fails here until the record and this list say why."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import yaml

from node.workflow.calendar import WorkingCalendar
from node.workflow.holidays import HolidayKind, holiday_entries, load_holidays

TABLE = Path(__file__).parent / "data" / "holidays-id-2020-2027.yaml"
YEARS = range(2020, 2028)
DECISION = Path(__file__).parents[3] / "docs" / "decisions" / "0022-calendar-from-holidays.md"

# Dates off in the package but not in the table, with their kind in the package. The
# table was written before the SKB for 2027 (cuti bersama) was published; Isra Mikraj
# 1449 H falls on Sunday 26 December 2027 (the table expected the 25th and left it out).
ONLY_IN_PACKAGE: dict[date, HolidayKind] = {
    date(2027, 2, 5): HolidayKind.cuti_bersama,  # Imlek
    date(2027, 3, 9): HolidayKind.cuti_bersama,  # Idul Fitri
    date(2027, 3, 12): HolidayKind.cuti_bersama,  # Idul Fitri
    date(2027, 3, 15): HolidayKind.cuti_bersama,  # Idul Fitri
    date(2027, 3, 25): HolidayKind.cuti_bersama,  # Wafat Yesus Kristus
    date(2027, 5, 18): HolidayKind.cuti_bersama,  # Idul Adha
    date(2027, 5, 19): HolidayKind.cuti_bersama,  # Waisak
    date(2027, 12, 24): HolidayKind.cuti_bersama,  # Natal
    date(2027, 12, 26): HolidayKind.libur_nasional,  # Isra Mikraj 1449 H (a Sunday)
}
# Dates off in the table but not in the package: none.
ONLY_IN_TABLE: dict[date, HolidayKind] = {}


def _table() -> dict[str, object]:
    doc = yaml.safe_load(TABLE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def _table_days() -> dict[date, HolidayKind]:
    raw = _table()["holidays"]
    assert isinstance(raw, list)
    return {item["date"]: HolidayKind(item["kind"]) for item in raw}


def _package_days() -> dict[date, HolidayKind]:
    return {h.day: h.kind for h in holiday_entries(YEARS)}


def test_table_lists_entries_in_date_order() -> None:
    """The reference file is chronological, so each date sits in its own year's section."""
    raw = _table()["holidays"]
    assert isinstance(raw, list)
    dates = [item["date"] for item in raw]
    assert dates == sorted(dates)
    assert all(isinstance(d, date) for d in dates)


def test_table_lists_no_date_twice() -> None:
    """Coinciding holidays share one entry, so no date repeats in the reference file."""
    raw = _table()["holidays"]
    assert isinstance(raw, list)
    counts = Counter(item["date"] for item in raw)
    assert [d for d, n in counts.items() if n > 1] == []


def test_table_sources_name_the_decrees() -> None:
    """The table cites its SKB for every year up to 2026 and none for 2027."""
    raw = _table()["sources"]
    assert isinstance(raw, list)
    sources = {item["year"]: item["decrees"] for item in raw}
    for year in range(2020, 2027):
        assert any("SKB" in d for d in sources[year]), year
    assert any("744 Tahun 2020" in d for d in sources[2020])
    assert sources[2027] == []


def test_table_had_no_cuti_bersama_for_2027() -> None:
    """No 2027 SKB was known when the table was written, so it listed no leave for 2027."""
    assert [
        d for d, k in _table_days().items() if d.year == 2027 and k.name == "cuti_bersama"
    ] == []


def test_package_and_table_differ_only_where_explained() -> None:
    """2020-2027: the package's dates off are the table's, except the explained ones."""
    package, table = _package_days(), _table_days()
    only_package = {d: k for d, k in package.items() if d not in table}
    only_table = {d: k for d, k in table.items() if d not in package}
    assert only_package == ONLY_IN_PACKAGE
    assert only_table == ONLY_IN_TABLE


def test_package_and_table_agree_on_kinds() -> None:
    """On every date both list, both call it a libur nasional or both cuti bersama."""
    package, table = _package_days(), _table_days()
    assert {
        d: (package[d], table[d]) for d in package.keys() & table.keys() if package[d] != table[d]
    } == {}


@pytest.mark.parametrize("year", YEARS)
def test_working_days_per_year(year: int) -> None:
    """The working days each year counts differ only by the explained weekday dates."""
    start, end = date(year - 1, 12, 31), date(year, 12, 31)
    package = WorkingCalendar(load_holidays([year])).working_days_between(start, end)
    table = WorkingCalendar(d for d in _table_days() if d.year == year).working_days_between(
        start, end
    )
    explained = sum(1 for d in ONLY_IN_PACKAGE if d.year == year and d.weekday() < 5)
    assert table - package == explained


def test_decision_record_explains_every_difference() -> None:
    """docs/decisions/0022 names every date on which the package and the table differ."""
    text = DECISION.read_text(encoding="utf-8")
    for day in [*ONLY_IN_PACKAGE, *ONLY_IN_TABLE]:
        assert day.isoformat() in text, day
