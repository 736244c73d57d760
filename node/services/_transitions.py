"""Status changes on this node: the one path every complaint transition takes
(docs/complaint-lifecycle.md). Used by the lifecycle actions (node.services.lifecycle),
referrals (node.services.referral) and the scheduler.

Invariants:

1. Every status change this node makes goes through ``node.workflow.lifecycle.apply`` with
   the role this node has for the complaint (``local_role``), and is recorded as ONE
   ``StatusChanged`` ledger entry in the same transaction (or as the entry the caller
   appended for it, ``recorded_as``).
2. A node the complaint was referred to (``received_from`` is its parent) sends every
   change up in the same transaction: a StatusUpdate envelope to that parent, recorded as
   StatusUpdateSent (``send_up``).
3. Only the holder acts: any other node is refused with PERMISSION_DENIED naming the
   status, the holder and the node that tried; an action the status does not allow is
   FAILED_PRECONDITION (lifecycle.apply, which checks the status first).
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.errors import NotFoundError, PermissionDeniedError, StateError
from node.services import _notes, confidential
from node.services._events import add_event
from node.services._ledger import record
from node.services._outbox import enqueue
from node.services._receive_checks import StatusChange
from node.services.context import NodeContext
from node.store import queries
from node.store.models import Complaint, Link
from node.workflow import lifecycle
from node.workflow.lifecycle import Action, Role, Status

__all__ = [
    "Stamped",
    "local_role",
    "locked",
    "mirror",
    "parent_link",
    "send_up",
    "stamp",
    "transition",
]

# The statuses in which a complaint has come back up to this node, which now takes it back.
_CAME_BACK = frozenset({Status.returned, Status.escalated})
_INTAKE = frozenset({Status.submitted, Status.held})
# The action of the system's scheduler (or an operator doing its work by hand).
_SYSTEM_ACTIONS = frozenset({Action.escalate, Action.close})


# --- roles and transitions -------------------------------------------------------------


def local_role(row: Complaint, me: str, action: Action) -> Role:
    """The role this node has for ``action`` on ``row``; PermissionDeniedError if it does not
    hold the complaint (after StateError if the status forbids the action anyway)."""
    status = Status(row.status)
    if row.holder != me:
        if not lifecycle.allowed_roles(status, action):
            lifecycle.apply(status, action, Role.holder)  # raises the StateError
        raise PermissionDeniedError(
            f"{me} may not {action.value} {row.tracking_id}: it is {status.value} and held by "
            f"{row.holder}; only the node that holds a complaint may act on it"
        )
    if action in _SYSTEM_ACTIONS:
        return Role.system
    if action is Action.reporter_reply:
        return Role.reporter
    if status in _CAME_BACK and row.referred_to is not None:
        return Role.parent  # it came back up from the child it was referred to
    if status in _INTAKE:
        return Role.receiving_admin
    return Role.holder


class Stamped(Protocol):
    """The columns `stamp` and `mirror` set: a Complaint row, or the bulk path's copy of
    one (node.store.batches.ComplaintState), so both paths set them alike."""

    status: str
    holder: str
    updated_at: dt.datetime
    verified_at: dt.datetime | None
    disposed_at: dt.datetime | None
    resolved_at: dt.datetime | None
    replied_at: dt.datetime | None


def stamp(row: Stamped, action: Action, at: dt.datetime) -> None:
    """Start or stop the clocks of node.workflow.deadlines for an action."""
    if action in (Action.verify, Action.redispose):
        row.verified_at, row.disposed_at = at, None
    elif action in (Action.refer, Action.accept):
        row.disposed_at = at
        row.verified_at = row.verified_at or at
    elif action is Action.resolve:
        row.resolved_at = at
    elif action is Action.reporter_reply:
        row.replied_at = at


def mirror(row: Stamped, change: StatusChange, at: dt.datetime, now: dt.datetime) -> None:
    """A child's status update as this node keeps it (lifecycle invariant 3): the status
    and holder the update names, changed `now`, and the clocks of its action at `at`, the
    time the update states."""
    row.status, row.holder, row.updated_at = change.status.value, change.holder, now
    stamp(row, change.action, at)


def transition(
    session: Session,
    ctx: NodeContext,
    row: Complaint,
    action: Action,
    role: Role,
    *,
    note: str | None = None,
    reason_code: str = "",
    recorded_as: int | None = None,
    summary: str | None = None,
) -> int:
    """Apply ``action`` as ``role`` to ``row`` (locked by the caller), record StatusChanged
    and, where the complaint came from a parent, send the change up. Returns the entry's
    index. Return and escalation hand the complaint to the parent it came from.

    ``recorded_as``: the index of an entry the caller already appended that records this
    transition with more (a referral's ReferralSent); then no StatusChanged is added.
    """
    before = Status(row.status)
    after = lifecycle.apply(before, action, role)
    if action is Action.return_ and row.received_from is None:
        raise StateError(
            f"cannot return {row.tracking_id}: it entered at this node, so there is no parent "
            "to return it to; refer it to a child or archive it"
        )
    now = ctx.clock.now()
    commitment = b""
    if note is not None:
        commitment = _notes.keep_note(
            session, row.tracking_id, action.value, note, ctx.node_id, now
        )
    index = (
        recorded_as
        if recorded_as is not None
        else record(
            session,
            ctx,
            ledger_pb2.LedgerEntry(
                status_changed=ledger_pb2.StatusChanged(
                    tracking_id=row.tracking_id,
                    action=action.value,
                    from_status=before.value,
                    to_status=after.value,
                    actor=ctx.node_id,
                    role=role.value,
                    note_commitment=commitment,
                    reason_code=reason_code,
                )
            ),
        )
    )
    row.status = after.value
    row.updated_at = now
    stamp(row, action, now)
    if action in (Action.return_, Action.escalate):
        if row.received_from is not None:
            row.holder = row.received_from
        else:  # escalated where it entered: beyond the tree (Ombudsman RI); no child has it
            row.referred_to = None
    if summary is None:
        summary = f"{action.value} ({role.value})" + (f": {reason_code}" if reason_code else "")
        if row.holder != ctx.node_id:
            summary += f"; now held by {row.holder}"
    add_event(session, ctx, row.tracking_id, after.value, summary, index)
    if row.received_from is not None:
        update = envelope_pb2.StatusUpdate(
            tracking_id=row.tracking_id,
            action=action.value,
            status=after.value,
            holder=row.holder,
            actor=ctx.node_id,
            note_commitment=commitment,
            reason_code=reason_code,
        )
        update.at.FromDatetime(now)
        if action is Action.follow_up and before is Status.accepted and row.confidential:
            # This node handles it: offer its sealing key for the reporter's identity.
            update.holder_sealing_key.CopyFrom(confidential.holder_statement(ctx))
        send_up(session, ctx, row, update)
    return index


def parent_link(session: Session, row: Complaint) -> Link:
    peer = row.received_from or ""
    link = queries.get_link(session, peer, lock=True)
    if link is None or link.revoked_at is not None or link.role != "parent":
        raise StateError(
            f"{row.tracking_id} came from {peer}, which is no longer linked as this node's "
            "parent; its status cannot travel up. Link the parent again first"
        )
    return link


def send_up(
    session: Session, ctx: NodeContext, row: Complaint, update: envelope_pb2.StatusUpdate
) -> None:
    link = parent_link(session, row)
    _, signed = enqueue(session, ctx, link, tracking_id=row.tracking_id, status_update=update)
    record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(status_update_sent=ledger_pb2.StatusUpdateSent(envelope=signed)),
    )


def locked(session: Session, tracking_id: str) -> Complaint:
    """The complaint's row, locked for this transaction; NotFoundError if there is none."""
    row = queries.get_complaint(session, tracking_id, lock=True)
    if row is None:
        raise NotFoundError(f"no complaint {tracking_id} on this node")
    return row
