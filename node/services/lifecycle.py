"""The complaint lifecycle on this node and across the tree: local transitions, status
updates travelling up, reporter replies travelling down (docs/complaint-lifecycle.md).

Invariants:

1. Every status change this node makes goes through ``node.workflow.lifecycle.apply`` with
   the role this node has for the complaint (``local_role``), and is recorded as ONE
   ``StatusChanged`` ledger entry in the same transaction. So replaying a node's
   StatusChanged entries for a complaint it kept to itself ends in its stored status.
2. Free text (a follow-up note, a resolution, a reason, a reporter's reply) is kept in
   ``complaint_notes`` with a fresh 32-byte salt; ledger entries and envelopes carry only
   SHA-256(salt || text). The text travels beside the envelope in the Delivery frame
   (node.services._notes.attach_notes), like complaint content (ADR 0001), and is erased
   with it.
3. A node the complaint was referred to (``received_from`` is its parent) sends every
   change up in the same transaction: a StatusUpdate envelope to that parent, recorded as
   StatusUpdateSent. A node receiving one checks it comes from the child it referred the
   complaint to and that its own TRANSITIONS row for (status, action) leads to the status
   the update names; then it mirrors status and holder, records StatusUpdateReceived and
   forwards the update up the same way. The node where the complaint entered therefore
   always knows its status and holder.
4. Only the holder acts. Any other node is refused with PERMISSION_DENIED naming the
   status, the holder and the node that tried; an action the status does not allow is
   FAILED_PRECONDITION (lifecycle.apply, which checks the status first). Transitions
   themselves are in node.services._transitions, shared with referrals and the scheduler.
5. A reporter's reply lands where the complaint entered (ReplyRecorded) and goes down hop
   by hop (ReplySent / ReplyReceived) to the holder, which reopens a resolved complaint;
   that change then travels up like any other.
6. Each action is `<name>_in(session, ctx, ...)`, working in the caller's transaction,
   and `<name>(ctx, ...)`, the same in a transaction of its own. A verification and the
   auto-disposition it triggers commit together (node.services.routing.auto_dispose_in).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import complaint_pb2, envelope_pb2, federation_pb2, ledger_pb2
from node.complaints import (
    CHANNEL_NAMES,
    CLASSIFICATION_NAMES,
    check_commitment,
    check_summary,
)
from node.envelopes import OpenedEnvelope, body_sha256
from node.errors import (
    NodeError,
    NotFoundError,
    PermissionDeniedError,
    StateError,
    TamperedEntryError,
    ValidationError,
)
from node.ids import parse_tracking_id
from node.services import _notes, confidential, routing
from node.services._events import add_event
from node.services._ledger import record
from node.services._notes import NOTE_KINDS, attach_notes, notes_of
from node.services._outbox import enqueue
from node.services._receive_checks import check_status_update, parse_status_update
from node.services._transitions import local_role, locked, mirror, send_up, stamp, transition
from node.services.context import NodeContext
from node.store import queries
from node.store.models import Complaint, ComplaintContentRow, Link
from node.workflow import lifecycle
from node.workflow.lifecycle import Action, Role, Status

__all__ = [
    "NOTE_KINDS",
    "act_many_in",
    "after_receipt",
    "archive",
    "archive_in",
    "attach_notes",
    "follow_up",
    "follow_up_in",
    "follow_up_many",
    "hold",
    "hold_in",
    "is_known",
    "local_role",
    "notes_of",
    "on_referral_again",
    "on_reporter_reply",
    "on_status_update",
    "record_referral",
    "reply",
    "reply_in",
    "resolve",
    "resolve_in",
    "resolve_many",
    "return_",
    "return_in",
    "stamp",
    "transition",
    "verify",
    "verify_in",
]

# Actions whose free text is required, with what the operator is asked for.
_NOTE_REQUIRED = {
    Action.follow_up: "the follow-up (--note)",
    Action.resolve: "the resolution (--note)",
    Action.return_: "why this node has no authority over it (--reason)",
    Action.escalate: "why it is escalated (--reason)",
}


def _act_in(
    session: Session,
    ctx: NodeContext,
    tracking_id: str,
    action: Action,
    *,
    note: str | None = None,
    reason_code: str = "",
) -> int:
    """One operator action on a complaint this node holds, in the caller's transaction."""
    parse_tracking_id(tracking_id)
    required = _NOTE_REQUIRED.get(action)
    text = _notes.note_text(note, required or "the note")
    if required is not None and text is None:
        raise ValidationError(f"{action.value} needs {required}")
    row = locked(session, tracking_id)
    role = local_role(row, ctx.node_id, action)
    return transition(session, ctx, row, action, role, note=text, reason_code=reason_code)


def act_many_in(
    session: Session, ctx: NodeContext, tracking_ids: Sequence[str], action: Action, note: str
) -> list[int]:
    """The same operator action on several complaints this node holds, all or none, in the
    caller's transaction (as `referral.refer_many`); returns each one's ledger index, in
    order.

    Every complaint is locked before the first changes (one statement, so two batches
    cannot wait on each other row by row); the first one refused names itself, and the
    caller's transaction is to be rolled back with nothing changed."""
    if not tracking_ids:
        raise ValidationError("give at least one tracking id")
    seen: set[str] = set()
    for tracking_id in tracking_ids:
        parse_tracking_id(tracking_id)
        if tracking_id in seen:
            raise ValidationError(f"{tracking_id} is given twice; give each complaint once")
        seen.add(tracking_id)
    required = _NOTE_REQUIRED[action]
    text = _notes.note_text(note, required)
    if text is None:
        raise ValidationError(f"{action.value} needs {required}")
    total = len(tracking_ids)
    rows = queries.complaints_for_update(session, tracking_ids)
    indices = []
    for n, tracking_id in enumerate(tracking_ids, 1):
        try:
            row = rows.get(tracking_id)
            if row is None:
                raise NotFoundError(f"no complaint {tracking_id} on this node")
            role = local_role(row, ctx.node_id, action)
            indices.append(transition(session, ctx, row, action, role, note=text))
        except NodeError as e:
            if total == 1:
                raise
            raise type(e)(
                f"complaint {n} of {total}: {e}; nothing was changed: fix or leave out "
                f"{tracking_id} and run the command again"
            ) from e
    return indices


def follow_up_many(ctx: NodeContext, tracking_ids: Sequence[str], note: str) -> list[int]:
    """Post the same follow-up on several complaints, all or none (one transaction)."""
    with ctx.db.write() as session:
        return act_many_in(session, ctx, tracking_ids, Action.follow_up, note)


def resolve_many(ctx: NodeContext, tracking_ids: Sequence[str], note: str) -> list[int]:
    """Post the same resolution on several complaints, all or none (one transaction)."""
    with ctx.db.write() as session:
        return act_many_in(session, ctx, tracking_ids, Action.resolve, note)


def verify_in(session: Session, ctx: NodeContext, tracking_id: str, note: str | None = None) -> int:
    """The receiving admin checked a submitted (or held) complaint: complete, in scope.
    With `routing.auto` on, it is then disposed of by the routing rules in the same
    transaction (node.services.routing.auto_dispose_in, in a savepoint of its own: a
    disposition that fails never fails the verification)."""
    index = _act_in(session, ctx, tracking_id, Action.verify, note=note)
    routing.auto_dispose_in(session, ctx, tracking_id)
    return index


def verify(ctx: NodeContext, tracking_id: str, note: str | None = None) -> int:
    """`verify_in` in a transaction of its own."""
    with ctx.db.write() as session:
        return verify_in(session, ctx, tracking_id, note)


def hold_in(session: Session, ctx: NodeContext, tracking_id: str, note: str | None = None) -> int:
    """The receiving admin waits for the reporter to complete the report."""
    return _act_in(session, ctx, tracking_id, Action.hold, note=note)


def archive_in(
    session: Session, ctx: NodeContext, tracking_id: str, reason: str, note: str | None = None
) -> int:
    """Reject a complaint with an ArchiveReason code (at intake, or a verified one)."""
    code = lifecycle.parse_archive_reason(reason)
    return _act_in(session, ctx, tracking_id, Action.archive, note=note, reason_code=code.value)


def follow_up_in(session: Session, ctx: NodeContext, tracking_id: str, note: str) -> int:
    """Post a follow-up (tindak lanjut): the first one starts handling the complaint."""
    return _act_in(session, ctx, tracking_id, Action.follow_up, note=note)


def resolve_in(session: Session, ctx: NodeContext, tracking_id: str, note: str) -> int:
    """Post the resolution (selesai); the auto-close period starts."""
    return _act_in(session, ctx, tracking_id, Action.resolve, note=note)


def return_in(session: Session, ctx: NodeContext, tracking_id: str, reason: str) -> int:
    """Bukan wewenang: hand the complaint back to the parent that referred it."""
    return _act_in(session, ctx, tracking_id, Action.return_, note=reason)


def hold(ctx: NodeContext, tracking_id: str, note: str | None = None) -> int:
    """`hold_in` in a transaction of its own."""
    with ctx.db.write() as session:
        return hold_in(session, ctx, tracking_id, note)


def archive(ctx: NodeContext, tracking_id: str, reason: str, note: str | None = None) -> int:
    """`archive_in` in a transaction of its own."""
    with ctx.db.write() as session:
        return archive_in(session, ctx, tracking_id, reason, note)


def follow_up(ctx: NodeContext, tracking_id: str, note: str) -> int:
    """`follow_up_in` in a transaction of its own."""
    with ctx.db.write() as session:
        return follow_up_in(session, ctx, tracking_id, note)


def resolve(ctx: NodeContext, tracking_id: str, note: str) -> int:
    """`resolve_in` in a transaction of its own."""
    with ctx.db.write() as session:
        return resolve_in(session, ctx, tracking_id, note)


def return_(ctx: NodeContext, tracking_id: str, reason: str) -> int:
    """`return_in` in a transaction of its own."""
    with ctx.db.write() as session:
        return return_in(session, ctx, tracking_id, reason)


# --- the reporter's reply --------------------------------------------------------------


def reply_in(session: Session, ctx: NodeContext, tracking_id: str, text: str) -> int:
    """Record a reporter's reply where the complaint entered; the holder acts on it.

    Here, if this node holds it: a held complaint goes back to submitted, a resolved one
    is reopened, an open one just gets the reply. Otherwise the reply goes down, hop by
    hop, to the holder. Returns the ReplyRecorded entry's index.
    """
    parse_tracking_id(tracking_id)
    body = _notes.note_text(text, "the reply (--text)")
    if body is None:
        raise ValidationError("the reply needs its text (--text)")
    row = locked(session, tracking_id)
    if row.origin_node != ctx.node_id:
        raise PermissionDeniedError(
            f"{tracking_id} entered at {row.origin_node}: the reporter's replies are "
            "taken there, which forwards them to the holder"
        )
    status = Status(row.status)
    if lifecycle.is_terminal(status):
        raise StateError(
            f"{tracking_id} is {status.value}; a reply can no longer reopen it. Register "
            "a new complaint if the reporter raises the matter again"
        )
    now = ctx.clock.now()
    commitment = _notes.keep_note(session, tracking_id, "reply", body, ctx.node_id, now)
    index = record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(
            reply_recorded=ledger_pb2.ReplyRecorded(
                tracking_id=tracking_id, text_commitment=commitment
            )
        ),
    )
    row.replied_at = now
    add_event(session, ctx, tracking_id, row.status, "reporter replied", index)
    at = envelope_pb2.ReporterReply(tracking_id=tracking_id, text_commitment=commitment)
    at.at.FromDatetime(now)
    _deliver_reply(session, ctx, row, at)
    return index


def reply(ctx: NodeContext, tracking_id: str, text: str) -> int:
    """`reply_in` in a transaction of its own."""
    with ctx.db.write() as session:
        return reply_in(session, ctx, tracking_id, text)


def _deliver_reply(
    session: Session, ctx: NodeContext, row: Complaint, message: envelope_pb2.ReporterReply
) -> None:
    """Act on a reply as the holder, or pass it to the child the complaint went to."""
    if row.holder == ctx.node_id:
        if Status(row.status) in (Status.resolved, Status.held):
            transition(session, ctx, row, Action.reporter_reply, Role.reporter)
        return
    if row.holder == row.received_from or row.referred_to is None:
        # It went back up from here since: the parent forwarded this reply down, so the
        # new holder has it already.
        add_event(
            session, ctx, row.tracking_id, row.status, "reply kept; the holder is above", None
        )
        return
    link = queries.get_link(session, row.referred_to, lock=True)
    if link is None or link.revoked_at is not None or link.role != "child":
        raise StateError(
            f"{row.tracking_id} is held below {row.referred_to}, which is no longer linked as "
            "this node's child; the reply cannot reach the holder. Link the child again first"
        )
    _, signed = enqueue(session, ctx, link, tracking_id=row.tracking_id, reporter_reply=message)
    index = record(
        session, ctx, ledger_pb2.LedgerEntry(reply_sent=ledger_pb2.ReplySent(envelope=signed))
    )
    add_event(
        session, ctx, row.tracking_id, row.status, f"reply forwarded to {link.peer_id}", index
    )


# --- receiving (called from node.services.exchange._receive_one) -----------------------


def on_status_update(
    session: Session,
    ctx: NodeContext,
    link: Link,
    opened: OpenedEnvelope,
    delivery: federation_pb2.Delivery,
) -> None:
    """A child reports a change of a complaint this node referred to it (invariant 3)."""
    update = opened.envelope.status_update
    change = parse_status_update(update)
    tracking_id, action, status = change.tracking_id, change.action, change.status
    holder, actor = change.holder, change.actor
    row = check_status_update(
        change, link.peer_id, ctx.node_id, queries.get_complaint(session, tracking_id, lock=True)
    )
    if update.HasField("holder_sealing_key"):
        confidential.check_offer(link, update, row)
    at = update.at.ToDatetime(tzinfo=dt.UTC)
    _notes.receive_note(
        session, tracking_id, action.value, update.note_commitment, delivery, actor, at
    )
    index = record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(
            status_update_received=ledger_pb2.StatusUpdateReceived(envelope=opened.signed)
        ),
    )
    mirror(row, change, at, ctx.clock.now())
    add_event(
        session,
        ctx,
        tracking_id,
        status.value,
        f"{action.value} by {actor}; held by {holder}",
        index,
        actor=actor,
    )
    if row.received_from is not None:
        forwarded = envelope_pb2.StatusUpdate()
        forwarded.CopyFrom(update)
        send_up(session, ctx, row, forwarded)
    elif update.HasField("holder_sealing_key"):
        # It entered here: seal the reporter's identity to the node that handles it.
        confidential.seal_for_holder(session, ctx, row, holder, update.holder_sealing_key)


def on_reporter_reply(
    session: Session,
    ctx: NodeContext,
    link: Link,
    opened: OpenedEnvelope,
    delivery: federation_pb2.Delivery,
) -> None:
    """The parent forwards a reporter's reply towards the holder (invariant 5)."""
    message = opened.envelope.reporter_reply
    tracking_id = parse_tracking_id(message.tracking_id)
    if not message.HasField("at") or len(message.text_commitment) != 32:
        raise ValidationError(
            f"reply for {tracking_id}: expected its time and a 32-byte commitment"
        )
    row = queries.get_complaint(session, tracking_id, lock=True)
    if row is None or row.received_from != link.peer_id:
        raise PermissionDeniedError(
            f"{link.peer_id} forwarded a reply for {tracking_id}, which it never referred "
            "to this node"
        )
    at = message.at.ToDatetime(tzinfo=dt.UTC)
    _notes.receive_note(
        session, tracking_id, "reply", message.text_commitment, delivery, row.origin_node, at
    )
    index = record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(reply_received=ledger_pb2.ReplyReceived(envelope=opened.signed)),
    )
    row.replied_at = at
    add_event(
        session, ctx, tracking_id, row.status, f"reporter replied (via {link.peer_id})", index
    )
    if lifecycle.is_terminal(Status(row.status)):
        return
    forwarded = envelope_pb2.ReporterReply()
    forwarded.CopyFrom(message)
    _deliver_reply(session, ctx, row, forwarded)


def after_receipt(session: Session, ctx: NodeContext, link: Link, opened: OpenedEnvelope) -> None:
    """The child's receipt made it the holder (exchange._on_receipt): tell the parent this
    complaint came from, so the entry node knows who holds it now."""
    receipt = opened.envelope.receipt
    row = queries.get_complaint(session, receipt.tracking_id, lock=True)
    if (
        row is None
        or row.referral_message_id != receipt.referral_message_id
        or row.status != Status.accepted.value
        or row.holder != link.peer_id
    ):
        return
    at = opened.envelope.sent_at.ToDatetime(tzinfo=dt.UTC)
    row.disposed_at = row.disposed_at or at
    if row.received_from is None:
        return
    update = envelope_pb2.StatusUpdate(
        tracking_id=row.tracking_id,
        action=Action.accept.value,
        status=Status.accepted.value,
        holder=link.peer_id,
        actor=link.peer_id,
    )
    update.at.CopyFrom(opened.envelope.sent_at)
    send_up(session, ctx, row, update)


def referral_content(
    summary: complaint_pb2.ComplaintSummary, delivery: federation_pb2.Delivery
) -> ComplaintContentRow | None:
    """The content carried beside a referral, checked against the summary's commitment
    (ValidationError if it does not open it); None if the referral carries none."""
    if not checked_content(summary, delivery):
        return None
    return ComplaintContentRow(
        tracking_id=summary.tracking_id, content=delivery.content, salt=delivery.content_salt
    )


def referred_complaint(
    ctx: NodeContext, link: Link, summary: complaint_pb2.ComplaintSummary, now: dt.datetime
) -> dict[str, object]:
    """The columns of a complaint this node accepts from `link`'s peer (its parent) with a
    first referral: what the signed summary says, held here, accepted at `now`."""
    return {
        "tracking_id": summary.tracking_id,
        "origin_node": summary.origin_node,
        "classification": CLASSIFICATION_NAMES[summary.classification],
        "category": summary.category,
        "region_code": summary.region_code,
        "channel": CHANNEL_NAMES[summary.channel],
        "anonymous": summary.anonymous,
        "confidential": summary.confidential,
        "needs_inspection": summary.needs_inspection,
        "status": "accepted",
        "holder": ctx.node_id,
        "received_from": link.peer_id,
        "submitted_at": summary.submitted_at.ToDatetime(tzinfo=now.tzinfo),
        "received_at": now,
        "updated_at": now,
        "content_commitment": summary.content_commitment,
    }


def checked_content(
    summary: complaint_pb2.ComplaintSummary, delivery: federation_pb2.Delivery
) -> bool:
    """True if a referral carries content, and it opens the summary's commitment;
    ValidationError if it does not; False if it carries none."""
    if not (delivery.content or delivery.content_salt):
        return False
    try:
        check_commitment(summary.content_commitment, delivery.content, delivery.content_salt)
    except TamperedEntryError as e:
        raise ValidationError(f"referral {summary.tracking_id}: {e}") from e
    return True


def is_known(session: Session, opened: OpenedEnvelope) -> bool:
    """True if the complaint a referral names is already on this node (referred before)."""
    tracking_id = opened.envelope.referral.complaint.tracking_id
    return queries.get_complaint(session, tracking_id) is not None


def on_referral_again(
    session: Session,
    ctx: NodeContext,
    link: Link,
    opened: OpenedEnvelope,
    delivery: federation_pb2.Delivery,
) -> envelope_pb2.Receipt:
    """The parent refers again a complaint this node had sent back up (returned or
    escalated): this node holds it again, from ``accepted``, with fresh clocks."""
    summary = opened.envelope.referral.complaint
    check_summary(summary)
    row = queries.get_complaint(session, summary.tracking_id, lock=True)
    if row is None:  # pragma: no cover - is_known said it is here
        raise StateError(f"{summary.tracking_id} is not on this node")
    if row.holder != link.peer_id or row.received_from != link.peer_id:
        raise StateError(
            f"{summary.tracking_id} is already on this node ({row.status}, held by "
            f"{row.holder}); {link.peer_id} may refer it again only after it came back up"
        )
    if summary.content_commitment != row.content_commitment:
        raise ValidationError(
            f"referral {summary.tracking_id} commits to other content than when first referred"
        )
    content = referral_content(summary, delivery)
    if content is not None and queries.complaint_content(session, summary.tracking_id) is None:
        queries.add(session, content)
    now = ctx.clock.now()
    row.status, row.holder, row.updated_at = Status.accepted.value, ctx.node_id, now
    row.received_at, row.disposed_at = now, now
    row.referred_to = row.referral_message_id = None
    row.verified_at = row.resolved_at = None
    return record_referral(session, ctx, opened, f"referred again by {link.peer_id}")


def record_referral(
    session: Session, ctx: NodeContext, opened: OpenedEnvelope, note: str
) -> envelope_pb2.Receipt:
    """Record a referral this node accepted (ReferralReceived, and the `accepted` event)
    and return the receipt that answers it, naming that ledger entry."""
    tracking_id = opened.envelope.referral.complaint.tracking_id
    index = record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(
            referral_received=ledger_pb2.ReferralReceived(envelope=opened.signed)
        ),
    )
    add_event(session, ctx, tracking_id, Status.accepted.value, note, index)
    return envelope_pb2.Receipt(
        referral_message_id=opened.envelope.message_id,
        referral_body_sha256=body_sha256(opened.signed),
        tracking_id=tracking_id,
        entry_index=index,
    )
