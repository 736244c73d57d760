"""Indonesia's public holidays and cuti bersama, from the packaged data file.

Invariants:

1. The data is read only from ``node/workflow/data/holidays-id.yaml`` inside the package
   (importlib.resources), parsed once, and checked before use: every entry is a date in a
   year that has a ``sources`` entry, with a name and a known kind; no date appears twice.
   A file that breaks these rules is a ConfigError naming the entry.
2. ``load_holidays`` refuses years the file does not cover rather than returning fewer
   holidays than exist: a missing year would silently move every deadline in it.
3. Operator overrides (``extra``, ``removed``, from node.yaml) are applied last. Removing
   a date that is not a packaged holiday, or both adding and removing one date, is a
   ConfigError: both are almost always typos in node.yaml.

This is the only I/O in node.workflow, and it reads package data, not the filesystem.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from importlib import resources
from types import MappingProxyType

import yaml

from node.errors import ConfigError

__all__ = [
    "DATA_FILE",
    "Holiday",
    "HolidayKind",
    "covered_years",
    "holiday_entries",
    "holiday_sources",
    "load_holidays",
]

DATA_FILE = "data/holidays-id.yaml"


class HolidayKind(StrEnum):
    """A national holiday (Keppres/SKB), or collective leave taken on a weekday."""

    libur_nasional = "libur_nasional"
    cuti_bersama = "cuti_bersama"


_KINDS = frozenset(k.value for k in HolidayKind)


@dataclass(frozen=True, slots=True)
class Holiday:
    """One day off, as the data file lists it."""

    day: date
    name: str
    kind: HolidayKind
    tentative: bool = False


@dataclass(frozen=True, slots=True)
class _Data:
    entries: tuple[Holiday, ...]
    sources: Mapping[int, tuple[str, ...]]


def _fail(where: str, problem: str) -> ConfigError:
    return ConfigError(f"packaged holiday data {DATA_FILE}: {where}: {problem}")


def _parse_sources(raw: object) -> dict[int, tuple[str, ...]]:
    if not isinstance(raw, list):
        raise _fail("sources", f"expected a list, found {type(raw).__name__}")
    sources: dict[int, tuple[str, ...]] = {}
    for i, item in enumerate(raw):
        where = f"sources[{i}]"
        if not isinstance(item, dict):
            raise _fail(where, "expected a mapping with year and decrees")
        year, decrees = item.get("year"), item.get("decrees")
        if isinstance(year, bool) or not isinstance(year, int):
            raise _fail(where, f"year must be an int, found {year!r}")
        if not isinstance(decrees, list) or not all(isinstance(d, str) for d in decrees):
            raise _fail(where, "decrees must be a list of strings")
        if year in sources:
            raise _fail(where, f"year {year} listed twice")
        sources[year] = tuple(decrees)
    return sources


def _parse_entry(i: int, item: object, years: Collection[int]) -> Holiday:
    where = f"holidays[{i}]"
    if not isinstance(item, dict):
        raise _fail(where, "expected a mapping with date, name and kind")
    unknown = set(item) - {"date", "name", "kind", "tentative"}
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)}")
    day, name, kind = item.get("date"), item.get("name"), item.get("kind")
    tentative = item.get("tentative", False)
    if not isinstance(day, date) or isinstance(day, datetime):
        raise _fail(where, f"date must be an ISO date (YYYY-MM-DD), found {day!r}")
    if day.year not in years:
        raise _fail(where, f"{day} is in a year with no sources entry")
    if not isinstance(name, str) or not name.strip():
        raise _fail(where, f"{day}: name must be a non-empty string")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise _fail(where, f"{day}: kind must be one of {[k.value for k in HolidayKind]}")
    if not isinstance(tentative, bool):
        raise _fail(where, f"{day}: tentative must be true or false")
    return Holiday(day=day, name=name, kind=HolidayKind(kind), tentative=tentative)


@functools.cache
def _data() -> _Data:
    text = resources.files("node.workflow").joinpath(DATA_FILE).read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise _fail("file", f"not valid YAML ({e})") from e
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise _fail("file", "expected a mapping with version: 1")
    sources = _parse_sources(doc.get("sources"))
    raw = doc.get("holidays")
    if not isinstance(raw, list):
        raise _fail("holidays", "expected a list")
    entries = tuple(_parse_entry(i, item, sources) for i, item in enumerate(raw))
    seen: set[date] = set()
    for h in entries:
        if h.day in seen:
            raise _fail("holidays", f"{h.day} is listed twice; merge coinciding holidays")
        seen.add(h.day)
    return _Data(
        entries=tuple(sorted(entries, key=lambda h: h.day)),
        sources=MappingProxyType(sources),
    )


def covered_years() -> frozenset[int]:
    """The years the packaged data describes (each has a sources entry)."""
    return frozenset(_data().sources)


def holiday_sources() -> Mapping[int, tuple[str, ...]]:
    """The decrees each year's list was compiled from, by year."""
    return _data().sources


def _select_years(years: Iterable[int] | None) -> frozenset[int]:
    covered = covered_years()
    if years is None:
        return covered
    wanted = frozenset(years)
    missing = sorted(wanted - covered)
    if missing:
        raise ConfigError(
            f"no packaged holiday data for {', '.join(map(str, missing))} "
            f"(covered: {min(covered)}-{max(covered)}); list that year's holidays "
            "in node.yaml and load only covered years from the package"
        )
    return wanted


def holiday_entries(years: Iterable[int] | None = None) -> tuple[Holiday, ...]:
    """The packaged entries for ``years`` (all covered years if None), sorted by date."""
    chosen = _select_years(years)
    return tuple(h for h in _data().entries if h.day.year in chosen)


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
    packaged = {h.day for h in _data().entries}
    unknown = sorted(removed_days - packaged)
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
