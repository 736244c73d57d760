"""The complaint state machine: which actor may move a complaint from which status.

Invariants:

1. ``TRANSITIONS`` is the only statement of the lifecycle. ``apply``, ``allowed_actions``,
   ``replay`` and the table in docs/decisions/0003-complaint-state-machine.md all derive
   from it (a unit test checks the document against it).
2. Each (status, action) pair has at most one target status, so a history of
   (action, role) steps replayed from ``submitted`` always ends in the same status.
3. ``closed`` and ``archived`` are terminal: no action leaves them.
4. An action the status does not allow is a StateError (FAILED_PRECONDITION); an action
   the status allows but not for this role is a PermissionDeniedError (PERMISSION_DENIED).
   The state check comes first, so a caller learns about the status before its authority.

Roles are relative to one complaint on one node:

- ``receiving_admin``: the admin of the node where the complaint was received, while it is
  at intake (``submitted`` or ``held``): verifies, holds, archives.
- ``holder``: the node that holds the complaint now and must act (refer, follow up,
  resolve, return). From ``verified`` on, the receiving node acts as holder too.
- ``parent``: the node above the holder; it takes back a returned or escalated complaint.
- ``reporter``: the person who filed it; completes a held report, reopens a resolved one.
- ``system``: the node's scheduler; escalates missed deadlines, closes resolved complaints.

This module is pure: no I/O, no clock, no imports from store, services or federation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from node.errors import PermissionDeniedError, StateError, ValidationError

__all__ = [
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "Action",
    "ArchiveReason",
    "Role",
    "Status",
    "Transition",
    "allowed_actions",
    "allowed_roles",
    "apply",
    "is_followed_up",
    "is_terminal",
    "parse_archive_reason",
    "replay",
    "transition_table_markdown",
]


class Status(StrEnum):
    """Where a complaint stands, as DESIGN.md names it (Indonesian term in the comment)."""

    submitted = "submitted"  # belum terverifikasi
    verified = "verified"  # terverifikasi
    referred = "referred"  # didisposisikan
    accepted = "accepted"  # diterima (the child's signed receipt)
    in_progress = "in_progress"  # ditindaklanjuti
    resolved = "resolved"  # selesai
    closed = "closed"  # ditutup (automatic)
    held = "held"  # tunda: incomplete, waiting for the reporter
    archived = "archived"  # diarsipkan: rejected, with an ArchiveReason
    returned = "returned"  # bukan wewenang: sent back up for re-disposition
    escalated = "escalated"  # deadline missed: to the parent or Ombudsman RI


class Action(StrEnum):
    """What an actor does to a complaint. ``return_`` is spelled so because of the keyword."""

    verify = "verify"
    hold = "hold"
    archive = "archive"
    refer = "refer"
    accept = "accept"
    return_ = "return"
    follow_up = "follow_up"
    resolve = "resolve"
    reporter_reply = "reporter_reply"
    close = "close"
    escalate = "escalate"
    redispose = "redispose"


class Role(StrEnum):
    """Who acts, relative to the complaint on the node that applies the action."""

    holder = "holder"
    receiving_admin = "receiving_admin"
    parent = "parent"
    reporter = "reporter"
    system = "system"


class ArchiveReason(StrEnum):
    """Why a complaint was archived (rejected). Recorded beside the ``archive`` action."""

    incomplete = "incomplete"  # cannot be followed up as written
    duplicate = "duplicate"  # the same matter is already registered
    not_a_complaint = "not_a_complaint"  # e.g. a greeting, a test, spam
    out_of_scope = "out_of_scope"  # no unit in the tree has authority over it
    abusive = "abusive"  # insults, threats, SARA content
    no_reporter_reply = "no_reporter_reply"  # held, and the reporter never completed it


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of the lifecycle: who may take the action, and the status it leads to."""

    roles: frozenset[Role]
    target: Status
    summary: str


def _t(target: Status, summary: str, *roles: Role) -> Transition:
    return Transition(roles=frozenset(roles), target=target, summary=summary)


S, A, R = Status, Action, Role

TRANSITIONS: Mapping[tuple[Status, Action], Transition] = MappingProxyType(
    {
        # Intake, at the receiving node.
        (S.submitted, A.verify): _t(S.verified, "complete and in scope", R.receiving_admin),
        (S.submitted, A.hold): _t(S.held, "incomplete: ask the reporter", R.receiving_admin),
        (S.submitted, A.archive): _t(S.archived, "rejected at intake", R.receiving_admin),
        (S.submitted, A.escalate): _t(S.escalated, "verify deadline missed", R.system),
        (S.held, A.reporter_reply): _t(S.submitted, "reporter completed it", R.reporter),
        (S.held, A.verify): _t(S.verified, "completed offline (SMS, walk-in)", R.receiving_admin),
        (S.held, A.archive): _t(S.archived, "e.g. no_reporter_reply", R.receiving_admin),
        (S.submitted, A.refer): _t(S.referred, "verified and disposed at once", R.receiving_admin),
        # Disposition: the node that holds a verified complaint refers it or keeps it.
        (S.verified, A.refer): _t(S.referred, "disposed to a child node", R.holder),
        (S.verified, A.follow_up): _t(S.in_progress, "holder handles it itself", R.holder),
        (S.verified, A.archive): _t(S.archived, "e.g. duplicate found later", R.holder),
        (S.verified, A.escalate): _t(S.escalated, "first follow-up deadline missed", R.system),
        (S.referred, A.accept): _t(S.accepted, "child's signed receipt", R.holder),
        (S.referred, A.escalate): _t(S.escalated, "first follow-up deadline missed", R.system),
        (S.accepted, A.refer): _t(S.referred, "passed further down the tree", R.holder),
        (S.accepted, A.follow_up): _t(S.in_progress, "first follow-up posted", R.holder),
        (S.accepted, A.return_): _t(S.returned, "bukan wewenang: back to parent", R.holder),
        (S.accepted, A.escalate): _t(S.escalated, "first follow-up deadline missed", R.system),
        # Handling.
        (S.in_progress, A.follow_up): _t(S.in_progress, "a later follow-up", R.holder),
        (S.in_progress, A.resolve): _t(S.resolved, "resolution posted", R.holder),
        (S.in_progress, A.return_): _t(S.returned, "bukan wewenang: back to parent", R.holder),
        (S.in_progress, A.escalate): _t(S.escalated, "resolve deadline missed", R.system),
        (S.resolved, A.reporter_reply): _t(S.in_progress, "reporter reopens it", R.reporter),
        (S.resolved, A.close): _t(S.closed, "no reply within the auto-close period", R.system),
        # Back up the tree: the parent takes it back and disposes of it again.
        (S.returned, A.redispose): _t(S.verified, "parent takes it back", R.parent),
        (S.escalated, A.redispose): _t(S.verified, "parent takes it back", R.parent),
    }
)

del S, A, R

TERMINAL_STATUSES: frozenset[Status] = frozenset(
    s for s in Status if not any(src == s for src, _ in TRANSITIONS)
)

_FOLLOWED_UP: frozenset[Status] = frozenset({Status.in_progress, Status.resolved, Status.closed})


_E = TypeVar("_E", bound=StrEnum)


def _coerce(kind: type[_E], value: str, what: str) -> _E:
    try:
        return kind(value)
    except ValueError as e:
        known = ", ".join(m.value for m in kind)
        raise ValidationError(f"unknown {what} {value!r}; expected one of: {known}") from e


def _names(kind: type[StrEnum], items: Iterable[StrEnum]) -> str:
    """Comma-separated values in the enum's declaration order."""
    chosen = set(items)
    return ", ".join(m.value for m in kind if m in chosen)


def apply(status: Status, action: Action, role: Role) -> Status:
    """Return the status after ``role`` takes ``action`` on a complaint in ``status``.

    Raises StateError if the status does not allow the action at all, and
    PermissionDeniedError if it does but not for this role. Plain strings equal to the
    enum values are accepted; anything else is a ValidationError.
    """
    status = _coerce(Status, status, "status")
    action = _coerce(Action, action, "action")
    role = _coerce(Role, role, "role")
    transition = TRANSITIONS.get((status, action))
    if transition is None:
        if status in TERMINAL_STATUSES:
            detail = f"{status.value} is terminal and allows no action"
        else:
            allowed = _names(Action, (a for (s, a) in TRANSITIONS if s == status))
            detail = f"from {status.value} the allowed actions are: {allowed}"
        raise StateError(f"cannot {action.value} a complaint that is {status.value}; {detail}")
    if role not in transition.roles:
        raise PermissionDeniedError(
            f"role {role.value} may not {action.value} a complaint that is {status.value}; "
            f"only {_names(Role, transition.roles)} may"
        )
    return transition.target


def allowed_actions(status: Status, role: Role) -> tuple[Action, ...]:
    """The actions ``role`` may take on a complaint in ``status``, in Action order."""
    status = _coerce(Status, status, "status")
    role = _coerce(Role, role, "role")
    return tuple(
        a for a in Action if (t := TRANSITIONS.get((status, a))) is not None and role in t.roles
    )


def allowed_roles(status: Status, action: Action) -> frozenset[Role]:
    """The roles that may take ``action`` in ``status``; empty if the status forbids it."""
    transition = TRANSITIONS.get((_coerce(Status, status, "status"), action))
    return transition.roles if transition is not None else frozenset()


def is_terminal(status: Status) -> bool:
    """True for statuses no action leaves (``closed``, ``archived``)."""
    return _coerce(Status, status, "status") in TERMINAL_STATUSES


def is_followed_up(status: Status) -> bool:
    """True if the complaint counts as followed up in the ministry's figure.

    DESIGN.md: in_progress, resolved or closed. A complaint that was in progress and is
    now returned or escalated does not count until it is followed up again.
    """
    return _coerce(Status, status, "status") in _FOLLOWED_UP


def replay(steps: Iterable[tuple[Action, Role]], start: Status = Status.submitted) -> Status:
    """Apply a recorded history of (action, role) steps from ``start``; return the end.

    Raises the first StateError or PermissionDeniedError a step meets, so a history that
    was valid when recorded replays to the same status, and a tampered one does not.
    """
    status = _coerce(Status, start, "status")
    for action, role in steps:
        status = apply(status, action, role)
    return status


def parse_archive_reason(value: str) -> ArchiveReason:
    """Read an archive reason code; ValidationError names the known codes."""
    return _coerce(ArchiveReason, value, "archive reason")


def transition_table_markdown() -> str:
    """Render TRANSITIONS as the Markdown table kept in the ADR (docs/decisions/0003)."""
    lines = [
        "| From | Action | Roles | To | Meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for status in Status:
        for action in Action:
            t = TRANSITIONS.get((status, action))
            if t is None:
                continue
            roles = ", ".join(f"`{r.value}`" for r in Role if r in t.roles)
            lines.append(
                f"| `{status.value}` | `{action.value}` | {roles} | `{t.target.value}` "
                f"| {t.summary} |"
            )
    return "\n".join(lines) + "\n"
