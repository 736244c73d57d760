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

Each batch is applied by exchange.receive_batch_in, the one receive path (unit of work,
decision 0027), so a grouped batch auto-disposes what it accepts exactly as a lone one does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from node._proto.lapor.v1 import federation_pb2
from node.ids import NodeId
from node.services.context import NodeContext
from node.services.exchange import BatchResult, receive_batch_in

__all__ = ["LinkBatch", "receive_group"]


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
