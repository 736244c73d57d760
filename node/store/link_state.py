"""The state of links: join invites, whether the running node is connected to
a peer, and how far a link's outbox lags. Services call these with a Session from
Database.write() or Database.read(), like node.store.queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from node.store import queries
from node.store.models import Invite, Link, OutboxRow

__all__ = [
    "clear_connections",
    "get_invite",
    "invites_for",
    "live_invites",
    "oldest_unacked",
    "set_connected_many",
    "touch",
]


def get_invite(session: Session, invite_id: str, *, lock: bool = False) -> Invite | None:
    stmt = select(Invite).where(Invite.invite_id == invite_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def invites_for(
    session: Session, child_id: str, states: Collection[str], *, lock: bool = False
) -> Sequence[Invite]:
    """The invites for `child_id` in one of `states`, oldest first."""
    stmt = (
        select(Invite)
        .where(Invite.child_id == child_id, Invite.state.in_(list(states)))
        .order_by(Invite.created_at, Invite.invite_id)
    )
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalars().all()


def live_invites(session: Session, now: dt.datetime) -> Sequence[Invite]:
    """Invites that can still lead to a link: neither used nor rejected, and unexpired or
    with an agreement already made (the child may still confirm it)."""
    stmt = (
        select(Invite)
        .where(
            Invite.state.in_(["open", "pending", "approved"]),
            (Invite.expires_at > now) | Invite.agreement.is_not(None),
        )
        .order_by(Invite.child_id, Invite.created_at)
    )
    return session.execute(stmt).scalars().all()


def oldest_unacked(session: Session, peer_id: str) -> dt.datetime | None:
    """When the oldest envelope `peer_id` has not acknowledged was queued (None: none): the
    first past the link's acked_out_seq (envelopes are queued in sequence order), read
    with one probe of the (peer_id, sequence) index whatever the backlog, where a MIN over
    the unacknowledged rows read every one of them."""
    return session.scalar(
        select(OutboxRow.created_at)
        .where(queries.unacknowledged(peer_id))
        .order_by(OutboxRow.sequence)
        .limit(1)
    )


_MARK = (
    update(Link)
    .where(Link.peer_id == bindparam("peer"), Link.revoked_at.is_(None))
    .values(
        connected_since=bindparam("since", type_=Link.connected_since.type),
        last_seen_at=func.coalesce(
            bindparam("seen", type_=Link.last_seen_at.type), Link.last_seen_at
        ),
    )
)


def set_connected_many(
    session: Session, marks: Sequence[tuple[str, dt.datetime | None, dt.datetime | None]]
) -> None:
    """Record that the running node has (since `since`) or no longer has a live stream
    with each peer, with one executemany: each (peer, since or None, when it was last seen
    connecting or None: unchanged). A revoked link is left as it is: never marked
    connected (the condition is in the UPDATE itself, so a revocation committed after the
    caller checked the link still wins), and its revocation cleared its mark."""
    if marks:
        session.connection().execute(
            _MARK, [{"peer": peer, "since": since, "seen": seen} for peer, since, seen in marks]
        )


def touch(session: Session, peer_ids: Collection[str], at: dt.datetime) -> None:
    """The running node still has live streams with `peer_ids`: they were seen `at`
    (revoked links aside, as in set_connected_many)."""
    if peer_ids:
        session.execute(
            update(Link)
            .where(Link.peer_id.in_(list(peer_ids)), Link.revoked_at.is_(None))
            .values(last_seen_at=at)
        )


def clear_connections(session: Session) -> None:
    """No stream is live: the node is starting or stopping."""
    session.execute(
        update(Link).where(Link.connected_since.is_not(None)).values(connected_since=None)
    )
