"""Personal data stays out of the ledger: content lives beside it under a commitment, can be
erased without breaking any proof, and content swapped under its commitment is caught."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import text

from node.complaints import ComplaintDraft
from node.errors import NotFoundError, StateError, ValidationError
from node.ledger.audit import verify_export
from node.services import audit, checkpoints, complaints
from node.services.contents import verify_contents
from node.services.context import NodeContext
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, hand_over, link

REPORTERS = [
    ("Siti Rahmawati", "+62 812 5555 0101", "6402015203870001"),
    ("Budi Santoso", "budi.santoso@example.id", "6472011109900002"),
]


def _draft(n: int) -> ComplaintDraft:
    name, contact, nik = REPORTERS[n % len(REPORTERS)]
    return ComplaintDraft(
        title=f"Puskesmas tutup {n}",
        description="Puskesmas di kecamatan tutup pada jam layanan.",
        classification="pengaduan",
        category="kesehatan",
        region_code="64.02",
        channel="sms_1708",
        reporter_name=name,
        reporter_contact=contact,
        reporter_id_number=nik,
    )


@pytest.fixture
def pair(nodes: NodeFactory) -> tuple[TestNode, TestNode, list[str]]:
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    ids = [complaints.submit(province.ctx(), _draft(n)) for n in range(3)]
    complaints.refer(province.ctx(), ids[0], "id-64-02")
    assert hand_over(province, regency).error is None
    assert hand_over(regency, province).error is None
    checkpoints.sign(province.ctx())
    checkpoints.sign(regency.ctx())
    return province, regency, ids


def _export(ctx: NodeContext) -> str:
    out = io.StringIO()
    audit.export(ctx, out)
    return out.getvalue()


def _ledger_bytes(ctx: NodeContext) -> bytes:
    with ctx.db.read() as session:
        rows = session.execute(text("SELECT entry FROM ledger_entries ORDER BY idx")).all()
        notes = session.execute(text("SELECT note FROM checkpoints")).all()
    return b"".join(bytes(r[0]) for r in rows) + b"".join(bytes(n[0]) for n in notes)


def test_no_reporter_identity_in_any_ledger_or_export(
    pair: tuple[TestNode, TestNode, list[str]],
) -> None:
    for node in pair[:2]:
        ctx = node.ctx()
        ledger, export = _ledger_bytes(ctx), _export(ctx).encode()
        for reporter in REPORTERS:
            for value in reporter:
                assert value.encode() not in ledger, f"{value} in {node.node_id}'s ledger"
                assert value.encode() not in export, f"{value} in {node.node_id}'s export"
        # Nor the content itself: only its commitment.
        assert b"Puskesmas tutup" not in ledger and b"Puskesmas tutup" not in export


def test_erasure_removes_the_content_and_every_proof_stays_valid(
    pair: tuple[TestNode, TestNode, list[str]],
) -> None:
    province, regency, ids = pair
    for node in (province, regency):
        ctx = node.ctx()
        assert verify_contents(ctx).ok
        index = complaints.erase(ctx, ids[0], "permintaan penghapusan data no. 17/2026")
        view = complaints.show(ctx, ids[0], with_content=True)
        assert view.title is None and view.content_kept is False
        assert view.history[-1].ledger_index == index
        with ctx.db.read() as session:
            kept = session.execute(
                text("SELECT count(*) FROM complaint_contents WHERE tracking_id = :t"),
                {"t": ids[0]},
            ).scalar_one()
        assert kept == 0
        checkpoints.sign(ctx)
        report = verify_export(_export(ctx).splitlines(keepends=True))
        assert report.entries == index + 1
        contents = verify_contents(ctx)
        assert contents.ok and contents.not_kept == 1
    # Erasing twice, an unknown complaint, or without a reason: a clear error, no change.
    ctx = province.ctx()
    with pytest.raises(StateError, match="already erased"):
        complaints.erase(ctx, ids[0], "again")
    with pytest.raises(NotFoundError):
        complaints.erase(ctx, "id-64.2026.999999", "x")
    with pytest.raises(ValidationError, match="--reason"):
        complaints.erase(ctx, ids[1], "   ")
    assert complaints.show(ctx, ids[1], with_content=True).title is not None


def test_erase_from_the_cli(pair: tuple[TestNode, TestNode, list[str]]) -> None:
    province, _, ids = pair
    out = province.cli("complaint", "erase", ids[2], "--reason", "DSAR 2026-41", "--yes", "--json")
    assert json.loads(out.stdout)["erased"] is True
    refused = province.cli("complaint", "erase", ids[2], "--reason", "x", "--yes", check=False)
    assert refused.returncode == 1 and "already erased" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize("column", ["content", "salt"])
def test_content_swapped_under_its_commitment_is_named(
    pair: tuple[TestNode, TestNode, list[str]], column: str
) -> None:
    province, regency, ids = pair
    for node, entry_kind in ((province, "complaint_registered"), (regency, "referral_received")):
        ctx = node.ctx()
        replacement = b"\x01" * 32 if column == "salt" else b"laporan lain"
        with ctx.db.write() as session:
            session.execute(
                text(f"UPDATE complaint_contents SET {column} = :v WHERE tracking_id = :t"),  # noqa: S608
                {"v": replacement, "t": ids[0]},
            )
        report = verify_contents(ctx)
        [finding] = report.findings
        assert (finding.kind, finding.tracking_id) == ("content-swapped", ids[0])
        assert _kind_at(ctx, finding.index) == entry_kind


def test_a_changed_commitment_column_is_named(
    pair: tuple[TestNode, TestNode, list[str]],
) -> None:
    province, _, ids = pair
    ctx = province.ctx()
    with ctx.db.write() as session:
        session.execute(
            text("UPDATE complaints SET content_commitment = :v WHERE tracking_id = :t"),
            {"v": b"\x02" * 32, "t": ids[1]},
        )
    kinds = sorted(f.kind for f in verify_contents(ctx).findings)
    assert kinds == ["commitment-changed"]


def _kind_at(ctx: NodeContext, index: int) -> str:
    from node._proto.lapor.v1 import ledger_pb2

    with ctx.db.read() as session:
        data = session.execute(
            text("SELECT entry FROM ledger_entries WHERE idx = :i"), {"i": index}
        ).scalar_one()
    return ledger_pb2.LedgerEntry.FromString(bytes(data)).WhichOneof("kind") or ""
