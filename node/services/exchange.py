"""The federation use cases: what a node does with envelopes that arrive on a link, and
which envelopes it owes a peer.

Receiving a batch runs in ONE transaction. Runs of first-time referrals or of receipts go
through the bulk path (node.services.bulk), which checks each envelope as below and writes
the whole run with a few statements; any other envelope goes through the per-envelope path,
in its own savepoint:
  1. open the envelope (node.envelopes.open_envelope: shape, signer = TLS peer, pinned key,
     signature over the exact bytes, body, recipient). After the peer rotated its keys,
     envelopes it queued before rotating may be signed with its previous key, until its
     key_rotation envelope itself has arrived (node.services.rotation);
  2. a (sender, message_id) already in the inbox is a redelivery: it changes nothing and
     its original response is sent again;
  3. the sequence must be exactly last + 1 (a gap or a reused number is refused);
  4. authority: referrals only from the parent, receipts only from a child; a key
     rotation only for the sender itself, signed with the key it rotates from;
  5. apply the payload, append its ledger entry, queue any response, record the inbox row.
The first envelope that fails stops the batch: what came before it is committed and
acknowledged, it and everything after it are not stored. With `routing.auto`, the referrals
the batch accepted are disposed of by the routing rules in the same transaction
(node.services.routing.auto_dispose_in), so none is left accepted and undisposed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError
from sqlalchemy.orm import Session

from node._proto.lapor.v1 import envelope_pb2, federation_pb2, ledger_pb2
from node.complaints import (
    check_summary,
)
from node.crypto.signing import VerifyKey
from node.envelopes import OpenedAhead, OpenedEnvelope, open_envelope
from node.errors import (
    NodeError,
    PermissionDeniedError,
    StateError,
    ValidationError,
)
from node.ids import NodeId
from node.logs import get_logger
from node.services import (
    bulk,
    checkpoints,
    confidential,
    lifecycle,
    monitoring,
    recovery,
    rotation,
    routing,
    witness,
)
from node.services._events import add_event
from node.services._ledger import record
from node.services._outbox import enqueue
from node.services._receive_checks import check_sender_role, check_sequence
from node.services.context import NodeContext
from node.store import queries
from node.store.models import Complaint, InboxRow, Link

log = get_logger()

# Sequences and checkpoint sizes are stored as signed 64-bit integers: a peer's number
# beyond this is malformed input, refused before it reaches the database.
MAX_SEQUENCE = (1 << 63) - 1
_ID_SHAPE = re.compile(r"[0-9A-Za-z-]{1,64}")

__all__ = [
    "MAX_SEQUENCE",
    "BatchResult",
    "HelloState",
    "Outgoing",
    "acknowledge",
    "acknowledge_in",
    "check_hello",
    "check_peer_holds",
    "hello_state",
    "next_out_sequences",
    "pending",
    "prove",
    "receive_batch",
    "receive_batch_in",
    "record_link_error",
    "record_link_error_in",
]


@dataclass
class BatchResult:
    committed_through: int = 0  # highest sequence committed in this batch (0: none)
    replays: list[federation_pb2.Delivery] = field(default_factory=list)
    error: NodeError | None = None
    failed_sequence: int = 0
    applied: int = 0
    # Complaints referred to this node in the batch: with routing.auto, the batch's own
    # transaction disposed of them further by the rules (node.services.routing).
    accepted: list[str] = field(default_factory=list)
    # Responses queued by this batch: a redelivery later in the same batch gets none
    # replayed, since the link sends them in sequence anyway.
    fresh_responses: set[int] = field(default_factory=set)
    # The same responses ready to send, when the caller said what the peer holds (see
    # Outgoing).
    outgoing: Outgoing | None = None
    # The last sequence this batch queued for its peer (0: it queued nothing for it, as a
    # batch of status updates does): the link's send loop needs waking only if it has not
    # sent that far.
    queued_through: int = 0
    # The peer's pinned signing key, and its checkpoint held here, after the batch: what the
    # next batch is opened under (a note already held is not opened again: witness.check).
    peer_key: bytes = b""
    peer_checkpoint: bytes | None = None


@dataclass(frozen=True)
class Outgoing:
    """Every envelope a batch queued for its peer, as `pending` would read them back from
    the outbox for a peer holding our checkpoint of size `basis`, with the proofs that
    needs; after them it holds size `held`. The link session sends them as they are when
    nothing else went out between (node.federation.session)."""

    basis: int
    held: int
    rows: list[tuple[int, federation_pb2.Delivery]]


def _delivery(
    signer: str,
    body: bytes,
    key_id: bytes,
    signature: bytes,
    content: bytes = b"",
    content_salt: bytes = b"",
) -> federation_pb2.Delivery:
    """A stored envelope as it is sent, with the content that goes beside it, if any."""
    delivery = federation_pb2.Delivery(
        envelope=envelope_pb2.SignedEnvelope(
            body=body, signer=signer, key_id=key_id, signature=signature
        )
    )
    if content:
        delivery.content = content
        delivery.content_salt = content_salt
    return delivery


def _active_link(session: Session, peer: NodeId, *, lock: bool) -> Link:
    link = queries.get_link(session, peer, lock=lock)
    if link is None or link.revoked_at is not None:
        raise PermissionDeniedError(f"{peer} is not linked to this node")
    return link


@dataclass(frozen=True)
class HelloState:
    """What our Hello to `peer` says: the last sequence committed from it, and the size of
    its checkpoint this node holds."""

    last_received: int
    held_checkpoint_size: int
    held_checkpoint_root: bytes
    signing_key: bytes  # the peer's pinned key: what its envelopes are opened under


def hello_state(ctx: NodeContext, peer: NodeId) -> HelloState:
    with ctx.db.read() as session:
        link = _active_link(session, peer, lock=False)
        root = b"" if link.peer_checkpoint is None else witness.root_of(link.peer_checkpoint)
        return HelloState(link.last_in_seq, link.peer_checkpoint_size, root, link.signing_key)


def pending(
    ctx: NodeContext, peer: NodeId, after: int, limit: int, held: int
) -> tuple[list[tuple[int, federation_pb2.Delivery]], int]:
    """Envelopes owed to `peer` with sequence > `after`, oldest first, with the consistency
    proofs a peer holding our checkpoint of size `held` needs; and the size it will hold."""
    with ctx.db.read() as session:
        items = queries.outbox_after(session, peer, after, limit)
        rows = [
            (
                item.sequence,
                _delivery(
                    ctx.node_id,
                    item.body,
                    item.key_id,
                    item.signature,
                    item.content,
                    item.content_salt,
                ),
            )
            for item in items
        ]
        # Note text beside its commitment, for the payloads that may commit to one.
        lifecycle.attach_notes(
            session,
            [
                d
                for (_, d), item in zip(rows, items, strict=True)
                if item.kind in lifecycle.NOTE_KINDS
            ],
        )
        held = witness.present(session, ctx, [d for _, d in rows], held)
        return rows, held


def next_out_sequences(ctx: NodeContext) -> dict[str, int]:
    """Each active link's next outgoing sequence, by peer: a peer has envelopes queued up
    to one less (node.federation.outbox_poll)."""
    with ctx.db.read() as session:
        return queries.next_out_sequences(session)


def outbox_written_since(ctx: NodeContext, after_id: int) -> tuple[int, list[str]]:
    """See node.store.queries.outbox_written_since (the running node's outbox watcher)."""
    with ctx.db.read() as session:
        return queries.outbox_written_since(session, after_id)


def _check_number(value: int, what: str) -> None:
    if not 0 <= value <= MAX_SEQUENCE:
        raise ValidationError(
            f"{what} must be between 0 and 2^63-1, found {value}: the peer's node sent a "
            "malformed number; its operator should check its version and database"
        )


def check_hello(hello: federation_pb2.Hello) -> None:
    """The numbers of a peer's Hello are within what a link can hold (ValidationError)."""
    _check_number(hello.last_received_sequence, "a Hello's last received sequence")
    _check_number(hello.held_checkpoint_size, "a Hello's held checkpoint size")


def check_peer_holds(ctx: NodeContext, held: int, root: bytes | None = None) -> None:
    """The peer's Hello says it holds our checkpoint of size `held` with `root`
    (witness.check_held)."""
    _check_number(held, "the checkpoint size the peer holds")
    with ctx.db.read() as session:
        witness.check_held(session, held, root)


def prove(ctx: NodeContext, deliveries: Sequence[federation_pb2.Delivery], held: int) -> int:
    """Attach consistency proofs to `deliveries` for a peer holding our checkpoint of size
    `held` (witness.present); return the size it will hold."""
    with ctx.db.read() as session:
        return witness.present(session, ctx, deliveries, held)


def acknowledge(ctx: NodeContext, peer: NodeId, through: int) -> None:
    """`acknowledge_in` in a transaction of its own."""
    _check_number(through, "an acknowledged sequence")
    with ctx.db.write() as session:
        acknowledge_in(session, ctx, peer, through)


def acknowledge_in(session: Session, ctx: NodeContext, peer: NodeId, through: int) -> None:
    """The peer committed everything we sent up to `through`."""
    _check_number(through, "an acknowledged sequence")
    next_out = queries.acknowledge_outbox(session, peer, through, ctx.clock.now())
    if next_out is None:
        raise PermissionDeniedError(f"{peer} is not linked to this node")
    if through >= next_out and recovery.resequence(session, ctx, peer, through):
        # A peer ahead of a restore (ADR 0023): what was queued since the restore now
        # follows `through`; only this rare case reads the outbox, never a plain Ack.
        next_out = queries.acknowledge_outbox(session, peer, through, ctx.clock.now()) or 0
    if through >= next_out:  # raised inside the transaction: the link is left as it was
        raise StateError(
            f"{peer} acknowledged sequence {through}, but the last one sent is {next_out - 1}"
        )


def record_link_error_in(
    session: Session, ctx: NodeContext, peer: NodeId, message: str | None
) -> None:
    """Why the link to `peer` last ended (None: it is up), and when."""
    link = queries.get_link(session, peer, lock=True)
    if link is not None:
        link.last_error = message
        link.last_seen_at = ctx.clock.now()


def record_link_error(ctx: NodeContext, peer: NodeId, message: str | None) -> None:
    """`record_link_error_in` in a transaction of its own."""
    with ctx.db.write() as session:
        record_link_error_in(session, ctx, peer, message)


def receive_batch(
    ctx: NodeContext,
    peer: NodeId,
    deliveries: Sequence[federation_pb2.Delivery],
    held: int | None = None,
    ahead: OpenedAhead | None = None,
) -> BatchResult:
    """Apply `deliveries` from `peer` in order (see the module docstring). With `held`, the
    size of our checkpoint the peer holds, the result also carries the responses queued,
    ready to send (Outgoing), when the bulk path queued all of them; `ahead`: their
    envelopes opened before (node.envelopes.OpenedAhead). One transaction of its own
    (`receive_batch_in`)."""
    with ctx.db.write() as session:
        return receive_batch_in(session, ctx, peer, deliveries, held, ahead=ahead)


def receive_batch_in(
    session: Session,
    ctx: NodeContext,
    peer: NodeId,
    deliveries: Sequence[federation_pb2.Delivery],
    held: int | None = None,
    done: bulk.RunResult | None = None,
    ahead: OpenedAhead | None = None,
) -> BatchResult:
    """`receive_batch` in the caller's transaction. `done`: what of `deliveries` the
    caller already applied in this transaction with bulk.receive_runs (the batches of
    several links at once, node.services.group_receive); the rest goes on from there."""
    result = BatchResult()
    # Locked by the caller's bulk pass in this transaction: no second read of the row.
    link = queries.held_link(session, peer) if done is not None else None
    if link is None or link.revoked_at is not None:
        link = _active_link(session, peer, lock=True)
    witness.refuse_if_suspended(link)
    key = VerifyKey(link.signing_key)
    receipts: list[tuple[InboxRow, envelope_pb2.Receipt]] = []
    first_out = link.next_out_seq
    queued: list[tuple[int, envelope_pb2.SignedEnvelope]] = []
    position = 0
    if done is not None and done.taken:
        position = _took(result, done, queued)
        first_out -= len(done.queued)
    while position < len(deliveries):
        run = bulk.receive_run(session, ctx, link, deliveries[position:], ahead)
        if run.taken:
            position += _took(result, run, queued)
            if position == len(deliveries):
                break
        delivery = deliveries[position]
        position += 1
        if key.raw != link.signing_key:  # the peer's key rotation was just followed
            key = VerifyKey(link.signing_key)
        try:
            with session.begin_nested():
                signer = _signer(session, link, key, delivery)
                _receive_one(session, ctx, link, signer, delivery, result, receipts, ahead)
        except witness.ForkDetected as e:
            index = witness.record_fork(session, ctx, link, e)
            result.error = StateError(
                f"{e}; this node recorded the evidence in its ledger entry {index} and "
                "refuses further envelopes from you until its operator acts"
            )
            result.failed_sequence = _claimed(delivery, link)[0]
            break
        except NodeError as e:
            result.error = e
            result.failed_sequence = _claimed(delivery, link)[0]
            break
        except (DecodeError, OverflowError, ValueError) as e:
            # A nested message that does not parse, a number beyond what the database
            # holds, a time beyond the calendar: the sender's error, refused like any
            # malformed envelope.
            sequence, message_id = _claimed(delivery, link)
            result.error = ValidationError(
                f"envelope {sequence} (message {message_id}) from {peer} carries a field "
                f"that does not parse or is out of range ({type(e).__name__}); nothing "
                "of it was stored"
            )
            result.failed_sequence = sequence
            break
    _send_receipts(session, ctx, link, receipts)
    if result.committed_through or result.applied:
        link.last_seen_at = ctx.clock.now()
    if link.next_out_seq > first_out:
        result.queued_through = link.next_out_seq - 1
    if held is not None and queued and len(queued) == link.next_out_seq - first_out:
        result.outgoing = _outgoing(session, ctx, queued, held)
    for tracking_id in result.accepted if ctx.config.routing.auto else ():
        routing.auto_dispose_in(session, ctx, tracking_id)  # commits with the acceptance
    result.peer_key, result.peer_checkpoint = link.signing_key, link.peer_checkpoint
    return result


def _took(
    result: BatchResult,
    run: bulk.RunResult,
    queued: list[tuple[int, envelope_pb2.SignedEnvelope]],
) -> int:
    """Count a bulk run into the batch's result; return how many deliveries it took."""
    result.committed_through = run.through
    result.applied += run.taken
    result.accepted.extend(run.accepted)
    result.fresh_responses.update(run.responses)
    queued.extend(run.queued)
    return run.taken


def _claimed(delivery: federation_pb2.Delivery, link: Link) -> tuple[int, str]:
    """The sequence and message id a refused delivery claims, to name it in the refusal;
    for one whose body does not parse, the sequence it stands at and "unknown"."""
    try:
        env = envelope_pb2.Envelope.FromString(delivery.envelope.body)
    except DecodeError:
        return link.last_in_seq + 1, "unknown"
    # Unverified text from outside: named only if it has the shape of an id.
    message_id = env.message_id if _ID_SHAPE.fullmatch(env.message_id) else "unknown"
    if not 0 < env.sequence <= MAX_SEQUENCE:
        return link.last_in_seq + 1, message_id
    return env.sequence, message_id


def _outgoing(
    session: Session,
    ctx: NodeContext,
    queued: Sequence[tuple[int, envelope_pb2.SignedEnvelope]],
    held: int,
) -> Outgoing | None:
    """`queued` as `pending` would read them back (see Outgoing), or None if the proofs
    cannot be made; the send loop then reads the outbox and meets that error itself."""
    rows = [
        (sequence, _delivery(ctx.node_id, signed.body, signed.key_id, signed.signature))
        for sequence, signed in queued
    ]
    try:  # receipts: no note goes beside them (lifecycle.NOTE_KINDS)
        after = witness.present(session, ctx, [d for _, d in rows], held)
    except NodeError:
        return None
    return Outgoing(held, after, rows)


def _signer(
    session: Session, link: Link, key: VerifyKey, delivery: federation_pb2.Delivery
) -> VerifyKey:
    """The key that must have signed `delivery`: the peer's pinned key, or an earlier key
    of the peer while envelopes it queued before rotating are still arriving."""
    if delivery.envelope.key_id == key.key_id:
        return key
    return rotation.verify_key_for(session, link, delivery.envelope.key_id) or key


def _send_receipts(
    session: Session,
    ctx: NodeContext,
    link: Link,
    receipts: Sequence[tuple[InboxRow, envelope_pb2.Receipt]],
) -> None:
    """Queue the batch's receipts under one checkpoint that covers every entry they name."""
    if not receipts:
        return
    checkpoint = checkpoints.sign_in(session, ctx)[0].note
    for inbox, receipt in receipts:
        outbox, _ = enqueue(
            session,
            ctx,
            link,
            tracking_id=receipt.tracking_id,
            checkpoint=checkpoint,
            receipt=receipt,
        )
        inbox.response_outbox_id = outbox.id


def _receive_one(
    session: Session,
    ctx: NodeContext,
    link: Link,
    key: VerifyKey,
    delivery: federation_pb2.Delivery,
    result: BatchResult,
    receipts: list[tuple[InboxRow, envelope_pb2.Receipt]],
    ahead: OpenedAhead | None,
) -> None:
    peer = NodeId(link.peer_id)
    opened = open_envelope(delivery.envelope, peer=peer, peer_key=key, me=ctx.node_id, ahead=ahead)
    env = opened.envelope
    seen = queries.get_inbox(session, peer, env.message_id)
    if seen is not None:  # is_redelivery, by the inbox row (its response is sent again)
        if seen.body != delivery.envelope.body:
            raise StateError(f"message id {env.message_id} was already used for another message")
        if seen.response_outbox_id is not None and (
            seen.response_outbox_id not in result.fresh_responses
        ):
            response = queries.get_outbox(session, seen.response_outbox_id)
            if response is not None:
                replay = _delivery(ctx.node_id, response.body, response.key_id, response.signature)
                if response.carries_content:
                    content = queries.complaint_content(session, response.tracking_id or "")
                    if content is not None:
                        replay.content, replay.content_salt = content.content, content.salt
                result.replays.append(replay)
        result.committed_through = max(result.committed_through, seen.sequence)
        return
    # Before the sequence: a peer that went back in time reuses sequences too, and what
    # must be caught is the rewritten history, with its evidence.
    witness.check(link, opened, delivery, session)
    check_sequence(peer, env, link.last_in_seq)
    kind = opened.payload_kind
    check_sender_role(link, kind)
    receipt: envelope_pb2.Receipt | None = None
    if kind == "referral":
        if lifecycle.is_known(session, opened):  # referred again after it came back up
            receipt = lifecycle.on_referral_again(session, ctx, link, opened, delivery)
        else:
            receipt = _on_referral(session, ctx, link, opened, delivery)
    elif kind == "receipt":
        _on_receipt(session, ctx, link, opened)
        lifecycle.after_receipt(session, ctx, link, opened)
    elif kind == "status_update":
        lifecycle.on_status_update(session, ctx, link, opened, delivery)
    elif kind == "reporter_reply":
        lifecycle.on_reporter_reply(session, ctx, link, opened, delivery)
    elif kind == "key_rotation":
        rotation.follow_in_band(session, ctx, link, opened, key)
    elif kind == "sealed_identity":
        confidential.on_sealed_identity(session, ctx, link, opened)
    else:  # pragma: no cover - the oneof has no other members yet
        raise ValidationError(f"unsupported payload {kind!r}")
    inbox = InboxRow(
        sender=peer,
        message_id=env.message_id,
        sequence=env.sequence,
        kind=kind,
        body=delivery.envelope.body,
        key_id=delivery.envelope.key_id,
        signature=delivery.envelope.signature,
        received_at=ctx.clock.now(),
    )
    queries.add(session, inbox)
    if receipt is not None:
        receipts.append((inbox, receipt))
    link.last_in_seq = env.sequence
    result.committed_through = env.sequence
    result.applied += 1
    if kind == "referral":
        result.accepted.append(env.referral.complaint.tracking_id)


def _on_referral(
    session: Session,
    ctx: NodeContext,
    link: Link,
    opened: OpenedEnvelope,
    delivery: federation_pb2.Delivery,
) -> envelope_pb2.Receipt:
    summary = opened.envelope.referral.complaint
    check_summary(summary)
    content = lifecycle.referral_content(summary, delivery)
    if queries.get_complaint(session, summary.tracking_id) is not None:
        raise StateError(f"{summary.tracking_id} is already on this node")
    queries.add(
        session, Complaint(**lifecycle.referred_complaint(ctx, link, summary, ctx.clock.now()))
    )
    if content is not None:
        queries.add(session, content)
    return lifecycle.record_referral(session, ctx, opened, f"referral received from {link.peer_id}")


def _on_receipt(session: Session, ctx: NodeContext, link: Link, opened: OpenedEnvelope) -> None:
    receipt = opened.envelope.receipt
    sent = queries.outbox_by_message(session, receipt.referral_message_id)
    if sent is None or sent.peer_id != link.peer_id or sent.kind != "referral":
        raise StateError(
            f"receipt for {receipt.referral_message_id!r}, which is no referral sent to "
            f"{link.peer_id}"
        )
    if not hmac.compare_digest(hashlib.sha256(sent.body).digest(), receipt.referral_body_sha256):
        raise StateError(
            f"receipt from {link.peer_id} is for different bytes than referral "
            f"{receipt.referral_message_id} as sent"
        )
    if receipt.tracking_id != sent.tracking_id:
        raise ValidationError(
            f"receipt names {receipt.tracking_id!r} but the referral was for {sent.tracking_id!r}"
        )
    row = queries.get_complaint(session, receipt.tracking_id, lock=True)
    if row is None:  # pragma: no cover - referrals are only sent for stored complaints
        raise StateError(f"no complaint {receipt.tracking_id} on this node")
    index = record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(receipt_received=ledger_pb2.ReceiptReceived(envelope=opened.signed)),
    )
    now = ctx.clock.now()
    monitoring.delivered_at_commit(session, link.peer_id, sent.created_at, now)
    if row.status == "referred":
        row.status = "accepted"
        row.holder = link.peer_id
        row.updated_at = now
    add_event(
        session,
        ctx,
        receipt.tracking_id,
        "accepted",
        f"receipt from {link.peer_id} (its ledger entry {receipt.entry_index})",
        index,
        actor=link.peer_id,
    )
