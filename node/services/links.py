"""Linking peers by hand (the offline fallback to the join-token ceremony): pin a card as
this node's parent or as one of its children, and read what is pinned."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from node._proto.lapor.v1 import ledger_pb2
from node.crypto.card import NodeCard
from node.crypto.keyfiles import read_file
from node.errors import StateError, ValidationError
from node.services._ledger import record
from node.services.context import NodeContext
from node.store import queries
from node.store.models import Link

__all__ = ["LinkView", "Pin", "add_link", "list_links", "own_card", "pins"]

ROLES = {"parent": ledger_pb2.PEER_ROLE_PARENT, "child": ledger_pb2.PEER_ROLE_CHILD}


def own_card(ctx: NodeContext) -> NodeCard:
    return NodeCard(
        ctx.node_id,
        ctx.config.name,
        ctx.signing_key.public,
        read_file(ctx.config.tls_cert, "TLS certificate"),
    )


def add_link(ctx: NodeContext, card: NodeCard, role: str, address: str | None = None) -> None:
    """Pin `card` as this node's `role` ('parent' or 'child') and record it in the ledger."""
    if role not in ROLES:
        raise ValidationError(f"role must be parent or child, found {role!r}")
    if card.node_id == ctx.node_id:
        raise ValidationError("that card is this node's own")
    if role == "parent" and not address:
        raise ValidationError("a parent link needs --address HOST:PORT to dial")
    with ctx.db.write() as session:
        existing = queries.get_link(session, card.node_id, lock=True)
        if existing is not None and existing.revoked_at is None:
            raise StateError(f"{card.node_id} is already linked as this node's {existing.role}")
        if existing is not None:
            raise StateError(
                f"{card.node_id} was linked before and revoked; re-linking a "
                "revoked peer needs the join ceremony"
            )
        if role == "parent" and any(
            link.role == "parent" for link in queries.list_links(session, active_only=True)
        ):
            raise StateError("this node already has a parent; a node has exactly one")
        now = ctx.clock.now()
        queries.add(
            session,
            Link(
                peer_id=card.node_id,
                role=role,
                name=card.name,
                signing_key=card.signing_key.raw,
                tls_cert_pem=card.tls_cert_pem.decode(),
                tls_fingerprint=card.tls_fingerprint,
                address=address,
                created_at=now,
                next_out_seq=1,
                acked_out_seq=0,
                last_in_seq=0,
            ),
        )
        record(
            session,
            ctx,
            ledger_pb2.LedgerEntry(
                link_established=ledger_pb2.LinkEstablished(
                    peer_id=card.node_id,
                    role=ROLES[role],
                    peer_name=card.name,
                    peer_signing_key=card.signing_key.raw,
                    peer_tls_sha256=card.tls_fingerprint,
                )
            ),
        )


@dataclass(frozen=True)
class Pin:
    """What transport needs to trust a peer."""

    peer_id: str
    role: str
    cert_pem: bytes
    fingerprint: bytes
    address: str | None


def pins(ctx: NodeContext) -> list[Pin]:
    with ctx.db.read() as session:
        return [
            Pin(
                link.peer_id,
                link.role,
                link.tls_cert_pem.encode(),
                link.tls_fingerprint,
                link.address,
            )
            for link in queries.list_links(session, active_only=True)
        ]


@dataclass(frozen=True)
class LinkView:
    peer_id: str
    role: str
    name: str
    address: str | None
    created_at: dt.datetime
    last_seen_at: dt.datetime | None
    last_error: str | None
    outbox_depth: int
    sent: int
    acked: int
    received: int


def list_links(ctx: NodeContext) -> list[LinkView]:
    with ctx.db.read() as session:
        return [
            LinkView(
                link.peer_id,
                link.role,
                link.name,
                link.address,
                link.created_at,
                link.last_seen_at,
                link.last_error,
                queries.outbox_depth(session, link.peer_id),
                link.next_out_seq - 1,
                link.acked_out_seq,
                link.last_in_seq,
            )
            for link in queries.list_links(session, active_only=True)
        ]
