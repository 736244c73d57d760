"""The pure part of a link session: packing envelopes into frames within the peer's
limits, checking a received frame against ours, the send window, and the responses ready
to send straight from a commit. No I/O, no database, no node: unit-tested on their own.

Invariants:
  1. `pack` keeps order and loses nothing: the deliveries of its frames, in order, are
     the rows given; each frame's last sequence is that of its last delivery.
  2. A Deliveries frame holds at most the peer's max_frame_deliveries items and about its
     max_frame_bytes (each item counted with ITEM_OVERHEAD for its tag and length); a
     delivery that is alone in its frame (or any, for a peer that states no limits) goes
     as a Delivery frame.
  3. `ReadyQueue.take` gives rows only if they are exactly what the outbox would give
     next: they follow what was sent, and their proofs were made for the checkpoint the
     peer holds now; it never keeps more than a window of envelopes.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Protocol

from node._proto.lapor.v1 import federation_pb2
from node.errors import ValidationError

__all__ = ["ITEM_OVERHEAD", "Ready", "ReadyQueue", "Row", "pack", "room", "unpack"]

ITEM_OVERHEAD = 8  # an item's tag and length inside a Deliveries frame, at most

Row = tuple[int, federation_pb2.Delivery]  # (sequence, delivery)


def room(window: int, sent: int, acked: int) -> int:
    """How many more envelopes may go before the peer acknowledges some."""
    return window - (sent - acked)


def pack(
    rows: Sequence[Row], max_deliveries: int, max_bytes: int
) -> list[tuple[int, federation_pb2.Frame]]:
    """(sequence, delivery) rows as (last sequence, frame): as few Deliveries frames as the
    peer's limits allow (invariants 1 and 2)."""
    groups: list[list[federation_pb2.Delivery]] = []
    lasts: list[int] = []
    size = 0
    for sequence, delivery in rows:
        cost = delivery.ByteSize() + ITEM_OVERHEAD
        if not groups or len(groups[-1]) >= max_deliveries or size + cost > max_bytes:
            groups.append([])
            lasts.append(0)
            size = 0
        groups[-1].append(delivery)
        lasts[-1] = sequence
        size += cost
    return [
        (
            last,
            federation_pb2.Frame(delivery=group[0])
            if len(group) == 1
            else federation_pb2.Frame(deliveries=federation_pb2.Deliveries(items=group)),
        )
        for last, group in zip(lasts, groups, strict=True)
    ]


def unpack(
    frame: federation_pb2.Frame, max_deliveries: int, max_bytes: int
) -> list[federation_pb2.Delivery]:
    """The deliveries a Delivery or Deliveries frame carries; a Deliveries frame over this
    side's limits is refused (ValidationError)."""
    if frame.WhichOneof("kind") == "delivery":
        return [frame.delivery]
    items = list(frame.deliveries.items)
    if len(items) > max_deliveries or frame.ByteSize() > max_bytes:
        raise ValidationError(
            f"a Deliveries frame of {len(items)} envelopes and {frame.ByteSize()} bytes "
            f"is over this node's limits ({max_deliveries}, {max_bytes} bytes)"
        )
    return items


class Ready(Protocol):
    """Responses a commit queued (node.services.exchange.Outgoing): `rows` with proofs made
    for the peer holding our checkpoint of size `basis`, after which it holds `held`."""

    @property
    def basis(self) -> int: ...

    @property
    def held(self) -> int: ...

    @property
    def rows(self) -> list[Row]: ...


class ReadyQueue:
    """Responses ready to send without reading them back from the outbox, oldest first;
    at most `window` envelopes are kept (invariant 3)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._items: collections.deque[Ready] = collections.deque()
        self.count = 0

    def keep(self, ready: Ready) -> None:
        self._items.append(ready)
        self.count += len(ready.rows)
        if self.count > self.window:  # the peer is not acknowledging: the outbox has them
            self.clear()

    def clear(self) -> None:
        self._items.clear()
        self.count = 0

    def take(self, sent: int, peer_holds: int, limit: int) -> tuple[list[Row], int] | None:
        """The next rows to send and what the peer holds after them, if they are exactly
        what the outbox would give now (they follow `sent`, were proved for `peer_holds`,
        and are at most `limit`); None: read the outbox. What was sent another way
        meanwhile is dropped."""
        while self._items and self._items[0].rows[0][0] <= sent:
            self.count -= len(self._items.popleft().rows)
        if not self._items:
            return None
        head = self._items[0]
        if head.rows[0][0] != sent + 1 or head.basis != peer_holds or len(head.rows) > limit:
            return None
        self._items.popleft()
        self.count -= len(head.rows)
        return head.rows, head.held
