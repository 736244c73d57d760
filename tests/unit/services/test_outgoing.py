"""exchange.receive_batch(held=...): the responses a batch queued, ready to send, are
exactly what `pending` reads back from the outbox for a peer holding that checkpoint:
the same sequences, the same bytes, the same proofs, the same size held after them."""

from __future__ import annotations

import pytest

from node.services import complaints, exchange
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.support.nodes import TestNode, hand_over, link


def _pair(nodes: NodeFactory) -> tuple[TestNode, TestNode]:
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    child = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(parent, child)
    return parent, child


def _refer(parent: TestNode, count: int, start: int = 0) -> None:
    p = parent.ctx()
    ids = complaints.submit_many(p, [draft(start + i) for i in range(count)])
    complaints.refer_many(p, ids, "id-64-02")


def _as_read_back(child: TestNode, after: int, held: int) -> tuple[list[tuple[int, bytes]], int]:
    rows, after_held = exchange.pending(child.ctx(), "id-64", after, 1000, held)  # type: ignore[arg-type]
    return [(sequence, d.SerializeToString()) for sequence, d in rows], after_held


@pytest.mark.parametrize("count", [1, 3])
def test_the_ready_responses_are_what_the_outbox_gives_back(nodes: NodeFactory, count: int) -> None:
    parent, child = _pair(nodes)
    _refer(parent, count)
    first = hand_over(parent, child, held=0)
    assert first.outgoing is not None
    assert first.outgoing.basis == 0
    got = [(sequence, d.SerializeToString()) for sequence, d in first.outgoing.rows]
    assert (got, first.outgoing.held) == _as_read_back(child, 0, 0)
    # The parent now holds the child's checkpoint of the first batch; the next receipts
    # need a consistency proof from it, and carry the same one either way.
    assert hand_over(child, parent).applied == count
    holds = first.outgoing.held
    _refer(parent, count, start=100)
    second = hand_over(parent, child, held=holds)
    assert second.outgoing is not None
    assert all(len(d.consistency_proof) > 0 for _, d in second.outgoing.rows[:1])
    got = [(sequence, d.SerializeToString()) for sequence, d in second.outgoing.rows]
    assert (got, second.outgoing.held) == _as_read_back(child, count, holds)


def test_without_held_nothing_is_made_ready(nodes: NodeFactory) -> None:
    parent, child = _pair(nodes)
    _refer(parent, 2)
    result = hand_over(parent, child, held=None)
    assert result.applied == 2
    assert result.outgoing is None
