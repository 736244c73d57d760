"""The one function that appends to the ledger. Callers pass the Session of the transaction
that makes the change the entry records, so both commit or neither does."""

from __future__ import annotations

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import ledger_pb2
from node.ledger.merkle import leaf_hash
from node.services.context import NodeContext
from node.store import queries

__all__ = ["record"]


def record(session: Session, ctx: NodeContext, entry: ledger_pb2.LedgerEntry) -> int:
    """Stamp `entry` with this node and the time, append it, and return its index."""
    now = ctx.clock.now()
    entry.node_id = ctx.node_id
    entry.recorded_at.FromDatetime(now)
    data = entry.SerializeToString()
    return queries.append_ledger_row(session, data, leaf_hash(data), now)
