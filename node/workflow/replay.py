"""A node's complaints as its own ledger says they must be: the replay of its entries.

DESIGN.md, "Operating invariants": every working column the ledger determines equals what
replaying the node's own ledger gives. This module is that replay, pure: it is fed the
node's entries in index order and keeps, for each complaint, the columns below. The
services change those columns only in the transaction that appends the entry named here
(node.services.complaints, referral, lifecycle, exchange, bulk, scheduler), so after any history of
use cases the replay equals the ``complaints`` table.

How each entry kind moves a complaint (``me`` is the replaying node):

1. ComplaintRegistered: it entered here: ``submitted``, held by me, received now.
2. ReferralSent: ``referred`` to the envelope's recipient, under the envelope's message
   id; the disposition clock starts (``disposed_at``; ``verified_at`` if not yet set).
3. ReferralReceived: the parent (the envelope's sender) referred it here: ``accepted``,
   held by me, received now, referred nowhere. A second referral (after it went back up)
   also restarts the clocks: disposed now, not verified, not resolved.
4. ReceiptReceived: a ``referred`` complaint becomes ``accepted``, held by the child that
   signed the receipt; the receipt for the current referral dates the disposition if no
   clock did yet.
5. StatusChanged: the status it names (``from_status`` must be the replayed one, else an
   anomaly). Return and escalation hand the complaint to the parent it came from, or,
   where it entered, leave it referred nowhere (Ombudsman RI). The action's clock starts.
6. StatusUpdateReceived: the status and holder the child's update names; the clock of its
   action starts at the update's own time.
7. ReplyRecorded / ReplyReceived: the reporter replied (at the entry's time / the
   forwarded reply's own time). The reopening, if any, is its own StatusChanged.
Every other kind leaves complaints alone.

Times this node stamps from its own clock (1, 2, 3, 5, 7) are read separately by the row
and by the ledger's ``recorded_at`` in one transaction, so they agree only to within that
transaction's length; callers compare them with a tolerance (``CLOCK_TOLERANCE``). Times
carried in envelopes (4, 6, 7) are exact.

An entry that names a complaint the replay has not seen registered or received is an
anomaly, not an error: the replay goes on, so one damaged history does not hide others.
No I/O and no imports from store, services, federation or cli.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace

from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.workflow.lifecycle import Action, Status

__all__ = [
    "CLOCK_TOLERANCE",
    "COLUMNS",
    "TIME_COLUMNS",
    "ComplaintState",
    "LedgerReplay",
    "ReplayAnomaly",
    "tracking_id_of",
]

# How far a time this node stamped in a row may be from the recorded_at of the entry
# appended in the same transaction (a transaction waits for the ledger head's lock).
CLOCK_TOLERANCE = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ComplaintState:
    """The columns of one ``complaints`` row that the ledger determines."""

    tracking_id: str
    status: str
    holder: str
    referred_to: str | None = None
    referral_message_id: str | None = None
    received_from: str | None = None
    received_at: dt.datetime | None = None
    verified_at: dt.datetime | None = None
    disposed_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    replied_at: dt.datetime | None = None


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ComplaintState) if f.name != "tracking_id")
TIME_COLUMNS: frozenset[str] = frozenset(
    ("received_at", "verified_at", "disposed_at", "resolved_at", "replied_at")
)


@dataclass(frozen=True, slots=True)
class ReplayAnomaly:
    """An entry the replay could not apply as the services would have written it."""

    index: int
    tracking_id: str
    detail: str


def _when(stamp: object) -> dt.datetime:
    return stamp.ToDatetime(tzinfo=dt.UTC)  # type: ignore[attr-defined, no-any-return]


def _stamp(state: ComplaintState, action: str, at: dt.datetime) -> ComplaintState:
    """The deadline clocks an action starts (as node.services._transitions.stamp)."""
    if action in (Action.verify, Action.redispose):
        return replace(state, verified_at=at, disposed_at=None)
    if action in (Action.refer, Action.accept):
        return replace(state, disposed_at=at, verified_at=state.verified_at or at)
    if action == Action.resolve:
        return replace(state, resolved_at=at)
    if action == Action.reporter_reply:
        return replace(state, replied_at=at)
    return state


class LedgerReplay:
    """Feed a node's entries in index order (``feed``); read each complaint's state.

    ``wanted`` limits the replay to some tracking ids (one partition of a large ledger, or
    the complaints changed last), so memory is bounded by how many it keeps.
    """

    def __init__(self, node_id: str, wanted: Callable[[str], bool] | None = None) -> None:
        self.node_id = node_id
        self._wanted = wanted
        self._states: dict[str, ComplaintState] = {}
        self.anomalies: list[ReplayAnomaly] = []
        self.applied = 0  # entries read

    def __len__(self) -> int:
        return len(self._states)

    def get(self, tracking_id: str) -> ComplaintState | None:
        return self._states.get(tracking_id)

    def pop(self, tracking_id: str) -> ComplaintState | None:
        return self._states.pop(tracking_id, None)

    def remaining(self) -> Iterator[ComplaintState]:
        """The states not popped yet, in tracking id order."""
        for tracking_id in sorted(self._states):
            yield self._states[tracking_id]

    def feed(self, index: int, data: bytes) -> None:
        """Apply the serialized entry at ``index``."""
        self.applied += 1
        try:
            entry = ledger_pb2.LedgerEntry.FromString(data)
        except DecodeError:
            self.anomalies.append(ReplayAnomaly(index, "", "entry is not a LedgerEntry"))
            return
        self.apply(index, entry)

    def apply(self, index: int, entry: ledger_pb2.LedgerEntry) -> None:
        kind = entry.WhichOneof("kind")
        handler = _HANDLERS.get(kind or "")
        if handler is not None:
            handler(self, index, entry)

    # --- helpers ------------------------------------------------------------------------

    def _wants(self, tracking_id: str) -> bool:
        return self._wanted is None or self._wanted(tracking_id)

    def _known(self, index: int, tracking_id: str, kind: str) -> ComplaintState | None:
        state = self._states.get(tracking_id)
        if state is None:
            self.anomalies.append(
                ReplayAnomaly(
                    index,
                    tracking_id,
                    f"{kind} for a complaint neither registered nor received before it",
                )
            )
        return state

    def _envelope(self, index: int, signed: envelope_pb2.SignedEnvelope) -> envelope_pb2.Envelope:
        try:
            return envelope_pb2.Envelope.FromString(signed.body)
        except DecodeError:
            self.anomalies.append(ReplayAnomaly(index, "", "envelope body is not an Envelope"))
            return envelope_pb2.Envelope()

    # --- the entry kinds (the module docstring's numbers) ---------------------------------

    def _registered(self, index: int, entry: ledger_pb2.LedgerEntry) -> None:  # 1
        tracking_id = entry.complaint_registered.complaint.tracking_id
        if not self._wants(tracking_id):
            return
        if tracking_id in self._states:
            self.anomalies.append(ReplayAnomaly(index, tracking_id, "registered twice"))
        self._states[tracking_id] = ComplaintState(
            tracking_id,
            Status.submitted.value,
            self.node_id,
            received_at=_when(entry.recorded_at),
        )

    def _referral_sent(self, index: int, entry: ledger_pb2.LedgerEntry) -> None:  # 2
        envelope = self._envelope(index, entry.referral_sent.envelope)
        tracking_id = envelope.referral.complaint.tracking_id
        if not self._wants(tracking_id):
            return
        state = self._known(index, tracking_id, "referral sent")
        if state is None:
            return
        state = replace(
            state,
            status=Status.referred.value,
            referred_to=envelope.recipient,
            referral_message_id=envelope.message_id,
        )
        self._states[tracking_id] = _stamp(state, Action.refer, _when(entry.recorded_at))

    def _referral_received(self, index: int, entry: ledger_pb2.LedgerEntry) -> None:  # 3
        envelope = self._envelope(index, entry.referral_received.envelope)
        tracking_id = envelope.referral.complaint.tracking_id
        if not self._wants(tracking_id):
            return
        now = _when(entry.recorded_at)
        before = self._states.get(tracking_id)
        if before is None:
            self._states[tracking_id] = ComplaintState(
                tracking_id,
                Status.accepted.value,
                self.node_id,
                received_from=envelope.sender,
                received_at=now,
            )
            return
        self._states[tracking_id] = replace(
            before,
            status=Status.accepted.value,
            holder=self.node_id,
            referred_to=None,
            referral_message_id=None,
            received_at=now,
            disposed_at=now,
            verified_at=None,
            resolved_at=None,
        )

    def _receipt(self, index: int, entry: ledger_pb2.LedgerEntry) -> None:  # 4
        envelope = self._envelope(index, entry.receipt_received.envelope)
        receipt = envelope.receipt
        if not self._wants(receipt.tracking_id):
            return
        state = self._known(index, receipt.tracking_id, "receipt")
        if state is None:
            return
        if state.status == Status.referred.value:
            state = replace(state, status=Status.accepted.value, holder=envelope.sender)
        if (
            state.referral_message_id == receipt.referral_message_id
            and state.status == Status.accepted.value
            and state.holder == envelope.sender
            and state.disposed_at is None
        ):
            state = replace(state, disposed_at=_when(envelope.sent_at))
        self._states[receipt.tracking_id] = state

    def _status_changed(self, index: int, entry: ledger_pb2.LedgerEntry) -> None:  # 5
        change = entry.status_changed
        if not self._wants(change.tracking_id):
            return
        state = self._known(index, change.tracking_id, "status change")
        if state is None:
            return
        if change.from_status != state.status:
            self.anomalies.append(
                ReplayAnomaly(
                    index,
                    change.tracking_id,
                    f"status change from {change.from_status}, but the ledger before it "
                    f"leaves the complaint {state.status}",
                )
            )
        state = replace(state, status=change.to_status)
        if change.action in (Action.return_, Action.escalate):
            if state.received_from is not None:
                state = replace(state, holder=state.received_from)
            else:
                state = replace(state, referred_to=None)
        self._states[change.tracking_id] = _stamp(state, change.action, _when(entry.recorded_at))

    def _status_update(self, index: int, entry: ledger_pb2.LedgerEntry) -> None:  # 6
        update = self._envelope(index, entry.status_update_received.envelope).status_update
        if not self._wants(update.tracking_id):
            return
        state = self._known(index, update.tracking_id, "status update")
        if state is None:
            return
        state = replace(state, status=update.status, holder=update.holder)
        self._states[update.tracking_id] = _stamp(state, update.action, _when(update.at))

    def _reply_recorded(self, index: int, entry: ledger_pb2.LedgerEntry) -> None:  # 7
        tracking_id = entry.reply_recorded.tracking_id
        if not self._wants(tracking_id):
            return
        state = self._known(index, tracking_id, "reply")
        if state is not None:
            self._states[tracking_id] = replace(state, replied_at=_when(entry.recorded_at))

    def _reply_received(self, index: int, entry: ledger_pb2.LedgerEntry) -> None:  # 7
        reply = self._envelope(index, entry.reply_received.envelope).reporter_reply
        if not self._wants(reply.tracking_id):
            return
        state = self._known(index, reply.tracking_id, "forwarded reply")
        if state is not None:
            self._states[reply.tracking_id] = replace(state, replied_at=_when(reply.at))


def tracking_id_of(data: bytes) -> str | None:
    """The complaint a serialized entry moves, or None if it moves none (or is unreadable)."""
    try:
        entry = ledger_pb2.LedgerEntry.FromString(data)
        kind = entry.WhichOneof("kind")
        if kind == "complaint_registered":
            return entry.complaint_registered.complaint.tracking_id
        if kind == "status_changed":
            return entry.status_changed.tracking_id
        if kind == "reply_recorded":
            return entry.reply_recorded.tracking_id
        signed = {
            "referral_sent": entry.referral_sent.envelope,
            "referral_received": entry.referral_received.envelope,
            "receipt_received": entry.receipt_received.envelope,
            "status_update_received": entry.status_update_received.envelope,
            "reply_received": entry.reply_received.envelope,
        }.get(kind or "")
        if signed is None:
            return None
        envelope = envelope_pb2.Envelope.FromString(signed.body)
    except DecodeError:
        return None
    payload = envelope.WhichOneof("payload")
    if payload == "referral":
        return envelope.referral.complaint.tracking_id
    if payload in ("receipt", "status_update", "reporter_reply"):
        return getattr(envelope, payload).tracking_id  # type: ignore[no-any-return]
    return None


_Handler = Callable[[LedgerReplay, int, ledger_pb2.LedgerEntry], None]
_HANDLERS: dict[str, _Handler] = {
    "complaint_registered": LedgerReplay._registered,
    "referral_sent": LedgerReplay._referral_sent,
    "referral_received": LedgerReplay._referral_received,
    "receipt_received": LedgerReplay._receipt,
    "status_changed": LedgerReplay._status_changed,
    "status_update_received": LedgerReplay._status_update,
    "reply_recorded": LedgerReplay._reply_recorded,
    "reply_received": LedgerReplay._reply_received,
}
