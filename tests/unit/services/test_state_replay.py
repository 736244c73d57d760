"""Property: after any history of use cases on a tree of real nodes (a province, a regency
under it, an agency under that), each node's complaints table equals the replay of its
own ledger (node.workflow.replay), column by column, on both databases."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.clock import FixedClock
from node.complaints import ComplaintDraft
from node.errors import NodeError
from node.services import complaints, lifecycle, scheduler, state_check
from node.services.context import NodeContext
from tests.support.nodes import TestNode, hand_over, link

NodeFactory = Callable[[str, str], TestNode]

START = dt.datetime(2026, 5, 4, 2, 0, tzinfo=dt.UTC)  # a Monday
TREE = ("id-64", "id-64-02", "id-64-02-01")


def draft(n: int) -> ComplaintDraft:
    return ComplaintDraft(
        title=f"Jalan rusak {n}",
        description="Berlubang sejak musim hujan.",
        classification="aspirasi" if n % 3 == 0 else "pengaduan",
        category="jalan",
        region_code="64.02",
        channel="web",
        reporter_name="Sari",
        confidential=n % 4 == 1,
    )


# What an operator (or the scheduler, or the links) does, on node `at` (0 province,
# 1 regency, 2 agency) to the complaint made `which` complaints before the last.
Step = tuple[str, int, int, int]  # (action, at, which, days to wait first)

ACTIONS: dict[str, Callable[[NodeContext, str], object]] = {
    "verify": lambda ctx, t: lifecycle.verify(ctx, t),
    "hold": lambda ctx, t: lifecycle.hold(ctx, t, "lengkapi alamat"),
    "archive": lambda ctx, t: lifecycle.archive(ctx, t, "duplicate"),
    "follow_up": lambda ctx, t: lifecycle.follow_up(ctx, t, "ditinjau"),
    "resolve": lambda ctx, t: lifecycle.resolve(ctx, t, "diperbaiki"),
    "return": lambda ctx, t: lifecycle.return_(ctx, t, "bukan wewenang"),
    "escalate": lambda ctx, t: scheduler.escalate(ctx, t, "terlambat"),
}
WEIGHTED = [
    *["submit", "verify", "follow_up", "resolve", "reply", "return"] * 2,
    *["refer"] * 3,
    *["carry"] * 4,
    *["hold", "archive", "escalate", "tick"],
]

steps = st.lists(
    st.tuples(
        st.sampled_from(WEIGHTED),
        st.integers(min_value=0, max_value=2),
        st.integers(min_value=0, max_value=3),
        st.sampled_from([0, 0, 0, 0, 1, 3, 15]),
    ),
    min_size=1,
    max_size=40,
)


@pytest.fixture
def tree(nodes: NodeFactory) -> list[TestNode]:
    made = [nodes(node_id, f"Unit {node_id}") for node_id in TREE]
    link(made[0], made[1])
    link(made[1], made[2])
    clock = FixedClock(START)
    for node in made:
        ctx = node.ctx()
        ctx.clock = clock
        workflow = dataclasses.replace(ctx.config.workflow, auto_escalate=True)
        ctx.config = dataclasses.replace(ctx.config, workflow=workflow)
    return made


def _carry_all(tree: list[TestNode]) -> None:
    """Every link, both ways, until nothing is left to carry (a refusal stays queued)."""
    for _ in range(4):
        moved = 0
        for upper, lower in ((tree[0], tree[1]), (tree[1], tree[2])):
            moved += hand_over(upper, lower).applied
            moved += hand_over(lower, upper).applied
        if not moved:
            return


def _holder(tree: list[TestNode], tracking_id: str) -> TestNode | None:
    """The node whose own row says it holds the complaint (None while one is in transit)."""
    for node in tree:
        try:
            if complaints.show(node.ctx(), tracking_id).holder == node.node_id:
                return node
        except NodeError:
            continue
    return None


def run(tree: list[TestNode], made: list[str], step: Step) -> None:
    name, at, which, days = step
    clock = tree[0].ctx().clock
    assert isinstance(clock, FixedClock)
    clock.advance(dt.timedelta(days=days))
    try:
        if name == "submit":
            made.append(complaints.submit(tree[min(at, 1)].ctx(), draft(len(made))))
        elif name == "carry":
            _carry_all(tree)
        elif name == "tick":
            scheduler.run_due(tree[at].ctx())
        elif made:
            tracking_id = made[-1 - which % len(made)]  # mostly the latest ones
            if name == "reply":  # taken where it entered
                origin = tracking_id.split(".")[0]
                lifecycle.reply(tree[TREE.index(origin)].ctx(), tracking_id, "masih rusak")
                return
            holder = _holder(tree, tracking_id)
            if holder is None:
                return
            level = TREE.index(holder.node_id)
            if name == "refer":
                if level < 2:
                    complaints.refer(holder.ctx(), tracking_id, TREE[level + 1])
            else:
                ACTIONS[name](holder.ctx(), tracking_id)
    except NodeError:
        pass  # refused: changes nothing (test_lifecycle_properties checks that)


def assert_state_is_replay(node: TestNode) -> None:
    ctx = node.ctx()
    report = state_check.check_state(ctx, record=False)
    assert report.ok, [d.describe() for d in report.differences]
    recent = state_check.check_recent(ctx, limit=3)
    assert recent.ok, [d.describe() for d in recent.differences]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=steps)
def test_after_any_history_every_node_s_tables_equal_its_ledger_replay(
    tree: list[TestNode], history: list[Step]
) -> None:
    """Whatever the operators, the scheduler and the links do, in any order, the state
    check over the whole ledger and over the complaints changed last finds nothing."""
    made: list[str] = []
    for step in history:
        run(tree, made, step)
    _carry_all(tree)
    for node in tree:
        assert_state_is_replay(node)


def test_a_long_history_reaches_every_status_and_still_replays(tree: list[TestNode]) -> None:
    """A fixed history through referral, receipt, follow-up, reply, reopening, return,
    re-referral, escalation and auto-close across three levels: the tables equal the
    replay on every node, and each status the history reaches is compared."""
    p, c, g = (n.ctx() for n in tree)
    clock = p.clock
    assert isinstance(clock, FixedClock)
    a = complaints.submit(p, draft(0))
    b = complaints.submit(p, draft(1))
    lifecycle.verify(p, a)
    complaints.refer(p, a, TREE[1])
    complaints.refer(p, b, TREE[1])
    _carry_all(tree)
    complaints.refer(c, a, TREE[2])
    _carry_all(tree)
    lifecycle.follow_up(g, a, "dicek")
    lifecycle.resolve(g, a, "selesai")
    _carry_all(tree)
    lifecycle.reply(p, a, "belum selesai")
    _carry_all(tree)
    lifecycle.return_(g, a, "bukan wewenang")
    lifecycle.follow_up(c, b, "dicek")
    _carry_all(tree)
    complaints.refer(c, a, TREE[2])
    _carry_all(tree)
    lifecycle.follow_up(g, a, "dicek lagi")
    lifecycle.resolve(g, a, "selesai")
    _carry_all(tree)
    clock.advance(dt.timedelta(days=40))
    for ctx in (p, c, g):
        scheduler.run_due(ctx)
    _carry_all(tree)
    assert complaints.show(p, a).status == "closed"
    assert complaints.show(p, a).holder == TREE[2]
    for node in tree:
        assert_state_is_replay(node)
