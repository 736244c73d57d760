"""Invariants of the state machine under random histories (hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from node.errors import PermissionDeniedError, StateError
from node.workflow.lifecycle import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    Action,
    Role,
    Status,
    apply,
    replay,
)

steps = st.lists(st.tuples(st.sampled_from(Action), st.sampled_from(Role)), max_size=60)

# Steps drawn only from what the table allows, so long histories actually move.
legal_moves = st.sampled_from(
    sorted(
        ((s, a, r) for (s, a), t in TRANSITIONS.items() for r in t.roles),
        key=lambda m: (m[0].value, m[1].value, m[2].value),
    )
)


@given(steps)
def test_random_steps_stay_inside_the_table(history: list[tuple[Action, Role]]) -> None:
    """Every successful apply is a TRANSITIONS entry and lands on a valid Status."""
    status = Status.submitted
    for action, role in history:
        try:
            new = apply(status, action, role)
        except (StateError, PermissionDeniedError):
            continue
        transition = TRANSITIONS[(status, action)]
        assert role in transition.roles
        assert new is transition.target
        assert isinstance(new, Status)
        status = new


@given(steps)
def test_refusals_are_exactly_the_table_gaps(history: list[tuple[Action, Role]]) -> None:
    """apply raises StateError iff (status, action) is absent, PermissionDenied iff role is."""
    status = Status.submitted
    for action, role in history:
        transition = TRANSITIONS.get((status, action))
        try:
            status = apply(status, action, role)
        except StateError:
            assert transition is None
        except PermissionDeniedError:
            assert transition is not None
            assert role not in transition.roles
        else:
            assert transition is not None


@given(st.sampled_from(sorted(TERMINAL_STATUSES)), st.sampled_from(Action), st.sampled_from(Role))
def test_terminal_statuses_accept_nothing(status: Status, action: Action, role: Role) -> None:
    """From closed or archived every action is a StateError, as the table has no rows."""
    assert (status, action) not in TRANSITIONS
    try:
        apply(status, action, role)
    except StateError:
        return
    raise AssertionError(f"{action} was accepted on terminal status {status}")


@given(st.lists(st.integers(0, 10**6), max_size=80))
def test_recorded_history_replays_to_the_same_status(choices: list[int]) -> None:
    """A history recorded while applying legal steps replays to the same final status."""
    status = Status.submitted
    recorded: list[tuple[Action, Role]] = []
    for choice in choices:
        options = sorted(
            ((a, r) for (s, a), t in TRANSITIONS.items() if s == status for r in t.roles),
            key=lambda m: (m[0].value, m[1].value),
        )
        if not options:
            break
        action, role = options[choice % len(options)]
        status = apply(status, action, role)
        recorded.append((action, role))
    assert replay(recorded) == status
    assert replay(list(recorded)) == replay(recorded)


@given(legal_moves)
def test_every_table_row_is_applicable(move: tuple[Status, Action, Role]) -> None:
    """Each (status, action, role) the table grants succeeds and returns its target."""
    status, action, role = move
    assert apply(status, action, role) is TRANSITIONS[(status, action)].target
