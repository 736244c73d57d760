"""How a link session packs deliveries into frames for its peer, and what it takes: as few
Deliveries frames as the peer's Hello allows, never more than it allows, one Delivery frame
per envelope for a peer that states no limits; a frame over this side's limits is refused."""

from __future__ import annotations

import asyncio

import pytest

from node._proto.lapor.v1 import envelope_pb2, federation_pb2
from node.federation.session import LinkSession, RefusedError
from node.ids import NodeId
from tests.conftest import NodeFactory


def _session(nodes: NodeFactory) -> LinkSession:
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    return LinkSession(node.ctx(), NodeId("id-64-02"), None, None, asyncio.Event())  # type: ignore[arg-type]


def _rows(count: int, size: int = 100) -> list[tuple[int, federation_pb2.Delivery]]:
    return [
        (n, federation_pb2.Delivery(envelope=envelope_pb2.SignedEnvelope(body=bytes(size))))
        for n in range(1, count + 1)
    ]


def _shape(frames: list[tuple[int, federation_pb2.Frame]]) -> list[tuple[int, str, int]]:
    return [
        (
            last,
            f.WhichOneof("kind") or "",
            len(f.deliveries.items) if f.HasField("deliveries") else 1,
        )
        for last, f in frames
    ]


def test_a_peer_without_limits_gets_one_frame_per_envelope(nodes: NodeFactory) -> None:
    session = _session(nodes)
    assert _shape(session._frames(_rows(3))) == [
        (1, "delivery", 1),
        (2, "delivery", 1),
        (3, "delivery", 1),
    ]


def test_frames_hold_as_many_as_the_peer_takes(nodes: NodeFactory) -> None:
    session = _session(nodes)
    session.peer_frame_deliveries, session.peer_frame_bytes = 4, 1 << 20
    assert _shape(session._frames(_rows(9))) == [
        (4, "deliveries", 4),
        (8, "deliveries", 4),
        (9, "delivery", 1),
    ]
    session.peer_frame_bytes = 350  # three 100-byte envelopes with their framing
    frames = session._frames(_rows(7))
    assert _shape(frames) == [(3, "deliveries", 3), (6, "deliveries", 3), (7, "delivery", 1)]
    assert all(f.ByteSize() <= 350 for _, f in frames)


def test_a_frame_over_this_sides_limits_is_refused(nodes: NodeFactory) -> None:
    session = _session(nodes)
    session.peer_frame_deliveries, session.peer_frame_bytes = 10**6, 1 << 30
    ((_, ok),) = session._frames(_rows(session.batch))
    assert len(session._items(ok)) == session.batch
    ((_, too_many),) = session._frames(_rows(session.batch + 1))
    with pytest.raises(RefusedError, match="over this node's limits"):
        session._items(too_many)
    ((_, too_big),) = session._frames(_rows(3, session.frame_bytes // 2))
    with pytest.raises(RefusedError, match="over this node's limits"):
        session._items(too_big)
