"""Complaint use cases on one node, on both databases: submit (intake) and refer
(disposition). Each is one transaction; refusals leave no trace; no personal data leaves
complaint_contents."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import select, text

from node._proto.lapor.v1 import complaint_pb2, ledger_pb2
from node.clock import FixedClock
from node.complaints import ComplaintDraft, check_commitment
from node.crypto.card import NodeCard
from node.crypto.signing import SigningKey
from node.crypto.tls import generate_tls_identity
from node.envelopes import open_envelope
from node.errors import NotFoundError, PermissionDeniedError, StateError, ValidationError
from node.ids import NodeId, parse_node_id
from node.ledger.merkle import leaf_hash
from node.services import complaints, links
from node.services.context import NodeContext
from node.store import queries
from node.store.models import Base, ComplaintContentRow, LedgerEntryRow, OutboxRow
from tests.support.nodes import TestNode, snapshot

NodeFactory = Callable[[str, str], TestNode]

START = dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC)
REPORTER_NAME = "Siti Rahmawati"
REPORTER_CONTACT = "+62 812-5555-0199"
REPORTER_ID = "6402015507900001"
TITLE = "Jalan berlubang di depan SDN 012 Tenggarong"
DESCRIPTION = "Sudah tiga bulan, dua pengendara motor jatuh minggu lalu."
PERSONAL = (REPORTER_NAME, REPORTER_CONTACT, REPORTER_ID, TITLE, DESCRIPTION)

DRAFT = ComplaintDraft(
    title=TITLE,
    description=DESCRIPTION,
    classification="pengaduan",
    category="jalan rusak",
    region_code="64.02",
    channel="sms_1708",
    reporter_name=REPORTER_NAME,
    reporter_contact=REPORTER_CONTACT,
    reporter_id_number=REPORTER_ID,
    location="Tenggarong",
)


def _province(nodes: NodeFactory) -> tuple[TestNode, NodeContext]:
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    ctx = node.ctx()
    ctx.clock = FixedClock(START)
    return node, ctx


@dataclasses.dataclass
class Child:
    node_id: NodeId
    key: SigningKey


def _link_child(ctx: NodeContext, node_id: str = "id-64-02") -> Child:
    """Pin a child from a card made in memory (no second database needed)."""
    child = Child(parse_node_id(node_id), SigningKey.generate())
    tls = generate_tls_identity(child.node_id, START)
    links.add_link(
        ctx,
        NodeCard(child.node_id, "Kabupaten Kutai Kartanegara", child.key.public, tls.cert_pem),
        "child",
    )
    return child


def _set(ctx: NodeContext, tracking_id: str, **values: str) -> None:
    """Put a stored complaint into a given state (test setup, outside any use case)."""
    with ctx.db.write() as session:
        row = queries.get_complaint(session, tracking_id)
        assert row is not None
        for key, value in values.items():
            setattr(row, key, value)


# Submit ---------------------------------------------------------------------------------


def test_submit_numbers_complaints_per_node_and_year(nodes: NodeFactory) -> None:
    """submit returns id-64.<year>.000001, .000002, ...; a new year starts again at 000001."""
    _, ctx = _province(nodes)
    assert [complaints.submit(ctx, DRAFT) for _ in range(3)] == [
        "id-64.2026.000001",
        "id-64.2026.000002",
        "id-64.2026.000003",
    ]
    assert isinstance(ctx.clock, FixedClock)
    ctx.clock.advance(dt.timedelta(days=310))
    assert complaints.submit(ctx, DRAFT) == "id-64.2027.000001"
    assert complaints.submit(ctx, DRAFT) == "id-64.2027.000002"


def test_submit_writes_complaint_content_event_and_one_ledger_entry(
    nodes: NodeFactory,
) -> None:
    """submit adds a complaint, its content, an event and one ledger entry committing to it."""
    node, ctx = _province(nodes)
    before = snapshot(node)
    tracking_id = complaints.submit(ctx, DRAFT)
    after = snapshot(node)
    for table in ("complaints", "complaint_contents", "complaint_events", "ledger_entries"):
        assert after[table] == before[table] + 1, table  # type: ignore[operator]
    assert after["outbox"] == before["outbox"]

    with ctx.db.read() as session:
        row = queries.get_complaint(session, tracking_id)
        content = queries.complaint_content(session, tracking_id)
        events = queries.complaint_events(session, tracking_id)
        ledger = list(queries.iter_ledger(session))
    assert row is not None and content is not None
    assert (row.status, row.holder, row.origin_node, row.received_from) == (
        "submitted",
        "id-64",
        "id-64",
        None,
    )
    assert row.submitted_at == START
    assert complaint_pb2.ComplaintContent.FromString(content.content) == DRAFT.content()
    check_commitment(row.content_commitment, content.content, content.salt)

    (entry_row,) = ledger
    entry = ledger_pb2.LedgerEntry.FromString(entry_row.entry)
    assert entry.WhichOneof("kind") == "complaint_registered"
    assert entry.node_id == "id-64"
    assert entry.recorded_at.ToDatetime(dt.UTC) == START
    assert entry.complaint_registered.complaint == complaints.summary_of(row)
    assert entry_row.leaf_hash == leaf_hash(entry_row.entry)
    assert [(e.status, e.actor, e.ledger_index) for e in events] == [
        ("submitted", "id-64", entry_row.idx)
    ]


def test_submit_is_all_or_nothing(nodes: NodeFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """If submit fails after its ledger append, nothing is stored and no serial is used."""
    node, ctx = _province(nodes)
    before = snapshot(node)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(complaints, "add_events", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            complaints.submit(ctx, DRAFT)
    assert snapshot(node) == before
    assert complaints.submit(ctx, DRAFT) == "id-64.2026.000001"


def test_invalid_drafts_store_nothing(nodes: NodeFactory) -> None:
    """A draft that fails validation raises ValidationError and changes no table."""
    node, ctx = _province(nodes)
    complaints.submit(ctx, DRAFT)
    before = snapshot(node)
    invalid = {
        "empty-title": {"title": ""},
        "bad-classification": {"classification": "complaint"},
        "bad-channel": {"channel": "email"},
        "bad-region": {"region_code": "Kaltim"},
        "long-contact": {"reporter_contact": "0" * 201},
    }
    for name, changes in invalid.items():
        with pytest.raises(ValidationError):
            complaints.submit(ctx, dataclasses.replace(DRAFT, **changes))  # type: ignore[arg-type]
        assert snapshot(node) == before, name
    assert complaints.submit(ctx, DRAFT) == "id-64.2026.000002"


# Refer ----------------------------------------------------------------------------------


def test_refer_signs_queues_and_records_the_referral(nodes: NodeFactory) -> None:
    """refer marks it referred, queues a child-openable envelope (seq 1, 2) and ledgers it."""
    _, ctx = _province(nodes)
    child = _link_child(ctx)
    first, second = complaints.submit(ctx, DRAFT), complaints.submit(ctx, DRAFT)
    message_ids = [
        complaints.refer(ctx, first, "id-64-02"),
        complaints.refer(ctx, second, "id-64-02"),
    ]

    with ctx.db.read() as session:
        outbox = session.execute(select(OutboxRow).order_by(OutboxRow.sequence)).scalars().all()
        ledger = list(queries.iter_ledger(session))
        row = queries.get_complaint(session, first)
        events = queries.complaint_events(session, first)
    assert row is not None
    assert (row.status, row.holder) == ("referred", "id-64")
    assert [
        (o.peer_id, o.sequence, o.message_id, o.kind, o.tracking_id, o.carries_content)
        for o in outbox
    ] == [
        ("id-64-02", 1, message_ids[0], "referral", first, True),
        ("id-64-02", 2, message_ids[1], "referral", second, True),
    ]
    sent = ledger_pb2.LedgerEntry.FromString(ledger[-2].entry).referral_sent.envelope
    assert (sent.body, sent.signature) == (outbox[0].body, outbox[0].signature)

    parent_key = SigningKey.from_pem(ctx.config.signing_key.read_bytes()).public
    opened = open_envelope(sent, peer=parse_node_id("id-64"), peer_key=parent_key, me=child.node_id)
    assert opened.envelope.message_id == message_ids[0]
    assert opened.envelope.sequence == 1
    assert opened.envelope.referral.complaint == complaints.summary_of(row)
    assert [e.status for e in events] == ["submitted", "referred"]
    assert events[-1].ledger_index == ledger[-2].idx


def test_refer_to_an_unlinked_child_is_refused_and_stores_nothing(nodes: NodeFactory) -> None:
    """Referring to a node that is not a linked child raises PermissionDenied; no change."""
    node, ctx = _province(nodes)
    tracking_id = complaints.submit(ctx, DRAFT)
    before = snapshot(node)
    with pytest.raises(PermissionDeniedError, match="not a linked child"):
        complaints.refer(ctx, tracking_id, "id-64-08")
    assert snapshot(node) == before


def test_refer_to_the_parent_is_refused(nodes: NodeFactory) -> None:
    """A complaint cannot be referred up to this node's parent (only down to a child)."""
    node, ctx = _province(nodes)
    key = SigningKey.generate()
    national = parse_node_id("id")
    links.add_link(
        ctx,
        NodeCard(
            national, "KemenPAN-RB", key.public, generate_tls_identity(national, START).cert_pem
        ),
        "parent",
        "127.0.0.1:7400",
    )
    tracking_id = complaints.submit(ctx, DRAFT)
    before = snapshot(node)
    with pytest.raises(PermissionDeniedError):
        complaints.refer(ctx, tracking_id, "id")
    assert snapshot(node) == before


def test_refer_by_a_node_that_does_not_hold_the_complaint_is_refused(
    nodes: NodeFactory,
) -> None:
    """Only the holder may dispose a complaint: another holder gives PermissionDenied."""
    node, ctx = _province(nodes)
    _link_child(ctx)
    tracking_id = complaints.submit(ctx, DRAFT)
    _set(ctx, tracking_id, holder="id-64-08", status="accepted")
    before = snapshot(node)
    with pytest.raises(PermissionDeniedError, match="only the holder"):
        complaints.refer(ctx, tracking_id, "id-64-02")
    assert snapshot(node) == before


@pytest.mark.parametrize(
    "status", ["referred", "in_progress", "resolved", "closed", "held", "archived", "escalated"]
)
def test_refer_from_a_wrong_status_is_refused(nodes: NodeFactory, status: str) -> None:
    """refer from a status outside submitted/verified/accepted/returned raises StateError."""
    node, ctx = _province(nodes)
    _link_child(ctx)
    tracking_id = complaints.submit(ctx, DRAFT)
    _set(ctx, tracking_id, status=status)
    before = snapshot(node)
    with pytest.raises(StateError, match=status):
        complaints.refer(ctx, tracking_id, "id-64-02")
    assert snapshot(node) == before


def test_referring_twice_is_refused(nodes: NodeFactory) -> None:
    """A complaint already referred cannot be referred again (StateError, nothing queued)."""
    node, ctx = _province(nodes)
    _link_child(ctx)
    _link_child(ctx, "id-64-08")
    tracking_id = complaints.submit(ctx, DRAFT)
    complaints.refer(ctx, tracking_id, "id-64-02")
    before = snapshot(node)
    with pytest.raises(StateError):
        complaints.refer(ctx, tracking_id, "id-64-08")
    assert snapshot(node) == before


@pytest.mark.parametrize(
    ("tracking_id", "child", "error"),
    [
        ("id-64.2026.000009", "id-64-02", NotFoundError),
        ("id-64/2026/000001", "id-64-02", ValidationError),
        ("id-64.2026.000001", "ID-64-02", ValidationError),
    ],
    ids=["unknown-complaint", "bad-tracking-id", "bad-child-id"],
)
def test_refer_with_bad_arguments_is_refused(
    nodes: NodeFactory, tracking_id: str, child: str, error: type[Exception]
) -> None:
    """refer of an unknown complaint or malformed ids raises and stores nothing."""
    node, ctx = _province(nodes)
    _link_child(ctx)
    complaints.submit(ctx, DRAFT)
    before = snapshot(node)
    with pytest.raises(error):
        complaints.refer(ctx, tracking_id, child)
    assert snapshot(node) == before


# Privacy --------------------------------------------------------------------------------


def test_no_personal_data_outside_complaint_contents(nodes: NodeFactory) -> None:
    """Reporter data and complaint text are in no ledger entry, outbox body or other table."""
    _, ctx = _province(nodes)
    _link_child(ctx)
    tracking_id = complaints.submit(ctx, DRAFT)
    complaints.refer(ctx, tracking_id, "id-64-02")
    needles = [s.encode() for s in PERSONAL]

    with ctx.db.read() as session:
        ledger = session.execute(select(LedgerEntryRow.entry)).scalars().all()
        bodies = session.execute(select(OutboxRow.body)).scalars().all()
        contents = session.execute(select(ComplaintContentRow.content)).scalars().all()
        dumps = {
            table.name: repr(session.execute(text(f"SELECT * FROM {table.name}")).all())  # noqa: S608
            for table in Base.metadata.sorted_tables
            if table.name != "complaint_contents"
        }
    assert len(ledger) == 3  # ledger: link established, registered, referral sent
    assert len(bodies) == 1
    assert all(n in contents[0] for n in needles)  # the scan below looks at real data
    for blob in (*ledger, *bodies):
        for needle in needles:
            assert needle not in blob
    for name, dump in dumps.items():
        for value in PERSONAL:
            assert value not in dump, name


def test_show_hides_the_reporter_of_anonymous_complaints(nodes: NodeFactory) -> None:
    """show(with_content) names the reporter only when neither anonymous nor confidential."""
    _, ctx = _province(nodes)
    open_id = complaints.submit(ctx, DRAFT)
    anonymous_id = complaints.submit(ctx, dataclasses.replace(DRAFT, anonymous=True))
    confidential_id = complaints.submit(ctx, dataclasses.replace(DRAFT, confidential=True))
    assert complaints.show(ctx, open_id, with_content=True).reporter == REPORTER_NAME
    assert complaints.show(ctx, anonymous_id, with_content=True).reporter == "(anonymous)"
    assert complaints.show(ctx, confidential_id, with_content=True).reporter == "(confidential)"
    assert complaints.show(ctx, open_id).title is None
