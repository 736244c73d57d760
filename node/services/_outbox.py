"""Enqueueing signed envelopes for a peer, in the caller's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import envelope_pb2
from node.envelopes import seal
from node.ids import new_message_id
from node.services import checkpoints
from node.services.context import NodeContext
from node.store import queries
from node.store.models import Link, OutboxRow

__all__ = ["enqueue", "sealed", "store_sealed"]


def enqueue(
    session: Session,
    ctx: NodeContext,
    link: Link,
    *,
    tracking_id: str | None,
    carries_content: bool = False,
    checkpoint: bytes | None = None,
    **payload: object,
) -> tuple[OutboxRow, envelope_pb2.SignedEnvelope]:
    """Sign an envelope with the link's next sequence and store it in the outbox.

    `link` must have been read with lock=True in this transaction so sequences stay dense.
    The envelope carries `checkpoint` (a note this node signed in this transaction, after
    locking `link`), or else a checkpoint signed now that covers every entry appended so far.
    """
    if checkpoint is None:
        checkpoint = checkpoints.sign_in(session, ctx)[0].note
    now = ctx.clock.now()
    sequence = link.next_out_seq
    link.next_out_seq = sequence + 1
    envelope, signed = sealed(ctx, link.peer_id, sequence, checkpoint, now, **payload)
    row = OutboxRow(
        peer_id=link.peer_id,
        sequence=sequence,
        message_id=envelope.message_id,
        kind=envelope.WhichOneof("payload") or "",
        tracking_id=tracking_id,
        carries_content=carries_content,
        body=signed.body,
        key_id=signed.key_id,
        signature=signed.signature,
        created_at=now,
    )
    queries.add(session, row, flush=True)  # the caller may need row.id
    return row, signed


def sealed(
    ctx: NodeContext,
    peer: str,
    sequence: int,
    checkpoint: bytes,
    now: dt.datetime,
    **payload: object,
) -> tuple[envelope_pb2.Envelope, envelope_pb2.SignedEnvelope]:
    """A new envelope from this node to `peer` with `sequence`, `checkpoint` and one
    payload, sent at `now`, and it signed with the node's key (not stored)."""
    envelope = envelope_pb2.Envelope(
        message_id=new_message_id(),
        sender=ctx.node_id,
        recipient=peer,
        sequence=sequence,
        checkpoint=checkpoint,
        **payload,  # type: ignore[arg-type]
    )
    envelope.sent_at.FromDatetime(now)
    return envelope, seal(envelope, ctx.signing_key)


_COLUMNS = (
    "peer_id",
    "sequence",
    "message_id",
    "kind",
    "tracking_id",
    "carries_content",
    "body",
    "key_id",
    "signature",
    "created_at",
)


def store_sealed(
    session: Session,
    rows: Sequence[tuple[envelope_pb2.Envelope, envelope_pb2.SignedEnvelope, str | None, bool]],
    at: dt.datetime,
) -> None:
    """Insert envelopes made by `sealed` into the outbox in bulk, in the order given: each
    with the complaint it concerns and whether its content goes with it. The caller moved
    the link's next_out_seq past their sequences, under the link's lock, as enqueue does."""
    queries.insert_many(
        session,
        OutboxRow,
        _COLUMNS,
        [
            (
                envelope.recipient,
                envelope.sequence,
                envelope.message_id,
                envelope.WhichOneof("payload") or "",
                tracking_id,
                carries_content,
                signed.body,
                signed.key_id,
                signed.signature,
                at,
            )
            for envelope, signed, tracking_id, carries_content in rows
        ],
    )
