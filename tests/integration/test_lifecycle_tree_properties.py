"""Property, across the tree (in process, SQLite): whatever operators on any node do, in
any order, with envelopes carried in any order, no envelope is ever refused (a refusal
would block the link for good), and once everything is delivered every node the
complaint passed through agrees with the holder on its status and holder."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.clock import FixedClock
from node.errors import NodeError, NotFoundError
from node.services import complaints, lifecycle, scheduler
from tests.conftest import NodeFactory
from tests.integration.test_lifecycle_flow import DRAFT, START, Tree, carry, settle
from tests.support.nodes import link

NAMES = ("national", "province", "kukar", "kutim")
CHILDREN = {"national": ("id-64",), "province": ("id-64-02", "id-64-08")}
LINKS = [
    ("national", "province"),
    ("province", "national"),
    ("province", "kukar"),
    ("kukar", "province"),
    ("province", "kutim"),
    ("kutim", "province"),
]

# Carrying and the main path are weighted up, so that runs go deep into the tree.
action = st.one_of(
    st.tuples(st.just("carry"), st.sampled_from(range(len(LINKS))).map(str), st.just(0)),
    st.tuples(st.just("carry"), st.sampled_from(range(len(LINKS))).map(str), st.just(0)),
    st.tuples(st.just("refer"), st.sampled_from(["province", "national"]), st.integers(0, 1)),
    st.tuples(
        st.sampled_from(["follow_up", "resolve", "return", "follow_up", "resolve", "return"]),
        st.sampled_from(["kukar", "kutim", "province"]),
        st.just(0),
    ),
    st.tuples(
        st.sampled_from(["verify", "archive", "escalate", "reply", "tick"]),
        st.sampled_from(NAMES),
        st.just(0),
    ),
    st.tuples(st.just("wait"), st.just("national"), st.integers(1, 9)),
)


@pytest.fixture(params=["sqlite"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def tree(nodes: NodeFactory) -> Iterator[Tree]:
    clock = FixedClock(START)
    t = Tree(
        nodes("id", "Nasional"),
        nodes("id-64", "Provinsi Kalimantan Timur"),
        nodes("id-64-02", "Kabupaten Kutai Kartanegara"),
        nodes("id-64-08", "Kabupaten Kutai Timur"),
        clock,
    )
    for node in t.all():
        node.ctx().clock = clock
    link(t.national, t.province)
    link(t.province, t.kukar)
    link(t.province, t.kutim)
    yield t


def _act(t: Tree, tid: str, step: tuple[str, str, int]) -> None:
    name, where, n = step
    if name == "carry":
        a, b = LINKS[int(where)]
        carry(getattr(t, a), getattr(t, b))
        return
    if name == "wait":
        t.clock.advance(dt.timedelta(days=n))
        return
    ctx = getattr(t, where).ctx()
    calls = {
        "refer": lambda: complaints.refer(ctx, tid, CHILDREN[where][n % len(CHILDREN[where])]),
        "follow_up": lambda: lifecycle.follow_up(ctx, tid, "ditinjau"),
        "resolve": lambda: lifecycle.resolve(ctx, tid, "selesai"),
        "return": lambda: lifecycle.return_(ctx, tid, "bukan wewenang"),
        "verify": lambda: lifecycle.verify(ctx, tid),
        "archive": lambda: lifecycle.archive(ctx, tid, "duplicate"),
        "escalate": lambda: scheduler.escalate(ctx, tid, "terlambat"),
        "reply": lambda: lifecycle.reply(ctx, tid, "masih rusak"),
        "tick": lambda: scheduler.run_due(ctx),
    }
    with contextlib.suppress(NodeError):  # refused locally: nothing happened (service tests)
        calls[name]()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    below=st.sampled_from([None, "id-64-02", "id-64-08"]),
    steps=st.lists(action, min_size=5, max_size=30),
)
def test_the_tree_converges_and_no_envelope_is_refused(
    tree: Tree, below: str | None, steps: list[tuple[str, str, int]]
) -> None:
    """Every node that knows the complaint ends with the holder's status and holder."""
    t = tree
    tid = complaints.submit(t.national.ctx(), DRAFT)
    complaints.refer(t.national.ctx(), tid, "id-64")
    settle(t)
    if below is not None:  # start deeper: at a regency
        complaints.refer(t.province.ctx(), tid, below)
        settle(t)
    for step in steps:
        _act(t, tid, step)  # carry() fails the test on any refused envelope
    settle(t)
    views = {}
    for node in t.all():
        try:
            v = complaints.show(node.ctx(), tid)
        except NotFoundError:
            continue
        views[node.node_id] = (v.status, v.holder)
    status, holder = views["id"]
    assert views[holder] == (status, holder), views
    for node_id, (s, h) in views.items():
        # A node the complaint passed through and came back from keeps the state it left in;
        # every node still on the path from the entry node to the holder agrees.
        on_path = holder == node_id or holder.startswith(node_id + "-") or node_id == "id"
        if on_path:
            assert (s, h) == (status, holder), views
