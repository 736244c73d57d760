"""The bulk receive path (node.services.bulk): what it takes it writes as the per-envelope
path would, and whatever it does not take (a bad envelope, a redelivery, another payload,
a re-referral) ends the run and is decided by the per-envelope path, on both databases."""

from __future__ import annotations

from sqlalchemy import func, select

from node.errors import ValidationError
from node.services import complaints, exchange, lifecycle
from node.store.models import Complaint, ComplaintEvent, InboxRow, OutboxRow
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.fault.invariants import check_tree
from tests.support.nodes import TestNode, hand_over, link, snapshot


def _pair(nodes: NodeFactory) -> tuple[TestNode, TestNode]:
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    child = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(parent, child)
    return parent, child


def _deliveries(parent: TestNode, child: TestNode, count: int) -> tuple[list[str], list]:  # type: ignore[type-arg]
    p, c = parent.ctx(), child.ctx()
    ids = complaints.submit_many(p, [draft(i) for i in range(count)])
    complaints.refer_many(p, ids, c.node_id)
    state = exchange.hello_state(c, p.node_id)
    rows, _ = exchange.pending(p, c.node_id, state.last_received, 1000, state.held_checkpoint_size)
    return list(ids), [delivery for _, delivery in rows]


def test_a_run_writes_what_the_per_envelope_path_writes(nodes: NodeFactory) -> None:
    """Every referral in one batch: complaint, content, event, inbox row pointing at its
    signed receipt; the receipts taken in bulk at the parent; both ledgers verify and
    reconcile, and every complaint shows the same as after one-at-a-time handovers."""
    parent, child = _pair(nodes)
    p, c = parent.ctx(), child.ctx()
    ids, batch = _deliveries(parent, child, 40)
    result = exchange.receive_batch(c, p.node_id, batch)
    assert (result.error, result.applied, result.committed_through) == (None, 40, 40)
    assert result.accepted == ids
    exchange.acknowledge(p, c.node_id, 40)
    with c.db.read() as session:
        inbox = session.scalars(select(InboxRow).order_by(InboxRow.sequence)).all()
        receipts = {row.id: row for row in session.scalars(select(OutboxRow))}
        assert [row.sequence for row in inbox] == list(range(1, 41))
        for row in inbox:
            receipt = receipts[row.response_outbox_id]  # type: ignore[index]
            assert receipt.kind == "receipt"
        events = session.scalar(select(func.count()).select_from(ComplaintEvent))
        assert events == 40
    ups = hand_over(child, parent)
    assert (ups.error, ups.applied) == (None, 40)
    for tracking_id in ids:
        child_view, parent_view = complaints.show(c, tracking_id), complaints.show(p, tracking_id)
        assert (child_view.status, child_view.holder) == ("accepted", c.node_id)
        assert (parent_view.status, parent_view.holder) == ("accepted", c.node_id)
        assert complaints.show(c, tracking_id, with_content=True).content_kept is True
    with p.db.read() as session:
        disposed = session.scalars(select(Complaint.disposed_at)).all()
        assert len(disposed) == 40 and None not in disposed
    tally = check_tree([p, c], [(p.node_id, c.node_id)])
    assert tally.problems == []
    assert tally.envelopes == 80


def test_a_bad_referral_ends_the_run_and_nothing_of_it_is_stored(nodes: NodeFactory) -> None:
    """Content that does not open its commitment, third in a batch: the two before it are
    committed, the batch stops at it with the per-envelope path's error."""
    parent, child = _pair(nodes)
    p, c = parent.ctx(), child.ctx()
    ids, batch = _deliveries(parent, child, 5)
    batch[2].content = batch[2].content + b" (changed)"
    result = exchange.receive_batch(c, p.node_id, batch)
    assert isinstance(result.error, ValidationError)
    assert (result.committed_through, result.failed_sequence, result.applied) == (2, 3, 2)
    assert [v.tracking_id for v in complaints.list_complaints(c)] == ids[:2]
    before = snapshot(child)
    again = exchange.receive_batch(c, p.node_id, batch[2:])
    assert isinstance(again.error, ValidationError)
    assert snapshot(child) == before


def test_other_payloads_between_runs_go_through_the_per_envelope_path(
    nodes: NodeFactory,
) -> None:
    """Receipts, a status update, more receipts in one batch at the parent: the status
    update splits the receipts into two runs and is applied in between."""
    parent, child = _pair(nodes)
    p, c = parent.ctx(), child.ctx()
    ids, batch = _deliveries(parent, child, 6)
    assert exchange.receive_batch(c, p.node_id, batch[:3]).applied == 3
    lifecycle.follow_up(c, ids[0], "Tim sudah turun ke lokasi")
    assert exchange.receive_batch(c, p.node_id, batch[3:]).applied == 3
    exchange.acknowledge(p, c.node_id, 6)
    ups = hand_over(child, parent)
    assert (ups.error, ups.applied, ups.committed_through) == (None, 7, 7)
    assert complaints.show(p, ids[0]).status == "in_progress"
    assert {complaints.show(p, t).status for t in ids[1:]} == {"accepted"}
    tally = check_tree([p, c], [(p.node_id, c.node_id)])
    assert tally.problems == []


def test_a_run_writes_its_link_once(nodes: NodeFactory) -> None:
    """A run's changes to the link (the peer's checkpoint, the sequences in and out, when
    it was last seen) go in with one UPDATE, at the child taking referrals and at the
    parent taking their receipts; an acknowledgement is one more; the links read back
    with all of them."""
    from sqlalchemy import event

    from node.store.models import Link

    parent, child = _pair(nodes)
    p, c = parent.ctx(), child.ctx()
    _, batch = _deliveries(parent, child, 3)
    updates: list[str] = []

    def before(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("UPDATE links"):
            updates.append(statement)

    for ctx in (p, c):
        event.listen(ctx.db._writer, "before_cursor_execute", before)
    assert exchange.receive_batch(c, p.node_id, batch).applied == 3
    assert len(updates) == 1
    exchange.acknowledge(p, c.node_id, 3)
    assert len(updates) == 2
    updates.clear()
    assert hand_over(child, parent).applied == 3  # the parent's run, then the child's ack
    assert len(updates) == 2
    for ctx, peer in ((c, p.node_id), (p, c.node_id)):
        with ctx.db.read() as session:
            row = session.get(Link, peer)
            assert row is not None
            assert (row.next_out_seq, row.acked_out_seq, row.last_in_seq) == (4, 3, 3)
            assert row.peer_checkpoint is not None and row.peer_checkpoint_size > 0
            assert row.last_seen_at is not None
