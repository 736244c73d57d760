"""A complaint's history on this node (complaint_events): one row per step, no personal
data, pointing at the ledger entry that records the step when there is one."""

from __future__ import annotations

from sqlalchemy.orm import Session

from node.services.context import NodeContext
from node.store import queries
from node.store.models import ComplaintEvent

__all__ = ["add_event"]

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
