"""What `serve` feeds the monitoring metrics from the database (node.metrics, issue 20.3).

Invariants:

1. A delivery latency (queued to receipt) is observed only once the transaction that
   recorded the receipt commits: a batch rolled back and received again counts once.
   `delivered_at_commit` stages it on the session; the listeners below observe or drop it.
2. The grace-end gauge holds, for this node and for each peer, the latest end of a retired
   certificate's grace period that is still in the future; none once all have passed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from node.metrics import init_peer_series, observe_delivery, observe_key_graces
from node.services.context import NodeContext
from node.store.models import Link, OwnKey, PeerKey

__all__ = ["delivered_at_commit", "grace_ends", "init_peers", "refresh_key_graces"]

_DELIVERED = "lapor_node.delivered"


def delivered_at_commit(
    session: Session, peer: str, queued_at: dt.datetime, received_at: dt.datetime
) -> None:
    """Observe the referral to `peer` queued at `queued_at` as delivered at `received_at`,
    when `session`'s transaction commits (invariant 1)."""
    seconds = (received_at - queued_at).total_seconds()
    session.info.setdefault(_DELIVERED, []).append((peer, seconds))


@event.listens_for(Session, "after_commit")
def _observe_delivered(session: Session) -> None:
    for peer, seconds in session.info.pop(_DELIVERED, ()):
        observe_delivery(peer, seconds)


@event.listens_for(Session, "after_transaction_end")
def _drop_delivered(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outer transaction ended without a commit
        session.info.pop(_DELIVERED, None)


def grace_ends(session: Session, now: dt.datetime) -> dict[tuple[str, str], float]:
    """{(certificate, peer): Unix seconds} of the retired certificates still accepted at
    `now`: ("own", "") for this node's, ("peer", id) for each peer's (the latest end)."""
    ends: dict[tuple[str, str], float] = {}

    def keep(label: tuple[str, str], until: dt.datetime) -> None:
        ends[label] = max(ends.get(label, 0.0), until.timestamp())

    own = select(OwnKey.tls_valid_until).where(
        OwnKey.retired_at.is_not(None), OwnKey.tls_valid_until > now
    )
    for until in session.scalars(own):
        if until is not None:
            keep(("own", ""), until)
    peers = select(PeerKey.peer_id, PeerKey.tls_valid_until).where(PeerKey.tls_valid_until > now)
    for peer, until in session.execute(peers):
        keep(("peer", peer), until)
    return ends


def refresh_key_graces(ctx: NodeContext) -> None:
    """Set lapor_node_key_grace_end_timestamp_seconds from the database (invariant 2)."""
    with ctx.db.read() as session:
        ends = grace_ends(session, ctx.clock.now())
    observe_key_graces(ends)


def init_peers(ctx: NodeContext) -> None:
    """Create every per-peer metric series at zero for the node's linked peers and its
    expected children (node.metrics.init_peer_series)."""
    with ctx.db.read() as session:
        linked = list(session.scalars(select(Link.peer_id)))
    expected = list(ctx.config.expected_children)
    init_peer_series(dict.fromkeys([*linked, *expected]))
