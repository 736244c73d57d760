"""The complaint lifecycle across the tree, in process on both databases: national ->
province -> two regencies, envelopes carried with the link session's steps (hand_over)
and the note text beside them. Each node's view and ledger are checked after each flow."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Callable, Iterator

import pytest

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.clock import FixedClock
from node.complaints import ComplaintDraft
from node.errors import PermissionDeniedError, StateError
from node.ledger.reconcile import reconcile_exports
from node.services import audit, complaints, lifecycle, scheduler
from node.store import queries
from tests.support.nodes import TestNode, carry, link

NodeFactory = Callable[[str, str], TestNode]

START = dt.datetime(2026, 5, 4, 2, 0, tzinfo=dt.UTC)  # Monday 09:00 WIB
REPLY = "Jalannya sudah ditambal tapi retak lagi di sisi utara"
NOTE = "Tim Dinas PU meninjau lokasi pada hari Senin"

DRAFT = ComplaintDraft(
    title="Jalan berlubang di depan SDN 012 Tenggarong",
    description="Sudah tiga bulan, dua pengendara motor jatuh minggu lalu.",
    classification="pengaduan",
    category="jalan rusak",
    region_code="64.02",
    channel="walk_in",
    reporter_name="Siti Rahmawati",
    reporter_contact="+62 812-5555-0199",
)


@dataclasses.dataclass
class Tree:
    national: TestNode
    province: TestNode
    kukar: TestNode  # id-64-02
    kutim: TestNode  # id-64-08
    clock: FixedClock

    def all(self) -> list[TestNode]:
        return [self.national, self.province, self.kukar, self.kutim]


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


def settle(t: Tree) -> None:
    """Carry envelopes along every link, both ways, until nothing moves."""
    pairs = [
        (t.national, t.province),
        (t.province, t.kukar),
        (t.province, t.kutim),
        (t.kukar, t.province),
        (t.kutim, t.province),
        (t.province, t.national),
    ]
    while sum(carry(a, b) for a, b in pairs):
        pass


def view(node: TestNode, tracking_id: str) -> tuple[str, str]:
    v = complaints.show(node.ctx(), tracking_id)
    return v.status, v.holder


def kinds(node: TestNode, tracking_id: str) -> list[str]:
    """The ledger entry kinds on `node` that concern `tracking_id`, in order."""
    found = []
    with node.ctx().db.read() as session:
        for row in queries.iter_ledger(session):
            entry = ledger_pb2.LedgerEntry.FromString(row.entry)
            kind = entry.WhichOneof("kind") or ""
            payload = getattr(entry, kind)
            if hasattr(payload, "envelope"):
                env = envelope_pb2.Envelope.FromString(payload.envelope.body)
                inner = getattr(env, env.WhichOneof("payload") or "")
                tid = getattr(inner, "tracking_id", "") or inner.complaint.tracking_id
            elif hasattr(payload, "complaint"):
                tid = payload.complaint.tracking_id
            else:
                tid = getattr(payload, "tracking_id", "")
            if tid == tracking_id:
                found.append(kind)
    return found


def export(node: TestNode) -> list[str]:
    out = io.StringIO()
    audit.export(node.ctx(), out)
    return out.getvalue().splitlines(keepends=True)


def ledger_bytes(node: TestNode) -> bytes:
    with node.ctx().db.read() as session:
        return b"".join(r.entry for r in queries.iter_ledger(session))


def _down_to_kukar(t: Tree) -> str:
    tracking_id = complaints.submit(t.national.ctx(), DRAFT)
    complaints.refer(t.national.ctx(), tracking_id, "id-64")
    settle(t)
    complaints.refer(t.province.ctx(), tracking_id, "id-64-02")
    settle(t)
    return tracking_id


def test_referred_down_two_hops_followed_up_resolved_and_closed(tree: Tree) -> None:
    """Status and holder reach the entry node hop by hop, up to the automatic close."""
    t = tree
    tid = _down_to_kukar(t)
    assert view(t.national, tid) == ("accepted", "id-64-02")
    assert view(t.province, tid) == ("accepted", "id-64-02")
    assert view(t.kukar, tid) == ("accepted", "id-64-02")

    lifecycle.follow_up(t.kukar.ctx(), tid, NOTE)
    settle(t)
    assert [view(n, tid) for n in (t.national, t.province, t.kukar)] == [
        ("in_progress", "id-64-02")
    ] * 3
    lifecycle.resolve(t.kukar.ctx(), tid, "Jalan sudah diaspal ulang")
    settle(t)
    assert view(t.national, tid) == ("resolved", "id-64-02")

    t.clock.advance(dt.timedelta(days=10))  # 8 working days: not yet
    assert scheduler.run_due(t.kukar.ctx()).closed == ()
    t.clock.advance(dt.timedelta(days=7))
    assert scheduler.run_due(t.kukar.ctx()).closed == (tid,)
    settle(t)
    assert [view(n, tid) for n in (t.national, t.province, t.kukar)] == [("closed", "id-64-02")] * 3

    assert kinds(t.national, tid) == [
        "complaint_registered",
        "referral_sent",
        "receipt_received",
        "status_update_received",  # province referred it on
        "status_update_received",  # kukar accepted
        "status_update_received",  # follow_up
        "status_update_received",  # resolve
        "status_update_received",  # close
    ]
    assert kinds(t.province, tid) == [
        "referral_received",
        "referral_sent",
        "status_update_sent",
        "receipt_received",
        "status_update_sent",
        *["status_update_received", "status_update_sent"] * 3,
    ]
    assert kinds(t.kukar, tid) == [
        "referral_received",
        *["status_changed", "status_update_sent"] * 3,
    ]
    assert kinds(t.kutim, tid) == []
    # The follow-up note reached the entry node beside the envelopes, not in any ledger.
    shown = complaints.show(t.national.ctx(), tid, with_content=True)
    assert NOTE in [n.text for n in shown.notes]
    for node in t.all():
        assert NOTE.encode() not in ledger_bytes(node)


def test_returned_redisposed_to_the_second_regency_and_back_to_the_first(tree: Tree) -> None:
    """Bukan wewenang goes to the parent, which refers it again, even to a child that had it."""
    t = tree
    tid = _down_to_kukar(t)
    lifecycle.return_(t.kukar.ctx(), tid, "Jalan provinsi, bukan kewenangan kabupaten")
    settle(t)
    assert view(t.kukar, tid) == ("returned", "id-64")
    assert view(t.province, tid) == ("returned", "id-64")
    assert view(t.national, tid) == ("returned", "id-64")
    with pytest.raises(StateError, match="cannot follow_up a complaint that is returned"):
        lifecycle.follow_up(t.kukar.ctx(), tid, NOTE)

    complaints.refer(t.province.ctx(), tid, "id-64-08")
    settle(t)
    assert view(t.national, tid) == ("accepted", "id-64-08")
    assert view(t.kutim, tid) == ("accepted", "id-64-08")
    assert complaints.show(t.province.ctx(), tid).referred_to == "id-64-08"

    lifecycle.return_(t.kutim.ctx(), tid, "Lokasi di Kutai Kartanegara")
    settle(t)
    complaints.refer(t.province.ctx(), tid, "id-64-02")
    settle(t)
    assert view(t.kukar, tid) == ("accepted", "id-64-02")
    assert view(t.national, tid) == ("accepted", "id-64-02")
    lifecycle.follow_up(t.kukar.ctx(), tid, NOTE)
    settle(t)
    assert view(t.national, tid) == ("in_progress", "id-64-02")
    # The province took it back twice (redispose) before referring it again.
    assert kinds(t.province, tid).count("status_changed") == 2


def test_missed_follow_up_is_escalated_to_the_parent_which_refers_it_again(tree: Tree) -> None:
    """An overdue complaint is escalated up (auto when configured), then disposed again."""
    t = tree
    tid = _down_to_kukar(t)
    with pytest.raises(StateError, match="missed no deadline"):
        scheduler.escalate(t.kukar.ctx(), tid, "tidak ada tindak lanjut")
    t.clock.advance(dt.timedelta(days=9))  # 7 working days > 5 for the first follow-up
    late = complaints.list_complaints(t.national.ctx(), overdue_only=True)
    assert [v.tracking_id for v in late] == [tid]
    assert late[0].overdue[0].startswith("first_follow_up")
    assert scheduler.run_due(t.kukar.ctx()).escalated == ()  # not configured: flagged only

    ctx = t.kukar.ctx()
    ctx.config = dataclasses.replace(
        ctx.config, workflow=dataclasses.replace(ctx.config.workflow, auto_escalate=True)
    )
    assert scheduler.run_due(ctx).escalated == (tid,)
    settle(t)
    assert view(t.kukar, tid) == ("escalated", "id-64")
    assert view(t.national, tid) == ("escalated", "id-64")
    complaints.refer(t.province.ctx(), tid, "id-64-08")
    settle(t)
    assert view(t.national, tid) == ("accepted", "id-64-08")
    assert complaints.list_complaints(t.national.ctx(), overdue_only=True) == []


def test_reporter_reply_reaches_the_holder_and_reopens_it(tree: Tree) -> None:
    """A reply taken where the complaint entered travels down and reopens it; the text is
    beside the envelopes and never in a ledger."""
    t = tree
    tid = _down_to_kukar(t)
    lifecycle.follow_up(t.kukar.ctx(), tid, NOTE)
    lifecycle.resolve(t.kukar.ctx(), tid, "Jalan sudah diaspal ulang")
    settle(t)
    with pytest.raises(PermissionDeniedError, match="entered at id"):
        lifecycle.reply(t.province.ctx(), tid, REPLY)
    lifecycle.reply(t.national.ctx(), tid, REPLY)
    settle(t)
    assert [view(n, tid) for n in (t.national, t.province, t.kukar)] == [
        ("in_progress", "id-64-02")
    ] * 3
    texts = [n.text for n in complaints.show(t.kukar.ctx(), tid, with_content=True).notes]
    assert REPLY in texts
    assert kinds(t.national, tid).count("reply_recorded") == 1
    assert kinds(t.national, tid).count("reply_sent") == 1
    assert kinds(t.province, tid).count("reply_received") == 1
    assert kinds(t.province, tid).count("reply_sent") == 1
    assert kinds(t.kukar, tid).count("reply_received") == 1
    for node in t.all():
        assert REPLY.encode() not in ledger_bytes(node)
    # Both ledgers of each link record every update and reply, alike (audit reconcile).
    for parent, child, matched in ((t.national, t.province, 7), (t.province, t.kukar, 5)):
        p_lines, c_lines = export(parent), export(child)
        result = reconcile_exports(lambda p=p_lines: p, lambda c=c_lines: c)
        assert result.ok and result.pending == (), [str(f) for f in result.discrepancies]
        assert result.envelopes == matched  # referral, updates up, the reply down


def test_only_the_holder_acts_and_refusals_leave_nothing(tree: Tree) -> None:
    """The entry node cannot follow up what a regency holds; a forbidden action names the
    status and the actor (the status check comes first)."""
    t = tree
    tid = _down_to_kukar(t)
    before = ledger_bytes(t.national)
    with pytest.raises(
        PermissionDeniedError, match=r"^id may not follow_up .* it is accepted and held by id-64-02"
    ):
        lifecycle.follow_up(t.national.ctx(), tid, "ditindaklanjuti")
    with pytest.raises(StateError, match="cannot resolve a complaint that is accepted"):
        lifecycle.resolve(t.kukar.ctx(), tid, "selesai")
    assert ledger_bytes(t.national) == before


def test_a_reply_crossing_a_return_does_not_block_either_link(tree: Tree) -> None:
    """The reply goes down while the return goes up: both arrive, nothing is refused, and
    the province, which holds it again, has the reply's text."""
    t = tree
    tid = _down_to_kukar(t)
    lifecycle.return_(t.kukar.ctx(), tid, "Bukan kewenangan kabupaten")
    lifecycle.reply(t.national.ctx(), tid, REPLY)
    assert carry(t.national, t.province) == 1  # the reply, before the return arrives
    assert carry(t.province, t.kukar) == 1  # forwarded to the child it thinks holds it
    settle(t)
    assert view(t.kukar, tid) == ("returned", "id-64")
    assert view(t.national, tid) == ("returned", "id-64")
    texts = [n.text for n in complaints.show(t.province.ctx(), tid, with_content=True).notes]
    assert REPLY in texts
    assert kinds(t.kukar, tid)[-1] == "reply_received"
