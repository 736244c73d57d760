"""Complaint use cases on this node: submit (intake), verify (then auto-dispose), erase,
and the views; referring is node.services.referral (re-exported here).

The other lifecycle actions (hold, archive, follow-up, resolve, return, reply) are in
node.services.lifecycle, escalation and auto-close in node.services.scheduler; every
status change goes through node.workflow.lifecycle.apply and is recorded in the ledger in
the same transaction (docs/complaint-lifecycle.md). Each use case that writes is
`<name>_in(session, ctx, ...)`, in the caller's transaction, and `<name>(ctx, ...)`, in
one of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import complaint_pb2, ledger_pb2
from node.complaints import CLASSIFICATIONS, ComplaintDraft, seal_content
from node.errors import NotFoundError, StateError, ValidationError
from node.ids import TrackingId, format_tracking_id, parse_node_id, parse_tracking_id
from node.services import confidential, scheduler
from node.services._events import add_event, add_events
from node.services._ledger import record, record_many
from node.services._notes import notes_of
from node.services.context import NodeContext
from node.services.lifecycle import verify, verify_in
from node.services.referral import REFERRABLE, refer, refer_many, refer_many_in, summary_of
from node.store import listing, queries
from node.store.models import Complaint, ComplaintContentRow
from node.workflow.lifecycle import Status

__all__ = [
    "REFERRABLE",
    "ComplaintListing",
    "ComplaintView",
    "EventView",
    "erase",
    "erase_in",
    "list_complaints",
    "list_complaints_counted",
    "refer",
    "refer_many",
    "refer_many_in",
    "show",
    "submit",
    "submit_many",
    "submit_many_in",
    "summary_of",
    "verify",
    "verify_in",
]


def submit(ctx: NodeContext, draft: ComplaintDraft) -> TrackingId:
    """Register a complaint received at this node; return its tracking id."""
    return submit_many(ctx, [draft])[0]


def submit_many(ctx: NodeContext, drafts: Sequence[ComplaintDraft]) -> list[TrackingId]:
    """Register several complaints in one transaction (all or none): one block of tracking
    numbers, one ledger append and one insert per table for the batch (`_submit_all`)."""
    with ctx.db.write() as session:
        return submit_many_in(session, ctx, drafts)


def submit_many_in(
    session: Session, ctx: NodeContext, drafts: Sequence[ComplaintDraft]
) -> list[TrackingId]:
    """`submit_many` in the caller's transaction."""
    for draft in drafts:
        draft.validate()
    return _submit_all(session, ctx, drafts)


def submit_in(session: Session, ctx: NodeContext, draft: ComplaintDraft) -> TrackingId:
    """`submit` in the caller's transaction."""
    return submit_many_in(session, ctx, [draft])[0]


def _submit_all(
    session: Session, ctx: NodeContext, drafts: Sequence[ComplaintDraft]
) -> list[TrackingId]:
    """Register validated `drafts` in the caller's transaction, numbered in order; the
    same rows and ledger entries as registering each in turn, at one time `now`."""
    if not drafts:
        return []
    now = ctx.clock.now()
    first = queries.next_counter(session, f"tracking:{now.year}", len(drafts))
    rows: list[dict[str, object]] = []
    contents: list[tuple[str, bytes, bytes]] = []
    identities = []
    entries = []
    for serial, draft in enumerate(drafts, first):
        # An anonymous or confidential reporter's identity is kept apart from the content,
        # which travels with referrals (node.services.confidential).
        bare, identity = confidential.split(draft)
        sealed = seal_content(bare.content())
        tracking_id = format_tracking_id(ctx.node_id, now.year, serial)
        row = {
            "tracking_id": tracking_id,
            "origin_node": ctx.node_id,
            "classification": draft.classification,
            "category": draft.category,
            "region_code": draft.region_code,
            "channel": draft.channel,
            "anonymous": draft.anonymous,
            "confidential": draft.confidential,
            "needs_inspection": draft.needs_inspection,
            "status": "submitted",
            "holder": ctx.node_id,
            "received_from": None,
            "submitted_at": now,
            "received_at": now,
            "updated_at": now,
            "content_commitment": sealed.commitment,
        }
        rows.append(row)
        contents.append((tracking_id, sealed.content, sealed.salt))
        if identity is not None:
            identities.append((tracking_id, identity))
        entries.append(
            ledger_pb2.LedgerEntry(
                complaint_registered=ledger_pb2.ComplaintRegistered(
                    complaint=summary_of(SimpleNamespace(**row))
                )
            )
        )
    queries.insert_many(session, Complaint, tuple(rows[0]), [tuple(r.values()) for r in rows])
    queries.insert_many(session, ComplaintContentRow, ("tracking_id", "content", "salt"), contents)
    for tracking_id, identity in identities:
        confidential.keep_identity(session, ctx, tracking_id, identity)
    indexes = record_many(session, ctx, entries)
    add_events(
        session,
        [
            (
                str(row["tracking_id"]),
                now,
                "submitted",
                ctx.node_id,
                f"received via {row['channel']}",
                i,
            )
            for row, i in zip(rows, indexes, strict=True)
        ],
    )
    return [TrackingId(str(row["tracking_id"])) for row in rows]


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
            tuple(NoteView(n.at, n.kind, n.author, n.text) for n in notes_of(session, tracking_id))
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
    with ctx.db.write() as session:
        return erase_in(session, ctx, tracking_id, reason)


def erase_in(session: Session, ctx: NodeContext, tracking_id: str, reason: str) -> int:
    """`erase` in the caller's transaction."""
    parse_tracking_id(tracking_id)
    reason = reason.strip()
    if not reason:
        raise ValidationError("say why the content is erased (--reason), without personal data")
    row = queries.get_complaint(session, tracking_id, lock=True)
    if row is None:
        raise NotFoundError(f"no complaint {tracking_id} on this node")
    content = queries.complaint_content(session, tracking_id)
    if content is None:
        raise StateError(f"{tracking_id} has no content on this node (already erased?)")
    session.delete(content)
    for note in notes_of(session, tracking_id):
        session.delete(note)
    confidential.forget_identity(session, tracking_id)
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
    """Complaints known to this node, oldest first, filtered, at most ``limit`` (0: all).
    ``child``: those this node referred to that child; ``overdue_only``: those with a
    missed deadline now."""
    return _listing(
        ctx, status, holder, classification, child, year, overdue_only, limit, count=False
    ).views


@dataclass(frozen=True)
class ComplaintListing:
    """`complaint list`: the complaints shown (at most the limit) and how many match."""

    views: list[ComplaintView]
    total: int


def list_complaints_counted(
    ctx: NodeContext,
    *,
    status: str | None = None,
    holder: str | None = None,
    classification: str | None = None,
    child: str | None = None,
    year: int | None = None,
    overdue_only: bool = False,
    limit: int = 200,
) -> ComplaintListing:
    """As `list_complaints`, with the number of complaints that match the filters, so
    that a listing cut at ``limit`` says so."""
    return _listing(
        ctx, status, holder, classification, child, year, overdue_only, limit, count=True
    )


def _listing(
    ctx: NodeContext,
    status: str | None,
    holder: str | None,
    classification: str | None,
    child: str | None,
    year: int | None,
    overdue_only: bool,
    limit: int,
    *,
    count: bool,
) -> ComplaintListing:
    if status is not None and status not in {s.value for s in Status}:
        _unknown("status", status, [s.value for s in Status])
    if classification is not None and classification not in CLASSIFICATIONS:
        _unknown("classification", classification, CLASSIFICATIONS)
    if child is not None:
        parse_node_id(child)
    if limit < 0:
        raise ValidationError(f"--limit must be 0 (all) or more, found {limit}")
    which = listing.ListingFilter(status, holder, classification, child, year)
    now = ctx.clock.now()
    views: list[ComplaintView] = []
    total = 0
    with ctx.db.read() as session:
        if count and not overdue_only:
            total = listing.count_listed(session, which)
        # Streamed in pages: --overdue reads until it has `limit` (or, counting, to the end).
        for r in listing.iter_listed(session, which, 0 if overdue_only else limit):
            late = _overdue(ctx, r, now)
            if overdue_only and not late:
                continue
            if not limit or len(views) < limit:
                views.append(_view(r, overdue=late))
            if overdue_only:
                total += 1
            if limit and len(views) >= limit and not (count and overdue_only):
                break
    return ComplaintListing(views, total if count else len(views))


def _unknown(what: str, value: str, known: Iterable[str]) -> None:
    names = ", ".join(known)
    raise ValidationError(f"unknown {what} {value!r}; expected one of: {names}")
