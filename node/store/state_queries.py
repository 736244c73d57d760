"""The queries of the state check (node.services.state_check): the complaints' columns the
ledger determines, read in chunks; where the complaints changed last begin in the ledger;
and the recorded results of the checks. Services call these with a Session from
Database.read() or Database.write(), like node.store.queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from node.store.models import Complaint, ComplaintEvent, LedgerEntryRow, StateCheckRow

__all__ = [
    "STATE_COLUMNS",
    "complaint_count",
    "complaint_states",
    "first_event_index",
    "last_state_check",
    "ledger_entries",
    "recently_changed",
    "record_state_check",
]

# The complaints columns the ledger determines (node.workflow.replay.COLUMNS), in order.
STATE_COLUMNS = (
    "status",
    "holder",
    "referred_to",
    "referral_message_id",
    "received_from",
    "received_at",
    "verified_at",
    "disposed_at",
    "resolved_at",
    "replied_at",
)
_SELECTED = (Complaint.tracking_id, *(getattr(Complaint, c) for c in STATE_COLUMNS))


def complaint_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Complaint)) or 0


def complaint_states(
    session: Session, tracking_ids: Collection[str] | None = None, chunk: int = 1000
) -> Iterator[tuple[str, dict[str, object]]]:
    """(tracking_id, {column: value}) of every complaint, or of `tracking_ids`, in tracking
    id order, read `chunk` rows at a time (keyset), so memory stays bounded."""
    after = ""
    wanted = sorted(tracking_ids) if tracking_ids is not None else None
    while True:
        stmt = select(*_SELECTED).where(Complaint.tracking_id > after)
        if wanted is not None:
            batch = [t for t in wanted if t > after][:chunk]
            if not batch:
                return
            stmt = stmt.where(Complaint.tracking_id.in_(batch))
            after = batch[-1]
        rows = session.execute(stmt.order_by(Complaint.tracking_id).limit(chunk)).all()
        for row in rows:
            yield row[0], dict(zip(STATE_COLUMNS, row[1:], strict=True))
        if wanted is None:
            if len(rows) < chunk:
                return
            after = rows[-1][0]


def ledger_entries(
    session: Session, start: int = 0, chunk: int = 5000
) -> Iterator[tuple[int, bytes]]:
    """(index, entry bytes) from `start` on, in index order, `chunk` rows at a time: the
    two columns only (no ORM objects), as the replay reads every entry."""
    position = start
    while True:
        rows = session.execute(
            select(LedgerEntryRow.idx, LedgerEntryRow.entry)
            .where(LedgerEntryRow.idx >= position)
            .order_by(LedgerEntryRow.idx)
            .limit(chunk)
        ).all()
        yield from ((idx, entry) for idx, entry in rows)
        if len(rows) < chunk:
            return
        position = rows[-1][0] + 1


def recently_changed(session: Session, limit: int) -> list[str]:
    """The `limit` complaints whose rows changed last (by updated_at)."""
    return list(
        session.scalars(
            select(Complaint.tracking_id)
            .order_by(Complaint.updated_at.desc(), Complaint.tracking_id)
            .limit(limit)
        )
    )


def first_event_index(session: Session, tracking_ids: Collection[str]) -> int | None:
    """The lowest ledger index any event of `tracking_ids` points at: where their
    histories begin, as the events say (a hint; None if some have no such event)."""
    if not tracking_ids:
        return None
    found = session.execute(
        select(ComplaintEvent.tracking_id, func.min(ComplaintEvent.ledger_index))
        .where(
            ComplaintEvent.tracking_id.in_(list(tracking_ids)),
            ComplaintEvent.ledger_index.is_not(None),
        )
        .group_by(ComplaintEvent.tracking_id)
    ).all()
    if len(found) < len(set(tracking_ids)):
        return None
    return min(int(index or 0) for _, index in found)


def record_state_check(
    session: Session,
    at: dt.datetime,
    scope: str,
    complaints: int,
    differences: int,
    summary: str,
) -> None:
    session.add(
        StateCheckRow(
            checked_at=at,
            scope=scope,
            complaints=complaints,
            differences=differences,
            summary=summary,
        )
    )


def last_state_check(session: Session) -> StateCheckRow | None:
    """The check that read the newest state (its checked_at is when it read it), the one
    recorded last among equals."""
    return session.scalars(
        select(StateCheckRow)
        .order_by(StateCheckRow.checked_at.desc(), StateCheckRow.id.desc())
        .limit(1)
    ).first()
