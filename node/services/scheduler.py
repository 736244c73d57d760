"""The complaint scheduler: deadlines that passed, escalation, auto-close.

Invariants:

1. Time comes only from ``ctx.clock``; dates are the node's local dates (node.timezone),
   working days from the calendar node.yaml configures (``workflow:``) and the limits from
   ``deadlines:`` (node.workflow.deadlines). So a test moves the clock, never sleeps.
2. The scheduler acts only on complaints this node holds, each in its own transaction
   through node.services._transitions.transition (role ``system``): one complaint that cannot
   be changed does not stop the others, and each change is in the ledger and travels up.
   What is due is found first in one streamed read (skipping in SQL what is too young to
   be due), so a node holding many complaints opens write transactions only for those.
3. ``resolved`` complaints are closed once ``deadlines.auto_close`` working days passed with
   no reply. Overdue ones are escalated only when ``workflow.auto_escalate`` is true; a
   ``referred`` complaint (waiting for the child's receipt) is reported, never escalated
   here: its deadline belongs to the child that has not acknowledged it yet.
4. By hand, ``escalate`` is allowed to the holder's operator only for a complaint that
   missed a deadline, with a reason: escalation is the answer to a missed deadline.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields

from sqlalchemy.orm import Session

from node.config import NodeConfig
from node.errors import NodeError, NotFoundError, StateError, ValidationError
from node.ids import parse_tracking_id
from node.services._transitions import local_role, transition
from node.services.context import NodeContext
from node.store import listing, queries
from node.store.models import Complaint
from node.workflow import lifecycle
from node.workflow.calendar import WorkingCalendar, local_date
from node.workflow.deadlines import (
    Classification,
    DeadlinePolicy,
    MissedDeadline,
    auto_close_is_due,
    overdue,
)
from node.workflow.holidays import load_holidays
from node.workflow.lifecycle import Action, Role, Status

__all__ = [
    "DueSummary",
    "calendar_for",
    "due_now",
    "escalate",
    "escalate_in",
    "missed",
    "run_due",
]

_INSPECTABLE = frozenset({Classification.pengaduan.value, Classification.whistleblowing.value})
_SCHEDULED = (
    Status.submitted,
    Status.verified,
    Status.referred,
    Status.accepted,
    Status.in_progress,
    Status.resolved,
)


@functools.lru_cache(maxsize=8)
def _calendar(
    collective_leave: bool, extra: tuple[dt.date, ...], removed: tuple[dt.date, ...]
) -> WorkingCalendar:
    return WorkingCalendar(
        load_holidays(include_collective_leave=collective_leave, extra=extra, removed=removed)
    )


def calendar_for(config: NodeConfig) -> WorkingCalendar:
    """The node's working-day calendar: packaged holidays with node.yaml's corrections."""
    w = config.workflow
    return _calendar(w.collective_leave, w.holidays_extra, w.holidays_removed)


def missed(config: NodeConfig, row: Complaint, now: dt.datetime) -> tuple[MissedDeadline, ...]:
    """The deadlines ``row`` has missed at ``now`` (node.workflow.deadlines.overdue).

    The verify clock runs from receipt or from the reporter's reply after a hold; first
    follow-up and resolve from the latest disposition (referral, or the receipt of one on
    the node it was referred to), or from verification when a node handles it itself.
    """
    tz = config.timezone
    received = row.replied_at if row.replied_at is not None else row.received_at
    disposed = row.disposed_at
    if disposed is None and row.received_from is not None and row.verified_at is None:
        disposed = row.received_at
    verified = row.verified_at if row.verified_at is not None else row.received_at
    return overdue(
        Status(row.status),
        received=local_date(received, tz),
        verified=local_date(verified, tz),
        referred=None if disposed is None else local_date(disposed, tz),
        classification=Classification(row.classification),
        needs_inspection=row.needs_inspection and row.classification in _INSPECTABLE,
        today=local_date(now, tz),
        cal=calendar_for(config),
        policy=config.deadlines,
    )


def _describe(found: Sequence[MissedDeadline]) -> str:
    return "; ".join(
        f"{m.deadline.value} was due {m.due.isoformat()} ({m.working_days_late} working days late)"
        for m in found
    )


@dataclass(frozen=True)
class DueSummary:
    """What one run did: complaints closed and escalated, and those overdue (held here)."""

    closed: tuple[str, ...] = ()
    escalated: tuple[str, ...] = ()
    overdue: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()  # (tracking id, why) of actions that failed


def _too_young(policy: DeadlinePolicy) -> dt.timedelta:
    """No clock starts before a complaint's receipt here, and the shortest deadline is
    `d` working days, so nothing received less than d - 1 days ago can be due (the day
    less is for local dates, which may be a day after the UTC one)."""
    return dt.timedelta(days=max(0, min(getattr(policy, f.name) for f in fields(policy)) - 1))


def due_now(ctx: NodeContext, now: dt.datetime) -> list[tuple[str, str]]:
    """(tracking id, status) of the complaints this node holds that have something due at
    `now`: a resolved one to close, or a missed deadline. One read transaction, streamed,
    that skips in SQL those too young to be due; writes happen only for what is due (in
    run_due). `serve` lists them on a reader thread, so that this pass over the open
    complaints does not hold up the writer thread."""
    due: list[tuple[str, str]] = []
    with ctx.db.read() as session:
        rows = listing.iter_due_candidates(
            session,
            ctx.node_id,
            [s.value for s in _SCHEDULED],
            now - _too_young(ctx.config.deadlines),
        )
        for row in rows:
            if (
                _closes_now(ctx, row, now)
                if row.status == Status.resolved.value
                else missed(ctx.config, row, now)
            ):
                due.append((row.tracking_id, row.status))
    return due


def _closes_now(ctx: NodeContext, row: Complaint, now: dt.datetime) -> bool:
    tz = ctx.config.timezone
    return row.resolved_at is not None and auto_close_is_due(
        local_date(row.resolved_at, tz),
        local_date(now, tz),
        calendar_for(ctx.config),
        ctx.config.deadlines,
    )


def run_due(
    ctx: NodeContext,
    listed: list[tuple[str, str]] | None = None,
    now: dt.datetime | None = None,
) -> DueSummary:
    """Close and (when configured) escalate what is due now; see the module docstring.
    `listed`: what due_now(ctx, now) returned, each checked again under its lock here."""
    now = now or ctx.clock.now()
    closed: list[str] = []
    escalated: list[str] = []
    late: list[str] = []
    failed: list[tuple[str, str]] = []
    for tracking_id, status in due_now(ctx, now) if listed is None else listed:
        try:
            with ctx.db.write() as session:
                row = queries.get_complaint(session, tracking_id, lock=True)
                if row is None or row.holder != ctx.node_id or row.status != status:
                    continue  # changed since it was listed
                if status == Status.resolved.value:
                    if _closes_now(ctx, row, now):
                        transition(session, ctx, row, Action.close, Role.system)
                        closed.append(tracking_id)
                    continue
                found = missed(ctx.config, row, now)
                if not found:
                    continue
                late.append(tracking_id)
                if ctx.config.workflow.auto_escalate and status != Status.referred.value:
                    transition(
                        session,
                        ctx,
                        row,
                        Action.escalate,
                        Role.system,
                        note=f"missed: {_describe(found)}",
                    )
                    escalated.append(tracking_id)
        except NodeError as e:
            failed.append((tracking_id, str(e)))
    return DueSummary(tuple(closed), tuple(escalated), tuple(late), tuple(failed))


def escalate(ctx: NodeContext, tracking_id: str, reason: str) -> int:
    """Escalate by hand a complaint this node holds that missed a deadline: it goes to the
    parent it came from (or, where it entered, stays escalated for Ombudsman RI)."""
    with ctx.db.write() as session:
        return escalate_in(session, ctx, tracking_id, reason)


def escalate_in(session: Session, ctx: NodeContext, tracking_id: str, reason: str) -> int:
    """`escalate` in the caller's transaction."""
    parse_tracking_id(tracking_id)
    text = reason.strip()
    if not text:
        raise ValidationError("say why it is escalated (--reason)")
    row = queries.get_complaint(session, tracking_id, lock=True)
    if row is None:
        raise NotFoundError(f"no complaint {tracking_id} on this node")
    role = local_role(row, ctx.node_id, Action.escalate)
    lifecycle.apply(Status(row.status), Action.escalate, role)  # the status allows it
    if row.status == Status.referred.value:
        raise StateError(
            f"{tracking_id} is referred and waits for {row.referred_to}'s receipt; the "
            "deadline is that child's to miss. Escalate it there once it is accepted"
        )
    found = missed(ctx.config, row, ctx.clock.now())
    if not found:
        raise StateError(
            f"{tracking_id} is {row.status} and has missed no deadline; escalation is "
            "for a missed deadline (see `complaint list --overdue`)"
        )
    note = f"{text} (missed: {_describe(found)})"
    return transition(session, ctx, row, Action.escalate, role, note=note)
