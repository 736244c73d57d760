"""The one function that appends to the ledger. Callers pass the Session of the transaction
that makes the change the entry records, so both commit or neither does.

Each append also writes the tree nodes it completes (node.store.tree), in the same
transaction: the entry, its leaf hash and every node above it commit together. The tree's
right edge (its frontier) is read from the store under the ledger-head lock, so any number
of processes (the server, an operator's CLI) can append. Within one transaction the
frontier is kept in the session and reused while its size still equals the head; after a
rolled-back savepoint the sizes differ and it is read again, and a new transaction always
reads it again.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import ledger_pb2
from node.ledger.merkle import Frontier, leaf_hash
from node.services.context import NodeContext
from node.store import queries, tree

__all__ = ["record"]

_FRONTIER_KEY = "lapor-node.ledger.frontier"


def record(session: Session, ctx: NodeContext, entry: ledger_pb2.LedgerEntry) -> int:
    """Stamp `entry` with this node and the time, append it, and return its index."""
    tree.lock_head(session)  # take the lock first, so recorded_at follows index order
    now = ctx.clock.now()
    entry.node_id = ctx.node_id
    entry.recorded_at.FromDatetime(now)
    data = entry.SerializeToString()
    leaf = leaf_hash(data)
    index = queries.append_ledger_row(session, data, leaf, now)
    transaction = session.get_transaction()
    cached = session.info.get(_FRONTIER_KEY)
    if (
        isinstance(cached, tuple)
        and cached[0] is transaction
        and isinstance(cached[1], Frontier)
        and cached[1].size == index
    ):
        frontier = cached[1]
    else:
        frontier = tree.frontier(session, index)
    tree.insert_nodes(session, frontier.append(leaf))
    session.info[_FRONTIER_KEY] = (transaction, frontier)
    return index
