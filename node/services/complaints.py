"""Complaint use cases on this node: submit (intake), refer (disposition), and the views."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import complaint_pb2, envelope_pb2, ledger_pb2
from node.complaints import CHANNELS, CLASSIFICATIONS, ComplaintDraft, seal_content
from node.errors import NotFoundError, PermissionDeniedError, StateError, ValidationError
from node.ids import TrackingId, format_tracking_id, parse_node_id, parse_tracking_id
from node.services import checkpoints
from node.services._ledger import record
from node.services._outbox import enqueue
from node.services.context import NodeContext
from node.store import queries
from node.store.models import Complaint, ComplaintContentRow, ComplaintEvent, Link

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

# Statuses from which the holder may dispose a complaint to a child.
REFERRABLE = frozenset({"submitted", "verified", "accepted", "returned"})


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


def _event(
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
            note=note,
            ledger_index=ledger_index,
        ),
    )


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
    sealed = seal_content(draft.content())
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
    index = record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(
            complaint_registered=ledger_pb2.ComplaintRegistered(complaint=summary_of(row))
        ),
    )
    _event(session, ctx, tracking_id, "submitted", f"received via {draft.channel}", index)
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
            f"{tracking_id} is held by {row.holder}, not by this node; only the holder "
            "may dispose it"
        )
    if row.status not in REFERRABLE:
        raise StateError(
            f"{tracking_id} is {row.status}; it can be referred only when "
            f"{', '.join(sorted(REFERRABLE))}"
        )
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
    row.status = "referred"
    row.updated_at = ctx.clock.now()
    _event(session, ctx, tracking_id, "referred", f"referred to {link.peer_id}", index)
    return outbox.message_id


@dataclass(frozen=True)
class EventView:
    at: dt.datetime
    status: str
    actor: str
    note: str
    ledger_index: int | None


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


def _view(
    row: Complaint,
    history: tuple[EventView, ...] = (),
    content: ComplaintContentRow | None = None,
    *,
    with_content: bool = False,
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
        return _view(row, history, content, with_content=with_content)


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
        _event(session, ctx, tracking_id, row.status, f"content erased: {reason}", index)
        return index


def list_complaints(
    ctx: NodeContext, *, status: str | None = None, holder: str | None = None, limit: int = 200
) -> list[ComplaintView]:
    with ctx.db.read() as session:
        return [
            _view(r)
            for r in queries.list_complaints(session, status=status, holder=holder, limit=limit)
        ]
