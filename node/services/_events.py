"""A complaint's history on this node (complaint_events): one row per step, no personal
data, pointing at the ledger entry that records the step when there is one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from node.services.context import NodeContext
from node.store import queries
from node.store.models import ComplaintEvent

__all__ = ["EventRow", "add_event", "add_events"]

MAX_NOTE = 500  # the column's size: longer text belongs in a note beside the ledger


def add_event(
    session: Session,
    ctx: NodeContext,
    tracking_id: str,
    status: str,
    note: str,
    ledger_index: int | None,
    actor: str | None = None,
) -> None:
    queries.add(
        session,
        ComplaintEvent(
            tracking_id=tracking_id,
            at=ctx.clock.now(),
            status=status,
            actor=actor or ctx.node_id,
            note=note[:MAX_NOTE],
            ledger_index=ledger_index,
        ),
    )


# (tracking_id, at, status, actor, note, ledger_index): one row of add_events.
EventRow = tuple[str, dt.datetime, str, str, str, int | None]
_COLUMNS = ("tracking_id", "at", "status", "actor", "note", "ledger_index")


def add_events(session: Session, rows: Sequence[EventRow]) -> None:
    """Insert many events at once (node.store.queries.insert_many); notes are cut to
    MAX_NOTE as add_event cuts them."""
    queries.insert_many(
        session, ComplaintEvent, _COLUMNS, [(*row[:4], row[4][:MAX_NOTE], row[5]) for row in rows]
    )
