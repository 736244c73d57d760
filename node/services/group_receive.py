"""Receiving the batches of several links in ONE write transaction (group commit).

`receive_group` applies each link's batch exactly as exchange.receive_batch does (the same
checks, rows, ledger entries and responses: see node.services.exchange), but inside one
transaction for all of them, each link's batch under its own SAVEPOINT: a batch that
raises is rolled back alone and its link gets the error, while the others commit. A
batch that *refuses* an envelope is not an exception: as in receive_batch, what came
before the refused envelope commits, and the result carries the error.

Invariants:
  1. a link's result is returned only from a transaction that committed; if the commit
     itself fails, every link of the group gets that error and acknowledges nothing;
  2. batches are applied in the order given; a link appears at most once per group (the
     caller, node.federation.group_commit, sends one batch per link at a time, since a
     link session awaits its commit before it reads its next batch).

`receive_batch_in` is exchange.receive_batch with the session passed in. It lives here, not
in exchange.py, while that module is being split into session-taking functions elsewhere
(a merge keeps one of the two).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from sqlalchemy.orm import Session

from node._proto.lapor.v1 import envelope_pb2, federation_pb2
from node.crypto.signing import VerifyKey
from node.errors import NodeError, StateError, ValidationError
from node.ids import NodeId
from node.services import bulk, witness
from node.services.context import NodeContext
from node.services.exchange import (
    BatchResult,
    _active_link,
    _outgoing,
    _receive_one,
    _send_receipts,
    _signer,
)
from node.store.models import InboxRow

__all__ = ["LinkBatch", "receive_batch_in", "receive_group"]


@dataclass(frozen=True)
class LinkBatch:
    """One link's deliveries to commit (exchange.receive_batch's arguments)."""

    peer: NodeId
    deliveries: Sequence[federation_pb2.Delivery]
    held: int | None = None


def receive_group(ctx: NodeContext, batches: Sequence[LinkBatch]) -> list[BatchResult | Exception]:
    """Apply every link's batch in one transaction (module invariants); per batch, its
    result or the exception that rolled it back."""
    out: list[BatchResult | Exception] = []
    with ctx.db.write() as session:
        for batch in batches:
            try:
                with session.begin_nested():
                    out.append(
                        receive_batch_in(session, ctx, batch.peer, batch.deliveries, batch.held)
                    )
            except Exception as e:  # rolled back to the savepoint: this link alone fails
                out.append(e)
    return out


def receive_batch_in(
    session: Session,
    ctx: NodeContext,
    peer: NodeId,
    deliveries: Sequence[federation_pb2.Delivery],
    held: int | None = None,
) -> BatchResult:
    """exchange.receive_batch inside the caller's transaction `session`."""
    result = BatchResult()
    link = _active_link(session, peer, lock=True)
    witness.refuse_if_suspended(link)
    key = VerifyKey(link.signing_key)
    receipts: list[tuple[InboxRow, envelope_pb2.Receipt]] = []
    first_out = link.next_out_seq
    queued: list[tuple[int, envelope_pb2.SignedEnvelope]] = []
    position = 0
    while position < len(deliveries):
        run = bulk.receive_run(session, ctx, link, deliveries[position:])
        if run.taken:
            position += run.taken
            result.committed_through = run.through
            result.applied += run.taken
            result.accepted.extend(run.accepted)
            result.fresh_responses.update(run.responses)
            queued.extend(run.queued)
            if position == len(deliveries):
                break
        delivery = deliveries[position]
        position += 1
        if key.raw != link.signing_key:  # the peer's key rotation was just followed
            key = VerifyKey(link.signing_key)
        try:
            with session.begin_nested():
                signer = _signer(session, link, key, delivery)
                _receive_one(session, ctx, link, signer, delivery, result, receipts)
        except witness.ForkDetected as e:
            index = witness.record_fork(session, ctx, link, e)
            result.error = StateError(
                f"{e}; this node recorded the evidence in its ledger entry {index} and "
                "refuses further envelopes from you until its operator acts"
            )
            result.failed_sequence = link.last_in_seq + 1
            break
        except NodeError as e:
            result.error = e
            result.failed_sequence = link.last_in_seq + 1
            break
        except (DecodeError, OverflowError, ValueError) as e:
            result.error = ValidationError(
                f"envelope {link.last_in_seq + 1} from {peer} carries a field that does "
                f"not parse or is out of range ({type(e).__name__}); nothing of it was "
                "stored"
            )
            result.failed_sequence = link.last_in_seq + 1
            break
    _send_receipts(session, ctx, link, receipts)
    if result.committed_through or result.applied:
        link.last_seen_at = ctx.clock.now()
    if held is not None and queued and len(queued) == link.next_out_seq - first_out:
        result.outgoing = _outgoing(session, ctx, queued, held)
    return result
