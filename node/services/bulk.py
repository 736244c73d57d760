"""The bulk path of exchange.receive_batch: a run of first-time referrals (at a child), or
of receipts and status updates (at a parent, in any mix: a regency sends a complaint's
receipt and then its follow-ups and resolution), applied with a few statements for the
whole run, not several per envelope. Under load nearly every envelope on a link is one of
these.

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
    took a receipt for, or whose status must go on up (the complaint came from this
    node's parent);
  - a status update that the shared checks refuse (_receive_checks.parse_status_update,
    check_status_update, against the complaint as the run has changed it so far), whose
    time does not convert, whose note does not open its commitment, that offers a
    sealing key, or whose complaint came from this node's parent (it is forwarded up);
  - a checkpoint that witness.check refuses (the link's checkpoint is left as it was).
So the bulk path decides nothing differently; it only does the same work in bulk.

Steps, in the batch's transaction, for the run it takes:
  1. open the envelopes (signatures), then look up inbox, complaints, sent referrals and
     known notes for the whole run (node.store.batches);
  2. check each envelope in order, as above, up to the first that is not taken; what a
     taken envelope changes of its complaint (status, holder, dates: the same
     _transitions.mirror and stamp as the per-envelope path) is kept in memory, where the
     envelopes after it are checked against it;
  3. append the run's ledger entries with one record_many;
  4. referrals: insert complaints, contents and events; sign one checkpoint covering the
     run; sign and queue one receipt per referral; insert the inbox rows pointing at them.
     Receipts and status updates: write each complaint's final state (one executemany),
     insert the notes, events and inbox rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import envelope_pb2, federation_pb2, ledger_pb2
from node.complaints import check_commitment, check_summary
from node.crypto.signing import VerifyKey
from node.envelopes import OpenedAhead, OpenedEnvelope, body_sha256, open_envelope
from node.errors import NodeError, TamperedEntryError
from node.ids import NodeId
from node.services import checkpoints, lifecycle, monitoring, witness
from node.services._events import EventRow, add_events
from node.services._ledger import record_many
from node.services._outbox import sealed, store_sealed
from node.services._receive_checks import (
    check_sender_role,
    check_sequence,
    check_status_update,
    is_redelivery,
    parse_status_update,
)
from node.services._transitions import mirror
from node.services.context import NodeContext
from node.store import batches, queries
from node.store.models import (
    Complaint,
    ComplaintContentRow,
    ComplaintNoteRow,
    InboxRow,
    Link,
)

__all__ = ["RunResult", "receive_run"]

# The payloads a run carries on each side of a link: referrals come down from the parent,
# receipts and status updates up from a child (node.services._receive_checks.SENT_BY).
_RUN_KINDS = {"parent": frozenset({"referral"}), "child": frozenset({"receipt", "status_update"})}


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
    # A receipt's or status update's complaint as it stands after it (None: unchanged).
    state: batches.ComplaintState | None = None
    queued_at: dt.datetime | None = None  # a receipt's referral, when it was queued
    # A status update's complaint event: (status, note, actor).
    event: tuple[str, str, str] | None = None
    # A status update's note, checked: (commitment, kind, author, at, text, salt).
    note: tuple[bytes, str, str, dt.datetime, str, bytes] | None = None


def receive_run(
    session: Session,
    ctx: NodeContext,
    link: Link,
    deliveries: Sequence[federation_pb2.Delivery],
    ahead: OpenedAhead | None = None,
) -> RunResult:
    """Apply the longest prefix of `deliveries` (from `link`'s peer, in order) that the bulk
    path takes (module docstring); `link` is locked by the caller's transaction. `ahead`:
    the deliveries' envelopes opened before (node.envelopes.OpenedAhead)."""
    return receive_runs(session, ctx, [(link, deliveries)], {link.peer_id: ahead} if ahead else {})[
        0
    ]


def receive_runs(
    session: Session,
    ctx: NodeContext,
    runs: Sequence[tuple[Link, Sequence[federation_pb2.Delivery]]],
    ahead: Mapping[str, OpenedAhead] | None = None,
) -> list[RunResult]:
    """`receive_run` for the batches of several links (group commit): the children's runs
    of receipts and status updates share their lookups and are written together, one
    statement of each kind for all of them, in the order given; a parent's referrals run
    on their own. Each link appears at most once; every link is locked by the caller.
    `ahead`: by peer, its envelopes opened before (node.envelopes.OpenedAhead)."""
    results = [RunResult() for _ in runs]
    opened: list[tuple[int, Link, list[OpenedEnvelope], Sequence[federation_pb2.Delivery]]] = []
    for n, (link, deliveries) in enumerate(runs):
        kinds = _RUN_KINDS.get(link.role)
        if kinds is not None and deliveries:
            prefix = _open_prefix(ctx, link, kinds, deliveries, (ahead or {}).get(link.peer_id))
            if prefix:
                opened.append((n, link, prefix, deliveries))
    if not opened:
        return results
    # What the batch staged before this run is written first, so the run's lookups see it;
    # within the run the changes to each link (its peer's checkpoint, sequences) stay
    # staged and go in with one UPDATE, not one per lookup that follows them. The run
    # writes everything else with Core statements, and reads links only from these objects.
    session.flush()
    with session.no_autoflush:
        seen = batches.seen_messages_of(
            session, [(link.peer_id, o.envelope.message_id) for _, link, p, _ in opened for o in p]
        )
        upward = [item for item in opened if item[1].role == "child"]
        check = _UpwardCheck.looked_up(session, ctx, [o for _, _, p, _ in upward for o in p])
        taken_up: list[tuple[Link, list[_Taken]]] = []
        for n, link, prefix, deliveries in opened:
            if link.role == "child":
                taken = _take_prefix(session, link, prefix, deliveries, seen, check)
                if taken:
                    taken_up.append((link, taken))
            else:
                referrals = [o.envelope.referral.complaint.tracking_id for o in prefix]
                existing = _ReferralCheck(batches.existing_complaints(session, referrals))
                taken = _take_prefix(session, link, prefix, deliveries, seen, existing)
                if taken:
                    _apply_referrals(session, ctx, link, taken, results[n])
            if taken:
                results[n].taken = len(taken)
                results[n].through = link.last_in_seq = taken[-1].opened.envelope.sequence
        if taken_up:
            _apply_upward(session, ctx, taken_up, check)
    return results


def _open_prefix(
    ctx: NodeContext,
    link: Link,
    kinds: frozenset[str],
    deliveries: Sequence[federation_pb2.Delivery],
    ahead: OpenedAhead | None,
) -> list[OpenedEnvelope]:
    """Open deliveries while they are signed with the peer's pinned key and carry one of
    `kinds` (with what `ahead` kept of them)."""
    key = VerifyKey(link.signing_key)
    peer = NodeId(link.peer_id)
    opened: list[OpenedEnvelope] = []
    for delivery in deliveries:
        if delivery.envelope.key_id != key.key_id:
            break
        try:
            one = open_envelope(
                delivery.envelope, peer=peer, peer_key=key, me=ctx.node_id, ahead=ahead
            )
        except NodeError:
            break
        if one.payload_kind not in kinds:
            break
        try:
            check_sender_role(link, one.payload_kind)
        except NodeError:
            break
        opened.append(one)
    return opened


def _take_prefix(
    session: Session,
    link: Link,
    opened: Sequence[OpenedEnvelope],
    deliveries: Sequence[federation_pb2.Delivery],
    seen: set[tuple[str, str]],
    check: _ReferralCheck | _UpwardCheck,
) -> list[_Taken]:
    """The deliveries the run takes from `link`, checked in order (module steps 1-2);
    `seen`: the (sender, message id) pairs already in the inbox."""
    taken: list[_Taken] = []
    message_ids: set[str] = set()
    expected = link.last_in_seq + 1
    for one, delivery in zip(opened, deliveries, strict=False):
        env = one.envelope
        if (link.peer_id, env.message_id) in seen or is_redelivery(env.message_id, message_ids):
            break
        try:
            check_sequence(link.peer_id, env, expected - 1)
        except NodeError:
            break
        item = check(link, one, delivery)
        if item is None:
            break
        held = (link.peer_checkpoint, link.peer_checkpoint_size)
        try:
            witness.check(link, one, delivery, session)
        except NodeError:
            link.peer_checkpoint, link.peer_checkpoint_size = held
            break
        check.take(item)
        taken.append(item)
        message_ids.add(env.message_id)
        expected += 1
    return taken


class _ReferralCheck:
    """A first-time referral whose summary and content pass (exchange._on_referral)."""

    def __init__(self, existing: set[str]) -> None:
        self.existing = existing

    def __call__(
        self, _link: Link, one: OpenedEnvelope, delivery: federation_pb2.Delivery
    ) -> _Taken | None:
        summary = one.envelope.referral.complaint
        if summary.tracking_id in self.existing:
            return None
        try:
            check_summary(summary)
            carries_content = lifecycle.checked_content(summary, delivery)
        except NodeError:
            return None
        return _Taken(one, delivery, carries_content=carries_content)

    def take(self, item: _Taken) -> None:
        """`item` is taken: a later referral of the same complaint is not."""
        self.existing.add(item.opened.envelope.referral.complaint.tracking_id)


class _UpwardCheck:
    """Receipts and status updates from a child, each checked against the complaint as
    the envelopes taken before it left it (module docstring): a receipt for a referral as
    this node sent it, whose complaint needs no status update sent on up
    (exchange._on_receipt and lifecycle.after_receipt); a status update as
    lifecycle.on_status_update takes it, for a complaint that entered here."""

    def __init__(
        self,
        ctx: NodeContext,
        sent: dict[str, batches.SentReferral],
        states: dict[str, batches.ComplaintState],
        notes: set[bytes],
    ) -> None:
        self.me = ctx.node_id
        self.now = ctx.clock.now()
        self.sent = sent
        self.states = states
        self.notes = notes  # commitments of the notes kept, the run's included
        self.receipted: set[str] = set()  # complaints the run took a receipt for
        self.changed: dict[str, batches.ComplaintState] = {}  # final states, to write

    @classmethod
    def looked_up(
        cls, session: Session, ctx: NodeContext, opened: Sequence[OpenedEnvelope]
    ) -> _UpwardCheck:
        """The check for runs of these envelopes, with what it needs looked up for all of
        them at once: the referrals the receipts answer, the complaints, the notes kept."""
        receipts = [o.envelope.receipt for o in opened if o.payload_kind == "receipt"]
        updates = [o.envelope.status_update for o in opened if o.payload_kind != "receipt"]
        return cls(
            ctx,
            batches.sent_referrals(session, [r.referral_message_id for r in receipts]),
            batches.complaint_states(
                session, {r.tracking_id for r in receipts} | {u.tracking_id for u in updates}
            ),
            batches.known_notes(session, {u.note_commitment for u in updates if u.note_commitment}),
        )

    def __call__(
        self, link: Link, one: OpenedEnvelope, delivery: federation_pb2.Delivery
    ) -> _Taken | None:
        if one.payload_kind == "receipt":
            return self._receipt(link.peer_id, one, delivery)
        return self._status_update(link.peer_id, one, delivery)

    def take(self, item: _Taken) -> None:
        """`item` is taken: what follows is checked against the complaint as it left it."""
        if item.opened.payload_kind == "receipt":
            self.receipted.add(item.opened.envelope.receipt.tracking_id)
        if item.state is not None:
            self.states[item.state.tracking_id] = item.state
            self.changed[item.state.tracking_id] = item.state
        if item.note is not None:
            self.notes.add(item.note[0])

    def _receipt(
        self, peer: str, one: OpenedEnvelope, delivery: federation_pb2.Delivery
    ) -> _Taken | None:
        receipt = one.envelope.receipt
        sent = self.sent.get(receipt.referral_message_id)
        state = self.states.get(receipt.tracking_id)
        if (
            sent is None
            or sent.peer_id != peer
            or sent.kind != "referral"
            or not hmac.compare_digest(
                hashlib.sha256(sent.body).digest(), receipt.referral_body_sha256
            )
            or receipt.tracking_id != sent.tracking_id
            or state is None
            or receipt.tracking_id in self.receipted
        ):
            return None
        after = dataclasses.replace(state)
        if after.status == "referred":
            after.status, after.holder, after.updated_at = "accepted", peer, self.now
        if (
            after.referral_message_id == receipt.referral_message_id
            and after.status == "accepted"
            and after.holder == peer
        ):
            if after.received_from is not None:
                return None  # its status goes on up: lifecycle.after_receipt does that
            if after.disposed_at is None:
                try:
                    after.disposed_at = one.envelope.sent_at.ToDatetime(tzinfo=dt.UTC)
                except (ValueError, OverflowError):
                    return None
        return _Taken(
            one,
            delivery,
            state=None if after == state else after,
            queued_at=sent.queued_at,
            event=(
                "accepted",
                f"receipt from {peer} (its ledger entry {receipt.entry_index})",
                peer,
            ),
        )

    def _status_update(
        self, peer: str, one: OpenedEnvelope, delivery: federation_pb2.Delivery
    ) -> _Taken | None:
        update = one.envelope.status_update
        try:
            change = parse_status_update(update)
            state = check_status_update(change, peer, self.me, self.states.get(change.tracking_id))
        except NodeError:
            return None
        if update.HasField("holder_sealing_key") or state.received_from is not None:
            return None  # confidential.check_offer, or forwarded up: the per-envelope path
        try:
            at = update.at.ToDatetime(tzinfo=dt.UTC)
        except (ValueError, OverflowError):
            return None
        note = None
        if delivery.content or delivery.content_salt:  # as _notes.receive_note keeps it
            commitment = update.note_commitment
            if not commitment:
                return None
            try:
                check_commitment(commitment, delivery.content, delivery.content_salt)
                text = delivery.content.decode("utf-8")
            except (TamperedEntryError, UnicodeDecodeError):
                return None
            if commitment not in self.notes:
                kind = change.action.value
                note = (commitment, kind, change.actor, at, text, delivery.content_salt)
        after = dataclasses.replace(state)
        mirror(after, change, at, self.now)
        return _Taken(
            one,
            delivery,
            state=after,
            event=(
                change.status.value,
                f"{change.action.value} by {change.actor}; held by {change.holder}",
                change.actor,
            ),
            note=note,
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


_RECEIVED_FIELD = {"receipt": "receipt_received", "status_update": "status_update_received"}
_NOTE_COLUMNS = ("tracking_id", "commitment", "kind", "author", "at", "text", "salt")


def _apply_upward(
    session: Session,
    ctx: NodeContext,
    taken: Sequence[tuple[Link, Sequence[_Taken]]],
    check: _UpwardCheck,
) -> None:
    """Module step 4 for receipts and status updates, of every link's run at once."""
    entries = []
    for _, run in taken:
        for t in run:
            entry = ledger_pb2.LedgerEntry()
            field = _RECEIVED_FIELD[t.opened.payload_kind]
            getattr(entry, field).envelope.CopyFrom(t.opened.signed)
            entries.append(entry)
    indexes = iter(record_many(session, ctx, entries))
    now = ctx.clock.now()
    batches.update_complaints(session, list(check.changed.values()))
    notes: list[tuple[object, ...]] = []
    events: list[EventRow] = []
    inbox: list[tuple[object, ...]] = []
    for link, run in taken:
        for t in run:
            index = next(indexes)
            if t.queued_at is not None:
                monitoring.delivered_at_commit(session, link.peer_id, t.queued_at, now)
            if t.note is not None:
                notes.append((_tracking_id(t), *t.note))
            if t.event is not None:
                events.append((_tracking_id(t), now, t.event[0], t.event[2], t.event[1], index))
        inbox.extend(_inbox_rows(link, run, now, [None] * len(run)))
    queries.insert_many(session, ComplaintNoteRow, _NOTE_COLUMNS, notes)
    add_events(session, events)
    queries.insert_many(session, InboxRow, _INBOX_COLUMNS, inbox)


def _tracking_id(t: _Taken) -> str:
    env = t.opened.envelope
    if t.opened.payload_kind == "receipt":
        return env.receipt.tracking_id
    return env.status_update.tracking_id
