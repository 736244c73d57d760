"""Every query lapor-node runs. Services call these with a Session from Database.write()
or Database.read(); nothing outside store/ builds SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from node.store.models import (
    Complaint,
    ComplaintContentRow,
    ComplaintEvent,
    Counter,
    InboxRow,
    LedgerEntryRow,
    LedgerHead,
    Link,
    OutboxRow,
)

__all__ = [
    "acknowledge_outbox",
    "add",
    "append_ledger_row",
    "complaint_content",
    "complaint_events",
    "get_complaint",
    "get_inbox",
    "get_link",
    "get_outbox",
    "iter_ledger",
    "ledger_size",
    "list_complaints",
    "list_links",
    "next_counter",
    "outbox_after",
    "outbox_by_message",
    "outbox_depth",
]


def add(session: Session, *rows: object, flush: bool = False) -> None:
    """Stage rows for insert; `flush=True` when the caller needs generated ids now."""
    session.add_all(rows)
    if flush:
        session.flush()


# Links ---------------------------------------------------------------------------------


def get_link(session: Session, peer_id: str, *, lock: bool = False) -> Link | None:
    stmt = select(Link).where(Link.peer_id == peer_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def list_links(session: Session, *, active_only: bool = False) -> Sequence[Link]:
    stmt = select(Link).order_by(Link.role, Link.peer_id)
    if active_only:
        stmt = stmt.where(Link.revoked_at.is_(None))
    return session.execute(stmt).scalars().all()


# Counters and the ledger ---------------------------------------------------------------


def next_counter(session: Session, name: str) -> int:
    """Increment and return counter `name` (starting at 1), locking it until commit."""
    row = session.execute(
        select(Counter).where(Counter.name == name).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        add(session, Counter(name=name, value=1))
        return 1
    row.value += 1
    session.flush()
    return row.value


def append_ledger_row(session: Session, entry: bytes, leaf_hash: bytes, at: dt.datetime) -> int:
    """Insert the next ledger row and return its index; the head row is locked until commit."""
    head = session.execute(
        select(LedgerHead).where(LedgerHead.id == 1).with_for_update()
    ).scalar_one()
    index = head.size
    session.add(LedgerEntryRow(idx=index, entry=entry, leaf_hash=leaf_hash, recorded_at=at))
    head.size = index + 1
    session.flush()
    return index


def ledger_size(session: Session) -> int:
    return session.execute(select(LedgerHead.size).where(LedgerHead.id == 1)).scalar_one()


def iter_ledger(
    session: Session, start: int = 0, stop: int | None = None, chunk: int = 1000
) -> Iterator[LedgerEntryRow]:
    """Entries [start, stop) in index order, read in chunks so memory stays bounded."""
    position = start
    while stop is None or position < stop:
        limit = chunk if stop is None else min(chunk, stop - position)
        rows = (
            session.execute(
                select(LedgerEntryRow)
                .where(LedgerEntryRow.idx >= position)
                .order_by(LedgerEntryRow.idx)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        yield from rows
        position = rows[-1].idx + 1


# Complaints ----------------------------------------------------------------------------


def get_complaint(session: Session, tracking_id: str, *, lock: bool = False) -> Complaint | None:
    stmt = select(Complaint).where(Complaint.tracking_id == tracking_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def complaint_content(session: Session, tracking_id: str) -> ComplaintContentRow | None:
    return session.get(ComplaintContentRow, tracking_id)


def complaint_events(session: Session, tracking_id: str) -> Sequence[ComplaintEvent]:
    return (
        session.execute(
            select(ComplaintEvent)
            .where(ComplaintEvent.tracking_id == tracking_id)
            .order_by(ComplaintEvent.id)
        )
        .scalars()
        .all()
    )


def list_complaints(
    session: Session, *, status: str | None = None, holder: str | None = None, limit: int = 200
) -> Sequence[Complaint]:
    stmt = select(Complaint).order_by(Complaint.received_at, Complaint.tracking_id).limit(limit)
    if status is not None:
        stmt = stmt.where(Complaint.status == status)
    if holder is not None:
        stmt = stmt.where(Complaint.holder == holder)
    return session.execute(stmt).scalars().all()


# Outbox and inbox ----------------------------------------------------------------------


def outbox_after(
    session: Session, peer_id: str, after: int, limit: int
) -> Sequence[tuple[OutboxRow, ComplaintContentRow | None]]:
    """Outbox rows for `peer_id` with sequence > `after`, oldest first, with their content."""
    stmt = (
        select(OutboxRow, ComplaintContentRow)
        .outerjoin(
            ComplaintContentRow,
            (ComplaintContentRow.tracking_id == OutboxRow.tracking_id) & OutboxRow.carries_content,
        )
        .where(OutboxRow.peer_id == peer_id, OutboxRow.sequence > after)
        .order_by(OutboxRow.sequence)
        .limit(limit)
    )
    return [(o, c) for o, c in session.execute(stmt).all()]


def get_outbox(session: Session, outbox_id: int) -> OutboxRow | None:
    return session.get(OutboxRow, outbox_id)


def outbox_by_message(session: Session, message_id: str) -> OutboxRow | None:
    return session.execute(
        select(OutboxRow).where(OutboxRow.message_id == message_id)
    ).scalar_one_or_none()


def acknowledge_outbox(session: Session, peer_id: str, upto: int, at: dt.datetime) -> None:
    """Mark every outbox row for `peer_id` up to sequence `upto` as acknowledged."""
    session.execute(
        update(OutboxRow)
        .where(
            OutboxRow.peer_id == peer_id, OutboxRow.sequence <= upto, OutboxRow.acked_at.is_(None)
        )
        .values(acked_at=at)
    )
    session.execute(
        update(Link)
        .where(Link.peer_id == peer_id, Link.acked_out_seq < upto)
        .values(acked_out_seq=upto)
    )


def outbox_depth(session: Session, peer_id: str) -> int:
    return session.execute(
        select(func.count())
        .select_from(OutboxRow)
        .where(OutboxRow.peer_id == peer_id, OutboxRow.acked_at.is_(None))
    ).scalar_one()


def get_inbox(session: Session, sender: str, message_id: str) -> InboxRow | None:
    return session.get(InboxRow, (sender, message_id))
