"""The SQL of receiving envelopes in bulk (node.services.bulk): one lookup for a whole run
of envelopes instead of one per envelope, and the updates a run makes, as executemany."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from node.store.models import Complaint, InboxRow, OutboxRow
from node.store.queries import one_of

__all__ = [
    "ComplaintState",
    "SentReferral",
    "complaint_states",
    "existing_complaints",
    "mark_accepted",
    "outbox_ids",
    "seen_messages",
    "sent_referrals",
]


@dataclass(frozen=True)
class SentReferral:
    """An outbox row as a receipt for it needs it."""

    peer_id: str
    kind: str
    body: bytes
    tracking_id: str | None
    queued_at: dt.datetime  # the row's created_at: delivery latency runs from it


@dataclass(frozen=True)
class ComplaintState:
    """Where a complaint stands, as a receipt for its referral needs it."""

    status: str
    holder: str
    referral_message_id: str | None
    received_from: str | None
    disposed_at: dt.datetime | None


def seen_messages(session: Session, sender: str, message_ids: Collection[str]) -> set[str]:
    """Which of `message_ids` from `sender` are already in the inbox."""
    if not message_ids:
        return set()
    return set(
        session.scalars(
            select(InboxRow.message_id).where(
                InboxRow.sender == sender, one_of(session, InboxRow.message_id, message_ids)
            )
        )
    )


def existing_complaints(session: Session, tracking_ids: Collection[str]) -> set[str]:
    """Which of `tracking_ids` this node already has."""
    if not tracking_ids:
        return set()
    return set(
        session.scalars(
            select(Complaint.tracking_id).where(
                one_of(session, Complaint.tracking_id, tracking_ids)
            )
        )
    )


def sent_referrals(session: Session, message_ids: Collection[str]) -> dict[str, SentReferral]:
    """The outbox rows with these message ids, by message id."""
    if not message_ids:
        return {}
    rows = session.execute(
        select(
            OutboxRow.message_id,
            OutboxRow.peer_id,
            OutboxRow.kind,
            OutboxRow.body,
            OutboxRow.tracking_id,
            OutboxRow.created_at,
        ).where(one_of(session, OutboxRow.message_id, message_ids))
    )
    return {m: SentReferral(p, k, b, t, q) for m, p, k, b, t, q in rows}


def complaint_states(session: Session, tracking_ids: Collection[str]) -> dict[str, ComplaintState]:
    """Where each of these complaints stands, by tracking id (absent ones are left out)."""
    if not tracking_ids:
        return {}
    rows = session.execute(
        select(
            Complaint.tracking_id,
            Complaint.status,
            Complaint.holder,
            Complaint.referral_message_id,
            Complaint.received_from,
            Complaint.disposed_at,
        ).where(one_of(session, Complaint.tracking_id, tracking_ids))
    )
    return {t: ComplaintState(s, h, r, f, d) for t, s, h, r, f, d in rows}


_MARK_ACCEPTED = (
    update(Complaint)
    .where(Complaint.tracking_id == bindparam("tid"))
    .values(
        status=bindparam("new_status"),
        holder=bindparam("new_holder"),
        updated_at=bindparam("new_updated_at"),
        disposed_at=bindparam("new_disposed_at"),
    )
)


def mark_accepted(
    session: Session, rows: Sequence[tuple[str, str, str, dt.datetime, dt.datetime | None]]
) -> None:
    """Set (status, holder, updated_at, disposed_at) of each complaint in `rows` (given as
    (tracking_id, status, holder, updated_at, disposed_at)) with one executemany. Complaint
    objects this session holds are expired, so they are read again when next used; any it
    has staged are written first, so no later flush writes over this update."""
    if not rows:
        return
    if any(isinstance(obj, Complaint) for obj in (*session.new, *session.dirty)):
        session.flush()
    session.connection().execute(
        _MARK_ACCEPTED,
        [
            {
                "tid": t,
                "new_status": s,
                "new_holder": h,
                "new_updated_at": u,
                "new_disposed_at": d,
            }
            for t, s, h, u, d in rows
        ],
    )
    changed = {row[0] for row in rows}
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Complaint) and obj.tracking_id in changed:
            session.expire(obj)


def outbox_ids(session: Session, peer_id: str, first: int, last: int) -> dict[int, int]:
    """Outbox row ids by sequence, for `peer_id`'s sequences first..last."""
    rows = session.execute(
        select(OutboxRow.sequence, OutboxRow.id).where(
            OutboxRow.peer_id == peer_id, OutboxRow.sequence.between(first, last)
        )
    )
    return {sequence: row_id for sequence, row_id in rows}
