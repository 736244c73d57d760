"""The queries of reports, the dashboard and the workflow gauges (node.services.reports,
node.services.dashboard_queries): read-only, streamed in pages of 500 where they may be
long. A year's complaints are those submitted in it (UTC)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from node.store.models import Complaint, ComplaintEvent, InboxRow, LedgerEntryRow

__all__ = [
    "count_submitted_in",
    "iter_with_first_event",
    "iter_with_status",
    "latest_received",
    "status_counts",
    "submission_span",
]


def year_range(year: int) -> tuple[dt.datetime, dt.datetime]:
    """The first instant of `year` and of the next one, UTC."""
    return dt.datetime(year, 1, 1, tzinfo=dt.UTC), dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)


def utc(value: object) -> dt.datetime:
    """An aggregate of a UTC column as a UTC datetime (SQLite returns it as text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def submission_span(session: Session) -> tuple[dt.datetime, dt.datetime] | None:
    """When the first and the last complaint known here were submitted; None if none."""
    first, last = session.execute(
        select(func.min(Complaint.submitted_at), func.max(Complaint.submitted_at))
    ).one()
    return None if first is None else (utc(first), utc(last))


def count_submitted_in(session: Session, year: int) -> int:
    start, end = year_range(year)
    return session.execute(
        select(func.count())
        .select_from(Complaint)
        .where(Complaint.submitted_at >= start, Complaint.submitted_at < end)
    ).scalar_one()


def iter_with_first_event(
    session: Session, year: int, status: str
) -> Iterator[tuple[Complaint, dt.datetime | None, bytes | None]]:
    """The year's complaints, oldest first, each with the time of its first event of
    `status` and that event's ledger entry (None, None without one)."""
    first = (
        select(ComplaintEvent.tracking_id.label("tid"), func.min(ComplaintEvent.id).label("eid"))
        .where(ComplaintEvent.status == status)
        .group_by(ComplaintEvent.tracking_id)
        .subquery()
    )
    event = aliased(ComplaintEvent)
    start, end = year_range(year)
    stmt = (
        select(Complaint, event.at, LedgerEntryRow.entry)
        .outerjoin(first, first.c.tid == Complaint.tracking_id)
        .outerjoin(event, event.id == first.c.eid)
        .outerjoin(LedgerEntryRow, LedgerEntryRow.idx == event.ledger_index)
        .where(Complaint.submitted_at >= start, Complaint.submitted_at < end)
        .order_by(Complaint.submitted_at, Complaint.tracking_id)
    )
    yield from session.execute(stmt.execution_options(yield_per=500)).tuples()


def latest_received(session: Session, kind: str) -> dict[str, dt.datetime]:
    """The latest envelope of `kind` received from each peer."""
    stmt = (
        select(InboxRow.sender, func.max(InboxRow.received_at))
        .where(InboxRow.kind == kind)
        .group_by(InboxRow.sender)
    )
    return {sender: utc(at) for sender, at in session.execute(stmt) if at is not None}


def status_counts(session: Session) -> dict[str, int]:
    """How many complaints are in each status (those with any)."""
    stmt = select(Complaint.status, func.count()).group_by(Complaint.status)
    return {status: n for status, n in session.execute(stmt).all()}


def iter_with_status(session: Session, statuses: Iterable[str]) -> Iterator[Complaint]:
    """The complaints in one of `statuses`."""
    stmt = select(Complaint).where(Complaint.status.in_(list(statuses)))
    yield from session.scalars(stmt.execution_options(yield_per=500))
