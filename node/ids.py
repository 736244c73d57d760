"""Identifier types and their validation, shared by every layer.

Node ids are short lowercase slugs (by convention the Kemendagri region code: `id`,
`id-64`, `id-64-02`). Tracking ids are `<origin node id>.<year>.<serial>`, unique across
the federation because each node numbers only its own intake. Message ids are UUIDv7.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import NewType

from node.errors import ValidationError

__all__ = [
    "MessageId",
    "NodeId",
    "TrackingId",
    "format_tracking_id",
    "new_message_id",
    "parse_message_id",
    "parse_node_id",
    "parse_tracking_id",
    "tracking_origin",
]

NodeId = NewType("NodeId", str)
TrackingId = NewType("TrackingId", str)
MessageId = NewType("MessageId", str)

_NODE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_TRACKING_ID = re.compile(r"^([a-z0-9][a-z0-9-]{0,62})\.([0-9]{4})\.([0-9]{6,9})$")


def parse_node_id(value: str) -> NodeId:
    """Return `value` as a NodeId, or raise ValidationError saying what a node id looks like."""
    if not isinstance(value, str) or not _NODE_ID.fullmatch(value):
        raise ValidationError(
            f"invalid node id {value!r}: expected lowercase letters, digits and '-', "
            "1 to 63 characters, starting with a letter or digit (e.g. 'id-64-02')"
        )
    return NodeId(value)


def format_tracking_id(origin: NodeId, year: int, serial: int) -> TrackingId:
    """The tracking id of the `serial`-th complaint received at `origin` in `year`."""
    return TrackingId(f"{origin}.{year:04d}.{serial:06d}")


def tracking_origin(value: TrackingId) -> NodeId:
    """The node that numbered (received) the complaint."""
    return NodeId(value.split(".", 1)[0])


def parse_tracking_id(value: str) -> TrackingId:
    """Return `value` as a TrackingId, or raise ValidationError."""
    if not isinstance(value, str) or not _TRACKING_ID.fullmatch(value):
        raise ValidationError(
            f"invalid tracking id {value!r}: expected <node id>.<year>.<serial>, "
            "e.g. 'id-64.2026.000017'"
        )
    return TrackingId(value)


def new_message_id(now_ms: int | None = None) -> MessageId:
    """A fresh UUIDv7 (RFC 9562 section 5.7): 48-bit Unix milliseconds, then randomness."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 68) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return MessageId(str(uuid.UUID(int=value)))


def parse_message_id(value: str) -> MessageId:
    """Return `value` as a MessageId if it is a canonical UUIDv7 string, else ValidationError."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, TypeError, AttributeError) as e:
        raise ValidationError(f"invalid message id {value!r}: expected a UUIDv7") from e
    if parsed.version != 7 or str(parsed) != value:
        raise ValidationError(f"invalid message id {value!r}: expected a canonical UUIDv7")
    return MessageId(value)
