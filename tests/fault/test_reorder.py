"""Envelopes arriving out of order, twice, or after a gap (what a broken transport could
hand a node) are refused or deduplicated without a trace, and an in-order resend then
delivers each exactly once. In-process: the receive path itself, no network."""

from __future__ import annotations

from node.errors import SequenceGapError
from node.services import complaints, exchange
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.fault.invariants import check_tree
from tests.support.nodes import hand_over, link, snapshot


def test_reordered_and_repeated_deliveries_take_effect_once(nodes: NodeFactory) -> None:
    """Out of order: refused, nothing stored; repeated: deduplicated; then all once."""
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    child = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(parent, child)
    p, c = parent.ctx(), child.ctx()
    ids = complaints.submit_many(p, [draft(i) for i in range(5)])
    complaints.refer_many(p, ids, c.node_id)
    state = exchange.hello_state(c, p.node_id)
    rows, _ = exchange.pending(p, c.node_id, 0, 100, state.held_checkpoint_size)
    d = [delivery for _, delivery in rows]
    before = snapshot(child)

    reversed_ = exchange.receive_batch(c, p.node_id, list(reversed(d)))
    assert isinstance(reversed_.error, SequenceGapError)
    assert (reversed_.committed_through, reversed_.failed_sequence) == (0, 5)  # d[4], refused
    assert snapshot(child) == before  # a refused batch leaves nothing

    gap = exchange.receive_batch(c, p.node_id, [d[0], d[2]])
    assert isinstance(gap.error, SequenceGapError)
    assert (gap.committed_through, gap.failed_sequence) == (1, 3)  # what came before it stays

    again = exchange.receive_batch(c, p.node_id, [d[0], d[1], d[1], d[2], d[3], d[4]])
    assert again.error is None
    assert again.committed_through == 5
    assert again.applied == 4  # d[0] was in already; the second d[1] is a redelivery
    # d[0]'s redelivery gets its original receipt back; the second d[1] gets none: its
    # receipt was queued by this same batch, and the link sends it in sequence.
    assert len(again.replays) == 1
    exchange.acknowledge(p, c.node_id, again.committed_through)
    hand_over(child, parent)  # the receipts go up
    for tracking_id in ids:
        assert complaints.show(c, tracking_id).status == "accepted"
        assert complaints.show(p, tracking_id).holder == c.node_id
    tally = check_tree([p, c], [(p.node_id, c.node_id)])
    assert tally.problems == []
    assert tally.envelopes == 10
