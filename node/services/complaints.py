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
from types import SimpleNamespace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from node._proto.lapor.v1 import complaint_pb2, envelope_pb2, ledger_pb2
from node.complaints import CHANNELS, CLASSIFICATIONS, ComplaintDraft, seal_content
from node.errors import NodeError, NotFoundError, PermissionDeniedError, StateError, ValidationError
from node.ids import TrackingId, format_tracking_id, parse_node_id, parse_tracking_id
from node.services import checkpoints, confidential, progress, scheduler
from node.services._events import add_event, add_events
from node.services._ledger import record, record_many
from node.services._outbox import enqueue, sealed, store_sealed
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
    "ComplaintListing",
    "ComplaintView",
    "EventView",
    "erase",
    "list_complaints",
    "list_complaints_counted",
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


def summary_of(row: Complaint | SimpleNamespace) -> complaint_pb2.ComplaintSummary:
    """The signed, non-personal summary of a stored complaint (or of its columns about to
    be inserted, as attributes: building a Complaint only to read it costs more than the
    rest of registering it)."""
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
    """Register several complaints in one transaction (all or none): one block of tracking
    numbers, one ledger append and one insert per table for the batch (`_submit_all`)."""
    for draft in drafts:
        draft.validate()
    with ctx.db.write() as session:
        return _submit_all(session, ctx, drafts)


def _submit(session: Session, ctx: NodeContext, draft: ComplaintDraft) -> TrackingId:
    return _submit_all(session, ctx, [draft])[0]


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


def refer(ctx: NodeContext, tracking_id: str, to_child: str) -> str:
    """Dispose a complaint this node holds to one of its children; return the message id.

    The signed referral waits in the outbox until the child acknowledges it, whether or not
    the child is reachable now.
    """
    return refer_many(ctx, [tracking_id], to_child)[0]


def refer_many(ctx: NodeContext, tracking_ids: Sequence[str], to_child: str) -> list[str]:
    """Dispose several complaints to one child in one transaction (all or none); return
    their message ids, in order.

    Complaints this node holds that can be referred as they stand (no take-back first, no
    status change to send up to a parent) are referred in runs (`_ReferralRun`): one read,
    one ledger append and one insert per table for the run. Any other is referred on its
    own by `_refer`, which also raises the error for one that may not be referred.
    Either way each complaint gets the same signed referral, ledger entry and event.
    """
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
        rows = queries.complaints_for_update(session, tracking_ids)
        run = _ReferralRun(session, ctx, link, checkpoint)
        message_ids = []
        for tracking_id in tracking_ids:
            row = rows.get(tracking_id)
            message_id = run.take(row) if row is not None else None
            if message_id is None:
                run.store()  # what the run took goes first: sequences and ledger in order
                message_id = _refer(session, ctx, link, tracking_id, checkpoint)
            message_ids.append(message_id)
        run.store()
        return message_ids


class _ReferralRun:
    """Referrals of complaints that need nothing but the referral itself: each is checked,
    signed and its row changed when taken; the ledger entries, outbox rows and events of
    the run are written together by `store`."""

    def __init__(self, session: Session, ctx: NodeContext, link: Link, checkpoint: bytes):
        self.session, self.ctx, self.link, self.checkpoint = session, ctx, link, checkpoint
        self.now = ctx.clock.now()
        self.taken: list[tuple[envelope_pb2.Envelope, envelope_pb2.SignedEnvelope, str]] = []

    def take(self, row: Complaint) -> str | None:
        """Refer `row` in this run and return the message id, or None if `_refer` must."""
        me = self.ctx.node_id
        if (
            row.holder != me
            or row.status not in REFERRABLE
            or Status(row.status) in _TAKE_BACK
            or row.received_from is not None
        ):
            return None
        role = progress.local_role(row, me, Action.refer)
        try:
            after = lifecycle.apply(Status(row.status), Action.refer, role)
        except NodeError:
            return None  # _refer raises it
        link = self.link
        envelope, signed = sealed(
            self.ctx,
            link.peer_id,
            link.next_out_seq,
            self.checkpoint,
            self.now,
            referral=envelope_pb2.Referral(complaint=summary_of(row)),
        )
        link.next_out_seq += 1
        # As progress.transition(refer) with the ReferralSent entry recorded as it.
        row.referred_to, row.referral_message_id = link.peer_id, envelope.message_id
        row.status, row.updated_at = after.value, self.now
        progress.stamp(row, Action.refer, self.now)
        self.taken.append((envelope, signed, after.value))
        return envelope.message_id

    def store(self) -> None:
        if not self.taken:
            return
        session, now, peer = self.session, self.now, self.link.peer_id
        indexes = record_many(
            session,
            self.ctx,
            [
                ledger_pb2.LedgerEntry(referral_sent=ledger_pb2.ReferralSent(envelope=signed))
                for _, signed, _ in self.taken
            ],
        )
        tracking_ids = [envelope.referral.complaint.tracking_id for envelope, _, _ in self.taken]
        store_sealed(
            session,
            [
                (e, signed, t, True)
                for (e, signed, _), t in zip(self.taken, tracking_ids, strict=True)
            ],
            now,
        )
        add_events(
            session,
            [
                (t, now, status, self.ctx.node_id, f"referred to {peer}", i)
                for t, (_, _, status), i in zip(tracking_ids, self.taken, indexes, strict=True)
            ],
        )
        self.taken = []


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
    now = ctx.clock.now()
    views: list[ComplaintView] = []
    total = 0
    with ctx.db.read() as session:
        if count and not overdue_only:
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        if limit and not overdue_only:
            stmt = stmt.limit(limit)
        # Streamed in pages: --overdue reads until it has `limit` (or, counting, to the end).
        for r in session.scalars(stmt.execution_options(yield_per=500)):
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
