"""Property: no sequence of operator and scheduler actions on a node reaches an invalid
state or skips the ledger. Every status a complaint passes through on this node is
recorded (StatusChanged, or ReferralSent for a referral), and replaying those entries
through lifecycle.apply from `submitted` ends in the stored status."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.clock import FixedClock
from node.complaints import ComplaintDraft
from node.crypto.card import NodeCard
from node.crypto.signing import SigningKey
from node.crypto.tls import generate_tls_identity
from node.errors import NodeError
from node.ids import parse_node_id
from node.services import complaints, lifecycle, links, scheduler
from node.services.context import NodeContext
from node.store import queries
from node.workflow import lifecycle as machine
from node.workflow.lifecycle import Action, Role, Status
from tests.support.nodes import TestNode

NodeFactory = Callable[[str, str], TestNode]

START = dt.datetime(2026, 5, 4, 2, 0, tzinfo=dt.UTC)
DRAFT = ComplaintDraft(
    title="Lampu jalan mati",
    description="Sudah dua minggu gelap.",
    classification="pengaduan",
    category="penerangan jalan",
    region_code="64.02",
    channel="web",
    reporter_name="Ani",
)

ACTIONS: dict[str, Callable[[NodeContext, str], object]] = {
    "verify": lambda ctx, t: lifecycle.verify(ctx, t),
    "hold": lambda ctx, t: lifecycle.hold(ctx, t, "lengkapi alamat"),
    "archive": lambda ctx, t: lifecycle.archive(ctx, t, "duplicate"),
    "follow_up": lambda ctx, t: lifecycle.follow_up(ctx, t, "ditinjau"),
    "resolve": lambda ctx, t: lifecycle.resolve(ctx, t, "diperbaiki"),
    "return": lambda ctx, t: lifecycle.return_(ctx, t, "bukan wewenang"),
    "reply": lambda ctx, t: lifecycle.reply(ctx, t, "masih mati"),
    "refer": lambda ctx, t: complaints.refer(ctx, t, "id-64-02"),
    "escalate": lambda ctx, t: scheduler.escalate(ctx, t, "terlambat"),
    "tick": lambda ctx, t: scheduler.run_due(ctx),
    "wait": lambda ctx, t: None,  # the clock moves (below), nothing else
}

# The main path is weighted up so that runs reach resolved and closed, not only the exits.
WEIGHTED = [
    *["verify", "follow_up", "resolve"] * 3,
    *["tick", "reply"] * 2,
    *["wait", "hold", "archive", "return", "refer", "escalate"],
]
assert set(WEIGHTED) == set(ACTIONS)

steps = st.lists(
    st.tuples(st.sampled_from(WEIGHTED), st.integers(min_value=0, max_value=6)),
    min_size=1,
    max_size=14,
)


def _recorded_history(ctx: NodeContext, tracking_id: str) -> list[ledger_pb2.LedgerEntry]:
    found = []
    with ctx.db.read() as session:
        for row in queries.iter_ledger(session):
            entry = ledger_pb2.LedgerEntry.FromString(row.entry)
            kind = entry.WhichOneof("kind")
            if kind == "status_changed" and entry.status_changed.tracking_id == tracking_id:
                found.append(entry)
            elif kind == "referral_sent":
                env = envelope_pb2.Envelope.FromString(entry.referral_sent.envelope.body)
                if env.referral.complaint.tracking_id == tracking_id:
                    found.append(entry)
    return found


def _replay(entries: list[ledger_pb2.LedgerEntry]) -> Status:
    status = Status.submitted
    for entry in entries:
        if entry.WhichOneof("kind") == "referral_sent":
            role = Role.receiving_admin if status is Status.submitted else Role.holder
            status = machine.apply(status, Action.refer, role)
            continue
        change = entry.status_changed
        assert change.from_status == status.value
        status = machine.apply(status, Action(change.action), Role(change.role))
        assert status.value == change.to_status
    return status


@pytest.fixture
def node(nodes: NodeFactory) -> NodeContext:
    ctx = nodes("id-64", "Provinsi Kalimantan Timur").ctx()
    key = SigningKey.generate()
    child = parse_node_id("id-64-02")
    tls = generate_tls_identity(child, START)
    links.add_link(ctx, NodeCard(child, "Kabupaten", key.public, tls.cert_pem), "child")
    return ctx


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_random_actions_keep_status_valid_and_every_transition_in_the_ledger(
    node: NodeContext, steps: list[tuple[str, int]]
) -> None:
    """Whatever operators and the scheduler do, in any order and at any time, each stored
    status is a Status reached by recorded transitions only; refusals record nothing."""
    clock = FixedClock(START)
    node.clock = clock
    tracking_id = complaints.submit(node, DRAFT)
    for name, days in steps:
        clock.advance(dt.timedelta(days=days))
        with node.db.read() as session:
            size = queries.ledger_size(session)
        try:
            ACTIONS[name](node, tracking_id)
        except NodeError:
            with node.db.read() as session:
                assert queries.ledger_size(session) == size, f"{name} was refused but recorded"
        view = complaints.show(node, tracking_id)
        assert view.status in {s.value for s in Status}
        assert _replay(_recorded_history(node, tracking_id)) == Status(view.status)
