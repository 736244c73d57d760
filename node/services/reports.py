"""Reports: what operators, the province and the ministry look at (docs/reports.md).

Invariants:

1. Read-only: every function here runs in read transactions and changes nothing, so the
   CLI, the dashboard and the metrics refresher may call them at any time.
2. A year's complaints are those submitted in it (UTC, like tracking ids and
   ``complaint list --year``). The figures of a child subtree are this node's rows of the
   complaints it last referred to that child (``referred_to``): status and holder there
   are mirrored from the signed status updates that travelled up (node.services.lifecycle,
   invariant 3), never asked of the child live. They hold as of the latest status update
   received from that child (``as_of``).
3. Nothing personal or free-text leaves this module: no content, no reporter, no notes.
   A confidential complaint is counted like any other; lists show its tracking id and
   status only, with ``confidential`` set, never its category or region.
4. Rows are streamed (``yield_per``); only per-complaint working-day durations are kept,
   for the medians (node.workflow.reports, invariant 4).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.errors import IntegrityError, NotFoundError, ValidationError
from node.ids import parse_node_id, parse_tracking_id
from node.ledger.audit import check_proof_document, proof_document
from node.services import audit, checkpoints, links, scheduler, state_check
from node.services.context import NodeContext

# `link list`'s wording of a link's state, so that a child is worded the same in both
# (docs/reports.md); kept private in links.py, which owns the states.
from node.services.links import _why as _link_state
from node.store import queries
from node.store import reports as store_reports
from node.store.models import Complaint, ComplaintEvent
from node.workflow.calendar import WorkingCalendar, local_date
from node.workflow.deadlines import Deadline
from node.workflow.holidays import covered_years
from node.workflow.lifecycle import Status
from node.workflow.reports import OPEN, ComplaintFacts, Figures, Tally

__all__ = [
    "OWN",
    "Backlog",
    "BacklogItem",
    "ChildFigures",
    "MissingChild",
    "Report",
    "Trail",
    "TrailStep",
    "WorkflowSample",
    "backlog",
    "check_year",
    "report",
    "to_document",
    "today",
    "trail",
    "workflow_sample",
]

OWN = "(this node)"
"""The group of complaints this node did not refer to any child, in per-child views."""

_VERIFIED = frozenset(
    {Status.verified, Status.referred, Status.accepted, Status.in_progress}
    | {Status.resolved, Status.closed}
)


@dataclass(frozen=True)
class ChildFigures:
    """One child subtree: its link as `link list` shows it, and its figures."""

    node_id: str
    name: str
    expected: bool
    linked: bool
    connected: bool
    state: str
    last_seen: dt.datetime | None
    as_of: dt.datetime | None  # the latest status update received from it
    figures: Figures


@dataclass(frozen=True)
class MissingChild:
    """An expected child (node.yaml) that is not linked or not connected now."""

    node_id: str
    name: str
    state: str


@dataclass(frozen=True)
class Report:
    """`lapor-node report`: this node's figures for a year and, if asked, each child's."""

    node_id: str
    name: str
    year: int
    generated_at: dt.datetime
    figures: Figures
    children: tuple[ChildFigures, ...] = ()
    missing_children: tuple[MissingChild, ...] = ()
    expected_children: int = 0
    connected_children: int = 0
    note: str | None = None  # e.g. that this node has no complaints yet
    # The latest state check found the working tables differing from the ledger
    # (node.services.state_check); also prefixed to `note`, which the table prints.
    state_warning: str | None = None


@dataclass(frozen=True)
class BacklogItem:
    """One complaint of the year still open: where it is and what it has missed."""

    tracking_id: str
    child: str  # the child it was last referred to, or OWN
    status: str
    holder: str
    confidential: bool
    submitted_on: dt.date
    overdue: tuple[str, ...]  # e.g. "resolve (due 2026-06-01)"


@dataclass(frozen=True)
class Backlog:
    """`lapor-node report backlog`: every open complaint of a year, against a deadline."""

    node_id: str
    year: int
    deadline: dt.date
    today: dt.date
    days_left: int
    working_days_left: int | None  # None when the calendar does not cover the dates
    open_by_child: dict[str, int] = field(default_factory=dict)
    items: tuple[BacklogItem, ...] = ()


# --- arguments ---------------------------------------------------------------------------


def today(ctx: NodeContext) -> dt.date:
    """Today's date in this node's time zone (from its clock)."""
    return local_date(ctx.clock.now(), ctx.config.timezone)


def check_year(ctx: NodeContext, year: int) -> None:
    """The year must be one the working-day calendar covers and not in the future."""
    covered = sorted(covered_years())
    if year not in covered:
        raise ValidationError(
            f"no working-day calendar for {year}: this version knows {covered[0]}-"
            f"{covered[-1]}; pass --year within that range"
        )
    this_year = today(ctx).year
    if year > this_year:
        raise ValidationError(f"{year} has not started yet (today is in {this_year})")


def _years_with_data(session: Session) -> list[int]:
    span = store_reports.submission_span(session)
    return [] if span is None else list(range(span[0].year, span[1].year + 1))


def _check_data(session: Session, year: int) -> str | None:
    """None when the year has complaints; a note when the node has none at all; else
    NotFoundError naming the years that have some."""
    if store_reports.count_submitted_in(session, year):
        return None
    years = _years_with_data(session)
    if not years:
        return "this node has no complaints yet: every figure is zero"
    raise NotFoundError(
        f"no complaint submitted in {year} is known to this node; it has complaints from "
        f"{years[0]} to {years[-1]}: pass one of those years"
        if len(years) > 1
        else f"no complaint submitted in {year} is known to this node; it has complaints "
        f"from {years[0]} only: pass --year {years[0]}"
    )


# --- facts -------------------------------------------------------------------------------


def _first_follow_up_at(at: dt.datetime | None, entry: bytes | None) -> dt.datetime | None:
    """When the first follow-up happened: the signed time of the status update that
    brought it here, or when this node recorded it itself."""
    if at is None:
        return None
    if entry is not None:
        parsed = ledger_pb2.LedgerEntry.FromString(entry)
        if parsed.WhichOneof("kind") == "status_update_received":
            envelope = envelope_pb2.Envelope.FromString(parsed.status_update_received.envelope.body)
            if envelope.status_update.HasField("at"):
                return envelope.status_update.at.ToDatetime(tzinfo=dt.UTC)
    return at


def _days(cal: WorkingCalendar, tz: str, start: dt.datetime, end: dt.datetime | None) -> int | None:
    if end is None:
        return None
    return max(0, cal.working_days_between(local_date(start, tz), local_date(end, tz)))


def _facts(
    ctx: NodeContext,
    cal: WorkingCalendar,
    now: dt.datetime,
    row: Complaint,
    follow_up_at: dt.datetime | None,
) -> ComplaintFacts:
    status = Status(row.status)
    tz = ctx.config.timezone
    return ComplaintFacts(
        status=status,
        verified=row.verified_at is not None or status in _VERIFIED,
        referred=row.referred_to is not None,
        overdue=bool(scheduler.missed(ctx.config, row, now)),
        days_to_follow_up=_days(cal, tz, row.submitted_at, follow_up_at),
        days_to_resolution=_days(cal, tz, row.submitted_at, row.resolved_at),
        month=row.submitted_at.month,
    )


def _stream(
    ctx: NodeContext, session: Session, year: int
) -> Iterator[tuple[Complaint, ComplaintFacts]]:
    cal = scheduler.calendar_for(ctx.config)
    now = ctx.clock.now()
    # Each with its first follow-up: its first in_progress event and that event's entry.
    rows = store_reports.iter_with_first_event(session, year, Status.in_progress.value)
    for row, at, entry in rows:
        yield row, _facts(ctx, cal, now, row, _first_follow_up_at(at, entry))


def _as_of(session: Session) -> dict[str, dt.datetime]:
    """The latest status update received from each child."""
    return store_reports.latest_received(session, "status_update")


# --- the report --------------------------------------------------------------------------


def report(
    ctx: NodeContext, year: int, *, by_child: bool = False, child: str | None = None
) -> Report:
    """This node's figures for ``year`` and, with ``by_child`` (or one ``child``), each
    child subtree's (invariant 2)."""
    check_year(ctx, year)
    only = None if child is None else parse_node_id(child)
    by_child = by_child or only is not None
    with ctx.db.read() as session:
        note = _check_data(session, year)
        total = Tally()
        per_child: dict[str, Tally] = {}
        for row, facts in _stream(ctx, session, year):
            total.add(facts)
            if by_child and row.referred_to is not None:
                per_child.setdefault(row.referred_to, Tally()).add(facts)
        as_of = _as_of(session) if by_child else {}
    link_report = links.link_report(ctx)
    children: list[ChildFigures] = []
    if by_child:
        rows = [r for r in link_report.rows if r.role == "child"]
        seen = {r.peer_id for r in rows}
        for r in rows:
            children.append(_child(r, as_of, per_child.get(r.peer_id, Tally())))
        for peer in sorted(set(per_child) - seen):  # referred to once, no longer linked
            figures = per_child[peer].figures()
            children.append(
                ChildFigures(
                    peer, "", False, False, False, "not linked", None, as_of.get(peer), figures
                )
            )
        if only is not None:
            children = [c for c in children if c.node_id == only]
            if not children:
                known = ", ".join(sorted({r.peer_id for r in rows} | set(per_child))) or "none"
                raise NotFoundError(
                    f"{only} is not a child of this node (expected, linked or referred to); "
                    f"its children: {known}"
                )
    # Worded as `link list` words them (docs/reports.md: the same states).
    missing = tuple(
        MissingChild(v.peer_id, v.name, _link_state(v)) for v in link_report.not_connected
    )
    last = state_check.last_check(ctx)
    warning = None if last is None else last.warning()
    if warning is not None:
        note = f"WARNING: {warning}" + (f"\n{note}" if note else "")
    return Report(
        node_id=ctx.node_id,
        name=ctx.config.name,
        year=year,
        generated_at=ctx.clock.now(),
        figures=total.figures(),
        children=tuple(children),
        missing_children=missing,
        expected_children=link_report.expected,
        connected_children=link_report.connected,
        note=note,
        state_warning=warning,
    )


def _child(view: links.LinkView, as_of: dict[str, dt.datetime], tally: Tally) -> ChildFigures:
    linked = view.created_at is not None and view.revoked_at is None
    return ChildFigures(
        node_id=view.peer_id,
        name=view.name,
        expected=view.expected,
        linked=linked,
        connected=view.connected,
        state=view.state,
        last_seen=view.last_seen_at,
        as_of=as_of.get(view.peer_id),
        figures=tally.figures(),
    )


# --- the backlog -------------------------------------------------------------------------


def backlog(ctx: NodeContext, year: int, deadline: dt.date) -> Backlog:
    """Every complaint submitted in ``year`` that is still open, per child, with the days
    left until ``deadline`` (a deadline letter's date, in this node's time zone)."""
    check_year(ctx, year)
    now = today(ctx)
    if deadline < now:
        raise ValidationError(
            f"the deadline {deadline.isoformat()} is in the past (today is "
            f"{now.isoformat()} in {ctx.config.timezone}); pass a date from today on"
        )
    covered = covered_years()
    working_left = (
        scheduler.calendar_for(ctx.config).working_days_between(now, deadline)
        if now.year in covered and deadline.year in covered
        else None
    )
    items: list[BacklogItem] = []
    by_child: dict[str, int] = {}
    with ctx.db.read() as session:
        _check_data(session, year)
        for row, _ in _stream(ctx, session, year):
            if Status(row.status) not in OPEN:
                continue
            group = row.referred_to or OWN
            by_child[group] = by_child.get(group, 0) + 1
            items.append(_item(ctx, row, group))
    return Backlog(
        node_id=ctx.node_id,
        year=year,
        deadline=deadline,
        today=now,
        days_left=(deadline - now).days,
        working_days_left=working_left,
        open_by_child=dict(sorted(by_child.items())),
        items=tuple(items),
    )


def _item(ctx: NodeContext, row: Complaint, group: str) -> BacklogItem:
    late = scheduler.missed(ctx.config, row, ctx.clock.now())
    return BacklogItem(
        tracking_id=row.tracking_id,
        child=group,
        status=row.status,
        holder=row.holder,
        confidential=row.confidential,
        submitted_on=local_date(row.submitted_at, ctx.config.timezone),
        overdue=tuple(f"{m.deadline.value} (due {m.due.isoformat()})" for m in late),
    )


# --- a complaint's trail (the dashboard) -------------------------------------------------


@dataclass(frozen=True)
class TrailStep:
    """One event of the complaint on this node, with its ledger entry's inclusion proof
    against the latest signed checkpoint (None: no entry, or not yet covered by one)."""

    at: dt.datetime
    status: str
    actor: str
    note: str
    ledger_index: int | None
    proof: dict[str, Any] | None = None
    proof_checked: str = ""  # "verified", or why not


@dataclass(frozen=True)
class Trail:
    """A complaint's path across the tree as this node knows it, and its events here."""

    tracking_id: str
    status: str
    holder: str
    confidential: bool
    nodes: tuple[str, ...]  # entry node first, the holder last
    steps: tuple[TrailStep, ...]
    checkpoint_size: int  # 0: this node has signed no checkpoint yet


def trail(ctx: NodeContext, tracking_id: str) -> Trail:
    """The complaint's trail (invariant 3: no content, no reporter, no notes)."""
    parse_tracking_id(tracking_id)
    with ctx.db.read() as session:
        row = queries.get_complaint(session, tracking_id)
        if row is None:
            raise NotFoundError(f"no complaint {tracking_id} on this node")
        events = list(queries.complaint_events(session, tracking_id))
    head = audit.head(ctx)
    size = 0 if head.checkpoint is None else head.checkpoint.size
    steps = tuple(_step(ctx, e, head) for e in events)
    path: list[str] = []
    for node_id in (row.origin_node, row.received_from, ctx.node_id, row.referred_to):
        if node_id and node_id not in path:
            path.append(node_id)
    for e in events:
        if e.actor not in path and e.actor != row.holder:
            path.append(e.actor)
    if row.holder not in path:
        path.append(row.holder)
    return Trail(
        row.tracking_id, row.status, row.holder, row.confidential, tuple(path), steps, size
    )


def _step(ctx: NodeContext, event: ComplaintEvent, head: audit.AuditHead) -> TrailStep:
    step = TrailStep(event.at, event.status, event.actor, event.note, event.ledger_index)
    if event.ledger_index is None:
        return step
    latest = head.checkpoint
    if latest is None or event.ledger_index >= latest.size:
        return replace(step, proof_checked="not yet covered by a signed checkpoint")
    proof = audit.inclusion(ctx, event.ledger_index, latest.size)
    doc = proof_document(
        origin=checkpoints.origin(ctx),
        index=proof.index,
        size=proof.size,
        entry=proof.entry,
        path=proof.path,
        root=proof.root,
        note=latest.note,
    )
    try:
        check_proof_document(doc, head.vkey)
    except IntegrityError as e:
        return replace(step, proof=doc, proof_checked=f"FAILED: {e}")
    return replace(step, proof=doc, proof_checked="verified")


# --- workflow metrics --------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowSample:
    """Every complaint on this node by status, and the open ones' missed deadlines now."""

    by_status: dict[str, int]
    overdue: int
    breaches: dict[str, int]  # deadline -> complaints that missed it


def workflow_sample(ctx: NodeContext) -> WorkflowSample:
    """What the workflow gauges show (node.metrics.observe_workflow)."""
    now = ctx.clock.now()
    with ctx.db.read() as session:
        by_status = {s.value: 0 for s in Status} | store_reports.status_counts(session)
        overdue = 0
        breaches = {d.value: 0 for d in Deadline}
        for row in store_reports.iter_with_status(session, [s.value for s in OPEN]):
            missed = scheduler.missed(ctx.config, row, now)
            overdue += bool(missed)
            for m in missed:
                breaches[m.deadline.value] += 1
    return WorkflowSample(by_status, overdue, breaches)


# --- documents (the JSON of `report --format json` and of the dashboard) -----------------


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_document(value: Report | Backlog | Trail) -> dict[str, Any]:
    """The JSON form of a report, a backlog or a trail: the same for the CLI and the
    dashboard, so a figure can be checked against the other."""
    document: dict[str, Any] = _plain(asdict(value))
    return document
