"""The queries about keys: this node's current signing key, and the peers' earlier TLS
certificates still pinned while they are valid (key rotation)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.store.models import OwnKey, PeerKey

__all__ = ["current_signing_key", "valid_peer_keys"]


def current_signing_key(session: Session) -> bytes | None:
    """The public signing key of the generation not retired; None before any rotation."""
    return session.scalar(select(OwnKey.signing_key).where(OwnKey.retired_at.is_(None)))


def valid_peer_keys(session: Session, now: dt.datetime) -> Iterator[PeerKey]:
    """The peers' replaced keys whose TLS certificates are still valid at `now`, in the
    order they were replaced."""
    yield from session.scalars(
        select(PeerKey).where(PeerKey.tls_valid_until > now).order_by(PeerKey.replaced_at)
    )
