"""Service-level deadlines in working days, and which of them a complaint has missed.

Invariants:

1. The numbers live in ``DeadlinePolicy`` (defaults from DESIGN.md, overridden by the
   ``deadlines:`` mapping of node.yaml); no other module holds a deadline constant.
2. A deadline of n working days from day D falls on ``cal.add_working_days(D, n)``: D
   itself never counts. Acting on the due date is on time; a deadline is missed once
   ``today`` is after the due date.
3. Nothing here reads a clock: callers pass ``today`` (the node's local date, see
   ``calendar.local_date``) and the dates the clocks started.

The clocks:

- verify: from receipt (or from the reporter's reply, after a hold), while ``submitted``.
  A ``held`` complaint waits for the reporter, so no clock runs.
- first follow-up and resolve: from the disposition, i.e. the (latest) referral or, when
  the holder handles the complaint itself, its verification. First follow-up applies
  while ``verified``, ``referred`` or ``accepted``; resolve while any of those or
  ``in_progress``.
- auto-close: ``auto_close`` working days after ``resolved`` with no reply from the
  reporter the system closes the complaint. That is an action due, not an obligation
  missed, so ``overdue`` does not report it; see ``auto_close_is_due``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from enum import StrEnum
from typing import Any

from node.errors import ConfigError, ValidationError
from node.workflow.calendar import WorkingCalendar
from node.workflow.lifecycle import Status

__all__ = [
    "Classification",
    "Deadline",
    "DeadlinePolicy",
    "MissedDeadline",
    "auto_close_due",
    "auto_close_is_due",
    "follow_up_due",
    "overdue",
    "resolve_due",
    "verify_due",
]


class Classification(StrEnum):
    """What the report is (DESIGN.md)."""

    pengaduan = "pengaduan"  # complaint
    aspirasi = "aspirasi"  # aspiration, suggestion
    permintaan_informasi = "permintaan_informasi"  # information request
    whistleblowing = "whistleblowing"


# Reports that can need an inspection ("berkadar pengawasan"): complaints proper.
_INSPECTABLE = frozenset({Classification.pengaduan, Classification.whistleblowing})


class Deadline(StrEnum):
    """The obligations a node can miss."""

    verify = "verify"
    first_follow_up = "first_follow_up"
    resolve = "resolve"


@dataclass(frozen=True, slots=True)
class DeadlinePolicy:
    """Working-day limits; field names are the keys of node.yaml's ``deadlines:``."""

    verify: int = 3
    first_follow_up: int = 5
    resolve: int = 14  # pengaduan, whistleblowing
    resolve_needs_inspection: int = 60  # berkadar pengawasan
    resolve_aspirasi: int = 5
    resolve_permintaan_informasi: int = 5
    auto_close: int = 10

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(
                    f"deadlines.{f.name} must be a positive whole number of working days, "
                    f"found {value!r}"
                )

    @classmethod
    def from_mapping(cls, m: Mapping[str, object] | None) -> DeadlinePolicy:
        """Build a policy from node.yaml's ``deadlines:`` mapping; absent keys keep defaults.

        ConfigError names an unknown key (with the known ones) or a value that is not a
        positive int.
        """
        if m is None:
            return cls()
        if not isinstance(m, Mapping):
            raise ConfigError(f"deadlines must be a mapping, found {type(m).__name__}")
        known = [f.name for f in fields(cls)]
        for key in m:
            if key not in known:
                raise ConfigError(f"unknown key deadlines.{key}; known keys: {', '.join(known)}")
        values: dict[str, Any] = {k: m[k] for k in known if k in m}
        return cls(**values)

    def to_mapping(self) -> dict[str, int]:
        """The policy as a node.yaml ``deadlines:`` mapping (round-trips from_mapping)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def resolve_days(self, classification: Classification, needs_inspection: bool) -> int:
        """The resolve limit for a report of this classification."""
        kind = _classification(classification)
        if needs_inspection and kind not in _INSPECTABLE:
            raise ValidationError(
                f"needs_inspection applies to pengaduan and whistleblowing, not {kind.value}"
            )
        if kind is Classification.aspirasi:
            return self.resolve_aspirasi
        if kind is Classification.permintaan_informasi:
            return self.resolve_permintaan_informasi
        return self.resolve_needs_inspection if needs_inspection else self.resolve


@dataclass(frozen=True, slots=True)
class MissedDeadline:
    """A deadline that passed: which one, its due date, and working days since."""

    deadline: Deadline
    due: date
    working_days_late: int


def _classification(value: str) -> Classification:
    try:
        return Classification(value)
    except ValueError as e:
        known = ", ".join(c.value for c in Classification)
        raise ValidationError(f"unknown classification {value!r}; expected one of: {known}") from e


def verify_due(received: date, cal: WorkingCalendar, policy: DeadlinePolicy) -> date:
    """Last day to verify a complaint received (or completed by the reporter) on ``received``."""
    return cal.add_working_days(received, policy.verify)


def follow_up_due(referred: date, cal: WorkingCalendar, policy: DeadlinePolicy) -> date:
    """Last day for the first follow-up of a complaint disposed on ``referred``."""
    return cal.add_working_days(referred, policy.first_follow_up)


def resolve_due(
    start: date,
    classification: Classification,
    needs_inspection: bool,
    cal: WorkingCalendar,
    policy: DeadlinePolicy,
) -> date:
    """Last day to resolve, counting from the disposition date ``start``."""
    return cal.add_working_days(start, policy.resolve_days(classification, needs_inspection))


def auto_close_due(resolved: date, cal: WorkingCalendar, policy: DeadlinePolicy) -> date:
    """Last day the reporter can reply; the system closes the complaint after it."""
    return cal.add_working_days(resolved, policy.auto_close)


def auto_close_is_due(
    resolved: date, today: date, cal: WorkingCalendar, policy: DeadlinePolicy
) -> bool:
    """True once the reply period after ``resolved`` is over (the system may close)."""
    return today > auto_close_due(resolved, cal, policy)


_FIRST_FOLLOW_UP_OPEN = frozenset({Status.verified, Status.referred, Status.accepted})
_RESOLVE_OPEN = _FIRST_FOLLOW_UP_OPEN | {Status.in_progress}


def overdue(
    status: Status,
    *,
    received: date,
    verified: date | None = None,
    referred: date | None = None,
    classification: Classification = Classification.pengaduan,
    needs_inspection: bool = False,
    today: date,
    cal: WorkingCalendar,
    policy: DeadlinePolicy,
) -> tuple[MissedDeadline, ...]:
    """The deadlines a complaint in ``status`` has missed as of ``today``, in clock order.

    ``received`` starts the verify clock (pass the reporter's reply date after a hold).
    ``referred`` (the latest referral) or, when the holder kept the complaint,
    ``verified`` starts the first follow-up and resolve clocks; one of them is required
    from ``verified`` on. Statuses with no running clock (held, resolved, closed,
    archived, returned, escalated) have nothing overdue.
    """
    try:
        status = Status(status)
    except ValueError as e:
        raise ValidationError(f"unknown status {status!r}") from e
    missed: list[MissedDeadline] = []

    def check(deadline: Deadline, due: date) -> None:
        if today > due:
            late = cal.working_days_between(due, today)
            missed.append(MissedDeadline(deadline=deadline, due=due, working_days_late=late))

    if status is Status.submitted:
        check(Deadline.verify, verify_due(received, cal, policy))
    if status in _RESOLVE_OPEN:
        start = referred if referred is not None else verified
        if start is None:
            raise ValidationError(
                f"a complaint that is {status.value} needs its referral or verification date"
            )
        if status in _FIRST_FOLLOW_UP_OPEN:
            check(Deadline.first_follow_up, follow_up_due(start, cal, policy))
        check(
            Deadline.resolve,
            resolve_due(start, classification, needs_inspection, cal, policy),
        )
    return tuple(missed)
