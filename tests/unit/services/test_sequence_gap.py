"""The sequence-gap refusal names the envelope actually refused (its sequence and message
id) and the sequence expected, not the one after the last committed; on both databases."""

from __future__ import annotations

import pytest

from node._proto.lapor.v1 import envelope_pb2, federation_pb2
from node.errors import SequenceGapError
from node.services import complaints, exchange
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.support.nodes import link, snapshot


def _message_id(delivery: federation_pb2.Delivery) -> str:
    return envelope_pb2.Envelope.FromString(delivery.envelope.body).message_id


@pytest.mark.parametrize(
    ("order", "refused"),
    [
        pytest.param([0, 2], 2, id="gap-after-a-committed-one"),
        pytest.param([3], 3, id="gap-at-the-start"),
    ],
)
def test_the_gap_refusal_names_the_refused_envelope_and_what_was_expected(
    nodes: NodeFactory, order: list[int], refused: int
) -> None:
    """A batch whose envelope at `refused` leaves a gap: the refusal names its sequence and
    message id and the sequence expected; what came before it stays committed."""
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    child = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(parent, child)
    p, c = parent.ctx(), child.ctx()
    complaints.refer_many(p, complaints.submit_many(p, [draft(i) for i in range(4)]), c.node_id)
    rows, _ = exchange.pending(p, c.node_id, 0, 100, 0)
    deliveries = [d for _, d in rows]
    expected = 2 if order[0] == 0 else 1
    batch = [deliveries[i] for i in order]
    before = snapshot(child)
    result = exchange.receive_batch(c, p.node_id, batch)
    assert isinstance(result.error, SequenceGapError)
    assert result.failed_sequence == refused + 1  # the refused envelope's own sequence
    message = str(result.error)
    assert f"envelope {refused + 1} (message {_message_id(deliveries[refused])})" in message
    assert f"expected sequence {expected}" in message
    assert result.committed_through == expected - 1
    if expected == 1:
        assert snapshot(child) == before
