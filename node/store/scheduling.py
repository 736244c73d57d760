"""The scheduler's SQL (node.services.scheduler): the pass's keyset pages over the open
complaints, and the set-based status changes of one slice.

Invariants:

1. A pass reads the complaints a node holds in tracking-id order, one page at a time,
   each page starting after the last tracking id of the one before (a keyset cursor): a
   page costs the same wherever the pass is, and a pass resumes where it stopped.
2. `close_all` and `escalate_all` change only the rows named, which the caller locked in
   this transaction (node.store.queries.complaints_for_update) and checked against the
   rule; each is one UPDATE per 500 rows. They change exactly the columns
   node.services._transitions.transition changes for the action (neither action starts
   or stops a deadline clock), so node.workflow.replay gives the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from node.store import queries
from node.store.models import Complaint

__all__ = ["close_all", "due_candidates", "escalate_all"]


def due_candidates(
    session: Session,
    holder: str,
    statuses: Iterable[str],
    received_before: dt.datetime,
    after: str | None,
    limit: int,
) -> Sequence[Complaint]:
    """At most `limit` complaints `holder` holds in one of `statuses`, received before
    `received_before` (younger ones cannot be due yet), with a tracking id after `after`
    (None: from the first), in tracking-id order."""
    stmt = select(Complaint).where(
        Complaint.holder == holder,
        Complaint.status.in_(list(statuses)),
        Complaint.received_at <= received_before,
    )
    if after is not None:
        stmt = stmt.where(Complaint.tracking_id > after)
    return session.scalars(stmt.order_by(Complaint.tracking_id).limit(limit)).all()


_CHUNK = 500  # tracking ids per UPDATE: well inside SQLite's limit on parameters


def _update(session: Session, tracking_ids: Sequence[str], values: dict[str, Any]) -> None:
    for first in range(0, len(tracking_ids), _CHUNK):
        session.execute(
            update(Complaint)
            .where(
                queries.one_of(session, Complaint.tracking_id, tracking_ids[first : first + _CHUNK])
            )
            .values(values)
            .execution_options(synchronize_session=False)
        )


def close_all(session: Session, tracking_ids: Sequence[str], at: dt.datetime) -> None:
    """`closed` (the system's auto-close) for each complaint named, updated `at`."""
    _update(session, tracking_ids, {"status": "closed", "updated_at": at})


def escalate_all(session: Session, tracking_ids: Sequence[str], at: dt.datetime) -> None:
    """`escalated` for each complaint named, updated `at`: held from now on by the parent it
    came from; one that entered here stays held here, referred nowhere (Ombudsman RI)."""
    came_from_parent = Complaint.received_from.is_not(None)
    values = {
        "status": "escalated",
        "updated_at": at,
        "holder": func.coalesce(Complaint.received_from, Complaint.holder),
        "referred_to": case((came_from_parent, Complaint.referred_to), else_=None),
    }
    _update(session, tracking_ids, values)
