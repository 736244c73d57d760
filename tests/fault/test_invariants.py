"""The after-fault checks can fail: they count an envelope never delivered as lost and one
recorded twice as duplicated (in-process nodes, the real services and ledger)."""

from __future__ import annotations

from sqlalchemy import select

from node._proto.lapor.v1 import ledger_pb2
from node.services import complaints
from node.services._ledger import record
from node.store.models import LedgerEntryRow
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.fault.invariants import check_tree
from tests.support.nodes import hand_over, link


def test_undelivered_referral_counts_as_lost(nodes: NodeFactory) -> None:
    """A referral queued and never handed over is lost; delivering it clears the count."""
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    child = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(parent, child)
    p, c = parent.ctx(), child.ctx()
    complaints.refer(p, complaints.submit(p, draft(0)), c.node_id)
    tally = check_tree([p, c], [(p.node_id, c.node_id)])
    assert (tally.lost, tally.duplicated, tally.ok) == (1, 0, False)
    hand_over(parent, child)
    hand_over(child, parent)
    tally = check_tree([p, c], [(p.node_id, c.node_id)])
    assert (tally.lost, tally.duplicated, tally.ok) == (0, 0, True)


def test_referral_recorded_twice_counts_as_duplicated(nodes: NodeFactory) -> None:
    """A second ledger entry for one received referral is a duplicate, and reconcile says so."""
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    child = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(parent, child)
    p, c = parent.ctx(), child.ctx()
    complaints.refer(p, complaints.submit(p, draft(0)), c.node_id)
    hand_over(parent, child)
    hand_over(child, parent)
    with c.db.write() as session:
        rows = session.scalars(select(LedgerEntryRow).order_by(LedgerEntryRow.idx)).all()
        received = next(
            ledger_pb2.LedgerEntry.FromString(r.entry)
            for r in rows
            if ledger_pb2.LedgerEntry.FromString(r.entry).WhichOneof("kind") == "referral_received"
        )
        record(session, c, received)  # as a receive path that forgot to deduplicate would
    tally = check_tree([p, c], [(p.node_id, c.node_id)])
    assert tally.duplicated == 1
    assert not tally.reconciled
    assert not tally.ok
