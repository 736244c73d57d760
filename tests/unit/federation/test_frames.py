"""The pure frame and window logic of a link session (node.federation.frames), with no node
and no database: as few Deliveries frames as the peer's Hello allows, never more than it
allows, one Delivery frame per envelope for a peer that states no limits; a frame over this
side's limits is refused; responses ready from a commit (exchange.Outgoing) are sent as they
are only when they follow what was sent and their proofs were made for what the peer holds
now, dropped once sent another way, and never more than a window of them kept."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node._proto.lapor.v1 import envelope_pb2, federation_pb2
from node.config import FederationConfig, ServerConfig
from node.errors import ValidationError
from node.federation.frames import ReadyQueue, Row, pack, room, unpack
from node.federation.session import FRAME_SHARE
from node.services.exchange import Outgoing

# This side's limits with node.yaml's defaults, as a LinkSession states them in its Hello.
BATCH = FederationConfig().batch
FRAME_BYTES = ServerConfig().max_message_bytes // FRAME_SHARE


def _rows(count: int, size: int = 100, first: int = 1) -> list[Row]:
    return [
        (n, federation_pb2.Delivery(envelope=envelope_pb2.SignedEnvelope(body=bytes(size))))
        for n in range(first, first + count)
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


def _items(frame: federation_pb2.Frame) -> list[federation_pb2.Delivery]:
    return unpack(frame, BATCH, FRAME_BYTES)


# Packing ----------------------------------------------------------------------------


def test_a_peer_without_limits_gets_one_frame_per_envelope() -> None:
    assert _shape(pack(_rows(3), 0, 0)) == [
        (1, "delivery", 1),
        (2, "delivery", 1),
        (3, "delivery", 1),
    ]


def test_frames_hold_as_many_as_the_peer_takes() -> None:
    assert _shape(pack(_rows(9), 4, 1 << 20)) == [
        (4, "deliveries", 4),
        (8, "deliveries", 4),
        (9, "delivery", 1),
    ]
    frames = pack(_rows(7), 4, 350)  # three 100-byte envelopes with their framing
    assert _shape(frames) == [(3, "deliveries", 3), (6, "deliveries", 3), (7, "delivery", 1)]
    assert all(f.ByteSize() <= 350 for _, f in frames)


def test_a_frame_over_this_sides_limits_is_refused() -> None:
    ((_, ok),) = pack(_rows(BATCH), 10**6, 1 << 30)
    assert len(_items(ok)) == BATCH
    ((_, too_many),) = pack(_rows(BATCH + 1), 10**6, 1 << 30)
    with pytest.raises(ValidationError, match="over this node's limits"):
        _items(too_many)
    ((_, too_big),) = pack(_rows(3, FRAME_BYTES // 2), 10**6, 1 << 30)
    with pytest.raises(ValidationError, match="over this node's limits"):
        _items(too_big)


@given(
    sizes=st.lists(st.integers(0, 600), max_size=40),
    max_deliveries=st.integers(0, 12),
    max_bytes=st.integers(0, 3000),
)
def test_packing_keeps_every_delivery_in_order_within_the_limits(
    sizes: list[int], max_deliveries: int, max_bytes: int
) -> None:
    """Invariants 1 and 2 of node.federation.frames, for any rows and limits."""
    rows = [
        (n, federation_pb2.Delivery(envelope=envelope_pb2.SignedEnvelope(body=bytes(size))))
        for n, size in enumerate(sizes, start=1)
    ]
    frames = pack(rows, max_deliveries, max_bytes)
    unpacked = [d for _, f in frames for d in unpack(f, 10**6, 1 << 30)]
    assert unpacked == [d for _, d in rows]
    taken = 0
    for last, frame in frames:
        items = unpack(frame, 10**6, 1 << 30)
        taken += len(items)
        assert last == rows[taken - 1][0]
        if frame.HasField("deliveries"):
            assert len(items) <= max_deliveries
            assert sum(d.ByteSize() + 8 for d in items) <= max_bytes


def test_room_is_the_window_less_what_is_unacknowledged() -> None:
    assert room(8, sent=10, acked=4) == 2
    assert room(8, sent=12, acked=4) == 0


# Responses ready from a commit -------------------------------------------------------


def _ready(first: int, count: int, basis: int, held: int) -> Outgoing:
    rows = [
        (n, federation_pb2.Delivery(envelope=envelope_pb2.SignedEnvelope(body=bytes([n]))))
        for n in range(first, first + count)
    ]
    return Outgoing(basis, held, rows)


def _numbers(taken: tuple[list[Row], int] | None) -> tuple[list[int], int] | None:
    return None if taken is None else ([n for n, _ in taken[0]], taken[1])


def test_ready_rows_go_when_they_follow_and_were_proved_for_what_the_peer_holds() -> None:
    queue = ReadyQueue(window=1024)
    queue.keep(_ready(5, 2, basis=10, held=12))
    queue.keep(_ready(7, 1, basis=12, held=13))
    assert _numbers(queue.take(sent=4, peer_holds=10, limit=100)) == ([5, 6], 12)
    assert _numbers(queue.take(sent=6, peer_holds=12, limit=100)) == ([7], 13)
    assert queue.take(sent=7, peer_holds=13, limit=100) is None


def test_other_proofs_a_gap_or_too_many_mean_reading_the_outbox() -> None:
    queue = ReadyQueue(window=1024)
    queue.keep(_ready(5, 2, basis=9, held=12))  # proved for a checkpoint it left
    assert queue.take(sent=4, peer_holds=10, limit=100) is None
    queue.clear()
    queue.keep(_ready(5, 2, basis=10, held=12))  # sequence 4 is not in it
    assert queue.take(sent=3, peer_holds=10, limit=100) is None
    assert queue.take(sent=4, peer_holds=10, limit=1) is None  # more than there is room for
    assert _numbers(queue.take(sent=4, peer_holds=10, limit=2)) == ([5, 6], 12)


def test_what_was_sent_another_way_is_dropped() -> None:
    queue = ReadyQueue(window=1024)
    queue.keep(_ready(5, 2, basis=10, held=12))
    queue.keep(_ready(7, 2, basis=12, held=14))
    # the send loop read 5 and 6 from the outbox
    assert _numbers(queue.take(sent=6, peer_holds=12, limit=100)) == ([7, 8], 14)
    assert queue.count == 0


def test_no_more_than_a_window_is_kept() -> None:
    queue = ReadyQueue(window=4)
    queue.keep(_ready(1, 3, basis=0, held=3))
    assert queue.count == 3
    queue.keep(_ready(4, 2, basis=3, held=5))  # 5 > 4: all dropped, the outbox has them
    assert queue.count == 0
    assert queue.take(sent=0, peer_holds=0, limit=100) is None
