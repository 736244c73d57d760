"""Indonesia's public holidays and cuti bersama, from the `holidays` package.

Invariants:

1. The days off come from `holidays` (python-holidays, Indonesia): its ``public``
   category gives the libur nasional (national holidays and the election days made
   holidays by Keppres), its ``government`` category the cuti bersama (collective leave of
   the SKB 3 Menteri). A date in both is a libur nasional. The package is updated every
   year as decrees are published; upgrading it is how a new year's list arrives.
   docs/decisions/0022-calendar-from-holidays.md compares it with the table this module
   used to ship (2020-2027) and explains every difference.
2. The years covered (``covered_years``) run from FIRST_YEAR, the first the project
   checked against the decrees, to the package's last; a year outside them is a
   ConfigError rather than fewer holidays than exist: a missing year would silently move
   every deadline in it. Dates the package only estimates (Hijri and lunar holidays past
   the last confirmed year) are ``tentative``.
3. Operator overrides (``extra``, ``removed``, from node.yaml) are applied last. Removing
   a date that is not a packaged holiday, or both adding and removing one date, is a
   ConfigError: both are almost always typos in node.yaml.

Pure: the package computes the dates; nothing here reads a clock, a file or the network.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType

from holidays.countries.indonesia import Indonesia

from node.errors import ConfigError

__all__ = [
    "FIRST_YEAR",
    "Holiday",
    "HolidayKind",
    "covered_years",
    "holiday_entries",
    "holiday_sources",
    "load_holidays",
]

_LANGUAGE = "id"  # names as the decrees give them
FIRST_YEAR = 2020
"""No complaint of a lapor-node predates it, and the package's earlier years were never
checked against the decrees here (docs/decisions/0022-calendar-from-holidays.md)."""


class HolidayKind(StrEnum):
    """A national holiday (Keppres/SKB), or collective leave taken on a weekday."""

    libur_nasional = "libur_nasional"
    cuti_bersama = "cuti_bersama"


@dataclass(frozen=True, slots=True)
class Holiday:
    """One day off, as the package lists it (coinciding holidays share one entry)."""

    day: date
    name: str
    kind: HolidayKind
    tentative: bool = False


@functools.cache
def covered_years() -> frozenset[int]:
    """The years the calendar covers: FIRST_YEAR to the package's last for Indonesia."""
    return frozenset(range(max(FIRST_YEAR, Indonesia.start_year), Indonesia.end_year + 1))


@functools.cache
def _by_year() -> Mapping[int, tuple[Holiday, ...]]:
    # One instance per category for every covered year at once: building one per year
    # costs ten times as much.
    years = sorted(covered_years())
    public = Indonesia(years=years, categories=("public",), language=_LANGUAGE)
    government = Indonesia(years=years, categories=("government",), language=_LANGUAGE)
    estimated = public.tr(public.estimated_label) % ""  # " (perkiraan)"
    by_year: dict[int, list[Holiday]] = {year: [] for year in years}
    for day in sorted(set(public) | set(government)):
        if day in public:
            name, kind = public[day], HolidayKind.libur_nasional
        else:
            name, kind = government[day], HolidayKind.cuti_bersama
        by_year[day.year].append(Holiday(day, name, kind, tentative=estimated in name))
    return MappingProxyType({year: tuple(entries) for year, entries in by_year.items()})


def holiday_sources() -> Mapping[int, tuple[str, ...]]:
    """Where each covered year's list comes from, by year: the package and its version."""
    source = (
        f"holidays {importlib.metadata.version('holidays')} (python-holidays), Indonesia: "
        "categories public (libur nasional) and government (cuti bersama)",
    )
    return MappingProxyType(dict.fromkeys(sorted(covered_years()), source))


def _select_years(years: Iterable[int] | None) -> frozenset[int]:
    covered = covered_years()
    if years is None:
        return covered
    wanted = frozenset(years)
    missing = sorted(wanted - covered)
    if missing:
        raise ConfigError(
            f"no holiday data for {', '.join(map(str, missing))} "
            f"(covered: {min(covered)}-{max(covered)}); list that year's holidays "
            "in node.yaml and load only covered years from the package"
        )
    return wanted


def holiday_entries(years: Iterable[int] | None = None) -> tuple[Holiday, ...]:
    """The packaged entries for ``years`` (all covered years if None), sorted by date."""
    data = _by_year()
    return tuple(h for year in sorted(_select_years(years)) for h in data[year])


@functools.cache
def _all_days() -> frozenset[date]:
    return frozenset(h.day for h in holiday_entries())


def load_holidays(
    years: Iterable[int] | None = None,
    *,
    include_collective_leave: bool = True,
    extra: Iterable[date] = (),
    removed: Iterable[date] = (),
) -> frozenset[date]:
    """The set of non-working dates to build a WorkingCalendar from.

    ``years`` limits the packaged data (None: every covered year; an uncovered year is a
    ConfigError). ``include_collective_leave`` keeps cuti bersama days, which government
    offices observe. ``extra`` and ``removed`` are the operator's node.yaml corrections,
    applied last; removing a date that is not a packaged holiday, or adding and removing
    the same date, is a ConfigError.
    """
    extra_days = frozenset(extra)
    removed_days = frozenset(removed)
    for d in extra_days | removed_days:
        if not isinstance(d, date) or isinstance(d, datetime):
            raise ConfigError(f"holiday override {d!r} is not a date (YYYY-MM-DD)")
    both = sorted(extra_days & removed_days)
    if both:
        raise ConfigError(
            f"holiday override lists {', '.join(map(str, both))} as both added and removed"
        )
    unknown = sorted(removed_days - _all_days())
    if unknown:
        raise ConfigError(
            f"cannot remove {', '.join(map(str, unknown))}: not a packaged holiday "
            "(check the date in node.yaml)"
        )
    days = {
        h.day
        for h in holiday_entries(years)
        if include_collective_leave or h.kind is HolidayKind.libur_nasional
    }
    return frozenset((days - removed_days) | extra_days)
