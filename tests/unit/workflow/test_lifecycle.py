"""The complaint state machine: every (status, action, role), the DESIGN.md paths, errors."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from node.errors import PermissionDeniedError, StateError, ValidationError
from node.workflow.lifecycle import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    Action,
    ArchiveReason,
    Role,
    Status,
    allowed_actions,
    allowed_roles,
    apply,
    is_followed_up,
    is_terminal,
    parse_archive_reason,
    replay,
    transition_table_markdown,
)

S, A, R = Status, Action, Role

ADR = Path(__file__).parents[3] / "docs" / "decisions" / "0003-complaint-state-machine.md"


def _expected(status: Status, action: Action, role: Role) -> str:
    transition = TRANSITIONS.get((status, action))
    if transition is None:
        return "state"
    if role not in transition.roles:
        return "permission"
    return transition.target.value


CROSS_PRODUCT = [
    pytest.param(s, a, r, _expected(s, a, r), id=f"{s}-{a}-{r}-{_expected(s, a, r)}")
    for s, a, r in itertools.product(Status, Action, Role)
]


@pytest.mark.parametrize(("status", "action", "role", "outcome"), CROSS_PRODUCT)
def test_every_status_action_role_combination(
    status: Status, action: Action, role: Role, outcome: str
) -> None:
    """apply() moves to the table's target, or raises StateError / PermissionDeniedError."""
    if outcome == "state":
        with pytest.raises(StateError):
            apply(status, action, role)
    elif outcome == "permission":
        with pytest.raises(PermissionDeniedError):
            apply(status, action, role)
    else:
        assert apply(status, action, role) == Status(outcome)
        assert action in allowed_actions(status, role)


def test_cross_product_covers_allowed_and_refused_cases() -> None:
    """The generated table has all 660 combinations, with each outcome kind present."""
    outcomes = [p.values[3] for p in CROSS_PRODUCT]
    assert len(outcomes) == len(Status) * len(Action) * len(Role) == 660
    assert outcomes.count("state") > 0
    assert outcomes.count("permission") > 0
    assert sum(1 for o in outcomes if o not in {"state", "permission"}) == sum(
        len(t.roles) for t in TRANSITIONS.values()
    )


# The business rules below are written out by hand from DESIGN.md, independently of
# TRANSITIONS, so that a wrong table entry is caught here and not just mirrored.
RULES = [
    ("receiving-admin-verifies", S.submitted, A.verify, R.receiving_admin, S.verified),
    ("receiving-admin-holds", S.submitted, A.hold, R.receiving_admin, S.held),
    ("receiving-admin-archives", S.submitted, A.archive, R.receiving_admin, S.archived),
    ("receiving-admin-refers-at-once", S.submitted, A.refer, R.receiving_admin, S.referred),
    ("reporter-completes-held", S.held, A.reporter_reply, R.reporter, S.submitted),
    ("admin-verifies-held-offline", S.held, A.verify, R.receiving_admin, S.verified),
    ("holder-refers-verified", S.verified, A.refer, R.holder, S.referred),
    ("child-receipt-accepts", S.referred, A.accept, R.holder, S.accepted),
    ("accepted-refers-further-down", S.accepted, A.refer, R.holder, S.referred),
    ("first-follow-up", S.accepted, A.follow_up, R.holder, S.in_progress),
    ("later-follow-up", S.in_progress, A.follow_up, R.holder, S.in_progress),
    ("holder-resolves", S.in_progress, A.resolve, R.holder, S.resolved),
    ("reporter-reopens", S.resolved, A.reporter_reply, R.reporter, S.in_progress),
    ("system-auto-closes", S.resolved, A.close, R.system, S.closed),
    ("child-returns-accepted", S.accepted, A.return_, R.holder, S.returned),
    ("child-returns-in-progress", S.in_progress, A.return_, R.holder, S.returned),
    ("parent-redisposes-returned", S.returned, A.redispose, R.parent, S.verified),
    ("parent-redisposes-escalated", S.escalated, A.redispose, R.parent, S.verified),
    ("system-escalates-unverified", S.submitted, A.escalate, R.system, S.escalated),
    ("system-escalates-unresolved", S.in_progress, A.escalate, R.system, S.escalated),
]


@pytest.mark.parametrize(
    ("status", "action", "role", "target"), [pytest.param(*r[1:], id=r[0]) for r in RULES]
)
def test_designed_transitions(status: Status, action: Action, role: Role, target: Status) -> None:
    """Each transition DESIGN.md describes is allowed for its actor and lands where stated."""
    assert apply(status, action, role) == target


REFUSALS = [
    ("only-parent-redisposes", S.returned, A.redispose, R.holder, PermissionDeniedError),
    ("reporter-cannot-close", S.resolved, A.close, R.reporter, PermissionDeniedError),
    ("holder-cannot-close", S.resolved, A.close, R.holder, PermissionDeniedError),
    ("parent-cannot-resolve", S.in_progress, A.resolve, R.parent, PermissionDeniedError),
    ("parent-cannot-follow-up", S.accepted, A.follow_up, R.parent, PermissionDeniedError),
    ("reporter-cannot-verify", S.submitted, A.verify, R.reporter, PermissionDeniedError),
    ("holder-cannot-escalate", S.in_progress, A.escalate, R.holder, PermissionDeniedError),
    ("return-needs-receipt-first", S.referred, A.return_, R.holder, StateError),
    ("no-refer-while-held", S.held, A.refer, R.receiving_admin, StateError),
    ("holder-role-cannot-refer-at-intake", S.submitted, A.refer, R.holder, PermissionDeniedError),
    ("no-resolve-before-follow-up", S.accepted, A.resolve, R.holder, StateError),
    ("closed-is-final", S.closed, A.reporter_reply, R.reporter, StateError),
    ("archived-is-final", S.archived, A.redispose, R.parent, StateError),
    ("held-has-no-escalation", S.held, A.escalate, R.system, StateError),
    ("cannot-close-unresolved", S.in_progress, A.close, R.system, StateError),
]


@pytest.mark.parametrize(
    ("status", "action", "role", "error"), [pytest.param(*r[1:], id=r[0]) for r in REFUSALS]
)
def test_designed_refusals(
    status: Status, action: Action, role: Role, error: type[Exception]
) -> None:
    """Actions DESIGN.md forbids are refused with the right error kind."""
    with pytest.raises(error):
        apply(status, action, role)


def test_main_path_from_submission_to_closure() -> None:
    """The DESIGN.md main path submitted -> ... -> closed replays step by step."""
    steps = [
        (Action.verify, Role.receiving_admin, Status.verified),
        (Action.refer, Role.holder, Status.referred),
        (Action.accept, Role.holder, Status.accepted),
        (Action.follow_up, Role.holder, Status.in_progress),
        (Action.resolve, Role.holder, Status.resolved),
        (Action.close, Role.system, Status.closed),
    ]
    status = Status.submitted
    for action, role, expected in steps:
        status = apply(status, action, role)
        assert status == expected
    assert is_terminal(status)


def test_side_exits_and_their_way_back() -> None:
    """Hold, return, escalation and reopening lead back into the main path."""
    path = [
        (Action.hold, Role.receiving_admin),
        (Action.reporter_reply, Role.reporter),
        (Action.verify, Role.receiving_admin),
        (Action.refer, Role.holder),
        (Action.accept, Role.holder),
        (Action.return_, Role.holder),
        (Action.redispose, Role.parent),
        (Action.refer, Role.holder),
        (Action.escalate, Role.system),
        (Action.redispose, Role.parent),
        (Action.follow_up, Role.holder),
        (Action.resolve, Role.holder),
        (Action.reporter_reply, Role.reporter),
        (Action.resolve, Role.holder),
        (Action.close, Role.system),
    ]
    assert replay(path) == Status.closed


def test_three_level_referral() -> None:
    """A province that accepted a referral from the national node can refer it on down."""
    assert (
        replay(
            [
                (Action.verify, Role.receiving_admin),
                (Action.refer, Role.holder),  # national -> province
                (Action.accept, Role.holder),
                (Action.refer, Role.holder),  # province -> regency
                (Action.accept, Role.holder),
                (Action.follow_up, Role.holder),
            ]
        )
        == Status.in_progress
    )


def test_state_error_message_names_status_action_and_allowed() -> None:
    """StateError says which action was tried on which status, and what is allowed there."""
    with pytest.raises(StateError) as info:
        apply(Status.referred, Action.resolve, Role.holder)
    message = str(info.value)
    assert "resolve" in message
    assert "referred" in message
    assert "accept, escalate" in message


def test_state_error_message_on_terminal_status() -> None:
    """StateError on a terminal status says that the status is terminal."""
    with pytest.raises(StateError, match="closed is terminal"):
        apply(Status.closed, Action.close, Role.system)


def test_permission_error_message_names_role_and_who_may() -> None:
    """PermissionDeniedError names the refused role and the roles that may act."""
    with pytest.raises(PermissionDeniedError) as info:
        apply(Status.returned, Action.redispose, Role.holder)
    message = str(info.value)
    assert "role holder" in message
    assert "only parent may" in message


@pytest.mark.parametrize(
    ("status", "action", "role"),
    [
        pytest.param("bogus", "verify", "receiving_admin", id="status"),
        pytest.param("submitted", "approve", "receiving_admin", id="action"),
        pytest.param("submitted", "verify", "admin", id="role"),
    ],
)
def test_unknown_values_are_validation_errors(status: str, action: str, role: str) -> None:
    """Strings that are not enum values are refused as malformed input."""
    with pytest.raises(ValidationError):
        apply(status, action, role)  # type: ignore[arg-type]


def test_plain_strings_equal_to_values_are_accepted() -> None:
    """apply() accepts the wire strings (e.g. read from the database) as well as enums."""
    assert apply("accepted", "return", "holder") == Status.returned  # type: ignore[arg-type]


def test_enum_values_match_design() -> None:
    """Status, Action and Role carry exactly the values DESIGN.md and the ADR use."""
    assert {s.value for s in Status} == {
        "submitted", "verified", "referred", "accepted", "in_progress", "resolved",
        "closed", "held", "archived", "returned", "escalated",
    }  # fmt: skip
    assert Action.return_.value == "return"
    assert {r.value for r in Role} == {
        "holder", "receiving_admin", "parent", "reporter", "system",
    }  # fmt: skip


def test_terminal_statuses() -> None:
    """Exactly closed and archived are terminal, and nothing leaves them."""
    assert frozenset({Status.closed, Status.archived}) == TERMINAL_STATUSES
    for status in Status:
        assert is_terminal(status) == (status in TERMINAL_STATUSES)
    for status, role in itertools.product(TERMINAL_STATUSES, Role):
        assert allowed_actions(status, role) == ()


def test_followed_up_statuses_follow_the_ministry_figure() -> None:
    """in_progress, resolved and closed count as followed up; nothing else does."""
    assert {s for s in Status if is_followed_up(s)} == {
        Status.in_progress,
        Status.resolved,
        Status.closed,
    }


def test_allowed_actions_and_roles_agree_with_table() -> None:
    """allowed_actions and allowed_roles are views of TRANSITIONS."""
    assert allowed_actions(Status.accepted, Role.holder) == (
        Action.refer,
        Action.return_,
        Action.follow_up,
    )
    assert allowed_roles(Status.resolved, Action.close) == frozenset({Role.system})
    assert allowed_roles(Status.closed, Action.close) == frozenset()


def test_every_non_terminal_status_has_a_way_out() -> None:
    """No status other than closed and archived is a dead end."""
    for status in set(Status) - TERMINAL_STATUSES:
        assert any(allowed_actions(status, role) for role in Role), status


def test_every_status_is_reachable_from_submitted() -> None:
    """A breadth-first walk of TRANSITIONS from submitted reaches every status."""
    seen = {Status.submitted}
    frontier = [Status.submitted]
    while frontier:
        current = frontier.pop()
        for (source, _), transition in TRANSITIONS.items():
            if source == current and transition.target not in seen:
                seen.add(transition.target)
                frontier.append(transition.target)
    assert seen == set(Status)


@pytest.mark.parametrize("reason", list(ArchiveReason), ids=str)
def test_archive_reasons_parse(reason: ArchiveReason) -> None:
    """Every archive reason code parses back to itself."""
    assert parse_archive_reason(reason.value) is reason


def test_unknown_archive_reason_is_refused() -> None:
    """An unknown archive reason is a ValidationError listing the known codes."""
    with pytest.raises(ValidationError, match="no_reporter_reply"):
        parse_archive_reason("spam")


def _parse_adr_table(text: str) -> dict[tuple[str, str], tuple[frozenset[str], str, str]]:
    rows: dict[tuple[str, str], tuple[frozenset[str], str, str]] = {}
    lines = text.splitlines()
    start = lines.index("| From | Action | Roles | To | Meaning |")
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        source, action, roles, target, meaning = cells
        key = (source.strip("`"), action.strip("`"))
        assert key not in rows, f"row {key} appears twice in the ADR"
        rows[key] = (
            frozenset(re.findall(r"`([a-z_]+)`", roles)),
            target.strip("`"),
            meaning,
        )
    return rows


def test_adr_table_matches_transitions() -> None:
    """The table in docs/decisions/0003 is exactly TRANSITIONS (regenerate it if not)."""
    documented = _parse_adr_table(ADR.read_text(encoding="utf-8"))
    actual = {
        (s.value, a.value): (frozenset(r.value for r in t.roles), t.target.value, t.summary)
        for (s, a), t in TRANSITIONS.items()
    }
    assert documented == actual, (
        "docs/decisions/0003-complaint-state-machine.md is out of date; paste the output of "
        "node.workflow.lifecycle.transition_table_markdown() into it"
    )


def test_adr_embeds_the_rendered_table_verbatim() -> None:
    """The ADR contains transition_table_markdown() character for character."""
    assert transition_table_markdown() in ADR.read_text(encoding="utf-8")
