"""The scheduler's pass in slices (node.services.scheduler, invariants 5 and 6), on both
databases: whatever the slice size, a pass does what the deadline rules say, each action
once in the ledger and sent up where the complaint came from a parent; it resumes after its
cursor; a complaint only overdue costs no write; one changed since it was read, or whose
parent is no longer linked, is left alone; and a crash inside a slice leaves each of its
complaints due again, with no ledger entry for it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.clock import FixedClock
from node.crypto.card import NodeCard
from node.crypto.signing import SigningKey
from node.crypto.tls import generate_tls_identity
from node.faults import EXIT_STATUS, FAULT_ENV
from node.ids import parse_node_id
from node.services import complaints, lifecycle, links, scheduler, state_check
from node.services.context import NodeContext
from node.store import queries
from node.store.models import Complaint
from node.workflow.calendar import local_date
from node.workflow.deadlines import auto_close_is_due
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.support.nodes import TestNode, carry, link, snapshot

START = dt.datetime(2026, 5, 4, 2, 0, tzinfo=dt.UTC)  # Monday 09:00 WIB
NOW = START + dt.timedelta(days=40)  # when the passes run


@dataclasses.dataclass
class Tree:
    national: TestNode
    province: TestNode

    @property
    def ctx(self) -> NodeContext:
        return self.province.ctx()


@pytest.fixture
def tree(nodes: NodeFactory) -> Tree:
    """The province, linked to its parent (the national node) and to one child by card."""
    national = nodes("id", "Nasional")
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    link(national, province)
    child = parse_node_id("id-64-02")
    tls = generate_tls_identity(child, START)
    card = NodeCard(child, "Kabupaten", SigningKey.generate().public, tls.cert_pem)
    links.add_link(province.ctx(), card, "child")
    return Tree(national, province)


def _escalating(ctx: NodeContext, on: bool = True) -> None:
    workflow = dataclasses.replace(ctx.config.workflow, auto_escalate=on)
    ctx.config = dataclasses.replace(ctx.config, workflow=workflow)


# How a complaint reaches the stage named, on the province: entered there ("here") or
# referred by the national node ("parent").
HERE: dict[str, list[Callable[[NodeContext, str], object]]] = {
    "submitted": [],
    "verified": [lambda c, t: lifecycle.verify(c, t)],
    "in_progress": [
        lambda c, t: lifecycle.verify(c, t),
        lambda c, t: lifecycle.follow_up(c, t, "x"),
    ],
    "resolved": [
        lambda c, t: lifecycle.verify(c, t),
        lambda c, t: lifecycle.follow_up(c, t, "ditinjau"),
        lambda c, t: lifecycle.resolve(c, t, "selesai"),
    ],
    "referred": [lambda c, t: complaints.refer(c, t, "id-64-02")],
}
FROM_PARENT: dict[str, list[Callable[[NodeContext, str], object]]] = {
    "accepted": [],
    "in_progress": [lambda c, t: lifecycle.follow_up(c, t, "ditinjau")],
    "resolved": [
        lambda c, t: lifecycle.follow_up(c, t, "ditinjau"),
        lambda c, t: lifecycle.resolve(c, t, "selesai"),
    ],
}


def _make(tree: Tree, origin: str, stage: str, at: dt.datetime, n: int) -> str:
    """One complaint on the province at `stage`, every step of it taken at `at`."""
    ctx = tree.ctx
    ctx.clock = FixedClock(at)
    if origin == "here":
        tracking_id = complaints.submit(ctx, draft(n))
        steps = HERE[stage]
    else:
        national = tree.national.ctx()
        national.clock = FixedClock(at)
        tracking_id = complaints.submit(national, draft(n))
        complaints.refer(national, tracking_id, "id-64")
        carry(tree.national, tree.province)
        steps = FROM_PARENT[stage]
    for step in steps:
        step(ctx, tracking_id)
    return tracking_id


def _rows(ctx: NodeContext, tracking_ids: list[str]) -> dict[str, Complaint]:
    with ctx.db.read() as session:
        return queries.complaints_for_update(session, tracking_ids)  # plain read here


def _entries_since(ctx: NodeContext, size: int) -> list[ledger_pb2.LedgerEntry]:
    with ctx.db.read() as session:
        return [
            ledger_pb2.LedgerEntry.FromString(row.entry)
            for row in queries.iter_ledger(session)
            if row.idx >= size
        ]


def _ledger_size(ctx: NodeContext) -> int:
    with ctx.db.read() as session:
        return queries.ledger_size(session)


STAGES = [("here", s) for s in HERE] + [("parent", s) for s in FROM_PARENT]
specs = st.lists(
    st.tuples(st.sampled_from(STAGES), st.integers(min_value=0, max_value=30)),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    specs=specs,
    slice_size=st.sampled_from([1, 2, 3, 200]),
    auto_escalate=st.booleans(),
)
def test_a_sliced_pass_does_what_the_rules_say(
    tree: Tree, specs: list[tuple[tuple[str, str], int]], slice_size: int, auto_escalate: bool
) -> None:
    """Complaints of every scheduled status, here or from the parent, of any age: a pass in
    slices of any size (200: all in one) closes, escalates and reports exactly those the rules
    name at its time, records each action once (sent up where it came from the parent),
    and leaves the table equal to the ledger's replay."""
    ctx = tree.ctx
    made = [
        _make(tree, origin, stage, NOW - dt.timedelta(days=age), n)
        for n, ((origin, stage), age) in enumerate(specs)
    ]
    _escalating(ctx, auto_escalate)
    ctx.clock = FixedClock(NOW)
    before = _rows(ctx, made)
    tz, cal, policy = ctx.config.timezone, scheduler.calendar_for(ctx.config), ctx.config.deadlines
    to_close = {
        t
        for t, row in before.items()
        if row.status == "resolved"
        and row.resolved_at is not None
        and auto_close_is_due(local_date(row.resolved_at, tz), local_date(NOW, tz), cal, policy)
    }
    late = {
        t
        for t, row in before.items()
        if row.status != "resolved" and scheduler.missed(ctx.config, row, NOW)
    }
    to_escalate = {t for t in late if auto_escalate and before[t].status != "referred"}
    size = _ledger_size(ctx)

    done = scheduler.run_due(ctx, NOW, slice_size=slice_size)

    mine = set(made)
    assert set(done.closed) & mine == to_close
    assert set(done.escalated) & mine == to_escalate
    assert set(done.overdue) & mine == late
    assert [t for t, _ in done.failed] == []
    after = _rows(ctx, made)
    for t, row in before.items():
        if t in to_close:
            expected = ("closed", row.holder)
        elif t in to_escalate:
            expected = ("escalated", row.received_from or row.holder)
        else:
            expected = (row.status, row.holder)
        assert (after[t].status, after[t].holder) == expected, t
    entries = _entries_since(ctx, size)
    changes = Counter(
        (e.status_changed.tracking_id, e.status_changed.action, e.status_changed.role)
        for e in entries
        if e.WhichOneof("kind") == "status_changed"
    )
    acted = {(t, "close", "system"): 1 for t in to_close} | {
        (t, "escalate", "system"): 1 for t in to_escalate
    }
    assert {k: v for k, v in changes.items() if k[0] in mine} == acted
    sent_up = Counter(
        envelope_pb2.Envelope.FromString(e.status_update_sent.envelope.body).status_update.status
        for e in entries
        if e.WhichOneof("kind") == "status_update_sent"
        and envelope_pb2.Envelope.FromString(
            e.status_update_sent.envelope.body
        ).status_update.tracking_id
        in mine
    )
    expected_up = Counter(
        "closed" if t in to_close else "escalated"
        for t in to_close | to_escalate
        if before[t].received_from is not None
    )
    assert sent_up == expected_up
    assert state_check.check_state(ctx, record=False).differences == ()
    carry(tree.province, tree.national)  # every update sent up is taken by the parent


def test_a_pass_resumes_after_its_cursor_and_rechecks_what_changed(tree: Tree) -> None:
    """Slices of 3, in tracking-id order, each after the last id read; a complaint verified
    between a slice's read and its write is left alone, and one verified between two slices
    is not read as due."""
    ctx = tree.ctx
    made = sorted(_make(tree, "here", "submitted", START, n) for n in range(8))
    _escalating(ctx)
    run = scheduler.DuePass(ctx, NOW, slice_size=3)
    first = run.next_slice()
    assert first == [(t, "submitted") for t in made[:3]]
    assert (run.after, run.finished) == (made[2], False)
    ctx.clock = FixedClock(NOW)
    lifecycle.verify(ctx, made[0])  # after the read, before the write
    assert run.act(first).escalated == tuple(made[1:3])
    lifecycle.verify(ctx, made[4])  # between two slices
    while not run.finished:
        due = run.next_slice()
        if due:
            run.act(due)
    assert run.slices == 3
    assert run.summary().escalated == (*made[1:4], *made[5:])
    assert {t: row.status for t, row in _rows(ctx, made).items()} == {
        t: "verified" if t in (made[0], made[4]) else "escalated" for t in made
    }


def test_only_overdue_complaints_cost_no_write(tree: Tree) -> None:
    """Without auto_escalate, a pass over overdue complaints (none resolved: closing is
    always done) reports them all and writes nothing: no slice, no table changed."""
    stages = [(origin, stage) for origin, stage in STAGES if stage != "resolved"]
    made = [_make(tree, origin, stage, START, n) for n, (origin, stage) in enumerate(stages)]
    ctx = tree.ctx
    _escalating(ctx, False)
    before = snapshot(tree.province)
    run = scheduler.DuePass(ctx, NOW, slice_size=2)
    while not run.finished:
        assert run.next_slice() == []
    assert run.slices == 0
    assert sorted(run.summary().overdue) == sorted(made)
    assert snapshot(tree.province) == before


def test_a_complaint_whose_parent_is_unlinked_fails_alone(tree: Tree) -> None:
    """Escalating a complaint that came from a parent no longer linked fails for that
    complaint, saying so; the rest of its slice is escalated."""
    ctx = tree.ctx
    from_parent = _make(tree, "parent", "accepted", START, 0)
    here = [_make(tree, "here", "submitted", START, n) for n in (1, 2)]
    ctx.clock = FixedClock(START + dt.timedelta(days=1))
    links.revoke(ctx, "id", "perjanjian berakhir")
    _escalating(ctx)
    done = scheduler.run_due(ctx, NOW)
    assert sorted(done.escalated) == sorted(here)
    assert [t for t, _ in done.failed] == [from_parent]
    assert "no longer linked as this node's parent" in done.failed[0][1]
    assert _rows(ctx, [from_parent])[from_parent].status == "accepted"
    assert state_check.check_state(ctx, record=False).differences == ()


def test_a_crash_inside_a_slice_leaves_its_complaints_due(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`complaint tick` killed inside its second slice (fault point scheduler_slice): the
    first slice is escalated and in the ledger, the second is neither, and the next tick
    escalates every complaint left, each once."""
    province, ctx = tree.province, tree.ctx
    total = scheduler.SLICE_COMPLAINTS * 2 + 50
    ctx.clock = FixedClock(START)
    made = complaints.submit_many(ctx, [draft(n) for n in range(total)])
    text = province.config.read_text()
    province.config.write_text(text.replace("auto_escalate: false", "auto_escalate: true", 1))
    size = _ledger_size(ctx)

    monkeypatch.setenv(FAULT_ENV, "scheduler_slice:2")
    crashed = province.cli("complaint", "tick", check=False, in_process=False)
    assert crashed.returncode == EXIT_STATUS, crashed.stderr
    first = set(sorted(made)[: scheduler.SLICE_COMPLAINTS])
    statuses = {t: row.status for t, row in _rows(ctx, list(made)).items()}
    assert {t for t, s in statuses.items() if s == "escalated"} == first
    assert {t for t, s in statuses.items() if s == "submitted"} == set(made) - first
    escalations = [e.status_changed.tracking_id for e in _entries_since(ctx, size)]
    assert sorted(escalations) == sorted(first)

    monkeypatch.delenv(FAULT_ENV)
    province.cli("complaint", "tick")
    with ctx.db.read() as session:
        left = session.scalars(select(Complaint.tracking_id).where(Complaint.status != "escalated"))
        assert list(left) == []
    escalations = [e.status_changed.tracking_id for e in _entries_since(ctx, size)]
    assert Counter(escalations) == Counter(made)
    assert state_check.check_state(ctx, record=False).differences == ()
