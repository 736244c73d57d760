"""Values tests build again and again: a complaint draft, a plain ledger entry."""

from __future__ import annotations

from node._proto.lapor.v1 import ledger_pb2
from node.complaints import ComplaintDraft

__all__ = ["DRAFT", "link_entry"]

DRAFT = ComplaintDraft(
    title="Jalan rusak",
    description="Lubang besar di jalan poros",
    classification="pengaduan",
    category="infrastruktur",
    region_code="64.02",
    channel="walk_in",
)
"""A walk-in complaint at a province about a road in Kutai Kartanegara."""


def link_entry(n: int) -> ledger_pb2.LedgerEntry:
    """A ledger entry that needs no complaint: a link to a made-up peer `id-NN`."""
    return ledger_pb2.LedgerEntry(
        link_established=ledger_pb2.LinkEstablished(
            peer_id=f"id-{n:02d}",
            role=ledger_pb2.PEER_ROLE_CHILD,
            peer_name=f"peer {n}",
            peer_signing_key=bytes(32),
            peer_tls_sha256=bytes(32),
        )
    )
