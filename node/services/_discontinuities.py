"""Discontinuities recorded in this node's ledger (ADR 0023): its own (HistoryDiscontinued,
node.services.recovery) and its peers' (PeerKeyRotated entries whose rotation states one).
Read through the key tables, which name the entry of each rotation: no ledger scan."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from node._proto.lapor.v1 import ledger_pb2, trust_pb2
from node.ledger.discontinuity import Discontinuity, open_discontinuity
from node.store import queries
from node.store.models import OwnKey, PeerKey

__all__ = ["explains", "own_latest", "peer_latest"]


def _rotation_at(session: Session, index: int) -> trust_pb2.SignedKeyRotation:
    rows = list(queries.iter_ledger(session, index, index + 1))
    entry = ledger_pb2.LedgerEntry.FromString(rows[0].entry)
    kind = entry.WhichOneof("kind")
    if kind == "history_discontinued":
        return entry.history_discontinued.rotation
    if kind == "peer_key_rotated":
        return entry.peer_key_rotated.rotation
    return entry.key_rotated.rotation


def _stated(signed: trust_pb2.SignedKeyRotation) -> Discontinuity | None:
    if not trust_pb2.KeyRotation.FromString(signed.rotation).HasField("discontinuity"):
        return None
    return open_discontinuity(signed)  # verified when it was recorded; cheap to repeat


def own_latest(session: Session) -> Discontinuity | None:
    """This node's latest discontinuity, if it ever took the recovery path."""
    indexes = session.scalars(
        select(OwnKey.rotation_entry)
        .where(OwnKey.rotation_entry.is_not(None))
        .order_by(OwnKey.rotation_entry.desc())
    )
    for index in indexes:
        if index is not None:
            found = _stated(_rotation_at(session, index))
            if found is not None:
                return found
    return None


def peer_latest(session: Session, peer: str) -> Discontinuity | None:
    """The latest discontinuity of `peer` this node recorded (its PeerKeyRotated entry)."""
    indexes = session.scalars(
        select(PeerKey.ledger_index)
        .where(PeerKey.peer_id == peer, PeerKey.ledger_index.is_not(None))
        .order_by(PeerKey.ledger_index.desc())
    )
    for index in indexes:
        if index is not None:
            found = _stated(_rotation_at(session, index))
            if found is not None:
                return found
    return None


def explains(gap: Discontinuity | None, held_size: int, held_root: bytes | None = None) -> bool:
    """Whether `gap` explains a checkpoint of size `held_size` (and `held_root`) of the
    history it ended: one above the restart, at most the last one signed (the very one,
    when it is that size)."""
    if gap is None or not gap.restart_size < held_size <= gap.fenced_size:
        return False
    return held_size != gap.fenced_size or held_root is None or held_root == gap.fenced_root
