"""Referring complaints to a child (disposition): one at a time or in runs.

Invariants:

1. Only the holder refers, and only from a status in REFERRABLE; a returned or escalated
   complaint is taken back first (its own transition). A refused referral changes nothing.
2. Each referral is one signed envelope in the child's outbox with the link's next
   sequence, one ReferralSent ledger entry that records the transition, and one event;
   all of them commit with the caller's transaction. The envelopes of one call carry one
   checkpoint, signed after the link is locked, so a link's envelopes carry checkpoints in
   sequence order.
3. The fast run (`_ReferralRun`) and the plain path (`_refer`) give byte-identical
   envelopes, entries and rows for the same complaints: they share the checks (`_check`)
   and the envelope they sign.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import complaint_pb2, envelope_pb2, ledger_pb2
from node.complaints import CHANNELS, CLASSIFICATIONS
from node.errors import NodeError, NotFoundError, PermissionDeniedError, StateError
from node.ids import parse_node_id, parse_tracking_id
from node.services import checkpoints
from node.services._events import add_events
from node.services._ledger import record, record_many
from node.services._outbox import enqueue, sealed, store_sealed
from node.services._transitions import local_role, stamp, transition
from node.services.context import NodeContext
from node.store import queries
from node.store.models import Complaint, Link
from node.workflow import lifecycle
from node.workflow.lifecycle import Action, Role, Status

__all__ = ["REFERRABLE", "refer", "refer_many", "refer_many_in", "summary_of"]

# Statuses from which the holder may dispose a complaint to a child: directly (submitted,
# verified, accepted; node.workflow.lifecycle), or after taking it back (returned,
# escalated: a redispose transition first).
REFERRABLE = frozenset({"submitted", "verified", "accepted", "returned", "escalated"})
_TAKE_BACK = frozenset({Status.returned, Status.escalated})


def summary_of(row: Complaint | SimpleNamespace) -> complaint_pb2.ComplaintSummary:
    """The signed, non-personal summary of a stored complaint (or of its columns about to
    be inserted, as attributes: building a Complaint only to read it costs more than the
    rest of registering it)."""
    summary = complaint_pb2.ComplaintSummary(
        tracking_id=row.tracking_id,
        origin_node=row.origin_node,
        classification=CLASSIFICATIONS[row.classification],  # type: ignore[arg-type]
        category=row.category,
        region_code=row.region_code,
        channel=CHANNELS[row.channel],  # type: ignore[arg-type]
        anonymous=row.anonymous,
        confidential=row.confidential,
        needs_inspection=row.needs_inspection,
        content_commitment=row.content_commitment,
    )
    summary.submitted_at.FromDatetime(row.submitted_at)
    return summary


def refer(ctx: NodeContext, tracking_id: str, to_child: str) -> str:
    """Dispose a complaint this node holds to one of its children; return the message id.

    The signed referral waits in the outbox until the child acknowledges it, whether or not
    the child is reachable now.
    """
    return refer_many(ctx, [tracking_id], to_child)[0]


def refer_many_in(
    session: Session, ctx: NodeContext, tracking_ids: Sequence[str], to_child: str
) -> list[str]:
    """Dispose several complaints to one child in the caller's transaction (all or none);
    return their message ids, in order.

    Complaints this node holds that can be referred as they stand (no take-back first, no
    status change to send up to a parent) are referred in runs (`_ReferralRun`): one read,
    one ledger append and one insert per table for the run. Any other is referred on its
    own by `_refer`, which also raises the error for one that may not be referred.
    Either way each complaint gets the same signed referral, ledger entry and event.
    """
    for tracking_id in tracking_ids:
        parse_tracking_id(tracking_id)
    child = parse_node_id(to_child)
    link = queries.get_link(session, child, lock=True)
    if link is None or link.revoked_at is not None or link.role != "child":
        raise PermissionDeniedError(
            f"{child} is not a linked child of this node; link it first "
            "(`lapor-node link add CARD --as child`)"
        )
    # One checkpoint for the whole batch, signed after the link is locked so the link's
    # envelopes carry checkpoints in sequence order.
    checkpoint = checkpoints.sign_in(session, ctx)[0].note
    rows = queries.complaints_for_update(session, tracking_ids)
    run = _ReferralRun(session, ctx, link, checkpoint)
    message_ids = []
    for tracking_id in tracking_ids:
        row = rows.get(tracking_id)
        message_id = run.take(row) if row is not None else None
        if message_id is None:
            run.store()  # what the run took goes first: sequences and ledger in order
            message_id = _refer(session, ctx, link, tracking_id, checkpoint)
        message_ids.append(message_id)
    run.store()
    return message_ids


def refer_many(ctx: NodeContext, tracking_ids: Sequence[str], to_child: str) -> list[str]:
    """`refer_many_in` in a transaction of its own."""
    with ctx.db.write() as session:
        return refer_many_in(session, ctx, tracking_ids, to_child)


def _check(row: Complaint, me: str) -> None:
    """`me` may refer `row` as it stands (invariant 1): the checks of both paths."""
    if row.holder != me:
        raise PermissionDeniedError(
            f"{me} may not refer {row.tracking_id}: it is {row.status} and held by "
            f"{row.holder}; only the holder may dispose it"
        )
    if row.status not in REFERRABLE:
        raise StateError(
            f"cannot refer {row.tracking_id}: it is {row.status}; it can be referred only when "
            f"{', '.join(sorted(REFERRABLE))}"
        )
    if row.status == Status.escalated.value and row.referred_to is None:
        raise StateError(
            f"cannot refer {row.tracking_id}: it is escalated beyond this node (Ombudsman RI), "
            "not back from a child"
        )


class _ReferralRun:
    """Referrals of complaints that need nothing but the referral itself: each is checked,
    signed and its row changed when taken; the ledger entries, outbox rows and events of
    the run are written together by `store`."""

    def __init__(self, session: Session, ctx: NodeContext, link: Link, checkpoint: bytes):
        self.session, self.ctx, self.link, self.checkpoint = session, ctx, link, checkpoint
        self.now = ctx.clock.now()
        self.taken: list[tuple[envelope_pb2.Envelope, envelope_pb2.SignedEnvelope, str]] = []

    def take(self, row: Complaint) -> str | None:
        """Refer `row` in this run and return the message id, or None if `_refer` must."""
        me = self.ctx.node_id
        if Status(row.status) in _TAKE_BACK or row.received_from is not None:
            return None  # a take-back first, or a status to send up: _refer does both
        try:
            _check(row, me)
            role = local_role(row, me, Action.refer)
            after = lifecycle.apply(Status(row.status), Action.refer, role)
        except NodeError:
            return None  # _refer raises it
        link = self.link
        envelope, signed = sealed(
            self.ctx,
            link.peer_id,
            link.next_out_seq,
            self.checkpoint,
            self.now,
            referral=envelope_pb2.Referral(complaint=summary_of(row)),
        )
        link.next_out_seq += 1
        # As transition(refer) with the ReferralSent entry recorded as it.
        row.referred_to, row.referral_message_id = link.peer_id, envelope.message_id
        row.status, row.updated_at = after.value, self.now
        stamp(row, Action.refer, self.now)
        self.taken.append((envelope, signed, after.value))
        return envelope.message_id

    def store(self) -> None:
        if not self.taken:
            return
        session, now, peer = self.session, self.now, self.link.peer_id
        indexes = record_many(
            session,
            self.ctx,
            [
                ledger_pb2.LedgerEntry(referral_sent=ledger_pb2.ReferralSent(envelope=signed))
                for _, signed, _ in self.taken
            ],
        )
        tracking_ids = [envelope.referral.complaint.tracking_id for envelope, _, _ in self.taken]
        store_sealed(
            session,
            [
                (e, signed, t, True)
                for (e, signed, _), t in zip(self.taken, tracking_ids, strict=True)
            ],
            now,
        )
        add_events(
            session,
            [
                (t, now, status, self.ctx.node_id, f"referred to {peer}", i)
                for t, (_, _, status), i in zip(tracking_ids, self.taken, indexes, strict=True)
            ],
        )
        self.taken = []


def _refer(
    session: Session, ctx: NodeContext, link: Link, tracking_id: str, checkpoint: bytes
) -> str:
    row = queries.get_complaint(session, tracking_id, lock=True)
    if row is None:
        raise NotFoundError(f"no complaint {tracking_id} on this node")
    _check(row, ctx.node_id)
    if Status(row.status) in _TAKE_BACK:
        # A returned or escalated complaint is taken back first: its own transition.
        transition(session, ctx, row, Action.redispose, Role.parent)
    role = local_role(row, ctx.node_id, Action.refer)
    lifecycle.apply(Status(row.status), Action.refer, role)  # refuse before signing anything
    outbox, signed = enqueue(
        session,
        ctx,
        link,
        tracking_id=tracking_id,
        carries_content=True,
        checkpoint=checkpoint,
        referral=envelope_pb2.Referral(complaint=summary_of(row)),
    )
    index = record(
        session, ctx, ledger_pb2.LedgerEntry(referral_sent=ledger_pb2.ReferralSent(envelope=signed))
    )
    row.referred_to, row.referral_message_id = link.peer_id, outbox.message_id
    transition(
        session,
        ctx,
        row,
        Action.refer,
        role,
        recorded_as=index,
        summary=f"referred to {link.peer_id}",
    )
    return outbox.message_id
