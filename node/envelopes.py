"""Sealing and opening SignedEnvelopes: the one place envelope signatures are made and checked.

Opening follows these steps, in order, each failing with its own error (and so its own gRPC
status at the edge):
  1. the signed envelope is well-formed (signer, 32-byte key id, 64-byte signature);
  2. the signer is the authenticated peer (the TLS identity), else PermissionDeniedError;
  3. the key id is the peer's pinned signing key, else SignatureError (unknown key);
  4. the signature verifies over ENVELOPE_PURPOSE || body exactly as received;
  5. the body parses as an Envelope with a UUIDv7 id, a sequence >= 1, a timestamp and one
     payload, whose sender is the signer;
  6. its recipient is this node, else StateError.
The bytes received are kept verbatim; nothing is re-serialized to verify.

OpenedAhead opens a batch's envelopes before the writer needs them (on another thread:
opening needs no database, and libsodium releases the GIL while it verifies), and then
gives the writer each outcome, the error included, only when it asks for the same envelope
object with the same peer, key and recipient; anything else it opens then. So each
envelope is opened once, and exactly as open_envelope would open it in the writer. It also
opens the checkpoint each envelope carries as the peer's, under the same key (each
distinct note once): the witness takes that outcome for that key only, and opens anything
else itself (decision 0043: verifying the children's checkpoints was a seventh of the
writer's time at 1,200 children).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace

from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import envelope_pb2
from node.complaints import check_timestamp
from node.crypto.signing import ENVELOPE_PURPOSE, SigningKey, VerifyKey
from node.errors import (
    NodeError,
    PermissionDeniedError,
    SignatureError,
    StateError,
    ValidationError,
)
from node.ids import NodeId, parse_message_id
from node.ledger.checkpoint import Checkpoint, origin_for
from node.ledger.note import Verifier, open_checkpoint

__all__ = ["OpenedAhead", "OpenedEnvelope", "body_sha256", "open_envelope", "seal"]


@dataclass(frozen=True)
class OpenedEnvelope:
    """A verified envelope: the signed bytes as received and the parsed body."""

    signed: envelope_pb2.SignedEnvelope
    envelope: envelope_pb2.Envelope
    # Which payload the envelope carries, read once (the checks ask for it many times).
    payload_kind: str = ""
    # The checkpoint it carries, opened ahead (OpenedAhead) under the peer's key
    # `checkpoint_key` for the peer's log; node.services.witness uses it for that key only.
    checkpoint_ahead: Checkpoint | None = None
    checkpoint_key: bytes = b""

    def __post_init__(self) -> None:
        if not self.payload_kind:
            object.__setattr__(self, "payload_kind", self.envelope.WhichOneof("payload") or "")


def body_sha256(signed: envelope_pb2.SignedEnvelope) -> bytes:
    return hashlib.sha256(signed.body).digest()


def seal(envelope: envelope_pb2.Envelope, key: SigningKey) -> envelope_pb2.SignedEnvelope:
    """Serialize `envelope` once and sign those bytes."""
    body = envelope.SerializeToString()
    return envelope_pb2.SignedEnvelope(
        body=body,
        signer=envelope.sender,
        key_id=key.key_id,
        signature=key.sign(ENVELOPE_PURPOSE, body),
    )


def open_envelope(
    signed: envelope_pb2.SignedEnvelope,
    *,
    peer: NodeId,
    peer_key: VerifyKey,
    me: NodeId,
    ahead: OpenedAhead | None = None,
) -> OpenedEnvelope:
    """Verify `signed` as coming from `peer` to `me`; return it opened or raise. With
    `ahead`, the outcome it kept for `signed` under the same peer, key and recipient."""
    if ahead is not None:
        kept = ahead.kept(signed, peer, peer_key, me)
        if isinstance(kept, NodeError):
            raise kept
        if kept is not None:
            return kept
    # 1. Shape.
    if not signed.signer or len(signed.key_id) != 32 or len(signed.signature) != 64:
        raise ValidationError(
            "malformed signed envelope: expected signer, a 32-byte key id and a 64-byte "
            f"signature, found {len(signed.key_id)}-byte key id and "
            f"{len(signed.signature)}-byte signature"
        )
    # 2. The signer must be who TLS says is on the other end.
    if signed.signer != peer:
        raise PermissionDeniedError(
            f"envelope signed as {signed.signer!r} arrived from authenticated peer {peer!r}"
        )
    # 3. Known key.
    if signed.key_id != peer_key.key_id:
        raise SignatureError(
            f"unknown key {signed.key_id.hex()[:16]} for {peer!r}: "
            f"pinned key is {peer_key.key_id.hex()[:16]}"
        )
    # 4. Signature over the exact bytes.
    peer_key.verify(ENVELOPE_PURPOSE, signed.body, signed.signature)
    # 5. Body.
    envelope = envelope_pb2.Envelope()
    try:
        envelope.ParseFromString(signed.body)
    except DecodeError as e:
        raise ValidationError("malformed envelope body: not a lapor.v1.Envelope") from e
    parse_message_id(envelope.message_id)
    if envelope.sequence < 1:
        raise ValidationError("malformed envelope: sequence must be >= 1, found 0")
    if not envelope.HasField("sent_at"):
        raise ValidationError("malformed envelope: sent_at is missing")
    check_timestamp(envelope.sent_at, "malformed envelope: sent_at")
    if envelope.WhichOneof("payload") is None:
        raise ValidationError("malformed envelope: no payload")
    if envelope.sender != signed.signer:
        raise PermissionDeniedError(
            f"envelope sender {envelope.sender!r} is not its signer {signed.signer!r}"
        )
    # 6. For us.
    if envelope.recipient != me:
        raise StateError(f"envelope is for {envelope.recipient!r}, not for this node {me!r}")
    return OpenedEnvelope(signed, envelope)


_Outcome = OpenedEnvelope | NodeError


class OpenedAhead:
    """open_envelope's outcomes for a batch's envelopes, opened before the writer needs them
    (module docstring). Holds the envelopes it opened, so their ids stay theirs."""

    def __init__(self, peer: NodeId, peer_key: VerifyKey, me: NodeId) -> None:
        self.peer = peer
        self.key = peer_key.raw
        self.me = me
        self._outcomes: dict[int, tuple[envelope_pb2.SignedEnvelope, _Outcome]] = {}
        self.used = 0  # outcomes given to the writer (for tests)

    @classmethod
    def opening(
        cls,
        signed: Iterable[envelope_pb2.SignedEnvelope],
        *,
        peer: NodeId,
        peer_key: VerifyKey,
        me: NodeId,
        held_note: bytes | None = None,
    ) -> OpenedAhead:
        """Open each envelope of `signed` as open_envelope would, keeping what it gives or
        the NodeError it raises (after anything else, the writer opens the rest); and each
        checkpoint they carry but `held_note` (the peer's held here, which the witness
        compares and does not open)."""
        ahead = cls(peer, peer_key, me)
        verifier = Verifier.from_public_key(origin_for(peer), peer_key.raw)
        notes: dict[bytes, Checkpoint | None] = {}
        for one in signed:
            outcome: _Outcome
            try:
                outcome = open_envelope(one, peer=peer, peer_key=peer_key, me=me)
            except NodeError as e:
                outcome = e
            except Exception:  # not ours to judge here: the writer opens this one and the rest
                break
            note = outcome.envelope.checkpoint if isinstance(outcome, OpenedEnvelope) else b""
            if isinstance(outcome, OpenedEnvelope) and note and note != held_note:
                if note not in notes:
                    notes[note] = _checkpoint(note, verifier)
                if notes[note] is not None:
                    outcome = replace(
                        outcome, checkpoint_ahead=notes[note], checkpoint_key=peer_key.raw
                    )
            ahead._outcomes[id(one)] = (one, outcome)
        return ahead

    def kept(
        self,
        signed: envelope_pb2.SignedEnvelope,
        peer: NodeId,
        peer_key: VerifyKey,
        me: NodeId,
    ) -> _Outcome | None:
        """The outcome kept for this very envelope, if it was opened for `peer` under
        `peer_key` to `me`; None: open it now."""
        found = self._outcomes.get(id(signed))
        if (
            found is None
            or found[0] is not signed
            or peer != self.peer
            or me != self.me
            or peer_key.raw != self.key
        ):
            return None
        self.used += 1
        return found[1]


def _checkpoint(note: bytes, verifier: Verifier) -> Checkpoint | None:
    """`note` opened as the peer's signed checkpoint; None if it does not open so (the
    writer then opens it itself, and decides: node.services.witness)."""
    try:
        return open_checkpoint(note, verifier)
    except NodeError:
        return None
