"""Reporter privacy across the tree: a confidential reporter's identity reaches the node
that handles the complaint sealed, through a node that never holds it in clear; an
anonymous one never leaves the node where it entered (docs/decisions/0011)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from node._proto.lapor.v1 import privacy_pb2
from node.complaints import ComplaintDraft
from node.envelopes import open_envelope
from node.errors import NotFoundError, SignatureError
from node.ids import NodeId
from node.ledger.audit import verify_export
from node.services import audit, complaints, confidential, lifecycle
from node.services.context import NodeContext
from node.store import queries
from node.store.models import Base, ReporterIdentityRow
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, hand_over, link, status_of
from tests.support.peers import envelope, sealed, signing_key

NAME, CONTACT, NIK = "Siti Rahmawati", "+62 812 5555 0101", "6402014101900003"
SECRETS = (NAME.encode(), CONTACT.encode(), NIK.encode())


def _draft(*, confidential: bool = False, anonymous: bool = False) -> ComplaintDraft:
    return ComplaintDraft(
        title="Pungutan liar di puskesmas",
        description="Petugas meminta uang tambahan untuk surat rujukan.",
        classification="pengaduan",
        category="kesehatan",
        region_code="64.02",
        channel="web",
        reporter_name=NAME,
        reporter_contact=CONTACT,
        reporter_id_number=NIK,
        confidential=confidential,
        anonymous=anonymous,
    )


@dataclass
class Tree:
    national: TestNode
    province: TestNode
    regency: TestNode

    def settle(self) -> None:
        """Deliver everything queued, both ways, until nothing moves."""
        pairs = [
            (self.national, self.province),
            (self.province, self.regency),
            (self.regency, self.province),
            (self.province, self.national),
        ]
        for _ in range(4):
            for sender, receiver in pairs:
                result = hand_over(sender, receiver)
                assert result.error is None, result.error

    def down_to_the_regency(self, draft: ComplaintDraft) -> str:
        tracking_id = complaints.submit(self.national.ctx(), draft)
        complaints.refer(self.national.ctx(), tracking_id, "id-64")
        self.settle()
        complaints.refer(self.province.ctx(), tracking_id, "id-64-02")
        self.settle()
        assert status_of(self.national, tracking_id) == ("accepted", "id-64-02")
        # The regency handles it: its first follow-up offers its sealing key.
        lifecycle.follow_up(self.regency.ctx(), tracking_id, "Tim inspektorat turun ke lokasi.")
        self.settle()
        assert status_of(self.national, tracking_id) == ("in_progress", "id-64-02")
        return tracking_id


@pytest.fixture
def tree(nodes: NodeFactory) -> Iterator[Tree]:
    national = nodes("id", "Nasional")
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(national, province)
    link(province, regency)
    yield Tree(national, province, regency)


def _stored_bytes(ctx: NodeContext) -> Iterator[bytes]:
    """Every value in every table of the node's database, as bytes."""
    with ctx.db.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes):
                        yield value
                    elif value is not None:
                        yield str(value).encode()


def _leaks(ctx: NodeContext) -> list[bytes]:
    return [s for value in _stored_bytes(ctx) for s in SECRETS if s in value]


def _export(ctx: NodeContext) -> str:
    out = io.StringIO()
    audit.export(ctx, out)
    return out.getvalue()


def test_a_confidential_identity_reaches_the_holder_sealed(tree: Tree) -> None:
    tracking_id = tree.down_to_the_regency(_draft(confidential=True))

    held = confidential.identity_of(tree.regency.ctx(), tracking_id)
    assert (held.name, held.contact, held.id_number) == (NAME, CONTACT, NIK)
    assert confidential.identity_of(tree.national.ctx(), tracking_id).name == NAME
    # The province held the complaint before it referred it on, but never handled it:
    # nothing was sealed to it, and it holds no identity at all.
    with pytest.raises(NotFoundError):
        confidential.identity_of(tree.province.ctx(), tracking_id)

    # The province passed the box on: it is in its ledger, and nothing of it in clear.
    assert _leaks(tree.province.ctx()) == []
    # The content that travelled with the referrals names no reporter anywhere.
    view = complaints.show(tree.regency.ctx(), tracking_id, with_content=True)
    assert view.reporter in ("", None) or NAME not in str(view.reporter)
    for node in (tree.national, tree.province, tree.regency):
        text = _export(node.ctx())
        verify_export(text.splitlines(keepends=True), trusted_vkey=None)
        assert not any(s.decode() in text for s in SECRETS)
        assert not any(s in node.log_path.read_bytes() for s in SECRETS if node.log_path.exists())


def test_the_regency_stores_it_only_sealed(tree: Tree) -> None:
    tracking_id = tree.down_to_the_regency(_draft(confidential=True))
    with tree.regency.ctx().db.read() as session:
        row = session.get(ReporterIdentityRow, tracking_id)
        assert row is not None and row.identity is None and row.sealed is not None
    assert _leaks(tree.regency.ctx()) == []


def test_an_anonymous_identity_never_leaves_where_it_entered(tree: Tree) -> None:
    tracking_id = tree.down_to_the_regency(_draft(anonymous=True))
    assert confidential.identity_of(tree.national.ctx(), tracking_id).name == NAME
    for node in (tree.province, tree.regency):
        with pytest.raises(NotFoundError):
            confidential.identity_of(node.ctx(), tracking_id)
        assert _leaks(node.ctx()) == []


def test_an_ordinary_complaint_keeps_its_reporter_in_the_content(tree: Tree) -> None:
    tracking_id = tree.down_to_the_regency(_draft())
    view = complaints.show(tree.regency.ctx(), tracking_id, with_content=True)
    assert NAME in str(view.reporter)


def test_a_box_that_does_not_open_is_refused(tree: Tree) -> None:
    """An altered box is refused where it arrives, and nothing of it is stored."""
    tracking_id = tree.down_to_the_regency(_draft(confidential=True))
    ctx = tree.regency.ctx()
    forged = privacy_pb2.SealedIdentity()
    with ctx.db.read() as session:
        row = session.get(ReporterIdentityRow, tracking_id)
        assert row is not None and row.sealed is not None
        forged.ParseFromString(row.sealed)
        before = row.sealed
    forged.ciphertext = bytes(len(forged.ciphertext))
    env = envelope("id-64", "id-64-02", 99, sealed_identity=forged)
    opened = open_envelope(
        sealed(tree.province, env),
        peer=NodeId("id-64"),
        peer_key=signing_key(tree.province).public,
        me=NodeId("id-64-02"),
    )
    with pytest.raises(SignatureError, match="does not open"), ctx.db.write() as session:
        link_row = queries.get_link(session, "id-64")
        assert link_row is not None
        confidential.on_sealed_identity(session, ctx, link_row, opened)
    with ctx.db.read() as session:
        row = session.get(ReporterIdentityRow, tracking_id)
        assert row is not None and row.sealed == before


def test_erasure_removes_the_identity(tree: Tree) -> None:
    tracking_id = tree.down_to_the_regency(_draft(confidential=True))
    complaints.erase(tree.regency.ctx(), tracking_id, "permintaan penghapusan data")
    with pytest.raises(NotFoundError):
        confidential.identity_of(tree.regency.ctx(), tracking_id)
    verify_export(_export(tree.regency.ctx()).splitlines(keepends=True), trusted_vkey=None)
