"""LinkSession's responses ready from a commit (exchange.Outgoing): sent as they are only
when they follow what was sent and their proofs were made for what the peer holds now;
dropped once sent another way; never more than a window of them kept."""

from __future__ import annotations

import asyncio

from node._proto.lapor.v1 import envelope_pb2, federation_pb2
from node.federation.session import LinkSession
from node.ids import NodeId
from node.services.exchange import Outgoing
from tests.conftest import NodeFactory


def _session(nodes: NodeFactory) -> LinkSession:
    node = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    return LinkSession(node.ctx(), NodeId("id-64"), None, None, asyncio.Event())  # type: ignore[arg-type]


def _ready(first: int, count: int, basis: int, held: int) -> Outgoing:
    rows = [
        (n, federation_pb2.Delivery(envelope=envelope_pb2.SignedEnvelope(body=bytes([n]))))
        for n in range(first, first + count)
    ]
    return Outgoing(basis, held, rows)


def test_ready_rows_go_when_they_follow_and_were_proved_for_what_the_peer_holds(
    nodes: NodeFactory,
) -> None:
    session = _session(nodes)
    session.sent, session.peer_holds = 4, 10
    session._keep_ready(_ready(5, 2, basis=10, held=12))
    session._keep_ready(_ready(7, 1, basis=12, held=13))
    rows = session._take_ready(limit=100)
    assert rows is not None and [n for n, _ in rows] == [5, 6]
    assert session.peer_holds == 12
    session.sent = 6
    rows = session._take_ready(limit=100)
    assert rows is not None and [n for n, _ in rows] == [7]
    assert session.peer_holds == 13
    assert session._take_ready(limit=100) is None


def test_other_proofs_a_gap_or_too_many_mean_reading_the_outbox(nodes: NodeFactory) -> None:
    session = _session(nodes)
    session.sent, session.peer_holds = 4, 10
    session._keep_ready(_ready(5, 2, basis=9, held=12))  # proved for a checkpoint it left
    assert session._take_ready(limit=100) is None
    assert session.peer_holds == 10
    session._ready.clear()
    session._ready_count = 0
    session.sent, session.peer_holds = 3, 10
    session._keep_ready(_ready(5, 2, basis=10, held=12))  # sequence 4 is not in it
    assert session._take_ready(limit=100) is None
    session.sent = 4
    assert session._take_ready(limit=1) is None  # more than the window has room for
    rows = session._take_ready(limit=2)
    assert rows is not None and [n for n, _ in rows] == [5, 6]


def test_what_was_sent_another_way_is_dropped(nodes: NodeFactory) -> None:
    session = _session(nodes)
    session.sent, session.peer_holds = 4, 10
    session._keep_ready(_ready(5, 2, basis=10, held=12))
    session._keep_ready(_ready(7, 2, basis=12, held=14))
    session.sent, session.peer_holds = 6, 12  # the send loop read 5 and 6 from the outbox
    rows = session._take_ready(limit=100)
    assert rows is not None and [n for n, _ in rows] == [7, 8]
    assert session._ready_count == 0


def test_no_more_than_a_window_is_kept(nodes: NodeFactory) -> None:
    session = _session(nodes)
    session.window = 4
    session._keep_ready(_ready(1, 3, basis=0, held=3))
    assert session._ready_count == 3
    session._keep_ready(_ready(4, 2, basis=3, held=5))  # 5 > 4: all dropped, the outbox has them
    assert session._ready_count == 0
    assert session._take_ready(limit=100) is None
