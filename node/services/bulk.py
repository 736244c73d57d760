"""The bulk path of exchange.receive_batch: a run of first-time referrals (at a child) or of
receipts (at a parent) applied with a few statements for the whole run, not several per
envelope. Under load nearly every envelope on a link is one of these two.

`receive_run` takes the longest prefix of the deliveries that it can apply by itself and
returns its length; exchange.receive_batch takes the next delivery through the
per-envelope path and then offers the rest here again. What the bulk path takes it checks
exactly as the per-envelope path would (the same open_envelope; the same sequence,
sender-role and redelivery checks, node.services._receive_checks; the same summary,
commitment and witness checks; the same lookups made for the whole run at once), and it
writes the same rows and ledger entries. The first delivery that is
anything else ends the run, and the per-envelope path decides about it, with its
savepoint, its error or its evidence:
  - a key other than the peer's pinned one (after a key rotation), or a bad signature;
  - a redelivery (already in the inbox, or twice in the run), or a sequence out of order;
  - another payload, or a payload this side of the link may not receive;
  - a referral of a complaint this node already has (or that the run already took), or
    one whose summary or content fails a check;
  - a receipt that does not match the referral as sent, for a complaint the run already
    took, or whose status must go on up (the complaint came from this node's parent);
  - a checkpoint that witness.check refuses (the link's checkpoint is left as it was).
So the bulk path decides nothing differently; it only does the same work in bulk.

Steps, in the batch's transaction, for the run it takes:
  1. open the envelopes (signatures), then look up inbox, complaints and sent referrals
     for the whole run (node.store.batches);
  2. check each envelope in order, as above, up to the first that is not taken;
  3. append the run's ledger entries with one record_many;
  4. referrals: insert complaints, contents and events; sign one checkpoint covering the
     run; sign and queue one receipt per referral; insert the inbox rows pointing at them.
     Receipts: update the complaints they accept, insert events and inbox rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import envelope_pb2, federation_pb2, ledger_pb2
from node.complaints import check_summary
from node.crypto.signing import VerifyKey
from node.envelopes import OpenedEnvelope, body_sha256, open_envelope
from node.errors import NodeError
from node.ids import NodeId
from node.services import checkpoints, lifecycle, monitoring, witness
from node.services._events import add_events
from node.services._ledger import record_many
from node.services._outbox import sealed, store_sealed
from node.services._receive_checks import check_sender_role, check_sequence, is_redelivery
from node.services.context import NodeContext
from node.store import batches, queries
from node.store.models import (
    Complaint,
    ComplaintContentRow,
    InboxRow,
    Link,
)

__all__ = ["RunResult", "receive_run"]

# The payload a run carries on each side of a link: referrals come down from the parent,
# receipts up from a child (node.services._receive_checks.SENT_BY).
_RUN_KIND = {"parent": "referral", "child": "receipt"}


@dataclasses.dataclass
class RunResult:
    taken: int = 0
    through: int = 0  # the last sequence taken
    accepted: list[str] = dataclasses.field(default_factory=list)  # complaints referred here
    responses: list[int] = dataclasses.field(default_factory=list)  # receipts queued (row ids)
    # The receipts queued, as stored in the outbox: (sequence, signed envelope).
    queued: list[tuple[int, envelope_pb2.SignedEnvelope]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class _Taken:
    opened: OpenedEnvelope
    delivery: federation_pb2.Delivery
    carries_content: bool = False  # a referral's content, checked
    # A receipt's complaint update: (tracking_id, status, holder, updated_at, disposed_at).
    accept: tuple[str, str, str, dt.datetime, dt.datetime | None] | None = None
    queued_at: dt.datetime | None = None  # a receipt's referral, when it was queued


def receive_run(
    session: Session,
    ctx: NodeContext,
    link: Link,
    deliveries: Sequence[federation_pb2.Delivery],
) -> RunResult:
    """Apply the longest prefix of `deliveries` (from `link`'s peer, in order) that the bulk
    path takes (module docstring); `link` is locked by the caller's transaction."""
    kind = _RUN_KIND.get(link.role)
    if kind is None or not deliveries:
        return RunResult()
    opened = _open_prefix(ctx, link, kind, deliveries)
    if not opened:
        return RunResult()
    # What the batch staged before this run is written first, so the run's lookups see it;
    # within the run the changes to `link` (its peer's checkpoint, sequences) stay staged
    # and go in with one UPDATE, not one per lookup that follows them. The run writes
    # everything else with Core statements, and reads `link` only from this object.
    session.flush()
    with session.no_autoflush:
        taken = _check_prefix(session, ctx, link, kind, opened, deliveries)
        if not taken:
            return RunResult()
        result = RunResult(len(taken), taken[-1].opened.envelope.sequence)
        if kind == "referral":
            _apply_referrals(session, ctx, link, taken, result)
        else:
            _apply_receipts(session, ctx, link, taken)
        link.last_in_seq = result.through
    return result


def _open_prefix(
    ctx: NodeContext, link: Link, kind: str, deliveries: Sequence[federation_pb2.Delivery]
) -> list[OpenedEnvelope]:
    """Open deliveries while they are signed with the peer's pinned key and carry `kind`."""
    key = VerifyKey(link.signing_key)
    peer = NodeId(link.peer_id)
    opened: list[OpenedEnvelope] = []
    for delivery in deliveries:
        if delivery.envelope.key_id != key.key_id:
            break
        try:
            one = open_envelope(delivery.envelope, peer=peer, peer_key=key, me=ctx.node_id)
        except NodeError:
            break
        if one.payload_kind != kind:
            break
        try:
            check_sender_role(link, kind)
        except NodeError:
            break
        opened.append(one)
    return opened


def _check_prefix(
    session: Session,
    ctx: NodeContext,
    link: Link,
    kind: str,
    opened: Sequence[OpenedEnvelope],
    deliveries: Sequence[federation_pb2.Delivery],
) -> list[_Taken]:
    """The deliveries the run takes, checked in order (module steps 1-2)."""
    seen = batches.seen_messages(session, link.peer_id, [o.envelope.message_id for o in opened])
    check: _ReferralCheck | _ReceiptCheck
    if kind == "referral":
        tracking_ids = [o.envelope.referral.complaint.tracking_id for o in opened]
        existing = batches.existing_complaints(session, tracking_ids)
        check = _ReferralCheck(existing)
    else:
        receipts = [o.envelope.receipt for o in opened]
        check = _ReceiptCheck(
            ctx,
            link,
            batches.sent_referrals(session, [r.referral_message_id for r in receipts]),
            batches.complaint_states(session, [r.tracking_id for r in receipts]),
        )
    taken: list[_Taken] = []
    message_ids: set[str] = set()
    expected = link.last_in_seq + 1
    for one, delivery in zip(opened, deliveries, strict=False):
        env = one.envelope
        if is_redelivery(env.message_id, seen) or is_redelivery(env.message_id, message_ids):
            break
        try:
            check_sequence(link.peer_id, env, expected - 1)
        except NodeError:
            break
        item = check(one, delivery)
        if item is None:
            break
        held = (link.peer_checkpoint, link.peer_checkpoint_size)
        try:
            witness.check(link, one, delivery, session)
        except NodeError:
            link.peer_checkpoint, link.peer_checkpoint_size = held
            break
        taken.append(item)
        message_ids.add(env.message_id)
        expected += 1
    return taken


class _ReferralCheck:
    """A first-time referral whose summary and content pass (exchange._on_referral)."""

    def __init__(self, existing: set[str]) -> None:
        self.existing = existing

    def __call__(self, one: OpenedEnvelope, delivery: federation_pb2.Delivery) -> _Taken | None:
        summary = one.envelope.referral.complaint
        if summary.tracking_id in self.existing:
            return None
        try:
            check_summary(summary)
            carries_content = lifecycle.checked_content(summary, delivery)
        except NodeError:
            return None
        self.existing.add(summary.tracking_id)
        return _Taken(one, delivery, carries_content=carries_content)


class _ReceiptCheck:
    """A receipt for a referral as this node sent it, whose complaint needs no status
    update sent on up (exchange._on_receipt and lifecycle.after_receipt)."""

    def __init__(
        self,
        ctx: NodeContext,
        link: Link,
        sent: dict[str, batches.SentReferral],
        states: dict[str, batches.ComplaintState],
    ) -> None:
        self.peer = link.peer_id
        self.now = ctx.clock.now()
        self.sent = sent
        self.states = states
        self.done: set[str] = set()

    def __call__(self, one: OpenedEnvelope, delivery: federation_pb2.Delivery) -> _Taken | None:
        receipt = one.envelope.receipt
        sent = self.sent.get(receipt.referral_message_id)
        state = self.states.get(receipt.tracking_id)
        if (
            sent is None
            or sent.peer_id != self.peer
            or sent.kind != "referral"
            or not hmac.compare_digest(
                hashlib.sha256(sent.body).digest(), receipt.referral_body_sha256
            )
            or receipt.tracking_id != sent.tracking_id
            or state is None
            or receipt.tracking_id in self.done
        ):
            return None
        status, holder, updated = state.status, state.holder, None
        if status == "referred":
            status, holder, updated = "accepted", self.peer, self.now
        disposed = state.disposed_at
        if (
            state.referral_message_id == receipt.referral_message_id
            and status == "accepted"
            and holder == self.peer
        ):
            if state.received_from is not None:
                return None  # its status goes on up: lifecycle.after_receipt does that
            disposed = disposed or one.envelope.sent_at.ToDatetime(tzinfo=self.now.tzinfo)
        self.done.add(receipt.tracking_id)
        if updated is None and disposed == state.disposed_at:
            return _Taken(one, delivery, queued_at=sent.queued_at)
        return _Taken(
            one,
            delivery,
            accept=(receipt.tracking_id, status, holder, updated or self.now, disposed),
            queued_at=sent.queued_at,
        )


def _inbox_rows(
    link: Link, taken: Sequence[_Taken], at: dt.datetime, responses: Sequence[int | None]
) -> list[tuple[object, ...]]:
    return [
        (
            link.peer_id,
            t.opened.envelope.message_id,
            t.opened.envelope.sequence,
            t.opened.payload_kind,
            t.delivery.envelope.body,
            t.delivery.envelope.key_id,
            t.delivery.envelope.signature,
            at,
            response,
        )
        for t, response in zip(taken, responses, strict=True)
    ]


_INBOX_COLUMNS = (
    "sender",
    "message_id",
    "sequence",
    "kind",
    "body",
    "key_id",
    "signature",
    "received_at",
    "response_outbox_id",
)


def _record_received(
    session: Session, ctx: NodeContext, field: str, taken: Sequence[_Taken]
) -> list[int]:
    """Append one ledger entry per envelope taken (its `field`: referral_received or
    receipt_received, holding the envelope as signed); return their indexes."""
    entries = []
    for t in taken:
        entry = ledger_pb2.LedgerEntry()
        getattr(entry, field).envelope.CopyFrom(t.opened.signed)
        entries.append(entry)
    return record_many(session, ctx, entries)


def _apply_referrals(
    session: Session, ctx: NodeContext, link: Link, taken: Sequence[_Taken], result: RunResult
) -> None:
    """Module step 4 for referrals; `result` gets the tracking ids now held here and the
    receipts queued (their outbox row ids and their sequences and signed envelopes)."""
    indexes = _record_received(session, ctx, "referral_received", taken)
    now = ctx.clock.now()
    peer = link.peer_id
    summaries = [t.opened.envelope.referral.complaint for t in taken]
    rows = [lifecycle.referred_complaint(ctx, link, s, now) for s in summaries]
    queries.insert_many(session, Complaint, tuple(rows[0]), [tuple(r.values()) for r in rows])
    queries.insert_many(
        session,
        ComplaintContentRow,
        ("tracking_id", "content", "salt"),
        [
            (s.tracking_id, t.delivery.content, t.delivery.content_salt)
            for s, t in zip(summaries, taken, strict=True)
            if t.carries_content
        ],
    )
    note = f"referral received from {peer}"
    add_events(
        session,
        [
            (s.tracking_id, now, "accepted", ctx.node_id, note, i)
            for s, i in zip(summaries, indexes, strict=True)
        ],
    )
    # The receipts, under one checkpoint that covers every entry they name.
    checkpoint = checkpoints.sign_in(session, ctx)[0].note
    first = link.next_out_seq
    outbox = []
    for n, (t, index) in enumerate(zip(taken, indexes, strict=True)):
        receipt = envelope_pb2.Receipt(
            referral_message_id=t.opened.envelope.message_id,
            referral_body_sha256=body_sha256(t.opened.signed),
            tracking_id=summaries[n].tracking_id,
            entry_index=index,
        )
        envelope, signed = sealed(ctx, peer, first + n, checkpoint, now, receipt=receipt)
        outbox.append((envelope, signed, receipt.tracking_id, False))
    store_sealed(session, outbox, now)
    link.next_out_seq = first + len(outbox)
    ids = batches.outbox_ids(session, peer, first, first + len(outbox) - 1)
    responses = [ids[first + n] for n in range(len(taken))]
    queries.insert_many(session, InboxRow, _INBOX_COLUMNS, _inbox_rows(link, taken, now, responses))
    result.accepted = [s.tracking_id for s in summaries]
    result.responses = responses
    result.queued = [(first + n, signed) for n, (_, signed, _, _) in enumerate(outbox)]


def _apply_receipts(
    session: Session, ctx: NodeContext, link: Link, taken: Sequence[_Taken]
) -> None:
    """Module step 4 for receipts."""
    indexes = _record_received(session, ctx, "receipt_received", taken)
    now = ctx.clock.now()
    peer = link.peer_id
    batches.mark_accepted(session, [t.accept for t in taken if t.accept is not None])
    for t in taken:
        if t.queued_at is not None:
            monitoring.delivered_at_commit(session, peer, t.queued_at, now)
    add_events(
        session,
        [
            (
                t.opened.envelope.receipt.tracking_id,
                now,
                "accepted",
                peer,
                f"receipt from {peer} (its ledger entry {t.opened.envelope.receipt.entry_index})",
                index,
            )
            for t, index in zip(taken, indexes, strict=True)
        ],
    )
    queries.insert_many(
        session, InboxRow, _INBOX_COLUMNS, _inbox_rows(link, taken, now, [None] * len(taken))
    )
