"""The figures a unit is judged by (DESIGN.md, "The domain"; docs/reports.md), computed from
plain facts about complaints. Pure: no clock, no database.

Invariants:

1. Every complaint counted is ``received``. It is ``followed_up`` when its status is
   in_progress, resolved or closed, and ``resolved`` when resolved or closed (a closed
   complaint was resolved and the reply period ran out); ``not_followed_up`` is
   ``received - followed_up``. So ``followed_up = in_progress + resolved``.
2. A share is (count, of, percent). The percent has one decimal, rounded half up
   (19 of 21 is 90.476... -> 90.5); 0 of 0 is 0.0. Every surface (table, JSON, CSV,
   dashboard) shows this same number; none re-rounds it.
3. Medians are over the complaints that have the date, in working days, and are None
   when none has; the median of an even count is the mean of the middle two (x.5).
4. Tallies accumulate one complaint at a time (``Tally.add``), so a caller can stream
   rows from the database; only the working-day durations are kept, for the medians.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from node.workflow.lifecycle import Status

__all__ = [
    "FOLLOWED_UP",
    "OPEN",
    "RESOLVED",
    "ComplaintFacts",
    "Figures",
    "Share",
    "Tally",
    "percent",
]

FOLLOWED_UP = frozenset({Status.in_progress, Status.resolved, Status.closed})
RESOLVED = frozenset({Status.resolved, Status.closed})
# Still waiting for someone: everything but resolved, closed and archived.
OPEN = frozenset(Status) - RESOLVED - {Status.archived}


def percent(count: int, of: int) -> float:
    """``count / of`` as a percent with one decimal, rounded half up; 0.0 when ``of`` is 0."""
    if count < 0 or of < 0 or count > of:
        raise ValueError(f"expected 0 <= count <= of, found count {count}, of {of}")
    if of == 0:
        return 0.0
    exact = Decimal(count * 100) / Decimal(of)
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class Share:
    """``count`` of ``of`` as a percent (invariant 2)."""

    count: int
    of: int
    percent: float

    @classmethod
    def of_total(cls, count: int, total: int) -> Share:
        return cls(count, total, percent(count, total))

    def __str__(self) -> str:
        return f"{self.percent:.1f}% ({self.count}/{self.of})"


@dataclass(frozen=True, slots=True)
class ComplaintFacts:
    """What the figures need of one complaint; nothing personal, nothing free-text.

    ``verified``: it passed verification (here or on the way). ``referred``: this node
    disposed it to a child. ``overdue``: it has a missed deadline now. The day counts are
    working days from submission to the first follow-up and to the resolution, where those
    happened.
    """

    status: Status
    verified: bool = False
    referred: bool = False
    overdue: bool = False
    days_to_follow_up: int | None = None
    days_to_resolution: int | None = None
    month: int = 1  # 1..12, of the submission


@dataclass(frozen=True, slots=True)
class Figures:
    """The counts and shares of one node or one child subtree for one year."""

    received: int
    verified: int
    referred: int
    followed_up: int
    in_progress: int
    resolved: int
    not_followed_up: int
    overdue: int
    follow_up_share: Share
    resolved_share: Share
    median_days_to_follow_up: float | None
    median_days_to_resolution: float | None
    by_status: dict[str, int]
    by_month: tuple[int, ...]  # received per month, January first


def _median(values: list[int]) -> float | None:
    return float(statistics.median(values)) if values else None


@dataclass(slots=True)
class Tally:
    """Accumulates ComplaintFacts into Figures (invariant 4)."""

    received: int = 0
    verified: int = 0
    referred: int = 0
    overdue: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_month: list[int] = field(default_factory=lambda: [0] * 12)
    _to_follow_up: list[int] = field(default_factory=list)
    _to_resolution: list[int] = field(default_factory=list)

    def add(self, facts: ComplaintFacts) -> None:
        if not 1 <= facts.month <= 12:
            raise ValueError(f"expected a month in 1..12, found {facts.month}")
        status = Status(facts.status)
        self.received += 1
        self.verified += facts.verified
        self.referred += facts.referred
        self.overdue += facts.overdue
        self.by_status[status.value] = self.by_status.get(status.value, 0) + 1
        self.by_month[facts.month - 1] += 1
        if facts.days_to_follow_up is not None and status in FOLLOWED_UP:
            self._to_follow_up.append(facts.days_to_follow_up)
        if facts.days_to_resolution is not None and status in RESOLVED:
            self._to_resolution.append(facts.days_to_resolution)

    def _count(self, statuses: frozenset[Status]) -> int:
        return sum(self.by_status.get(s.value, 0) for s in statuses)

    def figures(self) -> Figures:
        followed_up = self._count(FOLLOWED_UP)
        resolved = self._count(RESOLVED)
        return Figures(
            received=self.received,
            verified=self.verified,
            referred=self.referred,
            followed_up=followed_up,
            in_progress=self.by_status.get(Status.in_progress.value, 0),
            resolved=resolved,
            not_followed_up=self.received - followed_up,
            overdue=self.overdue,
            follow_up_share=Share.of_total(followed_up, self.received),
            resolved_share=Share.of_total(resolved, self.received),
            median_days_to_follow_up=_median(self._to_follow_up),
            median_days_to_resolution=_median(self._to_resolution),
            by_status=dict(sorted(self.by_status.items())),
            by_month=tuple(self.by_month),
        )
