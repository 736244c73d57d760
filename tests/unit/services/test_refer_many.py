"""Registering and referring complaints in bulk (complaints.submit_many, refer_many): the
same rows, ledger entries, outbox and events as one at a time, a complaint that needs more
than the referral itself (taken back first, or status sent up to a parent) referred on its
own in its place, and a refusal anywhere leaving nothing, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.errors import NotFoundError, PermissionDeniedError, StateError
from node.services import complaints, lifecycle, referral
from node.store import queries
from node.store.models import Complaint, ComplaintEvent, OutboxRow
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.fault.invariants import check_tree
from tests.support.nodes import TestNode, carry, link, snapshot


def _tree(nodes: NodeFactory, province: str, regency: str) -> tuple[TestNode, TestNode]:
    parent = nodes(province, f"Provinsi {province}")
    child = nodes(regency, f"Kabupaten {regency}")
    link(parent, child)
    return parent, child


def _prepared(parent: TestNode, child: TestNode, *, bulk: bool) -> list[str]:
    """Six complaints at the parent: 0, 2, 3 and 5 as submitted, 1 verified, 4 referred,
    returned by the child and back (so a referral takes it back first)."""
    p, c = parent.ctx(), child.ctx()
    drafts = [draft(n) for n in range(6)]
    ids = complaints.submit_many(p, drafts) if bulk else [complaints.submit(p, d) for d in drafts]
    lifecycle.verify(p, ids[1])
    complaints.refer(p, ids[4], c.node_id)
    carry(parent, child)
    lifecycle.return_(c, ids[4], "bukan kewenangan kabupaten")
    carry(child, parent)
    carry(parent, child)  # the parent's receipt-side traffic, if any
    return list(ids)


def _shape(parent: TestNode, ids: list[str]) -> dict[str, object]:
    """What referring wrote, with each tracking id as its place in `ids` and without the
    values that differ between runs (message ids, times, signatures)."""
    p = parent.ctx()
    place = {tracking_id: n for n, tracking_id in enumerate(ids)}

    def entry_shape(data: bytes) -> tuple[object, ...]:
        entry = ledger_pb2.LedgerEntry.FromString(data)
        kind = entry.WhichOneof("kind")
        tracking_id = ""
        if kind == "complaint_registered":
            tracking_id = entry.complaint_registered.complaint.tracking_id
        elif kind == "status_changed":
            tracking_id = entry.status_changed.tracking_id
        elif kind == "referral_sent":
            envelope = envelope_pb2.Envelope.FromString(entry.referral_sent.envelope.body)
            tracking_id = envelope.referral.complaint.tracking_id
            return (kind, place[tracking_id], envelope.sequence)
        return (kind, place.get(tracking_id))

    with p.db.read() as session:
        outbox = [
            (row.sequence, row.kind, place.get(row.tracking_id or ""), row.carries_content)
            for row in session.scalars(select(OutboxRow).order_by(OutboxRow.sequence))
        ]
        events = [
            (place[e.tracking_id], e.status, e.actor == p.node_id, e.note.split(" ")[0])
            for e in session.scalars(select(ComplaintEvent).order_by(ComplaintEvent.id))
        ]
        ledger = [entry_shape(row.entry) for row in queries.iter_ledger(session)]
        rows = {row.tracking_id: row for row in session.scalars(select(Complaint))}
        complaint_rows = [
            (
                rows[t].status,
                rows[t].referred_to is not None,
                rows[t].referral_message_id is not None,
                rows[t].verified_at is not None,
                rows[t].disposed_at is not None,
            )
            for t in ids
        ]
    return {"ledger": ledger, "outbox": outbox, "events": events, "complaints": complaint_rows}


def test_a_batch_writes_what_one_at_a_time_writes(
    nodes: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six complaints in different states referred with one refer_many at one province, and
    each by the one-at-a-time path (`_refer`, the run made to take nothing) at another: the
    same ledger, outbox, events and complaint rows, position for position; the batch's
    envelopes then cross, and both ledgers verify and reconcile."""
    bulk_parent, bulk_child = _tree(nodes, "id-64", "id-64-02")
    one_parent, one_child = _tree(nodes, "id-63", "id-63-01")
    bulk_ids = _prepared(bulk_parent, bulk_child, bulk=True)
    one_ids = _prepared(one_parent, one_child, bulk=False)
    complaints.refer_many(bulk_parent.ctx(), bulk_ids, "id-64-02")
    with monkeypatch.context() as patch:
        patch.setattr(referral._ReferralRun, "take", lambda _self, _row: None)
        for tracking_id in one_ids:
            complaints.refer(one_parent.ctx(), tracking_id, "id-63-01")
    bulk_shape = _shape(bulk_parent, bulk_ids)
    one_shape = _shape(one_parent, one_ids)
    for key in one_shape:
        assert bulk_shape[key] == one_shape[key], key
    assert [v.status for v in (complaints.show(bulk_parent.ctx(), t) for t in bulk_ids)] == [
        "referred"
    ] * 6
    assert carry(bulk_parent, bulk_child) == 6
    assert carry(bulk_child, bulk_parent) == 6
    for tracking_id in bulk_ids:
        assert complaints.show(bulk_parent.ctx(), tracking_id).status == "accepted"
    p, c = bulk_parent.ctx(), bulk_child.ctx()
    tally = check_tree([p, c], [(p.node_id, c.node_id)])
    assert tally.problems == []


@pytest.mark.parametrize("bad", ["unknown", "twice", "held-by-child"])
def test_one_complaint_refused_refers_none(nodes: NodeFactory, bad: str) -> None:
    """A complaint that may not be referred, anywhere in the list, raises the error referring
    it alone raises, and the batch before it leaves nothing: no row, entry or sequence."""
    parent, child = _tree(nodes, "id-64", "id-64-02")
    p = parent.ctx()
    ids = list(complaints.submit_many(p, [draft(n) for n in range(5)]))
    if bad == "held-by-child":
        complaints.refer(p, ids[4], "id-64-02")
        carry(parent, child)
        carry(child, parent)
        wrong, error = ids[4], PermissionDeniedError
    elif bad == "twice":
        wrong, error = ids[1], StateError
    else:
        wrong, error = "id-64.2026.999999", NotFoundError
    before = snapshot(parent)
    with pytest.raises(error, match=wrong):
        complaints.refer_many(p, [ids[0], ids[1], ids[2], wrong, ids[3]], "id-64-02")
    assert snapshot(parent) == before
    assert {complaints.show(p, t).status for t in ids[:4]} == {"submitted"}
