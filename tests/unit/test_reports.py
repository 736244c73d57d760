"""The pure figures (node.workflow.reports): counting, shares, rounding and medians."""

from __future__ import annotations

import pytest

from node.workflow.lifecycle import Status
from node.workflow.reports import OPEN, ComplaintFacts, Share, Tally, percent


def _tally(*facts: ComplaintFacts) -> Tally:
    tally = Tally()
    for f in facts:
        tally.add(f)
    return tally


def test_kutai_kartanegara_2020() -> None:
    """21 received, 1 in progress and 18 resolved: 19 followed up, 2 not, 90.5%."""
    facts = (
        [ComplaintFacts(Status.in_progress, verified=True)]
        + [ComplaintFacts(Status.resolved, verified=True)] * 10
        + [ComplaintFacts(Status.closed, verified=True)] * 8
        + [ComplaintFacts(Status.accepted, verified=True), ComplaintFacts(Status.submitted)]
    )
    f = _tally(*facts).figures()
    assert (f.received, f.followed_up, f.in_progress, f.resolved) == (21, 19, 1, 18)
    assert f.not_followed_up == 2
    assert f.follow_up_share == Share(19, 21, 90.5)
    assert str(f.follow_up_share) == "90.5% (19/21)"
    assert f.resolved_share == Share(18, 21, 85.7)
    assert f.verified == 20
    # The ministry's "90%" is the same figure rounded to a whole percent.
    assert round(f.follow_up_share.percent) == 90


@pytest.mark.parametrize(
    ("count", "of", "expected"),
    [
        pytest.param(19, 21, 90.5, id="kukar-2020"),
        pytest.param(1, 8, 12.5, id="exact"),
        pytest.param(1, 3, 33.3, id="down"),
        pytest.param(2, 3, 66.7, id="up"),
        pytest.param(1, 16, 6.3, id="half-up-6.25"),
        pytest.param(0, 0, 0.0, id="nothing-received"),
        pytest.param(5, 5, 100.0, id="all"),
    ],
)
def test_percent_rounds_half_up_to_one_decimal(count: int, of: int, expected: float) -> None:
    """Shares are rounded half up to one decimal (not banker's rounding); 0 of 0 is 0."""
    assert percent(count, of) == expected


@pytest.mark.parametrize(("count", "of"), [(-1, 3), (4, 3), (1, -1)])
def test_percent_refuses_impossible_counts(count: int, of: int) -> None:
    """A count outside [0, of] is a programming error, not a figure."""
    with pytest.raises(ValueError, match="expected 0 <= count <= of"):
        percent(count, of)


def test_medians_use_only_complaints_that_got_there() -> None:
    """Median working days count only followed-up (resolved) complaints; even counts
    average the middle two; none gives None."""
    f = _tally(
        ComplaintFacts(Status.in_progress, days_to_follow_up=2),
        ComplaintFacts(Status.resolved, days_to_follow_up=5, days_to_resolution=9),
        ComplaintFacts(Status.closed, days_to_follow_up=1, days_to_resolution=4),
        ComplaintFacts(Status.resolved, days_to_follow_up=4, days_to_resolution=10),
        # reopened: its earlier resolution does not count while it is in progress again
        ComplaintFacts(Status.submitted, days_to_follow_up=30, days_to_resolution=40),
    ).figures()
    assert f.median_days_to_follow_up == 3.0  # of 1, 2, 4, 5
    assert f.median_days_to_resolution == 9.0  # of 4, 9, 10
    empty = _tally(ComplaintFacts(Status.submitted)).figures()
    assert empty.median_days_to_follow_up is None
    assert empty.median_days_to_resolution is None


def test_empty_tally_is_all_zero() -> None:
    """A node with nothing received has zeros, 0.0% shares and no medians."""
    f = Tally().figures()
    assert (f.received, f.followed_up, f.not_followed_up, f.overdue) == (0, 0, 0, 0)
    assert f.follow_up_share == Share(0, 0, 0.0)
    assert f.by_month == (0,) * 12
    assert f.by_status == {}


def test_months_statuses_and_flags_are_counted() -> None:
    """Each complaint lands in its month and status; overdue and referred are counted."""
    f = _tally(
        ComplaintFacts(Status.referred, referred=True, overdue=True, month=1),
        ComplaintFacts(Status.referred, referred=True, month=1),
        ComplaintFacts(Status.archived, month=12),
    ).figures()
    assert f.by_month[0] == 2 and f.by_month[11] == 1 and sum(f.by_month) == 3
    assert f.by_status == {"archived": 1, "referred": 2}
    assert (f.referred, f.overdue) == (2, 1)


def test_month_out_of_range_is_refused() -> None:
    """A month outside 1..12 cannot be tallied."""
    with pytest.raises(ValueError, match="month"):
        Tally().add(ComplaintFacts(Status.submitted, month=13))


def test_open_statuses() -> None:
    """Open means not resolved, closed or archived (the backlog's definition)."""
    assert Status.resolved not in OPEN and Status.closed not in OPEN
    assert Status.archived not in OPEN
    assert {Status.submitted, Status.held, Status.returned, Status.escalated} <= OPEN
