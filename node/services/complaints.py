"""Complaint use cases on this node: submit (intake), refer (disposition), and the views.

The other lifecycle actions (verify, hold, archive, follow-up, resolve, return, reply) are
in node.services.progress, escalation and auto-close in node.services.scheduler; every
status change goes through node.workflow.lifecycle.apply and is recorded in the ledger in
the same transaction (docs/complaint-lifecycle.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from node._proto.lapor.v1 import complaint_pb2, envelope_pb2, ledger_pb2
from node.complaints import CHANNELS, CLASSIFICATIONS, ComplaintDraft, seal_content
from node.errors import NotFoundError, PermissionDeniedError, StateError, ValidationError
from node.ids import TrackingId, format_tracking_id, parse_node_id, parse_tracking_id
from node.services import checkpoints, confidential, progress, scheduler
from node.services._events import add_event
from node.services._ledger import record
from node.services._outbox import enqueue
from node.services.context import NodeContext
from node.store import queries
from node.store.models import (
    Complaint,
    ComplaintContentRow,
    Link,
    ReporterIdentityRow,
)
from node.workflow import lifecycle
from node.workflow.lifecycle import Action, Role, Status

__all__ = [
    "ComplaintView",
    "EventView",
    "erase",
    "list_complaints",
    "refer",
    "refer_many",
    "show",
    "submit",
    "submit_many",
    "summary_of",
]

# Statuses from which the holder may dispose a complaint to a child: directly (submitted,
# verified, accepted; node.workflow.lifecycle), or after taking it back (returned,
# escalated: a redispose transition first).
REFERRABLE = frozenset({"submitted", "verified", "accepted", "returned", "escalated"})
_TAKE_BACK = frozenset({Status.returned, Status.escalated})


def summary_of(row: Complaint) -> complaint_pb2.ComplaintSummary:
    """The signed, non-personal summary of a stored complaint."""
    summary = complaint_pb2.ComplaintSummary(
        tracking_id=row.tracking_id,
        origin_node=row.origin_node,
        classification=CLASSIFICATIONS[row.classification],  # type: ignore[arg-type]
        category=row.category,
        region_code=row.region_code,
        channel=CHANNELS[row.channel],  # type: ignore[arg-type]
        anonymous=row.anonymous,
        confidential=row.confidential,
        needs_inspection=row.needs_inspection,
        content_commitment=row.content_commitment,
    )
    summary.submitted_at.FromDatetime(row.submitted_at)
    return summary


def submit(ctx: NodeContext, draft: ComplaintDraft) -> TrackingId:
    """Register a complaint received at this node; return its tracking id."""
    return submit_many(ctx, [draft])[0]


def submit_many(ctx: NodeContext, drafts: Sequence[ComplaintDraft]) -> list[TrackingId]:
    """Register several complaints in one transaction (all or none)."""
    for draft in drafts:
        draft.validate()
    with ctx.db.write() as session:
        return [_submit(session, ctx, draft) for draft in drafts]


def _submit(session: Session, ctx: NodeContext, draft: ComplaintDraft) -> TrackingId:
    # An anonymous or confidential reporter's identity is kept apart from the content,
    # which travels with referrals (node.services.confidential).
    bare, identity = confidential.split(draft)
    sealed = seal_content(bare.content())
    now = ctx.clock.now()
    serial = queries.next_counter(session, f"tracking:{now.year}")
    tracking_id = format_tracking_id(ctx.node_id, now.year, serial)
    row = Complaint(
        tracking_id=tracking_id,
        origin_node=ctx.node_id,
        classification=draft.classification,
        category=draft.category,
        region_code=draft.region_code,
        channel=draft.channel,
        anonymous=draft.anonymous,
        confidential=draft.confidential,
        needs_inspection=draft.needs_inspection,
        status="submitted",
        holder=ctx.node_id,
        received_from=None,
        submitted_at=now,
        received_at=now,
        updated_at=now,
        content_commitment=sealed.commitment,
    )
    queries.add(session, row)
    queries.add(
        session,
        ComplaintContentRow(tracking_id=tracking_id, content=sealed.content, salt=sealed.salt),
    )
    if identity is not None:
        confidential.keep_identity(session, ctx, tracking_id, identity)
    index = record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(
            complaint_registered=ledger_pb2.ComplaintRegistered(complaint=summary_of(row))
        ),
    )
    add_event(session, ctx, tracking_id, "submitted", f"received via {draft.channel}", index)
    return tracking_id


def refer(ctx: NodeContext, tracking_id: str, to_child: str) -> str:
    """Dispose a complaint this node holds to one of its children; return the message id.

    The signed referral waits in the outbox until the child acknowledges it, whether or not
    the child is reachable now.
    """
    return refer_many(ctx, [tracking_id], to_child)[0]


def refer_many(ctx: NodeContext, tracking_ids: Sequence[str], to_child: str) -> list[str]:
    """Dispose several complaints to one child in one transaction (all or none)."""
    for tracking_id in tracking_ids:
        parse_tracking_id(tracking_id)
    child = parse_node_id(to_child)
    with ctx.db.write() as session:
        link = queries.get_link(session, child, lock=True)
        if link is None or link.revoked_at is not None or link.role != "child":
            raise PermissionDeniedError(
                f"{child} is not a linked child of this node; link it first "
                "(`lapor-node link add CARD --as child`)"
            )
        # One checkpoint for the whole batch, signed after the link is locked so the link's
        # envelopes carry checkpoints in sequence order.
        checkpoint = checkpoints.sign_in(session, ctx)[0].note
        return [_refer(session, ctx, link, tracking_id, checkpoint) for tracking_id in tracking_ids]


def _refer(
    session: Session, ctx: NodeContext, link: Link, tracking_id: str, checkpoint: bytes
) -> str:
    row = queries.get_complaint(session, tracking_id, lock=True)
    if row is None:
        raise NotFoundError(f"no complaint {tracking_id} on this node")
    if row.holder != ctx.node_id:
        raise PermissionDeniedError(
            f"{ctx.node_id} may not refer {tracking_id}: it is {row.status} and held by "
            f"{row.holder}; only the holder may dispose it"
        )
    if row.status not in REFERRABLE:
        raise StateError(
            f"cannot refer {tracking_id}: it is {row.status}; it can be referred only when "
            f"{', '.join(sorted(REFERRABLE))}"
        )
    if row.status == Status.escalated.value and row.referred_to is None:
        raise StateError(
            f"cannot refer {tracking_id}: it is escalated beyond this node (Ombudsman RI), "
            "not back from a child"
        )
    if Status(row.status) in _TAKE_BACK:
        # A returned or escalated complaint is taken back first: its own transition.
        progress.transition(session, ctx, row, Action.redispose, Role.parent)
    role = progress.local_role(row, ctx.node_id, Action.refer)
    lifecycle.apply(Status(row.status), Action.refer, role)  # refuse before signing anything
    outbox, signed = enqueue(
        session,
        ctx,
        link,
        tracking_id=tracking_id,
        carries_content=True,
        checkpoint=checkpoint,
        referral=envelope_pb2.Referral(complaint=summary_of(row)),
    )
    index = record(
        session, ctx, ledger_pb2.LedgerEntry(referral_sent=ledger_pb2.ReferralSent(envelope=signed))
    )
    row.referred_to, row.referral_message_id = link.peer_id, outbox.message_id
    progress.transition(
        session,
        ctx,
        row,
        Action.refer,
        role,
        recorded_as=index,
        summary=f"referred to {link.peer_id}",
    )
    return outbox.message_id


@dataclass(frozen=True)
class EventView:
    at: dt.datetime
    status: str
    actor: str
    note: str
    ledger_index: int | None


@dataclass(frozen=True)
class NoteView:
    """Free text of the lifecycle kept on this node (shown only when content is asked)."""

    at: dt.datetime
    kind: str
    author: str
    text: str


@dataclass(frozen=True)
class ComplaintView:
    """A complaint as an operator sees it on this node (content only if asked and kept)."""

    tracking_id: str
    status: str
    holder: str
    origin_node: str
    received_from: str | None
    classification: str
    category: str
    region_code: str
    channel: str
    anonymous: bool
    confidential: bool
    submitted_at: dt.datetime
    updated_at: dt.datetime
    history: tuple[EventView, ...] = ()
    title: str | None = None
    description: str | None = None
    reporter: str | None = None
    content_kept: bool | None = None  # None: not asked; False: erased or never received
    referred_to: str | None = None  # the child it was last referred to from this node
    overdue: tuple[str, ...] = ()  # deadlines missed, e.g. "first_follow_up (due 2026-12-08)"
    notes: tuple[NoteView, ...] = ()  # only with content


def _view(
    row: Complaint,
    history: tuple[EventView, ...] = (),
    content: ComplaintContentRow | None = None,
    *,
    with_content: bool = False,
    overdue: tuple[str, ...] = (),
    notes: tuple[NoteView, ...] = (),
) -> ComplaintView:
    title = description = reporter = None
    if content is not None:
        parsed = complaint_pb2.ComplaintContent.FromString(content.content)
        title, description = parsed.title, parsed.description
        if not (row.anonymous or row.confidential):
            reporter = parsed.reporter.name
        else:
            reporter = "(anonymous)" if row.anonymous else "(confidential)"
    return ComplaintView(
        tracking_id=row.tracking_id,
        status=row.status,
        holder=row.holder,
        origin_node=row.origin_node,
        received_from=row.received_from,
        classification=row.classification,
        category=row.category,
        region_code=row.region_code,
        channel=row.channel,
        anonymous=row.anonymous,
        confidential=row.confidential,
        submitted_at=row.submitted_at,
        updated_at=row.updated_at,
        history=history,
        title=title,
        description=description,
        reporter=reporter,
        content_kept=None if with_content is False else content is not None,
        referred_to=row.referred_to,
        overdue=overdue,
        notes=notes,
    )


def _overdue(ctx: NodeContext, row: Complaint, now: dt.datetime) -> tuple[str, ...]:
    return tuple(
        f"{m.deadline.value} (due {m.due.isoformat()})"
        for m in scheduler.missed(ctx.config, row, now)
    )


def show(ctx: NodeContext, tracking_id: str, *, with_content: bool = False) -> ComplaintView:
    parse_tracking_id(tracking_id)
    with ctx.db.read() as session:
        row = queries.get_complaint(session, tracking_id)
        if row is None:
            raise NotFoundError(f"no complaint {tracking_id} on this node")
        history = tuple(
            EventView(e.at, e.status, e.actor, e.note, e.ledger_index)
            for e in queries.complaint_events(session, tracking_id)
        )
        content = queries.complaint_content(session, tracking_id) if with_content else None
        notes = (
            tuple(
                NoteView(n.at, n.kind, n.author, n.text)
                for n in progress.notes_of(session, tracking_id)
            )
            if with_content
            else ()
        )
        return _view(
            row,
            history,
            content,
            with_content=with_content,
            overdue=_overdue(ctx, row, ctx.clock.now()),
            notes=notes,
        )


def erase(ctx: NodeContext, tracking_id: str, reason: str) -> int:
    """Delete a complaint's content and salt from this node (a data-protection request).

    The commitment stays in the complaint row and in every ledger entry that carried it, so
    every proof remains valid; only the means to open it is gone. The erasure itself is a
    ledger entry (its reason must not name the reporter). Returns that entry's index.
    """
    parse_tracking_id(tracking_id)
    reason = reason.strip()
    if not reason:
        raise ValidationError("say why the content is erased (--reason), without personal data")
    with ctx.db.write() as session:
        row = queries.get_complaint(session, tracking_id, lock=True)
        if row is None:
            raise NotFoundError(f"no complaint {tracking_id} on this node")
        content = queries.complaint_content(session, tracking_id)
        if content is None:
            raise StateError(f"{tracking_id} has no content on this node (already erased?)")
        session.delete(content)
        for note in progress.notes_of(session, tracking_id):
            session.delete(note)
        identity = session.get(ReporterIdentityRow, tracking_id)
        if identity is not None:
            session.delete(identity)
        index = record(
            session,
            ctx,
            ledger_pb2.LedgerEntry(
                content_erased=ledger_pb2.ContentErased(
                    tracking_id=tracking_id,
                    content_commitment=row.content_commitment,
                    reason=reason,
                )
            ),
        )
        row.updated_at = ctx.clock.now()
        add_event(session, ctx, tracking_id, row.status, f"content erased: {reason}", index)
        return index


def list_complaints(
    ctx: NodeContext,
    *,
    status: str | None = None,
    holder: str | None = None,
    classification: str | None = None,
    child: str | None = None,
    year: int | None = None,
    overdue_only: bool = False,
    limit: int = 200,
) -> list[ComplaintView]:
    """Complaints known to this node, oldest first, filtered. ``child``: those this node
    referred to that child; ``overdue_only``: those with a missed deadline now."""
    if status is not None and status not in {s.value for s in Status}:
        _unknown("status", status, [s.value for s in Status])
    if classification is not None and classification not in CLASSIFICATIONS:
        _unknown("classification", classification, CLASSIFICATIONS)
    if child is not None:
        parse_node_id(child)
    if limit < 1:
        raise ValidationError(f"--limit must be at least 1, found {limit}")
    stmt = select(Complaint).order_by(Complaint.received_at, Complaint.tracking_id)
    for column, value in (
        (Complaint.status, status),
        (Complaint.holder, holder),
        (Complaint.classification, classification),
        (Complaint.referred_to, child),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if year is not None:
        start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
        stmt = stmt.where(
            Complaint.submitted_at >= start, Complaint.submitted_at < start.replace(year=year + 1)
        )
    if not overdue_only:
        stmt = stmt.limit(limit)
    now = ctx.clock.now()
    views: list[ComplaintView] = []
    with ctx.db.read() as session:
        # Streamed in pages: --overdue reads until it has `limit`, never the whole table.
        for r in session.scalars(stmt.execution_options(yield_per=500)):
            late = _overdue(ctx, r, now)
            if overdue_only and not late:
                continue
            views.append(_view(r, overdue=late))
            if len(views) >= limit:
                break
    return views


def _unknown(what: str, value: str, known: Iterable[str]) -> None:
    names = ", ".join(known)
    raise ValidationError(f"unknown {what} {value!r}; expected one of: {names}")
