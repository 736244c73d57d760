"""The one function that appends to the ledger. Callers pass the Session of the transaction
that makes the change the entry records, so both commit or neither does.

Each append also writes the tree nodes it completes (node.store.tree), in the same
transaction: the entry, its leaf hash and every node above it commit together. The tree's
right edge (its frontier) is rebuilt from the stored nodes under the ledger-head lock, so
any number of processes (the server, an operator's CLI) can append. Within one transaction
the nodes already read or written are kept (node.store.tree), so only its first append
reads the frontier from the database. `record_many` appends a batch the same way with one
lock, one frontier and one bulk insert per table, so the two mix freely in one
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import timestamp_pb2
from sqlalchemy.orm import Session

from node._proto.lapor.v1 import ledger_pb2
from node.ledger.merkle import CompletedNode, leaf_hash
from node.services.context import NodeContext
from node.services.trust import TRUST_KINDS
from node.store import queries, tree

__all__ = ["record", "record_many"]


def record(session: Session, ctx: NodeContext, entry: ledger_pb2.LedgerEntry) -> int:
    """Stamp `entry` with this node and the time, append it, and return its index (the
    same as `record_many` with one entry: no ORM flush, a few Core statements)."""
    return record_many(session, ctx, [entry])[0]


def record_many(
    session: Session, ctx: NodeContext, entries: Sequence[ledger_pb2.LedgerEntry]
) -> list[int]:
    """Stamp and append `entries` in order; return their indexes (consecutive).

    The same leaves, tree nodes and head as calling `record` on each in turn, except that
    the batch shares one recorded_at, read once under the lock. The rows and the nodes go
    in with one bulk insert each (node.store.queries.insert_many), not row by row; entries
    of a trust kind are also named in ledger_trust_entries (node.services.trust). An
    empty batch does nothing, not even lock the head.
    """
    if not entries:
        return []
    start = tree.advance_head(session, len(entries))
    now = ctx.clock.now()
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(now)
    node_id = ctx.node_id
    frontier = tree.frontier(session, start)
    rows: list[tuple[bytes, bytes]] = []
    completed: list[CompletedNode] = []
    trust: list[int] = []
    for n, entry in enumerate(entries):
        if entry.WhichOneof("kind") in TRUST_KINDS:
            trust.append(start + n)
        entry.node_id = node_id
        entry.recorded_at.CopyFrom(stamp)
        data = entry.SerializeToString()
        leaf = leaf_hash(data)
        rows.append((data, leaf))
        completed.extend(frontier.append(leaf))
    queries.append_ledger_rows(session, start, rows, now, trust)
    tree.insert_nodes_bulk(session, completed)
    return list(range(start, start + len(rows)))
