"""Reconciling the exports of two real linked nodes (separate processes, mutual TLS on
loopback): an honest pair agrees; a child that rebuilt its ledger without one referral, and
re-signed it with its real key so that `audit verify` alone finds nothing, is caught."""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.cli.commands_reconcile import reconcile
from node.complaints import ComplaintDraft
from node.errors import FenceError
from node.ledger.reconcile import Reconciliation, reconcile_exports
from node.ledger.verify import verify_export
from node.services import audit, checkpoints, complaints, fence
from node.services._ledger import record
from node.services.context import NodeContext
from node.store import queries
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, link, status_of, wait_until

pytestmark = pytest.mark.slow

PARENT, CHILD = "id-64", "id-64-02"


def _draft(n: int) -> ComplaintDraft:
    return ComplaintDraft(
        title=f"Jalan poros rusak {n}",
        description="Lubang besar di jalan poros Tenggarong",
        classification="pengaduan",
        category="infrastruktur",
        region_code="64.02",
        channel="walk_in",
        reporter_name="Siti Aminah",
        reporter_contact="081355501234",
        reporter_id_number="6402011203850001",
    )


@dataclass
class Referred:
    """A province and its regency, stopped after three referrals were each receipted one at
    a time; `message_ids` and `tracking_ids` in referral order."""

    parent: TestNode
    child: TestNode
    tracking_ids: list[str]
    message_ids: list[str]


@pytest.fixture
def referred(nodes: NodeFactory) -> Referred:
    parent = nodes(PARENT, "Provinsi Kalimantan Timur")
    child = nodes(CHILD, "Kabupaten Kutai Kartanegara")
    link(parent, child)
    parent.start()
    child.start()
    tracking_ids, message_ids = [], []
    for n in range(3):
        tracking = complaints.submit(parent.ctx(), _draft(n))
        message_ids.append(complaints.refer(parent.ctx(), tracking, CHILD))
        tracking_ids.append(tracking)
        wait_until(
            lambda t=tracking: status_of(parent, t) == ("accepted", CHILD),  # type: ignore[misc]
            what=f"the child's receipt for referral {n}",
        )
    child.stop()
    parent.stop()
    return Referred(parent, child, tracking_ids, message_ids)


def _export(ctx: NodeContext) -> list[str]:
    out = io.StringIO()
    audit.export(ctx, out)
    return out.getvalue().splitlines(keepends=True)


def _reconcile(parent: list[str], child: list[str], vkey: str) -> Reconciliation:
    return reconcile_exports(lambda: parent, lambda: child, trusted_vkey=vkey)


def _rebuild_without(ctx: NodeContext, message_id: str) -> None:
    """As an intruder with database access and the node's files: empty the ledger past its
    triggers, append every entry again but the referral with `message_id`, and sign a fresh
    checkpoint with the node's real key. The rebuilt ledger verifies on its own."""
    with ctx.db.read() as session:
        kept = [
            ledger_pb2.LedgerEntry.FromString(row.entry)
            for row in queries.iter_ledger(session)
            if not _is_referral(row.entry, message_id)
        ]
    with ctx.db.write() as session:
        tables = ("ledger_entries", "ledger_nodes", "checkpoints")
        if ctx.db.is_sqlite:
            for table in tables:
                session.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
        else:
            for table in tables:
                session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER ALL"))
        for table in tables:
            session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our own table names
        session.execute(text("UPDATE ledger_head SET size = 0"))
        for entry in kept:
            record(session, ctx, entry)
    # The node itself refuses to sign over a ledger shorter than what it signed (its
    # signing fence); the intruder, holding the key, removes the fence file too.
    with pytest.raises(FenceError):
        checkpoints.sign(ctx)
    fence.fence_path(ctx.config).unlink()
    checkpoints.sign(ctx)


def _is_referral(data: bytes, message_id: str) -> bool:
    entry = ledger_pb2.LedgerEntry.FromString(data)
    if entry.WhichOneof("kind") != "referral_received":
        return False
    body = entry.referral_received.envelope.body
    return envelope_pb2.Envelope.FromString(body).message_id == message_id


def test_an_honest_pair_reconciles_with_every_envelope_matched(referred: Referred) -> None:
    """Three referrals, three receipts, and every carried checkpoint agree across ledgers."""
    vkey = checkpoints.verifier_key(referred.parent.ctx())
    result = _reconcile(_export(referred.parent.ctx()), _export(referred.child.ctx()), vkey)
    assert result.ok, [str(f) for f in result.discrepancies]
    assert result.pending == ()
    assert (result.envelopes, result.receipts) == (3, 3)
    assert result.checkpoints == 6  # one in each referral, one in each receipt


def test_a_child_that_rebuilt_its_ledger_without_a_referral_is_caught(
    referred: Referred,
) -> None:
    """The child drops the second referral from a re-signed ledger: verify passes, and
    reconcile names the referral, and the receipts the child signed that no longer hold."""
    child = referred.child.ctx()
    _rebuild_without(child, referred.message_ids[1])
    child_lines = _export(child)
    assert verify_export(child_lines, trusted_vkey=checkpoints.verifier_key(child)).entries == 3
    vkey = checkpoints.verifier_key(referred.parent.ctx())
    # One machine, one clock: no slack, so a receipt signed a moment before the rebuilt
    # export is judged against it rather than taken for one still in flight.
    result = reconcile_exports(
        lambda: _export(referred.parent.ctx()),
        lambda: child_lines,
        trusted_vkey=vkey,
        slack=dt.timedelta(0),
    )

    missing = [f for f in result.discrepancies if f.kind == "not-received"]
    assert [(f.message_id, f.tracking_id, f.payload) for f in missing] == [
        (referred.message_ids[1], referred.tracking_ids[1], "referral")
    ]
    receipts = {f.tracking_id: f.kind for f in result.discrepancies if f.payload == "receipt"}
    # The second receipt named child entry 2, which now holds the third referral; the third
    # named entry 3, beyond the rebuilt ledger of 3 entries exported after it was signed.
    assert receipts[referred.tracking_ids[1]] in {"receipt-entry-mismatch", "witness-mismatch"}
    assert receipts[referred.tracking_ids[2]] == "rolled-back"
    assert result.pending == ()


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_cli_reconcile_exit_status_and_json(referred: Referred, tmp_path: Path) -> None:
    """`audit reconcile` exits 0 on the honest pair and 1 naming the dropped referral; a
    file that is not an export is a one-line error."""
    parent_file, child_file = tmp_path / "parent.jsonl", tmp_path / "child.jsonl"
    parent_file.write_text("".join(_export(referred.parent.ctx())))
    child_file.write_text("".join(_export(referred.child.ctx())))
    vkey = checkpoints.verifier_key(referred.parent.ctx())
    runner = CliRunner()

    ok = runner.invoke(reconcile, [str(parent_file), str(child_file), "--trust", vkey])
    assert ok.exit_code == 0, ok.output
    assert "OK no discrepancy" in ok.output and "3 envelopes matched" in ok.output

    _rebuild_without(referred.child.ctx(), referred.message_ids[1])
    child_file.write_text("".join(_export(referred.child.ctx())))
    bad = runner.invoke(reconcile, [str(parent_file), str(child_file), "--json"])
    assert bad.exit_code == 1
    doc = json.loads(bad.output)
    assert doc["ok"] is False and doc["trusted_key"] is False
    assert {"kind": "not-received", "message_id": referred.message_ids[1]}.items() <= next(
        f for f in doc["discrepancies"] if f["kind"] == "not-received"
    ).items()
    text_out = runner.invoke(reconcile, [str(parent_file), str(child_file)])
    assert text_out.exit_code == 1 and "not-received" in text_out.output

    junk = tmp_path / "notes.txt"
    junk.write_text("rapat koordinasi\n")
    err = runner.invoke(reconcile, [str(parent_file), str(junk)])
    assert err.exit_code == 1
    assert "is not a lapor-node/audit-export version 1 file" in err.output
