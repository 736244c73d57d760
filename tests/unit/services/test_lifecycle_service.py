"""Lifecycle actions on one node, on both databases: each goes through lifecycle.apply, is
one StatusChanged entry in the same transaction, keeps free text beside the ledger, and a
refusal changes nothing and says which status and which node."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from node._proto.lapor.v1 import envelope_pb2, federation_pb2, ledger_pb2
from node.clock import FixedClock
from node.complaints import ComplaintDraft
from node.crypto.card import NodeCard
from node.crypto.signing import SigningKey
from node.crypto.tls import generate_tls_identity
from node.envelopes import seal
from node.errors import NotFoundError, PermissionDeniedError, StateError, ValidationError
from node.ids import new_message_id, parse_node_id
from node.ledger.checkpoint import Checkpoint, origin_for
from node.ledger.merkle import EMPTY_ROOT
from node.ledger.note import sign_checkpoint
from node.services import complaints, exchange, lifecycle, links, scheduler
from node.services.context import NodeContext
from node.store import queries
from tests.support.nodes import TestNode, snapshot

NodeFactory = Callable[[str, str], TestNode]

START = dt.datetime(2026, 5, 4, 2, 0, tzinfo=dt.UTC)  # Monday 09:00 WIB
SECRET = "Pak Lurah meminta uang pelicin Rp 500.000"

DRAFT = ComplaintDraft(
    title="Pungli di kantor kelurahan",
    description="Diminta uang untuk surat keterangan.",
    classification="pengaduan",
    category="pungli",
    region_code="64.02",
    channel="web",
    reporter_name="Budi Santoso",
)


def _node(nodes: NodeFactory) -> tuple[TestNode, NodeContext]:
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    ctx = node.ctx()
    ctx.clock = FixedClock(START)
    return node, ctx


def _child(ctx: NodeContext, node_id: str = "id-64-02") -> SigningKey:
    key = SigningKey.generate()
    tls = generate_tls_identity(parse_node_id(node_id), START)
    links.add_link(
        ctx, NodeCard(parse_node_id(node_id), "Kabupaten", key.public, tls.cert_pem), "child"
    )
    return key


def _entries(ctx: NodeContext) -> list[ledger_pb2.LedgerEntry]:
    with ctx.db.read() as session:
        return [ledger_pb2.LedgerEntry.FromString(r.entry) for r in queries.iter_ledger(session)]


def _ledger_bytes(ctx: NodeContext) -> bytes:
    with ctx.db.read() as session:
        return b"".join(r.entry for r in queries.iter_ledger(session))


def test_each_action_is_one_status_changed_entry_with_the_note_beside_it(
    nodes: NodeFactory,
) -> None:
    """verify and follow_up: one StatusChanged each, the note only as a commitment."""
    _, ctx = _node(nodes)
    tid = complaints.submit(ctx, DRAFT)
    lifecycle.verify(ctx, tid)
    index = lifecycle.follow_up(ctx, tid, SECRET)
    entries = _entries(ctx)
    changes = [e.status_changed for e in entries if e.WhichOneof("kind") == "status_changed"]
    assert [(c.action, c.from_status, c.to_status, c.role, c.actor) for c in changes] == [
        ("verify", "submitted", "verified", "receiving_admin", "id-64"),
        ("follow_up", "verified", "in_progress", "holder", "id-64"),
    ]
    assert index == len(entries) - 1
    assert changes[0].note_commitment == b""
    assert len(changes[1].note_commitment) == 32
    assert SECRET.encode() not in _ledger_bytes(ctx)
    view = complaints.show(ctx, tid, with_content=True)
    assert (view.status, view.holder) == ("in_progress", "id-64")
    assert [(n.kind, n.text) for n in view.notes] == [("follow_up", SECRET)]
    assert [e.status for e in view.history] == ["submitted", "verified", "in_progress"]


def test_hold_then_the_reporters_reply_returns_it_to_submitted(nodes: NodeFactory) -> None:
    """A held complaint goes back to submitted when the reporter completes it; the verify
    clock restarts from the reply."""
    _, ctx = _node(nodes)
    tid = complaints.submit(ctx, DRAFT)
    lifecycle.hold(ctx, tid, "lampirkan foto")
    assert isinstance(ctx.clock, FixedClock)
    ctx.clock.advance(dt.timedelta(days=14))
    assert complaints.show(ctx, tid).overdue == ()  # no clock runs while held
    lifecycle.reply(ctx, tid, "foto terlampir")
    view = complaints.show(ctx, tid)
    assert view.status == "submitted"
    assert view.overdue == ()
    kinds = [e.WhichOneof("kind") for e in _entries(ctx)]
    assert kinds[-2:] == ["reply_recorded", "status_changed"]


def test_a_reply_on_a_resolved_complaint_held_here_reopens_it(nodes: NodeFactory) -> None:
    """resolved -> in_progress by the reporter's reply; on an open one it is only recorded."""
    _, ctx = _node(nodes)
    tid = complaints.submit(ctx, DRAFT)
    lifecycle.verify(ctx, tid)
    lifecycle.follow_up(ctx, tid, "ditinjau")
    lifecycle.reply(ctx, tid, "terima kasih")
    assert complaints.show(ctx, tid).status == "in_progress"
    lifecycle.resolve(ctx, tid, "sudah ditindak")
    lifecycle.reply(ctx, tid, "belum beres")
    assert complaints.show(ctx, tid).status == "in_progress"


REFUSALS = [
    pytest.param(
        [],
        "resolve",
        StateError,
        "cannot resolve a complaint that is submitted",
        id="resolve-at-intake",
    ),
    pytest.param(
        ["verify"],
        "verify",
        StateError,
        "cannot verify a complaint that is verified",
        id="verify-twice",
    ),
    pytest.param(
        ["verify", "follow_up"], "return", StateError, "no parent", id="return-where-it-entered"
    ),
    pytest.param(
        ["archive"],
        "reply",
        StateError,
        "archived; a reply can no longer",
        id="reply-after-archive",
    ),
    pytest.param(["verify"], "escalate", StateError, "missed no deadline", id="escalate-on-time"),
    pytest.param(["verify", "follow_up"], "hold", StateError, "in_progress", id="hold-in-progress"),
]


def _do(ctx: NodeContext, tid: str, action: str) -> None:
    calls: dict[str, Callable[[], object]] = {
        "verify": lambda: lifecycle.verify(ctx, tid),
        "hold": lambda: lifecycle.hold(ctx, tid),
        "archive": lambda: lifecycle.archive(ctx, tid, "duplicate"),
        "follow_up": lambda: lifecycle.follow_up(ctx, tid, "ditinjau"),
        "resolve": lambda: lifecycle.resolve(ctx, tid, "selesai"),
        "return": lambda: lifecycle.return_(ctx, tid, "bukan wewenang"),
        "reply": lambda: lifecycle.reply(ctx, tid, "balasan"),
        "escalate": lambda: scheduler.escalate(ctx, tid, "terlambat"),
    }
    calls[action]()


@pytest.mark.parametrize(("before", "action", "error", "message"), REFUSALS)
def test_refused_actions_name_the_status_and_change_nothing(
    nodes: NodeFactory, before: list[str], action: str, error: type[Exception], message: str
) -> None:
    """Each refusal is the right error, says what it found, and leaves every table as it was."""
    node, ctx = _node(nodes)
    tid = complaints.submit(ctx, DRAFT)
    for step in before:
        _do(ctx, tid, step)
    state = snapshot(node)
    with pytest.raises(error, match=message):
        _do(ctx, tid, action)
    assert snapshot(node) == state


def test_bad_arguments_are_refused(nodes: NodeFactory) -> None:
    """Unknown ids, empty notes and unknown reason codes are clear errors."""
    node, ctx = _node(nodes)
    tid = complaints.submit(ctx, DRAFT)
    lifecycle.verify(ctx, tid)
    state = snapshot(node)
    with pytest.raises(NotFoundError):
        lifecycle.verify(ctx, "id-64.2026.999999")
    with pytest.raises(ValidationError, match="empty"):
        lifecycle.follow_up(ctx, tid, "   ")
    with pytest.raises(ValidationError, match="archive reason"):
        lifecycle.archive(ctx, tid, "bosan")
    with pytest.raises(ValidationError, match="tracking"):
        lifecycle.resolve(ctx, "not-an-id", "x")
    assert snapshot(node) == state


def test_escalated_where_it_entered_stays_there(nodes: NodeFactory) -> None:
    """The verify deadline missed at the entry node: escalated beyond the tree, not referable."""
    _, ctx = _node(nodes)
    _child(ctx)
    tid = complaints.submit(ctx, DRAFT)
    assert isinstance(ctx.clock, FixedClock)
    ctx.clock.advance(dt.timedelta(days=7))  # 5 working days > 3
    assert complaints.show(ctx, tid).overdue[0].startswith("verify")
    progress_index = scheduler.escalate(ctx, tid, "belum diverifikasi")
    assert progress_index > 0
    assert (complaints.show(ctx, tid).status, complaints.show(ctx, tid).holder) == (
        "escalated",
        "id-64",
    )
    with pytest.raises(StateError, match="escalated beyond this node"):
        complaints.refer(ctx, tid, "id-64-02")


def test_the_scheduler_closes_resolved_complaints_after_the_reply_period(
    nodes: NodeFactory,
) -> None:
    """auto_close working days after resolved with no reply: closed by the system."""
    _, ctx = _node(nodes)
    tid = complaints.submit(ctx, DRAFT)
    lifecycle.verify(ctx, tid)
    lifecycle.follow_up(ctx, tid, "ditinjau")
    lifecycle.resolve(ctx, tid, "selesai")
    cal = scheduler.calendar_for(ctx.config)
    last_day = cal.add_working_days(dt.date(2026, 5, 4), ctx.config.deadlines.auto_close)
    ctx.clock = FixedClock(dt.datetime.combine(last_day, dt.time(16, 0), tzinfo=dt.UTC))
    assert scheduler.run_due(ctx).closed == ()  # the last day to reply
    ctx.clock = FixedClock(ctx.clock.now() + dt.timedelta(days=1))
    done = scheduler.run_due(ctx)
    assert done.closed == (tid,)
    assert complaints.show(ctx, tid).status == "closed"
    last = _entries(ctx)[-1].status_changed
    assert (last.action, last.role, last.to_status) == ("close", "system", "closed")
    assert scheduler.run_due(ctx) == scheduler.DueSummary()


def test_list_filters(nodes: NodeFactory) -> None:
    """--status, --classification, --child, --year and --overdue select what they say."""
    _, ctx = _node(nodes)
    _child(ctx)
    a = complaints.submit(ctx, DRAFT)
    b = complaints.submit(ctx, dataclasses.replace(DRAFT, classification="aspirasi"))
    complaints.refer(ctx, a, "id-64-02")

    def ids(**kw: Any) -> list[str]:
        return [v.tracking_id for v in complaints.list_complaints(ctx, **kw)]

    assert ids(status="referred") == [a]
    assert ids(classification="aspirasi") == [b]
    assert ids(child="id-64-02") == [a]
    assert ids(year=2026) == [a, b]
    assert ids(year=2025) == []
    assert ids(overdue_only=True) == []
    assert isinstance(ctx.clock, FixedClock)
    ctx.clock.advance(dt.timedelta(days=10))  # past verify (b) and first follow-up (a)
    assert ids(overdue_only=True) == [a, b]
    with pytest.raises(ValidationError, match="unknown status"):
        complaints.list_complaints(ctx, status="selesai")


def _update_from(
    ctx: NodeContext, key: SigningKey, child: str, tid: str, sequence: int = 1
) -> federation_pb2.Delivery:
    env = envelope_pb2.Envelope(
        message_id=new_message_id(),
        sender=child,
        recipient=ctx.node_id,
        sequence=sequence,
        status_update=envelope_pb2.StatusUpdate(
            tracking_id=tid, action="follow_up", status="in_progress", holder=child, actor=child
        ),
    )
    empty = Checkpoint(origin_for(child), 0, EMPTY_ROOT)
    env.checkpoint = sign_checkpoint(empty, origin_for(child), key.ed25519)
    env.sent_at.FromDatetime(START)
    env.status_update.at.FromDatetime(START)
    return federation_pb2.Delivery(envelope=seal(env, key))


def test_a_status_update_from_a_child_that_does_not_hold_it_is_refused(
    nodes: NodeFactory,
) -> None:
    """Only the child the complaint was referred to may report on it; nothing is stored."""
    node, ctx = _node(nodes)
    _child(ctx, "id-64-02")
    other = _child(ctx, "id-64-08")
    tid = complaints.submit(ctx, DRAFT)
    complaints.refer(ctx, tid, "id-64-02")
    state = snapshot(node)
    result = exchange.receive_batch(
        ctx, parse_node_id("id-64-08"), [_update_from(ctx, other, "id-64-08", tid)]
    )
    assert isinstance(result.error, PermissionDeniedError)
    assert "id-64-08 sent a status update" in str(result.error)
    assert snapshot(node) == state


def test_erase_deletes_the_notes_and_they_no_longer_travel(nodes: NodeFactory) -> None:
    """complaint erase removes notes with the content; an envelope committing to an erased
    note goes without its text, and every commitment stays in the ledger."""
    _, ctx = _node(nodes)
    tid = complaints.submit(ctx, DRAFT)
    lifecycle.verify(ctx, tid)
    lifecycle.follow_up(ctx, tid, SECRET)
    commitment = _entries(ctx)[-1].status_changed.note_commitment
    update = envelope_pb2.Envelope(
        status_update=envelope_pb2.StatusUpdate(tracking_id=tid, note_commitment=commitment)
    )
    delivery = federation_pb2.Delivery(
        envelope=envelope_pb2.SignedEnvelope(body=update.SerializeToString())
    )
    with ctx.db.read() as session:
        lifecycle.attach_notes(session, [delivery])
    assert delivery.content == SECRET.encode() and len(delivery.content_salt) == 32

    complaints.erase(ctx, tid, "permintaan DPO-17")
    assert complaints.show(ctx, tid, with_content=True).notes == ()
    erased = federation_pb2.Delivery(envelope=delivery.envelope)
    with ctx.db.read() as session:
        lifecycle.attach_notes(session, [erased])
    assert erased.content == b"" and erased.content_salt == b""
    assert commitment in _ledger_bytes(ctx)


def test_a_referral_waiting_for_its_receipt_is_not_escalated_here(nodes: NodeFactory) -> None:
    """Overdue while referred: flagged, but neither the scheduler nor an operator escalates
    it on the parent (the child that has not acknowledged it may hold it any moment)."""
    node, ctx = _node(nodes)
    _child(ctx)
    tid = complaints.submit(ctx, DRAFT)
    complaints.refer(ctx, tid, "id-64-02")
    ctx.config = dataclasses.replace(
        ctx.config, workflow=dataclasses.replace(ctx.config.workflow, auto_escalate=True)
    )
    assert isinstance(ctx.clock, FixedClock)
    ctx.clock.advance(dt.timedelta(days=14))
    assert scheduler.run_due(ctx) == scheduler.DueSummary(overdue=(tid,))
    state = snapshot(node)
    with pytest.raises(StateError, match="waits for id-64-02's receipt"):
        scheduler.escalate(ctx, tid, "terlambat")
    assert snapshot(node) == state
