"""Envelopes and Delivery frames, as the parent receives them from its child: signed with
the child's real key and (most of the time) carrying the child's real checkpoint, so every
check after the signature and the witness is reached; edge-valued headers, arbitrary
payload bytes (a key rotation's inner message included), arbitrary consistency proofs;
through node.services.exchange.receive_batch."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from fuzz._harness import Harness
from fuzz._nodes import Pair, linked_pair
from fuzz._values import mostly, node_ids, short_bytes, timestamps, u64
from node._proto.lapor.v1 import envelope_pb2, federation_pb2, trust_pb2
from node.crypto.signing import ENVELOPE_PURPOSE
from node.ids import NodeId, new_message_id
from node.services import checkpoints, exchange

__all__ = ["HARNESS"]

_PAYLOADS = ["key_rotation", "referral", "receipt", "status_update", "reporter_reply", "tail"]


@dataclass(frozen=True)
class _Input:
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
    checkpoint: bytes


@contextlib.contextmanager
def _setup(folder: Path) -> Iterator[_State]:
    with linked_pair(folder) as pair:
        with pair.child.db.write() as session:
            note = checkpoints.sign_in(session, pair.child)[0].note
        yield _State(pair, note)


@st.composite
def _inputs(draw: st.DrawFn) -> _Input:
    env = None
    own = False
    if draw(st.integers(0, 9)) == 0:
        tail = draw(st.binary(max_size=300))
    else:
        env = envelope_pb2.Envelope(
            message_id=draw(mostly(None, node_ids())) or new_message_id(),
            sender=draw(mostly("id-64-02", node_ids())),
            recipient=draw(mostly("id-64", node_ids())),
            sequence=draw(mostly(1, u64())),
        )
        own = draw(st.integers(0, 3)) > 0
        if not own:
            env.checkpoint = draw(short_bytes(200))
        seconds, nanos = draw(mostly((1_800_000_000, 0), timestamps()))
        env.sent_at.seconds, env.sent_at.nanos = seconds, nanos
        kind = draw(st.sampled_from(_PAYLOADS))
        tail = b""
        if kind == "key_rotation":
            env.key_rotation.CopyFrom(
                trust_pb2.SignedKeyRotation(
                    rotation=draw(short_bytes(200)),
                    old_signature=draw(short_bytes(70)),
                    new_signature=draw(short_bytes(70)),
                )
            )
        elif kind == "tail":
            tail = draw(st.binary(max_size=200))
        else:
            # An empty payload message of this kind, then arbitrary bytes merged after.
            getattr(env, kind).SetInParent()
            tail = draw(mostly(b"", st.binary(max_size=120)))
    return _Input(
        env,
        own,
        tail,
        draw(short_bytes(64)),
        draw(u64()),
        draw(st.lists(short_bytes(40), max_size=3)),
        draw(st.one_of(st.none(), u64())),
    )


def _target(state: _State, value: _Input) -> None:
    body = value.tail
    if value.envelope is not None:
        env = envelope_pb2.Envelope()
        env.CopyFrom(value.envelope)
        if value.own_checkpoint:
            env.checkpoint = state.checkpoint
        body = env.SerializeToString() + value.tail
    key = state.pair.child.signing_key
    signed = envelope_pb2.SignedEnvelope(
        body=body,
        signer="id-64-02",
        key_id=key.public.key_id,
        signature=key.sign(ENVELOPE_PURPOSE, body),
    )
    delivery = federation_pb2.Delivery(
        envelope=signed,
        content=value.content,
        proof_held_size=value.proof_held_size,
        consistency_proof=value.proof,
    )
    parent = state.pair.parent
    result = exchange.receive_batch(parent, NodeId("id-64-02"), [delivery], value.held)
    if result.error is not None:
        raise result.error


HARNESS = Harness("envelopes", _inputs(), _target, _setup)
