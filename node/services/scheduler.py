"""The complaint scheduler: deadlines that passed, escalation, auto-close.

Invariants:

1. Time comes only from ``ctx.clock``; dates are the node's local dates (node.timezone),
   working days from the calendar node.yaml configures (``workflow:``) and the limits from
   ``deadlines:`` (node.workflow.deadlines). So a test moves the clock, never sleeps.
2. The scheduler acts only on complaints this node holds, as role ``system``: each action
   goes through node.workflow.lifecycle.apply, is one StatusChanged entry in the ledger in
   the transaction that changes the row, and travels up to the parent the complaint came
   from (a StatusUpdate, recorded as StatusUpdateSent), exactly as
   node.services._transitions.transition does it one at a time.
3. ``resolved`` complaints are closed once ``deadlines.auto_close`` working days passed with
   no reply. Overdue ones are escalated only when ``workflow.auto_escalate`` is true; a
   ``referred`` complaint (waiting for the child's receipt) is reported, never escalated
   here: its deadline belongs to the child that has not acknowledged it yet.
4. By hand, ``escalate`` is allowed to the holder's operator only for a complaint that
   missed a deadline, with a reason: escalation is the answer to a missed deadline.
5. A pass runs in slices, so that it never holds the node's one writer for long (issue
   18; docs/decisions/0034-scheduler-in-slices.md). A read (on a reader thread in
   `serve`) walks the open complaints in tracking-id order from a keyset cursor, at most
   SCAN_ROWS of them, and picks at most SLICE_COMPLAINTS with an action due; one write
   transaction then locks those, checks each again and acts on all of them together
   (`act_in`, writing through node.services._slices: one ledger append, one UPDATE per
   action, one insert per table). The writer is free between slices, and the pass
   resumes after the cursor. A complaint only overdue (nothing to do but report it) costs
   no write at all.
6. A slice commits whole or not at all: a crash or an error in it leaves each of its
   complaints as it was, due again at the next pass, and the ledger holds entries only
   for slices that committed. A complaint that cannot be acted on (its parent is no
   longer linked) is reported in ``failed`` and left out of its slice; any other error
   of ours fails its slice (reported for each of its complaints), not the pass. Without
   the database or the leader lease (PeerUnavailableError) the pass stops there.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields

from sqlalchemy.orm import Session

from node.config import NodeConfig
from node.errors import (
    NodeError,
    NotFoundError,
    PeerUnavailableError,
    StateError,
    ValidationError,
)
from node.faults import fault_point
from node.ids import parse_tracking_id
from node.services._slices import Act, store_acts
from node.services._transitions import local_role, parent_link, transition
from node.services.context import NodeContext
from node.store import queries, scheduling
from node.store.models import Complaint, Link
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
    "SCAN_ROWS",
    "SLICE_COMPLAINTS",
    "DuePass",
    "DueSummary",
    "act_in",
    "calendar_for",
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


SLICE_COMPLAINTS = 200
"""At most this many complaints are acted on in one write transaction of a pass (a slice).
Over 100,000 escalations on the shared test machine a slice took 0.3 s (SQLite) to 0.5 s
(PostgreSQL) of pass time, reads and link batches between slices included, and a link's
round trip p99 during the pass was about twice its quiet p99 (decision 0034)."""

SCAN_ROWS = 2_000
"""At most this many open complaints are looked at in one read of a pass."""


def _too_young(policy: DeadlinePolicy) -> dt.timedelta:
    """No clock starts before a complaint's receipt here, and the shortest deadline is
    `d` working days, so nothing received less than d - 1 days ago can be due (the day
    less is for local dates, which may be a day after the UTC one)."""
    return dt.timedelta(days=max(0, min(getattr(policy, f.name) for f in fields(policy)) - 1))


def _closes_now(ctx: NodeContext, row: Complaint, now: dt.datetime) -> bool:
    tz = ctx.config.timezone
    return row.resolved_at is not None and auto_close_is_due(
        local_date(row.resolved_at, tz),
        local_date(now, tz),
        calendar_for(ctx.config),
        ctx.config.deadlines,
    )


def _escalates(ctx: NodeContext, status: str) -> bool:
    """Whether the scheduler escalates an overdue complaint in `status` (invariant 3)."""
    return ctx.config.workflow.auto_escalate and status != Status.referred.value


class DuePass:
    """One pass of the scheduler at `now`, in slices (invariants 5 and 6):

        run = DuePass(ctx, now)
        while not run.finished:
            due = run.next_slice()      # a read transaction
            if due:
                run.act(due)            # one write transaction
        run.summary()

    `serve` runs `next_slice` on a reader thread and `act` on the writer thread, so link
    batches queued for the writer go in between two slices. `slice_size`: at most this
    many complaints per slice (None: SLICE_COMPLAINTS as it is when the pass begins).
    `keep_ids` False: the summary keeps counts only (`serve`'s, whatever the backlog)."""

    def __init__(
        self,
        ctx: NodeContext,
        now: dt.datetime,
        *,
        slice_size: int | None = None,
        keep_ids: bool = True,
    ) -> None:
        size = SLICE_COMPLAINTS if slice_size is None else slice_size
        if size < 1:
            raise ValueError(f"a slice acts on at least one complaint, not {size}")
        self.ctx, self.now, self.slice_size, self.keep_ids = ctx, now, size, keep_ids
        self.after: str | None = None  # the keyset cursor: the last tracking id read
        self.finished = False
        self.slices = 0
        self.counts = {"closed": 0, "escalated": 0, "overdue": 0}
        self._ids: dict[str, list[str]] = {"closed": [], "escalated": [], "overdue": []}
        self._failed: list[tuple[str, str]] = []

    def next_slice(self) -> list[tuple[str, str]]:
        """(tracking id, status) of at most slice_size complaints after the cursor with an
        action due, read in pages of slice_size until that many are due or SCAN_ROWS were
        read. Those only overdue are counted here. Sets `finished` when the read reached
        the last one."""
        ctx, now, size = self.ctx, self.now, self.slice_size
        statuses = [s.value for s in _SCHEDULED]
        received_before = now - _too_young(ctx.config.deadlines)
        due: list[tuple[str, str]] = []
        overdue: list[str] = []
        page = min(size, SCAN_ROWS)
        scanned = 0
        with ctx.db.read() as session:
            while not self.finished and len(due) < size and scanned < SCAN_ROWS:
                rows = scheduling.due_candidates(
                    session, ctx.node_id, statuses, received_before, self.after, page
                )
                self.finished = len(rows) < page
                for row in rows:
                    if len(due) >= size:
                        self.finished = False  # the rest of the page is read again
                        break
                    self.after, scanned = row.tracking_id, scanned + 1
                    if row.status == Status.resolved.value:
                        if _closes_now(ctx, row, now):
                            due.append((row.tracking_id, row.status))
                    elif missed(ctx.config, row, now):
                        if _escalates(ctx, row.status):
                            due.append((row.tracking_id, row.status))
                        else:
                            overdue.append(row.tracking_id)
        self._add(DueSummary(overdue=tuple(overdue)))
        return due

    def act(self, due: Sequence[tuple[str, str]]) -> DueSummary:
        """Act on `due` (from next_slice) in one write transaction; what it did."""
        try:
            with self.ctx.db.write() as session:
                done = act_in(session, self.ctx, due, self.now)
                fault_point("scheduler_slice")
        except PeerUnavailableError:
            raise  # no database, or not the leader: the pass stops (serve's writer retries)
        except NodeError as e:
            done = DueSummary(failed=tuple((tracking_id, str(e)) for tracking_id, _ in due))
        self.slices += 1
        self._add(done)
        return done

    def _add(self, done: DueSummary) -> None:
        for name in self.counts:
            ids: tuple[str, ...] = getattr(done, name)
            self.counts[name] += len(ids)
            if self.keep_ids:
                self._ids[name].extend(ids)
        self._failed.extend(done.failed)

    def summary(self) -> DueSummary:
        """What the pass did so far (ids only with keep_ids; `counts` always)."""
        ids = self._ids
        return DueSummary(
            tuple(ids["closed"]),
            tuple(ids["escalated"]),
            tuple(ids["overdue"]),
            tuple(self._failed),
        )


def run_due(
    ctx: NodeContext, now: dt.datetime | None = None, *, slice_size: int | None = None
) -> DueSummary:
    """Close and (when configured) escalate what is due now, one slice after another in
    this thread; see the module docstring and DuePass (`slice_size` too)."""
    run = DuePass(ctx, now or ctx.clock.now(), slice_size=slice_size)
    while not run.finished:
        due = run.next_slice()
        if due:
            run.act(due)
    return run.summary()


def act_in(
    session: Session, ctx: NodeContext, due: Sequence[tuple[str, str]], now: dt.datetime
) -> DueSummary:
    """Lock the complaints `due` names, check each again at `now` and act on those still
    due, in the caller's transaction (invariants 2, 5 and 6). A complaint changed since it
    was listed (another holder, another status) is left alone."""
    me = ctx.node_id
    rows = queries.complaints_for_update(session, [tracking_id for tracking_id, _ in due])
    acts: list[Act] = []
    late: list[str] = []
    failed: list[tuple[str, str]] = []
    parents: dict[str, Link | None] = {}  # by peer id; None: no longer linked as parent
    for tracking_id, status in due:
        row = rows.get(tracking_id)
        if row is None or row.holder != me or row.status != status:
            continue  # changed since it was listed
        if status == Status.resolved.value:
            if not _closes_now(ctx, row, now):
                continue
            action, note = Action.close, None
        else:
            found = missed(ctx.config, row, now)
            if not found:
                continue
            late.append(tracking_id)
            if not _escalates(ctx, status):
                continue
            action, note = Action.escalate, f"missed: {_describe(found)}"
        peer = row.received_from
        if peer is not None:
            if peer not in parents:
                parents[peer] = _linked_parent(session, row)
            if parents[peer] is None:
                failed.append((tracking_id, _unlinked(session, row)))
                continue
        acts.append(Act(row, action, lifecycle.apply(Status(status), action, Role.system), note))
    store_acts(session, ctx, acts, parents)
    return DueSummary(
        closed=tuple(a.row.tracking_id for a in acts if a.action is Action.close),
        escalated=tuple(a.row.tracking_id for a in acts if a.action is Action.escalate),
        overdue=tuple(late),
        failed=tuple(failed),
    )


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


def _linked_parent(session: Session, row: Complaint) -> Link | None:
    """The link to the parent `row` came from, locked; None if it is no longer linked."""
    try:
        return parent_link(session, row)
    except StateError:
        return None


def _unlinked(session: Session, row: Complaint) -> str:
    """Why `row`'s change cannot travel up: parent_link's message, naming `row`."""
    try:
        parent_link(session, row)
    except StateError as e:
        return str(e)
    raise AssertionError(f"{row.received_from} is linked as {row.tracking_id}'s parent")
