"""Reads the dashboard needs beside node.services.reports: unit names, the years that have
complaints, and one page of the overdue list with the length of the whole list.

Invariants:

1. Read-only, like node.services.reports (read transactions, rows streamed).
2. A year's complaints are those submitted in it (UTC), as in reports and
   ``complaint list --year``; "overdue" is a missed deadline now (node.services.scheduler),
   so a page's total agrees with the overview's overdue figure.
3. Nothing personal: tracking id, child, status, holder and the deadlines missed.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.services import links, reports, scheduler
from node.services.context import NodeContext
from node.store import listing
from node.store import reports as store_reports

__all__ = ["OverduePage", "overdue_page", "unit_names", "years_with_complaints"]


@dataclass(frozen=True)
class OverdueItem:
    tracking_id: str
    child: str  # the child it was last referred to, or reports.OWN
    status: str
    holder: str
    confidential: bool
    overdue: tuple[str, ...]  # e.g. "resolve (due 2020-03-20)"


@dataclass(frozen=True)
class OverduePage:
    """Items ``offset`` to ``offset + len(items)`` of ``total`` overdue complaints."""

    total: int
    offset: int
    items: tuple[OverdueItem, ...]


def unit_names(ctx: NodeContext) -> dict[str, str]:
    """Node id -> unit name for this node and every peer it knows (linked or expected)."""
    names = {str(e.node_id): e.name for e in ctx.config.expected if e.name}
    names.update({view.peer_id: view.name for view in links.list_links(ctx) if view.name})
    names[ctx.node_id] = ctx.config.name
    return names


def years_with_complaints(ctx: NodeContext) -> list[int]:
    """The years from the first complaint's submission to the last one's (UTC), or []."""
    with ctx.db.read() as session:
        span = store_reports.submission_span(session)
    return [] if span is None else list(range(span[0].year, span[1].year + 1))


def overdue_page(
    ctx: NodeContext, year: int, *, child: str | None = None, offset: int = 0, limit: int = 200
) -> OverduePage:
    """The overdue complaints submitted in ``year`` (of ``child``, or reports.OWN for those
    not referred), oldest first: the ``limit`` from ``offset`` on and how many there are."""
    if child == reports.OWN:
        which = listing.ListingFilter(year=year, not_referred=True)
    else:
        which = listing.ListingFilter(year=year, referred_to=child)
    now = ctx.clock.now()
    total = 0
    items: list[OverdueItem] = []
    with ctx.db.read() as session:
        for row in listing.iter_listed(session, which):
            missed = scheduler.missed(ctx.config, row, now)
            if not missed:
                continue
            if offset <= total < offset + limit:
                items.append(
                    OverdueItem(
                        tracking_id=row.tracking_id,
                        child=row.referred_to or reports.OWN,
                        status=row.status,
                        holder=row.holder,
                        confidential=row.confidential,
                        overdue=tuple(
                            f"{m.deadline.value} (due {m.due.isoformat()})" for m in missed
                        ),
                    )
                )
            total += 1
    return OverduePage(total=total, offset=offset, items=tuple(items))
