"""The queries about keys: this node's current signing key, and the certificates pinned for
the peers: each active link's, and the earlier ones still valid after a key rotation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.store import queries
from node.store.models import Link, OwnKey, PeerKey

__all__ = ["PinHead", "current_signing_key", "pin_certificates", "pin_heads"]


def current_signing_key(session: Session) -> bytes | None:
    """The public signing key of the generation not retired; None before any rotation."""
    return session.scalar(select(OwnKey.signing_key).where(OwnKey.retired_at.is_(None)))


PinHead = tuple[str, str, bytes, str | None, str | None]
"""An active link as pinning sees it without its certificate: (peer, role, TLS
fingerprint, address, enrollment address)."""


def pin_heads(session: Session, now: dt.datetime) -> tuple[list[PinHead], dict[str, list[bytes]]]:
    """The active links by role and peer, without their certificates; and by peer, the
    fingerprints of its earlier certificates still valid at `now`, in the order they were
    replaced. A few columns of each row: what a refresh of the pinned set compares."""
    heads = session.execute(
        select(Link.peer_id, Link.role, Link.tls_fingerprint, Link.address, Link.enrollment_address)
        .where(Link.revoked_at.is_(None))
        .order_by(Link.role, Link.peer_id)
    )
    earlier: dict[str, list[bytes]] = {}
    for peer, fingerprint in session.execute(
        select(PeerKey.peer_id, PeerKey.tls_fingerprint)
        .where(PeerKey.tls_valid_until > now)
        .order_by(PeerKey.replaced_at)
    ):
        earlier.setdefault(peer, []).append(fingerprint)
    return [tuple(row) for row in heads], earlier  # type: ignore[misc]


def pin_certificates(
    session: Session, peer_ids: Collection[str] | None, now: dt.datetime
) -> tuple[dict[str, tuple[str, bytes]], dict[str, list[tuple[str, bytes]]]]:
    """For these peers (None: every active link's): the current certificate (PEM,
    fingerprint), and the earlier ones still valid at `now` in the order they were
    replaced; read _PEERS_AT_ONCE peers at a time."""
    current: dict[str, tuple[str, bytes]] = {}
    earlier: dict[str, list[tuple[str, bytes]]] = {}
    links = select(Link.peer_id, Link.tls_cert_pem, Link.tls_fingerprint)
    keys = (
        select(PeerKey.peer_id, PeerKey.tls_cert_pem, PeerKey.tls_fingerprint)
        .where(PeerKey.tls_valid_until > now)
        .order_by(PeerKey.replaced_at)
    )
    if peer_ids is None:
        chunks = [(links.where(Link.revoked_at.is_(None)), keys)]
    else:
        wanted = list(peer_ids)
        chunks = [
            (
                links.where(queries.one_of(session, Link.peer_id, part)),
                keys.where(queries.one_of(session, PeerKey.peer_id, part)),
            )
            for part in (
                wanted[first : first + _PEERS_AT_ONCE]
                for first in range(0, len(wanted), _PEERS_AT_ONCE)
            )
        ]
    for of_links, of_keys in chunks:
        for peer, pem, fingerprint in session.execute(of_links):
            current[peer] = (pem, fingerprint)
        for peer, pem, fingerprint in session.execute(of_keys):
            earlier.setdefault(peer, []).append((pem, fingerprint))
    return current, earlier


_PEERS_AT_ONCE = 400  # within SQLite's lowest limit of parameters per statement (999)
