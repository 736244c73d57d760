"""Deadline policy from node.yaml, due dates, and which deadlines a complaint missed."""

from __future__ import annotations

from datetime import date

import pytest

from node.errors import ConfigError, ValidationError
from node.workflow.calendar import WorkingCalendar
from node.workflow.deadlines import (
    Classification,
    Deadline,
    DeadlinePolicy,
    MissedDeadline,
    auto_close_due,
    auto_close_is_due,
    follow_up_due,
    overdue,
    resolve_due,
    verify_due,
)
from node.workflow.holidays import load_holidays
from node.workflow.lifecycle import Status

CAL = WorkingCalendar(load_holidays())
POLICY = DeadlinePolicy()
FRI = date(2020, 12, 18)  # the Friday before Christmas 2020


def test_defaults_are_design_values() -> None:
    """The defaults are DESIGN.md's: 3, 5, 14, 60, 5, 5 and 10 working days."""
    assert POLICY.to_mapping() == {
        "verify": 3,
        "first_follow_up": 5,
        "resolve": 14,
        "resolve_needs_inspection": 60,
        "resolve_aspirasi": 5,
        "resolve_permintaan_informasi": 5,
        "auto_close": 10,
    }


@pytest.mark.parametrize("mapping", [None, {}], ids=["none", "empty"])
def test_from_mapping_without_keys_gives_defaults(mapping: dict[str, object] | None) -> None:
    """An absent or empty deadlines: section means the defaults."""
    assert DeadlinePolicy.from_mapping(mapping) == POLICY


def test_from_mapping_overrides_given_keys_only() -> None:
    """Keys present in node.yaml replace defaults; the rest stay."""
    policy = DeadlinePolicy.from_mapping({"verify": 2, "resolve": 20})
    assert policy.verify == 2
    assert policy.resolve == 20
    assert policy.auto_close == 10


def test_mapping_round_trip() -> None:
    """to_mapping() fed back to from_mapping() gives the same policy."""
    policy = DeadlinePolicy(verify=1, auto_close=7)
    assert DeadlinePolicy.from_mapping(policy.to_mapping()) == policy


@pytest.mark.parametrize(
    ("mapping", "named"),
    [
        pytest.param({"verfy": 3}, "deadlines.verfy", id="unknown-key"),
        pytest.param({"verify": 0}, "deadlines.verify", id="zero"),
        pytest.param({"resolve": -14}, "deadlines.resolve", id="negative"),
        pytest.param({"auto_close": True}, "deadlines.auto_close", id="bool"),
        pytest.param({"first_follow_up": "5"}, "deadlines.first_follow_up", id="string"),
        pytest.param({"resolve_aspirasi": 2.5}, "deadlines.resolve_aspirasi", id="float"),
        pytest.param({"resolve_needs_inspection": None}, "resolve_needs_inspection", id="null"),
    ],
)
def test_from_mapping_rejects_bad_entries(mapping: dict[str, object], named: str) -> None:
    """Unknown keys and non-positive or non-integer values are ConfigErrors naming the key."""
    with pytest.raises(ConfigError, match=named):
        DeadlinePolicy.from_mapping(mapping)


def test_from_mapping_rejects_non_mapping() -> None:
    """A deadlines: section that is not a mapping is a ConfigError."""
    with pytest.raises(ConfigError, match="mapping"):
        DeadlinePolicy.from_mapping([("verify", 3)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("classification", "needs_inspection", "days"),
    [
        pytest.param(Classification.pengaduan, False, 14, id="pengaduan"),
        pytest.param(Classification.pengaduan, True, 60, id="pengaduan-berkadar-pengawasan"),
        pytest.param(Classification.whistleblowing, False, 14, id="whistleblowing"),
        pytest.param(Classification.whistleblowing, True, 60, id="whistleblowing-inspection"),
        pytest.param(Classification.aspirasi, False, 5, id="aspirasi"),
        pytest.param(Classification.permintaan_informasi, False, 5, id="permintaan-informasi"),
    ],
)
def test_resolve_days_by_classification(
    classification: Classification, needs_inspection: bool, days: int
) -> None:
    """The resolve limit depends on classification and on needing an inspection."""
    assert POLICY.resolve_days(classification, needs_inspection) == days


def test_inspection_flag_only_for_complaints() -> None:
    """An aspirasi or information request cannot need an inspection."""
    with pytest.raises(ValidationError, match="aspirasi"):
        POLICY.resolve_days(Classification.aspirasi, True)


def test_unknown_classification_is_refused() -> None:
    """A classification outside the four is a ValidationError."""
    with pytest.raises(ValidationError, match="pengaduan"):
        POLICY.resolve_days("keluhan", False)  # type: ignore[arg-type]


def test_due_dates_known_answers() -> None:
    """Due dates around Christmas 2020 skip weekends, 24-25 Dec, 31 Dec and 1 Jan."""
    assert verify_due(FRI, CAL, POLICY) == date(2020, 12, 23)
    assert follow_up_due(FRI, CAL, POLICY) == date(2020, 12, 29)
    assert resolve_due(FRI, Classification.pengaduan, False, CAL, POLICY) == date(2021, 1, 13)
    assert resolve_due(FRI, Classification.aspirasi, False, CAL, POLICY) == date(2020, 12, 29)
    assert auto_close_due(date(2024, 4, 5), CAL, POLICY) == date(2024, 4, 29)


def test_auto_close_is_due_only_after_the_reply_period() -> None:
    """The system may close the day after the last reply day, not on it."""
    resolved = date(2024, 4, 5)
    assert not auto_close_is_due(resolved, date(2024, 4, 29), CAL, POLICY)
    assert auto_close_is_due(resolved, date(2024, 4, 30), CAL, POLICY)


def test_policy_changes_due_dates() -> None:
    """A node.yaml policy with other numbers moves the due dates accordingly."""
    quick = DeadlinePolicy.from_mapping({"verify": 1})
    assert verify_due(FRI, CAL, quick) == date(2020, 12, 21)


M = MissedDeadline
D = Deadline

OVERDUE_CASES = [
    # (id, status, dates, today, expected)
    ("submitted-on-time", Status.submitted, {}, date(2020, 12, 23), ()),
    (
        "submitted-late-on-cuti-bersama",
        Status.submitted,
        {},
        date(2020, 12, 24),
        (M(D.verify, date(2020, 12, 23), 0),),
    ),
    (
        "submitted-one-working-day-late",
        Status.submitted,
        {},
        date(2020, 12, 28),
        (M(D.verify, date(2020, 12, 23), 1),),
    ),
    ("held-clock-paused", Status.held, {}, date(2021, 6, 1), ()),
    (
        "verified-kept-without-follow-up",
        Status.verified,
        {"verified": FRI},
        date(2020, 12, 30),
        (M(D.first_follow_up, date(2020, 12, 29), 1),),
    ),
    ("referred-on-time", Status.referred, {"referred": FRI}, date(2020, 12, 29), ()),
    (
        "referred-no-receipt",
        Status.referred,
        {"referred": FRI},
        date(2020, 12, 30),
        (M(D.first_follow_up, date(2020, 12, 29), 1),),
    ),
    (
        "accepted-misses-both",
        Status.accepted,
        {"referred": FRI},
        date(2021, 1, 14),
        (
            M(D.first_follow_up, date(2020, 12, 29), 10),
            M(D.resolve, date(2021, 1, 13), 1),
        ),
    ),
    (
        "in-progress-misses-resolve-only",
        Status.in_progress,
        {"referred": FRI},
        date(2021, 1, 14),
        (M(D.resolve, date(2021, 1, 13), 1),),
    ),
    (
        "referral-date-wins-over-verification",
        Status.in_progress,
        {"verified": date(2020, 12, 1), "referred": FRI},
        date(2021, 1, 13),
        (),
    ),
    (
        "aspirasi-five-days",
        Status.in_progress,
        {"referred": FRI, "classification": Classification.aspirasi},
        date(2020, 12, 30),
        (M(D.resolve, date(2020, 12, 29), 1),),
    ),
    (
        "needs-inspection-sixty-days",
        Status.in_progress,
        {"referred": FRI, "needs_inspection": True},
        date(2021, 1, 14),
        (),
    ),
    ("resolved-nothing-overdue", Status.resolved, {"referred": FRI}, date(2022, 1, 1), ()),
    ("closed-nothing-overdue", Status.closed, {"referred": FRI}, date(2022, 1, 1), ()),
    ("archived-nothing-overdue", Status.archived, {}, date(2022, 1, 1), ()),
    ("returned-waits-for-parent", Status.returned, {"referred": FRI}, date(2022, 1, 1), ()),
    ("escalated-waits-for-parent", Status.escalated, {"referred": FRI}, date(2022, 1, 1), ()),
]


@pytest.mark.parametrize(
    ("status", "dates", "today", "expected"), [pytest.param(*c[1:], id=c[0]) for c in OVERDUE_CASES]
)
def test_overdue(
    status: Status, dates: dict[str, object], today: date, expected: tuple[MissedDeadline, ...]
) -> None:
    """overdue() reports exactly the deadlines whose clocks run in this status and passed."""
    result = overdue(status, received=FRI, today=today, cal=CAL, policy=POLICY, **dates)  # type: ignore[arg-type]
    assert result == expected


@pytest.mark.parametrize("status", [Status.verified, Status.referred, Status.accepted])
def test_overdue_needs_a_disposition_date(status: Status) -> None:
    """From verified on, a missing referral and verification date is a ValidationError."""
    with pytest.raises(ValidationError, match=status.value):
        overdue(status, received=FRI, today=FRI, cal=CAL, policy=POLICY)


def test_overdue_refuses_unknown_status() -> None:
    """An unknown status string is a ValidationError."""
    with pytest.raises(ValidationError):
        overdue("lost", received=FRI, today=FRI, cal=CAL, policy=POLICY)  # type: ignore[arg-type]
