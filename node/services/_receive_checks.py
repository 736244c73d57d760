"""The checks every received envelope passes, shared by the per-envelope path
(node.services.exchange) and the bulk path (node.services.bulk), so that the two decide
alike (exchange's module docstring, steps 1-4):

1. signature and shape: ``node.envelopes.open_envelope`` (both paths call it);
2. deduplication: ``is_redelivery`` (the per-envelope path looks the inbox up one message
   at a time, the bulk path for the whole run);
3. sequence: ``check_sequence``, exactly last + 1;
4. authority: ``check_sender_role``, which side of a link may send each payload;
5. a status update: ``parse_status_update`` (its fields) and ``check_status_update``
   (against where the complaint stands here: it holds it for this node, and this node's
   own transition for (status, action) leads where the update says).

Each check returns nothing or raises (a NodeError the per-envelope path reports); the bulk
path ends its run at the first envelope a check refuses and leaves it to the per-envelope
path, which raises the same error.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol, TypeVar

from node._proto.lapor.v1 import envelope_pb2
from node.errors import PermissionDeniedError, SequenceGapError, StateError, ValidationError
from node.ids import NodeId, TrackingId, parse_node_id, parse_tracking_id
from node.store.models import Link
from node.workflow import lifecycle
from node.workflow.lifecycle import Action, Status

__all__ = [
    "SENT_BY",
    "HeldHere",
    "StatusChange",
    "check_sender_role",
    "check_sequence",
    "check_status_update",
    "is_redelivery",
    "parse_status_update",
]

# Which side of a link may send each payload (DESIGN.md, authority): down the tree come
# referrals, reporters' replies and sealed identities; up come receipts and status updates;
# either side may rotate its own keys.
SENT_BY: dict[str, tuple[str, str]] = {
    "referral": ("parent", "referrals"),
    "reporter_reply": ("parent", "reporter replies"),
    "sealed_identity": ("parent", "sealed identities"),
    "receipt": ("child", "receipts"),
    "status_update": ("child", "status updates"),
}


def check_sender_role(link: Link, kind: str) -> None:
    """`link`'s peer may send a payload of `kind` to this node."""
    rule = SENT_BY.get(kind)
    if kind != "key_rotation" and rule is None:
        raise ValidationError(f"unsupported payload {kind!r}")
    if rule is not None and link.role != rule[0]:
        raise PermissionDeniedError(
            f"{rule[1]} are accepted only from this node's {rule[0]}; {link.peer_id} is "
            f"its {link.role}"
        )


def check_sequence(peer: str, env: envelope_pb2.Envelope, last_in_seq: int) -> None:
    """`env` follows the last sequence committed from `peer`, `last_in_seq`, exactly: a
    reused number or a gap is refused, naming the envelope refused and what was expected."""
    if env.sequence <= last_in_seq:
        raise StateError(
            f"sequence {env.sequence} from {peer} was already used by another message "
            f"(last committed: {last_in_seq})"
        )
    if env.sequence != last_in_seq + 1:
        raise SequenceGapError(
            f"sequence gap from {peer}: envelope {env.sequence} (message {env.message_id}) "
            f"was refused; expected sequence {last_in_seq + 1}, the one after the last "
            "committed; nothing of it was stored"
        )


def is_redelivery(message_id: str, seen: Collection[str]) -> bool:
    """Whether a message with `message_id` from this peer is in `seen` (the inbox, or what
    the run took before it): then it is a redelivery, and changes nothing."""
    return message_id in seen


@dataclass(frozen=True)
class StatusChange:
    """What a child's StatusUpdate says, its fields checked (``parse_status_update``)."""

    tracking_id: TrackingId
    action: Action
    status: Status
    holder: NodeId
    actor: NodeId


class HeldHere(Protocol):
    """Where a complaint stands on this node, as a status update is checked against it: a
    Complaint row, or the bulk path's copy of one (node.store.batches.ComplaintState)."""

    @property
    def status(self) -> str: ...

    @property
    def holder(self) -> str: ...

    @property
    def referred_to(self) -> str | None: ...


H = TypeVar("H", bound=HeldHere)


def parse_status_update(update: envelope_pb2.StatusUpdate) -> StatusChange:
    """The update's tracking id, action, status, holder and actor, each of its shape, and
    its time present (ValidationError naming the first that is not)."""
    tracking_id = parse_tracking_id(update.tracking_id)
    try:
        action, status = Action(update.action), Status(update.status)
    except ValueError as e:
        raise ValidationError(f"status update for {tracking_id}: {e}") from e
    holder, actor = parse_node_id(update.holder), parse_node_id(update.actor)
    if not update.HasField("at"):
        raise ValidationError(f"status update for {tracking_id} has no time")
    return StatusChange(tracking_id, action, status, holder, actor)


def check_status_update(change: StatusChange, peer: str, me: str, row: H | None) -> H:
    """`peer` may report `change` of a complaint standing here as `row` (None: not here):
    this node referred it to `peer` and does not hold it itself, and this node's own
    transition for (its status, the action) leads to the status the update names.
    Returns `row`."""
    tracking_id = change.tracking_id
    if row is None:
        raise StateError(f"status update for {tracking_id}, which is not on this node")
    if row.referred_to != peer or row.holder == me:
        raise PermissionDeniedError(
            f"{peer} sent a status update for {tracking_id}, which it does not hold "
            f"for this node (here it is {row.status}, held by {row.holder})"
        )
    action, status = change.action, change.status
    expected = lifecycle.TRANSITIONS.get((Status(row.status), action))
    if expected is None or expected.target is not status:
        raise StateError(
            f"status update for {tracking_id} says {action.value} made it {status.value}, but "
            f"here it is {row.status}, from which {action.value} "
            + ("is not allowed" if expected is None else f"leads to {expected.target.value}")
        )
    return row
