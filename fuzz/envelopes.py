"""Envelopes and Delivery frames, as the parent receives them from its child and the child
from its parent: signed with the sender's real key and (most of the time) carrying its
real checkpoint, so every check after the signature and the witness is reached;
edge-valued headers and complaint summaries, arbitrary payload bytes (a key rotation's
inner message included), arbitrary consistency proofs; through
node.services.exchange.receive_batch."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from fuzz._harness import Harness
from fuzz._nodes import Pair, linked_pair
from fuzz._values import mostly, node_ids, short_bytes, texts, timestamps, u64
from node._proto.lapor.v1 import complaint_pb2, envelope_pb2, federation_pb2, trust_pb2
from node.crypto.signing import ENVELOPE_PURPOSE
from node.ids import NodeId, new_message_id
from node.services import checkpoints, exchange

__all__ = ["HARNESS"]

_PAYLOADS = ["key_rotation", "referral", "receipt", "status_update", "reporter_reply", "tail"]

# Built once (see fuzz._values).
_INT32 = st.integers(-(1 << 31), (1 << 31) - 1)
_SUMMARY = {
    "tracking_id": mostly("id-64.2026.000001", texts(30)),
    "origin_node": mostly("id-64", node_ids()),
    "classification": mostly(1, _INT32),
    "category": mostly("jalan", texts(20)),
    "region_code": mostly("64.02", texts(10)),
    "channel": mostly(1, _INT32),
    "content_commitment": mostly(bytes(32), short_bytes(40)),
}
_SUBMITTED_AT = mostly((1_800_000_000, 0), timestamps())
_ONE_IN_TEN = st.integers(0, 9)
_WHOLE_BODY = st.binary(max_size=300)
_MESSAGE_ID = mostly(None, node_ids())
_SEQUENCE = mostly(1, u64())
_ONE_IN_FOUR = st.integers(0, 3)
_KIND = st.sampled_from(_PAYLOADS)
_TAIL = st.binary(max_size=200)
_MERGED = mostly(b"", st.binary(max_size=120))
_PROOF = st.lists(short_bytes(40), max_size=3)
_HELD = st.one_of(st.none(), u64())
_BOOL = st.booleans()


@dataclass(frozen=True)
class _Input:
    down: bool  # from the parent to the child (else up)
    envelope: envelope_pb2.Envelope | None  # None: `tail` is the whole body
    own_checkpoint: bool  # carry the child's real checkpoint
    tail: bytes
    content: bytes
    proof_held_size: int
    proof: list[bytes]
    held: int | None


@dataclass(frozen=True)
class _State:
    pair: Pair
    child_checkpoint: bytes
    parent_checkpoint: bytes


@contextlib.contextmanager
def _setup(folder: Path) -> Iterator[_State]:
    with linked_pair(folder) as pair:
        notes = []
        for ctx in (pair.child, pair.parent):
            with ctx.db.write() as session:
                notes.append(checkpoints.sign_in(session, ctx)[0].note)
        yield _State(pair, *notes)


def _summary(draw: st.DrawFn) -> complaint_pb2.ComplaintSummary:
    summary = complaint_pb2.ComplaintSummary(
        **{field: draw(strategy) for field, strategy in _SUMMARY.items()}
    )
    summary.submitted_at.seconds, summary.submitted_at.nanos = draw(_SUBMITTED_AT)
    return summary


@st.composite
def _inputs(draw: st.DrawFn) -> _Input:
    env = None
    own = False
    down = draw(_BOOL)
    sender, recipient = ("id-64", "id-64-02") if down else ("id-64-02", "id-64")
    if draw(_ONE_IN_TEN) == 0:
        tail = draw(_WHOLE_BODY)
    else:
        env = envelope_pb2.Envelope(
            message_id=draw(_MESSAGE_ID) or new_message_id(),
            sender=draw(mostly(sender, node_ids())),
            recipient=draw(mostly(recipient, node_ids())),
            sequence=draw(_SEQUENCE),
        )
        own = draw(_ONE_IN_FOUR) > 0
        if not own:
            env.checkpoint = draw(short_bytes(200))
        seconds, nanos = draw(_SUBMITTED_AT)
        env.sent_at.seconds, env.sent_at.nanos = seconds, nanos
        kind = draw(_KIND)
        tail = b""
        if kind == "key_rotation":
            env.key_rotation.CopyFrom(
                trust_pb2.SignedKeyRotation(
                    rotation=draw(short_bytes(200)),
                    old_signature=draw(short_bytes(70)),
                    new_signature=draw(short_bytes(70)),
                )
            )
        elif kind == "referral" and draw(_BOOL):
            env.referral.complaint.CopyFrom(_summary(draw))
        elif kind == "tail":
            tail = draw(_TAIL)
        else:
            # An empty payload message of this kind, then arbitrary bytes merged after.
            getattr(env, kind).SetInParent()
            tail = draw(_MERGED)
    return _Input(
        down,
        env,
        own,
        tail,
        draw(short_bytes(64)),
        draw(u64()),
        draw(_PROOF),
        draw(_HELD),
    )


def _target(state: _State, value: _Input) -> None:
    body = value.tail
    if value.envelope is not None:
        env = envelope_pb2.Envelope()
        env.CopyFrom(value.envelope)
        if value.own_checkpoint:
            env.checkpoint = state.parent_checkpoint if value.down else state.child_checkpoint
        body = env.SerializeToString() + value.tail
    sender, receiver = (
        (state.pair.parent, state.pair.child)
        if value.down
        else (state.pair.child, state.pair.parent)
    )
    key = sender.signing_key
    signed = envelope_pb2.SignedEnvelope(
        body=body,
        signer=sender.node_id,
        key_id=key.public.key_id,
        signature=key.sign(ENVELOPE_PURPOSE, body),
    )
    delivery = federation_pb2.Delivery(
        envelope=signed,
        content=value.content,
        proof_held_size=value.proof_held_size,
        consistency_proof=value.proof,
    )
    result = exchange.receive_batch(receiver, NodeId(sender.node_id), [delivery], value.held)
    if result.error is not None:
        raise result.error


HARNESS = Harness("envelopes", _inputs(), _target, _setup)
