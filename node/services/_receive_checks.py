"""The checks every received envelope passes, shared by the per-envelope path
(node.services.exchange) and the bulk path (node.services.bulk), so that the two decide
alike (exchange's module docstring, steps 1-4):

1. signature and shape: ``node.envelopes.open_envelope`` (both paths call it);
2. deduplication: ``is_redelivery`` (the per-envelope path looks the inbox up one message
   at a time, the bulk path for the whole run);
3. sequence: ``check_sequence``, exactly last + 1;
4. authority: ``check_sender_role``, which side of a link may send each payload.

Each check returns nothing or raises (a NodeError the per-envelope path reports); the bulk
path ends its run at the first envelope a check refuses and leaves it to the per-envelope
path, which raises the same error.
"""

from __future__ import annotations

from collections.abc import Collection

from node._proto.lapor.v1 import envelope_pb2
from node.errors import PermissionDeniedError, SequenceGapError, StateError, ValidationError
from node.store.models import Link

__all__ = ["SENT_BY", "check_sender_role", "check_sequence", "is_redelivery"]

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
