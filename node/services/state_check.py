"""State is the ledger's replay (DESIGN.md, "Operating invariants"): compare the working
``complaints`` table with what replaying this node's own ledger gives.

Invariants:

1. The ledger is the reference: node.workflow.replay turns the node's entries into the
   columns each complaint must have; every column that differs is reported with the
   tracking id, the table's value and the ledger's, never just counted. A complaint the
   ledger knows and the table lacks (or the reverse) is a difference too, and so is an
   entry the replay cannot apply (``ReplayAnomaly``).
2. Memory is bounded whatever the size: the ledger and the table are streamed, and a
   ledger with more than ``per_pass`` complaints is replayed in several passes, each
   keeping only the complaints of one hash partition of the tracking ids.
3. Each pass reads the ledger and the table in one read transaction (one snapshot), so a
   running node's writes never show as differences.
4. Each check's result is recorded (node.store.state_queries, table ``state_checks``)
   with the time its first snapshot was taken (``read_at``), and the latest check is the
   one that read the newest state, not the one recorded last: a long full check that
   began before a shorter one and ends after it never hides the newer answer. The reports
   warn while the latest found differences (``last_check``).
5. ``check_recent`` is the bounded check serve runs at start: the ``RECENT`` complaints
   changed last (by the table's updated_at and by the ledger's last entries), replayed
   from where their histories begin. It refuses nothing; the caller logs what it found.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from node.services.context import NodeContext
from node.store import queries, state_queries
from node.workflow.replay import (
    CLOCK_TOLERANCE,
    COLUMNS,
    TIME_COLUMNS,
    ComplaintState,
    LedgerReplay,
    ReplayAnomaly,
    tracking_id_of,
)

__all__ = [
    "PER_PASS",
    "RECENT",
    "SUMMARY_LIMIT",
    "LastCheck",
    "StateDifference",
    "StateReport",
    "check_recent",
    "check_state",
    "compare",
    "last_check",
    "record_result",
]

PER_PASS = 200_000  # complaints kept in memory by one replay pass (a few hundred bytes each)
RECENT = 1000  # complaints serve checks at start
SUMMARY_LIMIT = 20  # differences named in the recorded result

assert tuple(state_queries.STATE_COLUMNS) == COLUMNS, "store and replay name other columns"


@dataclass(frozen=True, slots=True)
class StateDifference:
    """One column of one complaint where the table says other than the ledger.
    ``column`` is ``row`` when the table lacks the complaint or has one the ledger does
    not, and ``ledger`` for an entry the replay could not apply (at ``index``)."""

    tracking_id: str
    column: str
    table: str | None
    ledger: str | None
    index: int | None = None

    def describe(self) -> str:
        if self.column == "ledger":
            return f"{self.tracking_id or '-'}: entry {self.index}: {self.ledger}"
        return (
            f"{self.tracking_id}: {self.column}: table says {_shown(self.table)}, "
            f"ledger says {_shown(self.ledger)}"
        )


@dataclass(frozen=True, slots=True)
class StateReport:
    scope: str  # "full" (audit state) or "recent" (serve's start)
    complaints: int  # complaints compared
    entries: int  # ledger entries read
    passes: int
    differences: tuple[StateDifference, ...]
    read_at: dt.datetime  # when the check's first snapshot was taken (invariant 4)

    @property
    def ok(self) -> bool:
        return not self.differences


@dataclass(frozen=True, slots=True)
class LastCheck:
    """The latest recorded check, for the reports and the dashboard."""

    checked_at: dt.datetime
    scope: str
    complaints: int
    differences: int
    summary: str

    @property
    def ok(self) -> bool:
        return self.differences == 0

    def warning(self) -> str | None:
        """The line the reports show while the latest check found differences."""
        if self.ok:
            return None
        return (
            f"the working tables differ from the ledger in {self.differences} place(s) "
            f"(state check of {self.checked_at:%Y-%m-%d %H:%M} UTC, {self.scope}); the "
            "figures may be wrong. Run `lapor-node audit state` to see every difference"
        )


def _shown(value: str | None) -> str:
    return "nothing" if value is None else value


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return str(value)


def _same(column: str, table: object, ledger: object) -> bool:
    if (
        column in TIME_COLUMNS
        and isinstance(table, dt.datetime)
        and isinstance(ledger, dt.datetime)
    ):
        return abs(table - ledger) <= CLOCK_TOLERANCE
    return table == ledger


def compare(
    tracking_id: str, row: dict[str, object], state: ComplaintState
) -> list[StateDifference]:
    """Every column of `row` (the table's) that differs from the replayed `state`."""
    found = []
    for column in COLUMNS:
        table, ledger = row[column], getattr(state, column)
        if not _same(column, table, ledger):
            found.append(StateDifference(tracking_id, column, _text(table), _text(ledger)))
    return found


def _anomaly(a: ReplayAnomaly) -> StateDifference:
    return StateDifference(a.tracking_id, "ledger", None, a.detail, a.index)


def _partition(passes: int, n: int) -> Callable[[str], bool]:
    return lambda tracking_id: zlib.crc32(tracking_id.encode()) % passes == n


def _one_pass(
    session: Session,
    ctx: NodeContext,
    wanted: Callable[[str], bool] | None,
    tracking_ids: Collection[str] | None,
    start: int,
    progress: Callable[[int], None] | None,
) -> tuple[int, int, list[StateDifference]]:
    """Replay [start, end) for the wanted complaints and compare them with the table;
    (complaints compared, entries read, differences)."""
    replay = LedgerReplay(ctx.node_id, wanted)
    for index, data in state_queries.ledger_entries(session, start):
        replay.feed(index, data)
        if progress is not None and replay.applied % 1000 == 0:
            progress(replay.applied)
    found = [_anomaly(a) for a in replay.anomalies]
    compared = 0
    for tracking_id, columns in state_queries.complaint_states(session, tracking_ids):
        if wanted is not None and not wanted(tracking_id):
            continue
        compared += 1
        state = replay.pop(tracking_id)
        if state is None:
            found.append(StateDifference(tracking_id, "row", "present", None))
        else:
            found.extend(compare(tracking_id, columns, state))
    for state in replay.remaining():  # complaints the ledger has and the table lacks
        compared += 1
        found.append(StateDifference(state.tracking_id, "row", None, "present"))
    return compared, replay.applied, found


def check_state(
    ctx: NodeContext,
    progress: Callable[[int], None] | None = None,
    *,
    per_pass: int = PER_PASS,
    record: bool = True,
) -> StateReport:
    """Replay this node's whole ledger and compare every complaint (invariants 1-3);
    record the result unless `record` is false."""
    read_at = ctx.clock.now()
    with ctx.db.read() as session:
        total = state_queries.complaint_count(session)
    passes = max(1, math.ceil(total / per_pass))
    compared = entries = 0
    found: list[StateDifference] = []
    for n in range(passes):
        wanted = _partition(passes, n) if passes > 1 else None
        with ctx.db.read() as session:
            c, e, f = _one_pass(session, ctx, wanted, None, 0, progress)
        compared, entries = compared + c, entries + e
        found.extend(
            d for d in f if d.column != "ledger" or wanted is None or wanted(d.tracking_id)
        )
    report = StateReport("full", compared, entries, passes, tuple(_ordered(found)), read_at)
    if record:
        record_result(ctx, report)
    return report


def check_recent(ctx: NodeContext, limit: int = RECENT, *, record: bool = True) -> StateReport:
    """Invariant 5: the complaints changed last, replayed from where their histories begin
    (the events' hint; a later hint shows as an anomaly, never as a pass). Recorded unless
    `record` is false."""
    read_at = ctx.clock.now()
    with ctx.db.read() as session:
        chosen = set(state_queries.recently_changed(session, limit))
        size = queries.ledger_size(session)
        for _, data in state_queries.ledger_entries(session, max(0, size - limit)):
            tracking_id = tracking_id_of(data)
            if tracking_id:
                chosen.add(tracking_id)
        start = state_queries.first_event_index(session, chosen)
        compared, entries, found = _one_pass(
            session, ctx, chosen.__contains__, chosen, start or 0, None
        )
    report = StateReport("recent", compared, entries, 1, tuple(_ordered(found)), read_at)
    if record:
        record_result(ctx, report)
    return report


def _ordered(found: Iterable[StateDifference]) -> list[StateDifference]:
    return sorted(found, key=lambda d: (d.tracking_id, d.index or 0, d.column))


def record_result(ctx: NodeContext, report: StateReport) -> None:
    """Keep `report`'s result as the latest check (invariant 4)."""
    with ctx.db.write() as session:
        record_result_in(session, ctx, report)


def record_result_in(session: Session, ctx: NodeContext, report: StateReport) -> None:
    """`record_result` in the caller's transaction. The check is stamped with the time
    it read the state (``report.read_at``), not with the time it is recorded, so
    ``last_check`` ranks it by what it saw (invariant 4)."""
    summary = "; ".join(d.describe() for d in report.differences[:SUMMARY_LIMIT])
    state_queries.record_state_check(
        session,
        report.read_at,
        report.scope,
        report.complaints,
        len(report.differences),
        summary,
    )


def last_check(ctx: NodeContext) -> LastCheck | None:
    """The latest recorded state check, or None if none ran yet. The dashboard calls this
    (as the reports do) to show ``LastCheck.warning()``."""
    with ctx.db.read() as session:
        row = state_queries.last_state_check(session)
        if row is None:
            return None
        return LastCheck(row.checked_at, row.scope, row.complaints, row.differences, row.summary)
