"""Complaint listings: `complaint list` and the dashboard's overdue pages (filtered,
oldest first), streamed in pages of 500. The scheduler's pages are node.store.scheduling."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from node.store.models import Complaint

__all__ = ["ListingFilter", "count_listed", "iter_listed"]


@dataclass(frozen=True)
class ListingFilter:
    """Which complaints a listing shows; None matches any."""

    status: str | None = None
    holder: str | None = None
    classification: str | None = None
    referred_to: str | None = None
    year: int | None = None
    not_referred: bool = False  # only those this node never referred to a child


def _select(f: ListingFilter) -> Select[Complaint]:
    stmt = select(Complaint).order_by(Complaint.received_at, Complaint.tracking_id)
    for column, value in (
        (Complaint.status, f.status),
        (Complaint.holder, f.holder),
        (Complaint.classification, f.classification),
        (Complaint.referred_to, f.referred_to),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if f.not_referred:
        stmt = stmt.where(Complaint.referred_to.is_(None))
    if f.year is not None:
        start = dt.datetime(f.year, 1, 1, tzinfo=dt.UTC)
        stmt = stmt.where(
            Complaint.submitted_at >= start,
            Complaint.submitted_at < start.replace(year=f.year + 1),
        )
    return stmt


def count_listed(session: Session, f: ListingFilter) -> int:
    """How many complaints match `f`."""
    return session.scalar(select(func.count()).select_from(_select(f).subquery())) or 0


def iter_listed(session: Session, f: ListingFilter, limit: int = 0) -> Iterator[Complaint]:
    """The complaints matching `f`, oldest first, at most `limit` (0: all), read in pages of
    500 so that a caller may stop early."""
    stmt = _select(f)
    if limit:
        stmt = stmt.limit(limit)
    yield from session.scalars(stmt.execution_options(yield_per=500))
